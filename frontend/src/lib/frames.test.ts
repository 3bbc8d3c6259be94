import { describe, expect, it } from "vitest";
import { FrameTracker, median } from "./frames";

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("median", () => {
  it("handles odd, even and empty lists", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});

describe("FrameTracker", () => {
  it("allows at most two frames in flight and counts the drops", () => {
    const c = clock();
    const t = new FrameTracker({ now: c.now });
    expect(t.tryAcquire()).toBe(true);
    t.markSent(1);
    expect(t.tryAcquire()).toBe(true);
    t.markSent(2);
    expect(t.tryAcquire()).toBe(false);
    expect(t.stats()).toMatchObject({ inFlight: 2, dropped: 1, sent: 2 });
    c.advance(40);
    expect(t.markArrived(1)).toBe(40);
    expect(t.tryAcquire()).toBe(true);
  });

  it("measures latency and rate over the last second", () => {
    const c = clock();
    const t = new FrameTracker({ now: c.now });
    for (let id = 1; id <= 10; id++) {
      t.markSent(id);
      c.advance(id <= 5 ? 30 : 50);
      t.markArrived(id);
      c.advance(50);
    }
    // All ten arrived within the last second (10 x 80-100 ms = 900 ms).
    const s = t.stats();
    expect(s.fps).toBe(10);
    expect(s.latencyP50).toBe(40);
    expect(s.received).toBe(10);
    c.advance(2000);
    expect(t.stats().fps).toBe(0);
    expect(t.stats().latencyP50).toBeNull();
  });

  it("stops waiting for frames that never come", () => {
    const c = clock();
    const t = new FrameTracker({ now: c.now, staleMs: 1000 });
    t.markSent(1);
    t.markSent(2);
    c.advance(1000);
    expect(t.tryAcquire()).toBe(true);
    expect(t.stats().lost).toBe(2);
  });

  it("treats frames overtaken by a later one as lost", () => {
    const c = clock();
    const t = new FrameTracker({ now: c.now });
    t.markSent(1);
    t.markSent(2);
    c.advance(10);
    expect(t.markArrived(2)).toBe(10);
    expect(t.stats()).toMatchObject({ inFlight: 0, lost: 1 });
  });

  it("counts replays and other unknown frames without a latency, unless measured elsewhere", () => {
    const c = clock();
    const t = new FrameTracker({ now: c.now });
    expect(t.markArrived(99)).toBeNull();
    expect(t.markArrived(undefined, 25)).toBe(25);
    expect(t.stats()).toMatchObject({ received: 2, latencyP50: 25 });
    t.markSent(5);
    t.cancel(5);
    expect(t.stats().inFlight).toBe(0);
    t.reset();
    expect(t.stats()).toMatchObject({ received: 0, sent: 0, dropped: 0 });
  });
});
