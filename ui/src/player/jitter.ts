/**
 * A small jitter buffer for live MJPEG, paced by capture timestamps.
 *
 * Frames arrive in bursts (TCP, Wi-Fi, GC pauses) but were captured at a steady rate. Each
 * frame is shown at `capture + base + target`, where `base` is the smallest transit time
 * (`arrival - capture`, any clock offset included) seen over a sliding window and `target`
 * is a small fixed delay that absorbs jitter. So:
 *
 * - pacing follows the camera's clock, not the network's;
 * - latency stays bounded at about `min transit + target`: when several frames are due at
 *   once (a stall, a hidden tab, a slow decode), only the newest is shown and the rest are
 *   dropped — the buffer catches up instead of drifting behind;
 * - the buffer never holds more than `maxFrames`.
 *
 * The clock is injected (`nowMs`), so this module is pure and testable; the player passes
 * `performance.now()`. Capture time and local clock need not agree: only differences count.
 */

export interface JitterOptions {
  /** Extra delay above the minimum transit time, to absorb jitter (ms). */
  targetDelayMs: number;
  /** Sliding window over which the minimum transit time is tracked (ms). */
  windowMs: number;
  /** Hard cap on buffered frames; the oldest are dropped beyond it. */
  maxFrames: number;
  /** A jump in capture time larger than this (either way) re-anchors the pacing clock. */
  resetGapMs: number;
}

export const DEFAULT_JITTER_OPTIONS: JitterOptions = {
  targetDelayMs: 200,
  windowMs: 5000,
  maxFrames: 30,
  resetGapMs: 3000,
};

export interface BufferedFrame<T> {
  seq: number;
  /** Capture time on the source's clock (ms). */
  captureMs: number;
  /** Arrival time on the local clock (ms). */
  arrivalMs: number;
  payload: T;
}

export interface PushResult<T> {
  /** False when the frame was refused (duplicate or older than what was already seen). */
  accepted: boolean;
  /** Frames that left the buffer without being shown (overflow, or a reset). */
  dropped: BufferedFrame<T>[];
  /** Sequence numbers skipped between the previous frame and this one (0 when contiguous). */
  missing: number;
  /** True when this frame restarted the timeline (sequence went back, or capture time jumped). */
  reset: boolean;
}

export interface TakeResult<T> {
  /** The frame to show now, or null when none is due yet. */
  frame: BufferedFrame<T> | null;
  /** Older due frames skipped to catch up. */
  dropped: BufferedFrame<T>[];
}

export interface JitterCounters {
  accepted: number;
  shown: number;
  /** Dropped because a newer frame was due too (catch-up). */
  droppedLate: number;
  /** Dropped because the buffer was full. */
  droppedOverflow: number;
  /** Refused: sequence number not newer than the last one. */
  refusedStale: number;
  /** Sequence numbers never received. */
  missing: number;
  resets: number;
}

interface TransitSample {
  at: number;
  transit: number;
}

export class JitterBuffer<T> {
  readonly options: JitterOptions;
  private frames: BufferedFrame<T>[] = [];
  /** Monotonic deque of transit samples: the front is the window's minimum. */
  private transits: TransitSample[] = [];
  private lastSeq: number | null = null;
  private lastCaptureMs: number | null = null;
  readonly counters: JitterCounters = {
    accepted: 0,
    shown: 0,
    droppedLate: 0,
    droppedOverflow: 0,
    refusedStale: 0,
    missing: 0,
    resets: 0,
  };

  constructor(options: Partial<JitterOptions> = {}) {
    this.options = { ...DEFAULT_JITTER_OPTIONS, ...options };
  }

  /** Frames waiting to be shown. */
  get size(): number {
    return this.frames.length;
  }

  /** The minimum transit time in the window (ms), or null before the first frame. */
  get baseMs(): number | null {
    return this.transits[0]?.transit ?? null;
  }

  /** The local time at which `frame` is due, or null before the first frame. */
  dueAt(frame: Pick<BufferedFrame<T>, "captureMs">): number | null {
    const base = this.baseMs;
    return base === null ? null : frame.captureMs + base + this.options.targetDelayMs;
  }

