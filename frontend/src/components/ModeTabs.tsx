/**
 * Snapshot / Live / Recorded / Imagine / Dream, as an ARIA tab list: arrow keys move between tabs, Home and
 * End jump to the ends, and only the selected tab is in the Tab order. While the simulation-service is still
 * preparing Recorded mode's dataset, that tab says how far and cannot be chosen; it turns on by itself.
 */
import { type KeyboardEvent, useRef } from "react";
import type { RecordedStatus } from "../protocol";
import type { Mode } from "../session";

export const MODES: { mode: Mode; label: string; hint: string }[] = [
  { mode: "snapshot", label: "Snapshot", hint: "One image in, one reconstruction out" },
  { mode: "live", label: "Live", hint: "Your webcam, streamed at up to 30 frames/s" },
  { mode: "recorded", label: "Recorded", hint: "Real recorded responses of held-out movie segments" },
  { mode: "imagine", label: "Imagine", hint: "Paint the activity yourself and see what it means" },
  { mode: "dream", label: "Dream", hint: "Activity without any image, dreamt up by the model" },
];

export interface ModeTabsProps {
  mode: Mode;
  onChange: (mode: Mode) => void;
  /** What the simulation-service says about Recorded mode, when it has said. */
  recorded?: RecordedStatus | undefined;
}

/** The label and hint of a tab that is waiting for its data, or null when it can be chosen. */
function preparing(m: Mode, recorded: RecordedStatus | undefined): { label: string; hint: string } | null {
  if (m !== "recorded" || recorded?.state !== "preparing") return null;
  const label = `Recorded mode: preparing, ${recorded.percent}%`;
  const step = recorded.phase ? ` (${recorded.phase})` : "";
  return { label, hint: `${label}${step}. The dataset it replays is being made; the mode turns on by itself when it is ready.` };
}

export function ModeTabs({ mode, onChange, recorded }: ModeTabsProps) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const index = MODES.findIndex((m) => m.mode === mode);

  const move = (to: number, step: 1 | -1) => {
    let next = (to + MODES.length) % MODES.length;
    // A tab waiting for its data is passed over (at most one is).
    if (preparing(MODES[next]?.mode ?? mode, recorded) !== null) next = (next + step + MODES.length) % MODES.length;
    const target = MODES[next];
    if (target === undefined) return;
    onChange(target.mode);
    refs.current[next]?.focus();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLButtonElement>) => {
    switch (event.key) {
      case "ArrowRight":
        move(index + 1, 1);
        break;
      case "ArrowLeft":
        move(index - 1, -1);
        break;
      case "Home":
        move(0, 1);
        break;
      case "End":
        move(MODES.length - 1, -1);
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  return (
    <div className="tabs" role="tablist" aria-label="Mode">
      {MODES.map((m, i) => {
        const waiting = preparing(m.mode, recorded);
        return (
          <button
            key={m.mode}
            ref={(el) => {
              refs.current[i] = el;
            }}
            type="button"
            role="tab"
            id={`tab-${m.mode}`}
            aria-selected={m.mode === mode}
            aria-controls="workspace"
            aria-disabled={waiting !== null}
            tabIndex={m.mode === mode ? 0 : -1}
            className={waiting ? "tab tab-waiting" : "tab"}
            title={waiting?.hint ?? m.hint}
            onClick={() => {
              if (waiting === null) onChange(m.mode);
            }}
            onKeyDown={onKeyDown}
          >
            {waiting?.label ?? m.label}
          </button>
        );
      })}
    </div>
  );
}
