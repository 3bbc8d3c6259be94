/**
 * Exponential backoff with jitter for reconnecting to a service that went away.
 *
 * The jitter keeps many open pages from hammering a restarted service in lockstep; the
 * cap keeps the page responsive to a service that comes back after a long outage.
 */
export interface BackoffOptions {
  /** First delay in ms. */
  initialMs: number;
  /** Largest delay in ms. */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
  /** Fraction of the delay that is randomised, 0..1. */
  jitter: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 8000,
  factor: 2,
  jitter: 0.2,
  random: Math.random,
};

export class Backoff {
  private attempt = 0;
  private readonly options: BackoffOptions;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** Number of failures since the last success. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next try, and counts the failure that caused it. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.options;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt += 1;
    const spread = base * jitter;
    return Math.round(Math.max(0, base - spread + 2 * spread * random()));
  }

  /** Called after a success, so the next outage starts with a short delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
