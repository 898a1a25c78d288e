/**
 * Reconnect policy: exponential backoff with "equal jitter" and a cap.
 *
 * Attempt n (0-based) waits a random time in [raw/2, raw], raw = min(cap, initial * factor^n),
 * so viewers of a restarted gateway do not all come back in the same millisecond, yet none
 * waits much longer than needed. `reset()` after a successful connection starts over.
 */

export interface BackoffOptions {
  initialMs: number;
  factor: number;
  maxMs: number;
  /** Fraction of the raw delay that is randomized: 0 = none, 0.5 = [raw/2, raw]. */
  jitter: number;
  /** Random source in [0, 1) (injectable for tests). */
  random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  factor: 2,
  maxMs: 10_000,
  jitter: 0.5,
  random: Math.random,
};

export class ReconnectPolicy {
  readonly options: BackoffOptions;
  private attempt = 0;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** Failed attempts since the last success. */
  get attempts(): number {
    return this.attempt;
  }

  /** The un-jittered delay for attempt `n`. */
  rawDelay(n: number): number {
    const { initialMs, factor, maxMs } = this.options;
    return Math.min(maxMs, initialMs * Math.pow(factor, n));
  }

  /** The delay before the next attempt; counts the attempt. */
  nextDelay(): number {
    const raw = this.rawDelay(this.attempt);
    this.attempt = Math.min(this.attempt + 1, 64);
    const jitter = Math.min(1, Math.max(0, this.options.jitter));
    const r = Math.min(Math.max(this.options.random(), 0), 1);
    return Math.round(raw * (1 - jitter) + raw * jitter * r);
  }

  /** A connection succeeded: the next failure starts from the initial delay. */
  reset(): void {
    this.attempt = 0;
  }
}
