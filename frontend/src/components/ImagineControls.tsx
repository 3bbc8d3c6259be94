/** Imagine mode's controls: where to start painting from, raise or lower, undo and reset. */
import type { ImagineStart, ImagineView } from "../session";

export interface ImagineControlsProps {
  view: ImagineView | null;
  lower: boolean;
  onLower: (lower: boolean) => void;
  onStart: (start: ImagineStart) => void;
  onUndo: () => void;
  onReset: () => void;
}

export function ImagineControls({ view, lower, onLower, onStart, onUndo, onReset }: ImagineControlsProps) {
  return (
    <div className="imagine-controls" role="group" aria-label="Imagine">
      <label>
        Start from{" "}
        <select value={view?.start ?? "mean"} onChange={(e) => onStart(e.target.value === "last" ? "last" : "mean")} data-testid="imagine-start">
          <option value="mean">the population's mean</option>
          <option value="last">the last response</option>
        </select>
      </label>
      <div className="segmented" role="radiogroup" aria-label="Brush">
        <button type="button" role="radio" aria-checked={!lower} onClick={() => onLower(false)} data-testid="brush-raise">
          Raise
        </button>
        <button type="button" role="radio" aria-checked={lower} onClick={() => onLower(true)} data-testid="brush-lower">
          Lower
        </button>
      </div>
      <button type="button" className="button-secondary" onClick={onUndo} disabled={!view?.canUndo} data-testid="imagine-undo">
        Undo
      </button>
      <button type="button" className="button-secondary" onClick={onReset} disabled={!view?.edited} data-testid="imagine-reset">
        Reset
      </button>
    </div>
  );
}
