import { describe, expect, it } from "vitest";
import {
  ARRAY_CELLS,
  ActivityHistory,
  ActivityShapeError,
  RunningScale,
  arrayMap,
  buildLayout,
  buildWideLayout,
  channelTotals,
  decodeActivity,
  heatColour,
} from "./activity";
import { parseSimulationInfo } from "./protocol";
import { INFO, WIDE } from "./test/fakes";

function layout() {
  const info = parseSimulationInfo(INFO);
  if (!info.ok) throw info.error;
  return buildLayout(info.value);
}

describe("channelTotals", () => {
  it("sums a lag-major payload over lags per channel", () => {
    // 2 lags x 3 channels: payload[l * 3 + c]
    expect(Array.from(channelTotals([1, 2, 3, 10, 20, 30], 2, 3))).toEqual([11, 22, 33]);
  });
});

describe("layout and arrayMap", () => {
  it("places channels on their cells and orders the raster by position", () => {
    const l = layout();
    expect(Array.from(l.cellOfChannel)).toEqual([0, 11, 11]);
    expect(l.channelsPerCell[0]).toBe(1);
    expect(l.channelsPerCell[11]).toBe(2);
    expect(l.electrodeOfCell[11]).toBe(12);
    expect(Array.from(l.displayOrder)).toEqual([0, 1, 2]);
  });

  it("averages channels that share an electrode and leaves empty positions NaN", () => {
    const grid = arrayMap([4, 1, 3], layout());
    expect(grid).toHaveLength(ARRAY_CELLS);
    expect(grid[0]).toBe(4);
    expect(grid[11]).toBe(2);
    expect(Number.isNaN(grid[5] ?? 0)).toBe(true);
    expect(Array.from(grid).filter((v) => !Number.isNaN(v))).toHaveLength(2);
  });
});

describe("decodeActivity", () => {
  it("uses the channel map when it is known", () => {
    const frame = decodeActivity([1, 0, 2, 1, 2, 2], undefined, layout());
    expect(Array.from(frame.totals)).toEqual([2, 2, 4]);
    expect(frame.grid?.[11]).toBe(3);
  });

  it("says what disagrees when the payload does not fit the map", () => {
    expect(() => decodeActivity([1, 2, 3], [1, 3], layout())).toThrow(ActivityShapeError);
    expect(() => decodeActivity([1, 2, 3], [1, 3], layout())).toThrow("expects 6 (2 lags x 3 channels)");
  });

  it("falls back to the message shape without a map", () => {
    const frame = decodeActivity([1, 2, 3, 4], [2, 2], null);
    expect(Array.from(frame.totals)).toEqual([4, 6]);
    expect(frame.grid).toBeNull();
    expect(Array.from(decodeActivity([1, 2], undefined, null).totals)).toEqual([1, 2]);
  });
});

describe("ActivityHistory", () => {
  it("keeps the newest frames in order", () => {
    const h = new ActivityHistory(3);
    for (let i = 1; i <= 5; i++) h.push(Float32Array.of(i));
    expect(h.length).toBe(3);
    expect(h.toArray().map((f) => f[0])).toEqual([3, 4, 5]);
    h.clear();
    expect(h.toArray()).toEqual([]);
  });
});

describe("RunningScale", () => {
  it("jumps to a new peak and relaxes slowly", () => {
    const s = new RunningScale(1, 0.5);
    expect(s.update([0.2, 0.3])).toBe(1);
    expect(s.update([8, Number.NaN])).toBe(8);
    expect(s.update([1])).toBe(4);
    expect(s.update([1])).toBe(2);
    expect(s.update([0])).toBe(1);
  });
});

describe("heatColour", () => {
  it("runs from near black to pale yellow and clamps", () => {
    expect(heatColour(0)).toEqual([0, 0, 4]);
    expect(heatColour(1)).toEqual([252, 255, 164]);
    expect(heatColour(-3)).toEqual(heatColour(0));
    expect(heatColour(7)).toEqual(heatColour(1));
    expect(heatColour(Number.NaN)).toEqual(heatColour(0));
    const mid = heatColour(0.5);
    expect(mid[0]).toBeGreaterThan(heatColour(0.25)[0]);
  });
});

describe("the wide-field layout", () => {
  function wide() {
    const info = parseSimulationInfo({ ...INFO, wide: WIDE });
    if (!info.ok || info.value.wide === undefined) throw new Error("no wide population");
    return buildWideLayout(info.value.wide);
  }

  it("places each channel at its receptive-field centre as a fraction of the 4:3 frame", () => {
    const l = wide();
    expect(l.frame).toEqual({ width: 320, height: 240 });
    expect(l.markers.slice(0, 2)).toEqual([
      { x: 0.25, y: 0.25, channels: [0], grouped: false, file: "f1" },
      { x: 0.75, y: 0.5, channels: [1], grouped: false, file: "f1" },
    ]);
  });

  it("groups channels without a centre at their array's mean centre, or the frame's middle", () => {
    const l = wide();
    expect(l.markers.slice(2)).toEqual([
      { x: 0.5, y: 0.375, channels: [2], grouped: true, file: "f1" },
      { x: 0.5, y: 0.5, channels: [3], grouped: true, file: "f2" },
    ]);
    expect(Array.from(l.markerOfChannel)).toEqual([0, 1, 2, 3]);
    // Top to bottom: channel 0 (y 0.25), the f1 group (0.375), then channel 1 and f2 (0.5, by x).
    expect(Array.from(l.displayOrder)).toEqual([0, 2, 3, 1]);
  });

  it("turns a response into one value per marker", () => {
    const l = wide();
    const frame = decodeActivity([1, 2, 3, 4, 1, 0, 1, 0], [2, 4], l);
    expect(Array.from(frame.totals)).toEqual([2, 2, 4, 4]);
    expect(Array.from(frame.markers ?? [])).toEqual([2, 2, 4, 4]);
    expect(frame.grid).toBeNull();
    expect(() => decodeActivity([1, 2, 3], undefined, l)).toThrow(ActivityShapeError);
  });
});
