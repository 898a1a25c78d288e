/**
 * Credit flow control, viewer side (`{"type":"credit","frames":N}`, see the README's
 * "Viewing protocol"): the gateway sends a frame only while this viewer has credit, always
 * the latest. So frames never pile up in the socket or the page faster than they are shown.
 *
 * The player keeps at most `window` frames "in the pipe": granted but not yet received,
 * plus received but not yet done with (waiting in the jitter buffer or being decoded).
 * Each frame that leaves the pipe (drawn, or skipped by the jitter buffer) makes room for
 * one more grant. A viewer that is not shown (off-screen tile, hidden tab) grants nothing,
 * so once its last credit is spent the gateway sends it nothing; shown again, it grants
 * and the gateway sends the latest frame at once.
 *
 * The window adapts to the link. Each frame's transit (arrival minus the capture time in
 * its tag; any clock offset cancels out, only changes count) is the picture's age on
 * arrival. The gateway sends the latest frame, so on a link that keeps up the transit stays
 * within a frame interval of the smallest seen lately; when it grows beyond that, frames
 * are queueing on a link slower than the stream and each one in the pipe makes the picture
 * older: the window shrinks (down to one frame), then waits for the frames already in the
 * pipe. While transits stay short it grows back, one frame per window's worth of good
 * samples (at least four), up to the size the stream's rate needs.
 *
 * Pure bookkeeping, no browser: the player says what happened and sends what it is told.
 */

/** The most credit the gateway holds for a viewer (grants beyond it saturate). */
export const MAX_CREDIT = 1000;

/** Credit granted on open, before `hello` says the stream's rate. */
export const INITIAL_WINDOW = 2;

/** Upper bound of the window: enough for 30 fps through a 500 ms pipe. */
const MAX_WINDOW = 16;

/** Transits kept to find the smallest (the link's own, without queueing). */
const SAMPLES = 32;

/** Good round trips in a row (at least a window's worth) before the window grows by one. */
const GROW_AFTER = 4;

/** A transit this much above the smallest says nothing about the link (an old frame). */
const STALE_MS = 5000;

/** The `credit` message granting `frames` (an integer from 0 to MAX_CREDIT). */
export function creditMessage(frames: number): string {
  const n = Math.max(0, Math.min(MAX_CREDIT, Math.floor(frames)));
  return JSON.stringify({ type: "credit", frames: n });
}

/**
 * The window for a stream of `fps` frames per second (capped by the viewer's `maxFps`)
 * when frames wait `holdMs` in the jitter buffer: the frames shown while one grant makes
 * its round trip (about `holdMs` plus a network allowance), plus one.
 */
export function creditWindowFor(fps: number | null, maxFps: number | null | undefined, holdMs: number): number {
  const rate = viewerRate(fps, maxFps);
  if (rate === null) return INITIAL_WINDOW;
  const pipeMs = Math.max(0, holdMs) + 150;
  const window = Math.ceil((rate * pipeMs) / 1000) + 1;
  return Math.max(INITIAL_WINDOW, Math.min(MAX_WINDOW, window));
}

/** The time between frames the viewer gets (`undefined` when the rate is unknown). */
export function frameIntervalMs(fps: number | null, maxFps: number | null | undefined): number | undefined {
  const rate = viewerRate(fps, maxFps);
  return rate === null ? undefined : 1000 / rate;
}

/**
 * The window of a video socket (passthrough H.264/H.265): the frames of about half a second
 * plus two, at least 8, at most 64 (16 while the rate is unknown). Not adapted to the link
 * like a JPEG viewer's: a video viewer that cannot take every frame loses whole GOPs (it
 * resumes at a keyframe), so the window must carry the full rate over a long round trip; it
 * only keeps a decoder that falls behind from being sent more than it can use.
 */
export function videoCreditWindowFor(fps: number | null): number {
  const rate = viewerRate(fps, null);
  if (rate === null) return MAX_WINDOW;
  return Math.max(8, Math.min(64, Math.ceil(rate * 0.5) + 2));
}

/** The frame rate the viewer gets: the stream's, capped by its `max_fps` (null if unknown). */
function viewerRate(fps: number | null, maxFps: number | null | undefined): number | null {
  const rates = [fps, maxFps].filter((r): r is number => typeof r === "number" && Number.isFinite(r) && r > 0);
  return rates.length === 0 ? null : Math.min(...rates);
}

