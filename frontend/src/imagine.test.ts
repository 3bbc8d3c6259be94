import { describe, expect, it } from "vitest";
import { buildLayout, buildWideLayout } from "./activity";
import { ImaginedResponse } from "./imagine";
import { MAX_IMAGINED_COUNT } from "./protocol";

// Three channels, two lags; channels 0 and 2 share electrode 5 (cell 4).
const layout = buildLayout({
  channels: [
    { file: "a", electrode: 5, row: 0, col: 4 },
    { file: "a", electrode: 7, row: 0, col: 6 },
    { file: "b", electrode: 5, row: 0, col: 4 },
  ],
  lags: 2,
});

describe("ImaginedResponse", () => {
  it("raises every channel of a cell, spread over the lags, and undoes and resets", () => {
    const r = new ImaginedResponse([1, 1, 1, 2, 2, 2]);
    expect(r.edited).toBe(false);
    expect(r.edit(4, 3, layout)).toBe(true);
    expect(Array.from(r.values)).toEqual([2.5, 1, 2.5, 3.5, 2, 3.5]);
    expect(r.edit(6, -1, layout)).toBe(true);
    expect(Array.from(r.values)).toEqual([2.5, 0.5, 2.5, 3.5, 1.5, 3.5]);
    expect(r.undo()).toBe(true);
    expect(Array.from(r.values)).toEqual([2.5, 1, 2.5, 3.5, 2, 3.5]);
    expect(r.reset()).toBe(true);
    expect(Array.from(r.values)).toEqual([1, 1, 1, 2, 2, 2]);
    expect(r.edited).toBe(false);
    // Reset is undoable too.
    expect(r.undo()).toBe(true);
    expect(r.edited).toBe(true);
    expect(r.undo()).toBe(true);
    expect(r.undo()).toBe(false);
    expect(Array.from(r.values)).toEqual([1, 1, 1, 2, 2, 2]);
  });

  it("keeps every value a count the service accepts", () => {
    const r = new ImaginedResponse([0.5, Number.NaN, 99, -1, 2, 2]);
    expect(Array.from(r.values)).toEqual([0.5, 0, 99, 0, 2, 2]);
    expect(r.edit(4, -10, layout)).toBe(true);
    expect(Array.from(r.values)).toEqual([0, 0, 94, 0, 2, 0]);
    r.edit(4, 1000, layout);
    expect(Math.max(...r.values)).toBe(MAX_IMAGINED_COUNT);
    // A cell without a channel changes nothing and leaves nothing to undo.
    const fresh = new ImaginedResponse([1, 1, 1, 1, 1, 1]);
    expect(fresh.edit(99, 5, layout)).toBe(false);
    expect(fresh.canUndo).toBe(false);
  });

  it("raises a wide-field marker's channels: one dot's channel, or every channel of a ring", () => {
    // Four channels, one lag: channel 0 placed, channels 1-3 of array "b" without a centre (one ring).
    const wide = buildWideLayout({
      channels: [
        { file: "a", electrode: 1, row: 0, col: 0, rfCentre: [32, 32] },
        { file: "b", electrode: 1, row: 0, col: 0 },
        { file: "b", electrode: 2, row: 0, col: 1 },
        { file: "b", electrode: 3, row: 0, col: 2 },
      ],
      lags: 1,
      imageSize: 64,
      cropWindow: { x: 0, y: 0, width: 320, height: 240 },
    });
    const r = new ImaginedResponse([1, 1, 1, 1]);
    expect(r.editMarker(0, 2, wide)).toBe(true);
    expect(Array.from(r.values)).toEqual([3, 1, 1, 1]);
    expect(r.editMarker(1, -1, wide)).toBe(true);
    expect(Array.from(r.values)).toEqual([3, 0, 0, 0]);
    // No such marker, or a channel index outside the response: nothing changes.
    expect(r.editMarker(7, 2, wide)).toBe(false);
    expect(r.editChannels([4, -1, 0.5], 2, wide)).toBe(false);
    expect(r.undo()).toBe(true);
    expect(Array.from(r.values)).toEqual([3, 1, 1, 1]);
  });
});
