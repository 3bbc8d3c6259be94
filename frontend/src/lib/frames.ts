/**
 * Frame pacing and timing for the live stream.
 *
 * Responsibility: decide whether another frame may be sent (never more than a couple in
 * flight: a slow pipeline then drops frames instead of queueing them and falling ever
 * further behind), and measure what a person cares about: how many reconstructions per
 * second arrive, and how long a frame takes from send to its reconstruction (median over
 * the last second).
 */
export interface FrameTrackerOptions {
  /** Frames sent but not yet reconstructed before new frames are dropped. */
  maxInFlight: number;
  /** After this long a frame is presumed lost and stops blocking new ones. */
  staleMs: number;
  /** Window of the rate and latency figures. */
  windowMs: number;
  now: () => number;
}

export interface FrameStats {
  /** Reconstructions that arrived within the window, per second. */
  fps: number;
  /** Median send-to-reconstruction time within the window, ms; null when none. */
  latencyP50: number | null;
  inFlight: number;
  sent: number;
  received: number;
  /** Frames skipped because too many were in flight. */
  dropped: number;
  /** Frames given up on after `staleMs`. */
  lost: number;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? null) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export class FrameTracker {
  private readonly options: FrameTrackerOptions;
  /** frame_id -> send time, in send order (Map keeps insertion order). */
  private readonly inFlight = new Map<number, number>();
  /** (arrival time, latency or NaN) of recent reconstructions. */
  private arrivals: { at: number; latency: number }[] = [];
  private sent = 0;
  private received = 0;
  private dropped = 0;
  private lost = 0;

  constructor(options: Partial<FrameTrackerOptions> = {}) {
    this.options = { maxInFlight: 2, staleMs: 3000, windowMs: 1000, now: () => performance.now(), ...options };
  }

  private expire(now: number): void {
    for (const [id, at] of this.inFlight) {
      if (now - at < this.options.staleMs) break;
      this.inFlight.delete(id);
      this.lost += 1;
    }
    const from = now - this.options.windowMs;
    let keep = 0;
    while (keep < this.arrivals.length && (this.arrivals[keep]?.at ?? 0) < from) keep += 1;
    if (keep > 0) this.arrivals = this.arrivals.slice(keep);
  }

  /** Whether a new frame may go out now; counts a drop when it may not. */
  tryAcquire(): boolean {
    this.expire(this.options.now());
    if (this.inFlight.size >= this.options.maxInFlight) {
      this.dropped += 1;
      return false;
    }
    return true;
  }

  markSent(frameId: number): void {
    this.inFlight.set(frameId, this.options.now());
    this.sent += 1;
  }

  /** Whether `frameId` was sent and its reconstruction is still awaited. */
  isAwaiting(frameId: number | undefined): boolean {
    return frameId !== undefined && this.inFlight.has(frameId);
  }

  /** Forgets a frame that will not be answered (e.g. its send failed or was rejected). */
  cancel(frameId: number): void {
    this.inFlight.delete(frameId);
  }

  /**
   * Records a reconstruction. Returns its latency in ms when it answers a frame this page
   * sent and is still waiting for; otherwise `measured` (a latency known by other means,
   * e.g. for frames the service sent by itself), or null (a replay, a frame given up).
   */
  markArrived(frameId: number | undefined, measured: number | null = null): number | null {
    const now = this.options.now();
    this.expire(now);
    let latency: number | null = measured;
    if (frameId !== undefined && this.inFlight.has(frameId)) {
      latency = now - (this.inFlight.get(frameId) ?? now);
      // Frames sent before this one and still open were overtaken; they will not come.
      for (const id of [...this.inFlight.keys()]) {
        if (id === frameId) break;
        this.inFlight.delete(id);
        this.lost += 1;
      }
      this.inFlight.delete(frameId);
    }
    this.received += 1;
    this.arrivals.push({ at: now, latency: latency ?? Number.NaN });
    return latency;
  }

  stats(): FrameStats {
    this.expire(this.options.now());
    const latencies = this.arrivals.map((a) => a.latency).filter((l) => Number.isFinite(l));
    return {
      fps: (this.arrivals.length * 1000) / this.options.windowMs,
      latencyP50: median(latencies),
      inFlight: this.inFlight.size,
      sent: this.sent,
      received: this.received,
      dropped: this.dropped,
      lost: this.lost,
    };
  }

  reset(): void {
    this.inFlight.clear();
    this.arrivals = [];
    this.sent = 0;
    this.received = 0;
    this.dropped = 0;
    this.lost = 0;
  }
}
