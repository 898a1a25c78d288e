/**
 * Which frames of a passthrough video stream (H.264/H.265) can be decoded, and what to keep
 * while the picture is not shown. Shared by the WebCodecs and MSE paths.
 *
 * - A decoder can only start at a keyframe: after a (re)configuration, an error or an
 *   overload, delta frames are skipped until the next keyframe (`admit`).
 * - While not shown (off-screen tile, hidden tab) nothing is decoded: the gate keeps only the
 *   frames needed to show the current picture at once when shown again: those since the
 *   last keyframe, or, if no keyframe came since it was hidden, those since it was hidden
 *   (they continue the decoder's state). Bounded in frames and bytes; beyond that it keeps
 *   nothing and waits for the next keyframe.
 *
 * Pure bookkeeping, no browser. `skipped` counts frames that will never be decoded.
 */

import type { VideoFrameMessage } from "./protocol";

export interface GopGateOptions {
  /** Most frames kept while hidden (a long GOP at a high rate is dropped, not hoarded). */
  maxHeldFrames: number;
  /** Most bytes kept while hidden. */
  maxHeldBytes: number;
}

export const DEFAULT_GOP_GATE_OPTIONS: GopGateOptions = { maxHeldFrames: 600, maxHeldBytes: 16 * 1024 * 1024 };

export class GopGate {
  private readonly options: GopGateOptions;
  private needKeyframe = true;
  private held: VideoFrameMessage[] = [];
  private heldBytes = 0;
  /** While hidden: whether frames without a keyframe before them continue the decoder's state. */
  private continues = false;
  private hidden = false;
  /** Frames that will never be decoded (waiting for a keyframe, superseded while hidden). */
  skipped = 0;

  constructor(options: Partial<GopGateOptions> = {}) {
    this.options = { ...DEFAULT_GOP_GATE_OPTIONS, ...options };
  }

  /** Whether the decoder is waiting for a keyframe. */
  get waitingForKeyframe(): boolean {
    return this.needKeyframe;
  }

  /** Frames kept while hidden. */
  get heldFrames(): number {
    return this.held.length;
  }

  /** Whether to decode `frame` now; false (and counted as skipped) until a keyframe. */
  admit(frame: VideoFrameMessage): boolean {
    if (frame.keyframe) {
      this.needKeyframe = false;
      return true;
    }
    if (this.needKeyframe) {
      this.skipped++;
      return false;
    }
    return true;
  }

  /** The decoder lost its state (new configuration, error, backlog thrown away). */
  waitForKeyframe(): void {
    this.needKeyframe = true;
  }

  /** The picture is no longer shown: from now on frames are held, not decoded. */
  hide(): void {
    if (this.hidden) return;
    this.hidden = true;
    this.dropHeld();
    this.continues = !this.needKeyframe;
  }

  /** A frame that arrived while hidden. */
  hold(frame: VideoFrameMessage): void {
    if (frame.keyframe) {
      this.dropHeld();
      this.continues = false;
    } else if (this.held.length === 0 && !this.continues) {
      this.skipped++;
      return;
    }
    this.held.push(frame);
    this.heldBytes += frame.data.byteLength;
    if (this.held.length > this.options.maxHeldFrames || this.heldBytes > this.options.maxHeldBytes) {
      // Too long a GOP to keep: show the next keyframe instead.
      this.dropHeld();
      this.continues = false;
    }
  }

  /**
   * Shown again: the frames to decode now, in order (then the live ones follow). When
   * nothing usable was kept, the decoder waits for the next keyframe.
   */
  show(): VideoFrameMessage[] {
    if (!this.hidden) return [];
    this.hidden = false;
    const frames = this.held;
    this.held = [];
    this.heldBytes = 0;
    if (!(frames[0]?.keyframe ?? false) && !this.continues) this.needKeyframe = true;
    return frames;
  }

  /** Forgets everything (a new connection or configuration). */
  reset(): void {
    this.held = [];
    this.heldBytes = 0;
    this.continues = false;
    this.needKeyframe = true;
  }

  private dropHeld(): void {
    this.skipped += this.held.length;
    this.held = [];
    this.heldBytes = 0;
  }
}
