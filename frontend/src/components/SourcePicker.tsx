/** The input of a snapshot: webcam, a random stimulus, or an image of one's own. */
export type InputSource = "webcam" | "random" | "image";

const SOURCES: { source: InputSource; label: string }[] = [
  { source: "webcam", label: "Webcam" },
  { source: "random", label: "Random stimulus" },
  { source: "image", label: "Image" },
];

export interface SourcePickerProps {
  source: InputSource;
  onChange: (source: InputSource) => void;
  /** Why the service's random stimuli cannot be had (the wide field takes the page's own images); null when they can. */
  randomUnavailable?: string | null;
}

export function SourcePicker({ source, onChange, randomUnavailable = null }: SourcePickerProps) {
  return (
    <fieldset className="segmented">
      <legend className="visually-hidden">Input</legend>
      {SOURCES.map((s) => {
        const off = s.source === "random" && randomUnavailable !== null;
        return (
          <label key={s.source} className={`segment${s.source === source ? " segment-on" : ""}${off ? " segment-disabled" : ""}`} title={off ? (randomUnavailable ?? undefined) : undefined}>
            <input type="radio" name="input-source" value={s.source} checked={s.source === source} disabled={off} onChange={() => onChange(s.source)} />
            <span>{s.label}</span>
          </label>
        );
      })}
    </fieldset>
  );
}
