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
}

export function SourcePicker({ source, onChange }: SourcePickerProps) {
  return (
    <fieldset className="segmented">
      <legend className="visually-hidden">Input</legend>
      {SOURCES.map((s) => (
        <label key={s.source} className={`segment${s.source === source ? " segment-on" : ""}`}>
          <input type="radio" name="input-source" value={s.source} checked={s.source === source} onChange={() => onChange(s.source)} />
          <span>{s.label}</span>
        </label>
      ))}
    </fieldset>
  );
}