  /** Adds an arrived frame. */
  push(frame: { seq: number; captureMs: number; payload: T }, nowMs: number): PushResult<T> {
    const dropped: BufferedFrame<T>[] = [];
    let reset = false;
    let missing = 0;
    if (this.lastSeq !== null && this.lastCaptureMs !== null) {
      const captureJump = frame.captureMs - this.lastCaptureMs;
      if (frame.seq <= this.lastSeq) {
        // A sequence that goes back with a newer capture time is a restarted counter
        // (the gateway restarted behind a proxy); anything else is a stale duplicate.
        if (frame.seq < this.lastSeq && captureJump > 0) {
          reset = true;
        } else {
          this.counters.refusedStale++;
          return { accepted: false, dropped, missing: 0, reset: false };
        }
      } else {
        missing = frame.seq - this.lastSeq - 1;
        if (Math.abs(captureJump) > this.options.resetGapMs) reset = true;
      }
    }
    if (reset) {
      dropped.push(...this.frames);
      this.counters.droppedOverflow += this.frames.length;
      this.frames = [];
      this.transits = [];
      this.counters.resets++;
      missing = 0;
    }
    this.counters.missing += missing;
    this.lastSeq = frame.seq;
    this.lastCaptureMs = frame.captureMs;

    this.recordTransit(nowMs, nowMs - frame.captureMs);
    const buffered: BufferedFrame<T> = { ...frame, arrivalMs: nowMs };
    // Keep the buffer ordered by sequence (arrivals are in order on one WebSocket, but be safe).
    let i = this.frames.length;
    while (i > 0 && (this.frames[i - 1]?.seq ?? 0) > frame.seq) i--;
    this.frames.splice(i, 0, buffered);
    this.counters.accepted++;
    while (this.frames.length > this.options.maxFrames) {
      const oldest = this.frames.shift();
      if (oldest) dropped.push(oldest);
      this.counters.droppedOverflow++;
    }
    return { accepted: true, dropped, missing, reset };
  }

  /**
   * The frame to show at `nowMs`: the newest one that is due. Older due frames are returned
   * in `dropped` (catch-up). Nothing is returned while the next frame is not due yet.
   */
  take(nowMs: number): TakeResult<T> {
    const dropped: BufferedFrame<T>[] = [];
    const base = this.baseMs;
    if (base === null || this.frames.length === 0) return { frame: null, dropped };
    const horizon = nowMs - base - this.options.targetDelayMs; // capture times due by now
    let due = 0;
    while (due < this.frames.length && (this.frames[due]?.captureMs ?? Infinity) <= horizon) due++;
    if (due === 0) return { frame: null, dropped };
    const taken = this.frames.splice(0, due);
    const frame = taken.pop() ?? null;
    dropped.push(...taken);
    this.counters.droppedLate += taken.length;
    if (frame) this.counters.shown++;
    return { frame, dropped };
  }

  /** Time until the next frame is due (ms), or null when the buffer is empty. */
  msUntilNext(nowMs: number): number | null {
    const first = this.frames[0];
    if (!first) return null;
    const due = this.dueAt(first);
    return due === null ? null : Math.max(0, due - nowMs);
  }

  /** Empties the buffer and forgets the timeline (a new connection); returns what was held. */
  reset(): BufferedFrame<T>[] {
    const held = this.frames;
    this.frames = [];
    this.transits = [];
    this.lastSeq = null;
    this.lastCaptureMs = null;
    return held;
  }

  private recordTransit(at: number, transit: number): void {
    while (this.transits.length > 0 && (this.transits[this.transits.length - 1]?.transit ?? -Infinity) >= transit) {
      this.transits.pop();
    }
    this.transits.push({ at, transit });
    const oldest = at - this.options.windowMs;
    while (this.transits.length > 1 && (this.transits[0]?.at ?? Infinity) < oldest) this.transits.shift();
  }
}
