/**
 * Which modelled population answers (the pvc-1 array, or the wide field over the whole
 * frame) and whether its responses are the predicted means or single trials.
 */
import type { Population, Trial } from "../protocol";

export interface PopulationPickerProps {
  population: Population;
  trial: Trial;
  /** Why the wide field cannot be chosen (the service has no wide-field model); null when it can. */
  wideUnavailable: string | null;
  onPopulation: (population: Population) => void;
  onTrial: (trial: Trial) => void;
  /** While a stream runs, the choice waits. */
  disabled?: boolean;
}

const POPULATION_LABELS: { value: Population; label: string }[] = [
  { value: "pvc1", label: "one array (pvc-1)" },
  { value: "wide", label: "wide field" },
];

const TRIAL_LABELS: { value: Trial; label: string; title: string }[] = [
  { value: "mean", label: "mean response", title: "The model's predicted mean spike counts" },
  { value: "single", label: "single trial", title: "One Poisson draw of the predicted counts: whole spikes, as one trial would give" },
];

export function PopulationPicker({ population, trial, wideUnavailable, onPopulation, onTrial, disabled = false }: PopulationPickerProps) {
  return (
    <div className="population-picker">
      <fieldset className="segmented" disabled={disabled}>
        <legend className="visually-hidden">Population</legend>
        {POPULATION_LABELS.map((p) => {
          const off = p.value === "wide" && wideUnavailable !== null;
          return (
            <label
              key={p.value}
              className={`segment${p.value === population ? " segment-on" : ""}${off ? " segment-disabled" : ""}`}
              title={off ? (wideUnavailable ?? undefined) : p.value === "wide" ? "Arrays tiling the whole 4:3 frame" : "The 10x10 array of pvc-1, at its receptive-field footprint"}
            >
              <input type="radio" name="population" value={p.value} checked={p.value === population} disabled={off} onChange={() => onPopulation(p.value)} />
              <span>{p.label}</span>
            </label>
          );
        })}
      </fieldset>
      <fieldset className="segmented" disabled={disabled}>
        <legend className="visually-hidden">Response</legend>
        {TRIAL_LABELS.map((t) => (
          <label key={t.value} className={`segment${t.value === trial ? " segment-on" : ""}`} title={t.title}>
            <input type="radio" name="trial" value={t.value} checked={t.value === trial} onChange={() => onTrial(t.value)} />
            <span>{t.label}</span>
          </label>
        ))}
      </fieldset>
    </div>
  );
}
