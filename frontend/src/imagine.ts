/**
 * Imagine mode's edits of a response, kept free of the DOM and the sockets so they can be
 * tested exactly.
 *
 * Responsibility: hold the response being painted (lag-major, like the wire payload), the
 * response it started from, and the edits in between for undo. An edit changes the activity
 * of one place on the activity map (an array cell of the pvc-1 array, a marker of the wide
 * field): every channel shown there gains `delta` spikes summed over the lags, spread evenly
 * over its lag bins, and every value stays within what the service accepts
 * (0..=MAX_IMAGINED_COUNT spikes per bin).
 */
import type { ArrayLayout, WideLayout } from "./activity";
import { MAX_IMAGINED_COUNT } from "./protocol";

/** Most edits kept for undo. */
export const MAX_UNDO = 200;

export class ImaginedResponse {
  private base: Float32Array;
  private current: Float32Array;
  private readonly undoStack: Float32Array[] = [];

  constructor(start: ArrayLike<number>) {
    this.base = clampAll(start);
    this.current = this.base.slice();
  }

  /** The response as it stands. */
  get values(): Float32Array {
    return this.current;
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  /** Whether the response differs from the one it started from. */
  get edited(): boolean {
    return this.current.some((v, i) => v !== this.base[i]);
  }

  /** Adds `delta` spikes (over all lags) to every channel at array cell `cell`; false if nothing changed. */
  edit(cell: number, delta: number, layout: ArrayLayout): boolean {
    const channels: number[] = [];
    for (let c = 0; c < layout.channels; c++) if (layout.cellOfChannel[c] === cell) channels.push(c);
    return this.editChannels(channels, delta, layout);
  }

  /** Adds `delta` spikes (over all lags) to every channel of wide-field marker `marker`; false if nothing changed. */
  editMarker(marker: number, delta: number, layout: WideLayout): boolean {
    return this.editChannels(layout.markers[marker]?.channels ?? [], delta, layout);
  }

  /**
   * Adds `delta` spikes (over all lags) to each of `channels` of a lag-major response of
   * `shape`; false if nothing changed (no channel, or every value already at its bound).
   */
  editChannels(channels: readonly number[], delta: number, shape: { lags: number; channels: number }): boolean {
    const next = this.current.slice();
    const perBin = delta / shape.lags;
    for (const c of channels) {
      if (!Number.isInteger(c) || c < 0 || c >= shape.channels) continue;
      for (let l = 0; l < shape.lags; l++) {
        const i = l * shape.channels + c;
        next[i] = clamp((next[i] ?? 0) + perBin);
      }
    }
    if (next.every((v, i) => v === this.current[i])) return false;
    this.undoStack.push(this.current);
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
    this.current = next;
    return true;
  }

  /** Takes back the last edit; false when there is none. */
  undo(): boolean {
    const previous = this.undoStack.pop();
    if (previous === undefined) return false;
    this.current = previous;
    return true;
  }

  /** Back to the response it started from (itself an edit that undo takes back). */
  reset(): boolean {
    if (!this.edited) return false;
    this.undoStack.push(this.current);
    this.current = this.base.slice();
    return true;
  }
}

function clamp(v: number): number {
  return Number.isFinite(v) ? Math.min(MAX_IMAGINED_COUNT, Math.max(0, v)) : 0;
}

function clampAll(values: ArrayLike<number>): Float32Array {
  return Float32Array.from(values, clamp);
}
