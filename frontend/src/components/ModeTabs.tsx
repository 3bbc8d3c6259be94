/**
 * Snapshot / Live / Recorded / Imagine / Dream, as an ARIA tab list: arrow keys move between tabs, Home and
 * End jump to the ends, and only the selected tab is in the Tab order.
 */
import { type KeyboardEvent, useRef } from "react";
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
}

export function ModeTabs({ mode, onChange }: ModeTabsProps) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const index = MODES.findIndex((m) => m.mode === mode);

  const move = (to: number) => {
    const next = (to + MODES.length) % MODES.length;
    const target = MODES[next];
    if (target === undefined) return;
    onChange(target.mode);
    refs.current[next]?.focus();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLButtonElement>) => {
    switch (event.key) {
      case "ArrowRight":
        move(index + 1);
        break;
      case "ArrowLeft":
        move(index - 1);
        break;
      case "Home":
        move(0);
        break;
      case "End":
        move(MODES.length - 1);
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  return (
    <div className="tabs" role="tablist" aria-label="Mode">
      {MODES.map((m, i) => (
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
          tabIndex={m.mode === mode ? 0 : -1}
          className="tab"
          title={m.hint}
          onClick={() => onChange(m.mode)}
          onKeyDown={onKeyDown}
        >
          {m.label}
        </button>
      ))}
    </div>
  );
}
