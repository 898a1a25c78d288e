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
 * Pure bookkeeping, no browser: the player says what happened and sends what it is told.
 */

/** The most credit the gateway holds for a viewer (grants beyond it saturate). */
export const MAX_CREDIT = 1000;

/** Credit granted on open, before `hello` says the stream's rate. */
export const INITIAL_WINDOW = 2;

/** Upper bound of the window: enough for 30 fps through a 500 ms pipe. */
const MAX_WINDOW = 16;

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
  const rates = [fps, maxFps].filter((r): r is number => typeof r === "number" && Number.isFinite(r) && r > 0);
  if (rates.length === 0) return INITIAL_WINDOW;
  const rate = Math.min(...rates);
  const pipeMs = Math.max(0, holdMs) + 150;
  const window = Math.ceil((rate * pipeMs) / 1000) + 1;
  return Math.max(INITIAL_WINDOW, Math.min(MAX_WINDOW, window));
}

export class CreditWindow {
  private window: number;
  /** Granted and not yet received. */
  private outstanding = 0;
  /** Whether this connection has sent its first credit message. */
  private started = false;

  constructor(window = INITIAL_WINDOW) {
    this.window = window;
  }

  get size(): number {
    return this.window;
  }

  /** Credit granted and not yet used by a frame. */
  get owed(): number {
    return this.outstanding;
  }

  /** A new connection: nothing granted yet. */
  reset(window = INITIAL_WINDOW): void {
    this.window = window;
    this.outstanding = 0;
    this.started = false;
  }

  /**
   * The first grant of a connection (always sent, even 0: it switches the gateway to
   * credit): the window if the viewer is shown, else nothing.
   */
  open(shown: boolean): number {
    this.started = true;
    const grant = shown ? this.window : 0;
    this.outstanding = grant;
    return grant;
  }

  /** A new window size (the stream's rate became known). */
  resize(window: number): void {
    this.window = Math.max(1, Math.floor(window));
  }

  /** A frame arrived (the first one may come before any credit: never below zero). */
  received(): void {
    this.outstanding = Math.max(0, this.outstanding - 1);
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
}