export class CreditWindow {
  /** The window the stream's rate needs. */
  private max: number;
  /** The window now (at most `max`; smaller while the link queues frames). */
  private window: number;
  private frameIntervalMs = 100;
  /** Granted and not yet received. */
  private outstanding = 0;
  /** Recent transits (ms, on mixed clocks: only differences mean anything). */
  private samples: number[] = [];
  private goodStreak = 0;
  /** Frames still to come that were in the pipe when the window last shrank. */
  private cooldown = 0;
  /** Whether this connection has sent its first credit message. */
  private started = false;

  constructor(window = INITIAL_WINDOW) {
    this.max = window;
    this.window = window;
  }

  /** The window now. */
  get size(): number {
    return this.window;
  }

  /** Credit granted and not yet used by a frame. */
  get owed(): number {
    return this.outstanding;
  }

  /** A new connection: nothing granted yet, nothing known of the link. */
  reset(window = INITIAL_WINDOW): void {
    this.max = window;
    this.window = window;
    this.outstanding = 0;
    this.samples = [];
    this.goodStreak = 0;
    this.cooldown = 0;
    this.started = false;
  }

  /**
   * The first grant of a connection (always given, even 0: it puts the gateway's viewer
   * on credit; the player sends it in the socket's URL): the window if the viewer is
   * shown, else nothing.
   */
  open(shown: boolean): number {
    this.started = true;
    const grant = shown ? this.window : 0;
    this.outstanding = grant;
    return grant;
  }

  /**
   * The window the stream's rate needs (from `hello`), and its frame interval. The window
   * starts there (a fast link needs no probing) and shrinks if the link says so.
   */
  resize(window: number, frameIntervalMs?: number): void {
    this.max = Math.max(1, Math.floor(window));
    this.window = this.max;
    if (frameIntervalMs !== undefined && Number.isFinite(frameIntervalMs) && frameIntervalMs > 0) {
      this.frameIntervalMs = frameIntervalMs;
    }
  }

  /**
   * A frame arrived, `transitMs` after its capture (null when it carries no capture time).
   * Every frame spends a credit granted before (the first grant is in the URL); the count
   * never goes below zero whatever the gateway does.
   */
  received(transitMs: number | null): void {
    this.outstanding = Math.max(0, this.outstanding - 1);
    if (transitMs !== null && Number.isFinite(transitMs)) this.observe(transitMs);
  }

  /**
   * A video frame arrived. Every video frame spends a credit, and the gateway sends a whole
   * GOP (joining, or resuming at a keyframe) to a viewer with any credit, taking its
   * balance below zero; so here too the count may go below zero, and the grants that follow
   * pay for it first: both sides count the same. No transit adaptation (see
   * `videoCreditWindowFor`).
   */
  receivedVideo(): void {
    this.outstanding--;
  }

  /**
   * What to grant now (0: nothing to send), given whether the viewer is shown and how many
   * received frames it has not yet done with. The grant is counted as outstanding.
   */
  topUp(shown: boolean, held: number): number {
    if (!this.started || !shown) return 0;
    const grant = this.window - this.outstanding - Math.max(0, held);
    if (grant <= 0) return 0;
    this.outstanding += grant;
    return grant;
  }

  /** Adapts the window to one frame's transit. */
  private observe(transitMs: number): void {
    const base = Math.min(transitMs, ...this.samples);
    if (transitMs - base > STALE_MS) return;
    this.samples.push(transitMs);
    if (this.samples.length > SAMPLES) this.samples.shift();
    if (this.cooldown > 0) {
      this.cooldown--;
      return;
    }
    // The latest frame may be up to a frame interval old when the gateway sends it.
    if (transitMs - base > this.frameIntervalMs + 50) {
      this.goodStreak = 0;
      if (this.window > 1) {
        this.window--;
        // The frames already in the pipe were sent before: they tell nothing new.
        this.cooldown = this.outstanding;
      }
    } else if (++this.goodStreak >= Math.max(this.window, GROW_AFTER) && this.window < this.max) {
      this.window++;
      this.goodStreak = 0;
    }
  }
}
