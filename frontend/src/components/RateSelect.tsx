/** Frames per second of a stream (live webcam or recorded replay). */
const RATES = [5, 10, 15, 30];

export interface RateSelectProps {
  fps: number;
  onChange: (fps: number) => void;
  disabled?: boolean;
}

export function RateSelect({ fps, onChange, disabled = false }: RateSelectProps) {
  return (
    <label className="rate">
      <span>Rate</span>
      <select value={fps} disabled={disabled} onChange={(e) => onChange(Number(e.target.value))} aria-label="Frames per second">
        {RATES.map((r) => (
          <option key={r} value={r}>
            {r} frames/s
          </option>
        ))}
      </select>
    </label>
  );
}
