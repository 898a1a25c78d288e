/**
 * Viewer freshness reports (`{"type":"shown","frames":N,"age_ms":[...]}`, see the README's
 * "Viewing protocol"): what this viewer actually drew, so the gateway's operators see the
 * lag users see (`camgate_viewer_frame_age_seconds`, `camgate_viewer_frames_shown_total`).
 *
 * - Every path (MJPEG, WebCodecs, MSE) calls `record` once per picture it puts on screen,
 *   with the picture's capture time and the moment it was drawn. Nothing drawn (a hidden or
 *   off-screen tile), nothing recorded, nothing sent.
 * - Ages are on the gateway's clock: capture times are the gateway's, draw times this
 *   page's. `hello` carries `server_time_us`, the gateway's clock when it wrote the hello;
 *   `clockOffsetMs` takes (gateway time − local time at receipt) as the offset. The hello
 *   spent its one-way delay d in transit, so the estimate is d too small and each age is
 *   under-estimated by d (0 ≤ d ≤ the round trip; ~0 on a LAN). Ages that come out
 *   negative (that error, or a clock step) are reported as 0. Without `server_time_us`
 *   (an older gateway) frames are counted but no age is reported.
 * - A report covers about `intervalMs` (5 s) of drawing: the frames drawn and a uniform
 *   sample (reservoir) of at most `maxAges` (32) of their ages, within the gateway's bounds
 *   (frames ≤ 10 000, ages ≤ 600 000 ms: beyond that the clock estimate is wrong, not the
 *   picture old, and the age is left out).
 *
 * Pure bookkeeping, no browser: the player feeds it and sends what `take` returns.
 */

/** The most frames one report may count (the gateway's bound). */
export const MAX_REPORT_FRAMES = 10_000;
/** The most ages one report may carry (the gateway's bound). */
export const MAX_REPORT_AGES = 32;
/** The largest age (ms) the gateway accepts. */
export const MAX_AGE_MS = 600_000;

/** A freshness report, as sent. */
export interface ShownReport {
  type: "shown";
  frames: number;
  age_ms: number[];
}

export interface FreshnessOptions {
  /** How much drawing one report covers (ms). */
  intervalMs: number;
  /** Ages per report (a sample). */
  maxAges: number;
  /** Random numbers in [0, 1) (the sample; tests pass their own). */
  random: () => number;
}

const DEFAULTS: FreshnessOptions = { intervalMs: 5000, maxAges: MAX_REPORT_AGES, random: Math.random };

/**
 * The gateway's clock minus this page's (ms), from `hello`'s `server_time_us` and the local
 * time (epoch ms) the hello arrived; null without one. Under-estimates the true offset by
 * the hello's one-way delay (see the module docs).
 */
export function clockOffsetMs(serverTimeUs: number | null, receivedAtMs: number): number | null {
  if (serverTimeUs === null || !Number.isFinite(serverTimeUs) || serverTimeUs <= 0) return null;
  return serverTimeUs / 1000 - receivedAtMs;
}

/** This page's clock as epoch ms, monotonic within the page (immune to clock steps). */
export function localNowMs(): number {
  return performance.timeOrigin + performance.now();
}

export class FreshnessReporter {
  readonly options: FreshnessOptions;
  private offsetMs: number | null = null;
  private frames = 0;
  /** Ages of the pictures drawn this period that were eligible for the sample. */
  private seen = 0;
  private sample: number[] = [];
  /** When the current period's first picture was drawn (local ms), null before it. */
  private periodStart: number | null = null;

  constructor(options: Partial<FreshnessOptions> = {}) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** The clock offset for ages from now on (a new hello; null: none known). */
  setClockOffset(offsetMs: number | null): void {
    this.offsetMs = offsetMs;
  }

  /**
   * A picture captured at `captureMs` (gateway epoch ms; null: untagged) was drawn at
   * `drawnAtMs` (local epoch ms).
   */
  record(captureMs: number | null, drawnAtMs: number): void {
    if (this.periodStart === null) this.periodStart = drawnAtMs;
    this.frames++;
    if (captureMs === null || this.offsetMs === null) return;
    const age = Math.max(0, drawnAtMs + this.offsetMs - captureMs);
    if (!Number.isFinite(age) || age > MAX_AGE_MS) return;
    // Reservoir sampling: each eligible age ends up in the sample with equal probability.
    this.seen++;
    const rounded = Math.round(age * 10) / 10;
    if (this.sample.length < this.options.maxAges) {
      this.sample.push(rounded);
    } else {
      const slot = Math.floor(this.options.random() * this.seen);
      if (slot < this.options.maxAges) this.sample[slot] = rounded;
    }
  }

  /**
   * The report due at `nowMs` (local epoch ms), or null: one is due once drawing began at
   * least `intervalMs` ago. Taking it starts a new period.
   */
  take(nowMs: number): ShownReport | null {
    if (this.periodStart === null || nowMs - this.periodStart < this.options.intervalMs) return null;
    const frames = Math.min(this.frames, MAX_REPORT_FRAMES);
    const ages = this.sample.slice(0, Math.min(this.sample.length, frames));
    this.reset();
    return { type: "shown", frames, age_ms: ages };
  }

  /** Forgets the current period (nothing of it is reported). */
  reset(): void {
    this.frames = 0;
    this.seen = 0;
    this.sample = [];
    this.periodStart = null;
  }
}
