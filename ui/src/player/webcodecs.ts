/**
 * The WebCodecs path: passthrough H.264/H.265 frames → `VideoDecoder` → the newest
 * `VideoFrame` drawn on a 2D canvas on requestAnimationFrame.
 *
 * Invariants:
 * - Every frame is decoded (a delta frame needs the ones before it), but only the newest
 *   decoded picture is drawn: on joining, the gateway sends the GOP since the last keyframe
 *   at once; all of it is decoded and only its last picture appears.
 * - Every `VideoFrame` is closed exactly once: drawn then closed, replaced by a newer one
 *   then closed, or closed when it arrives after `destroy()` or while not shown. A decoder
 *   holds a small pool of frames: one left open stalls it, many leak GPU memory.
 * - Decoding starts at a keyframe (after a configuration, an error or an overload: `GopGate`).
 *   When the decoder falls behind (`decodeQueueSize` at `maxDecodeQueue`), delta frames are
 *   skipped up to the next keyframe, whose arrival throws the backlog away (`reset()`), so
 *   the picture stays live instead of drifting behind.
 * - Not shown (off-screen tile, hidden tab): nothing is decoded; the GOP needed to show the
 *   current picture is kept and decoded at once when shown again.
 * - A decoder error closes the decoder: a new one starts at the next keyframe; three errors
 *   without a picture in between give up (`onFatal`: the player takes another path).
 */

import { GopGate } from "./gop";
import { decoderConfig } from "./ladder";
import type { ConfigMessage, VideoFrameMessage } from "./protocol";

/** What a video path tells the player (never per frame into React: the player keeps counts). */
export interface VideoSinkEvents {
  /** A picture was put on screen; `captureUs` its capture time (µs since the epoch). */
  onShown(captureUs: number | null): void;
  /** This path cannot play the stream: the player drops it. */
  onFatal(message: string): void;
  /** The first picture is on screen (paths that count pictures later, on the stats timer). */
  onPicture?(): void;
}

/** A path that plays passthrough video (WebCodecs or MSE). */
export interface VideoSink {
  readonly path: "webcodecs" | "mse";
  /** A (new) `config`: frames after it use it. */
  configure(config: ConfigMessage): void;
  push(frame: VideoFrameMessage): void;
  setShown(shown: boolean): void;
  /** Called on the stats timer (a few times per second). */
  poll(): void;
  /** Frames that will never be shown for lack of a keyframe, or thrown away to stay live. */
  readonly skipped: number;
  /** Size of the picture shown (0 before the first). */
  readonly width: number;
  readonly height: number;
  /** Frames received and not yet decoded. */
  readonly backlog: number;
  destroy(): void;
}

export interface WebCodecsOptions {
  /** Delta frames are skipped to the next keyframe while this many wait to be decoded. */
  maxDecodeQueue: number;
  /** Decoder errors in a row (no picture in between) before giving up. */
  maxErrors: number;
}

export const DEFAULT_WEBCODECS_OPTIONS: WebCodecsOptions = { maxDecodeQueue: 64, maxErrors: 3 };

export class WebCodecsSink implements VideoSink {
  readonly path = "webcodecs" as const;
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D | null;
  private readonly events: VideoSinkEvents;
  private readonly options: WebCodecsOptions;
  private readonly gate = new GopGate();
  private config: ConfigMessage | null = null;
  private decoder: VideoDecoder | null = null;
  /** The newest decoded picture, not drawn yet (owned: closed by whoever replaces or draws it). */
  private latest: VideoFrame | null = null;
  private raf: number | null = null;
  private shown = true;
  private destroyed = false;
  private errors = 0;
  private thrownAway = 0;
  width = 0;
  height = 0;

  constructor(canvas: HTMLCanvasElement, ctx: CanvasRenderingContext2D | null, events: VideoSinkEvents, options: Partial<WebCodecsOptions> = {}) {
    this.canvas = canvas;
    this.ctx = ctx;
    this.events = events;
    this.options = { ...DEFAULT_WEBCODECS_OPTIONS, ...options };
  }

  get skipped(): number {
    return this.gate.skipped + this.thrownAway;
  }

  get backlog(): number {
    return (this.decoder?.decodeQueueSize ?? 0) + this.gate.heldFrames;
  }

  configure(config: ConfigMessage): void {
    if (this.destroyed) return;
    this.config = config;
    this.gate.waitForKeyframe();
    const decoder = this.decoder;
    if (decoder && decoder.state !== "closed") {
      try {
        decoder.configure(decoderConfig(config));
      } catch (e) {
        this.fail(e);
      }
    }
  }

  push(frame: VideoFrameMessage): void {
    if (this.destroyed) return;
    if (this.shown) this.decode(frame);
    else this.gate.hold(frame);
  }

  setShown(shown: boolean): void {
    if (this.destroyed || shown === this.shown) return;
    this.shown = shown;
    if (!shown) {
      this.gate.hide();
      this.cancelDraw();
      this.latest?.close();
      this.latest = null;
    } else {
      for (const frame of this.gate.show()) this.decode(frame);
    }
  }

  poll(): void {
    // Pictures are counted as they are drawn.
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.cancelDraw();
    this.latest?.close();
    this.latest = null;
    this.gate.reset();
    const decoder = this.decoder;
    this.decoder = null;
    if (decoder && decoder.state !== "closed") {
      try {
        decoder.close(); // pending outputs are discarded, never delivered
      } catch {
        // Already closed by an error.
      }
    }
  }

  private ensureDecoder(): VideoDecoder | null {
    if (this.decoder && this.decoder.state !== "closed") return this.decoder;
    if (!this.config) return null;
    const decoder = new VideoDecoder({ output: this.onOutput, error: this.onError });
    decoder.configure(decoderConfig(this.config));
    this.decoder = decoder;
    this.gate.waitForKeyframe();
    return decoder;
  }

  private decode(frame: VideoFrameMessage): void {
    let decoder: VideoDecoder | null;
    try {
      decoder = this.ensureDecoder();
    } catch (e) {
      this.fail(e);
      return;
    }
    if (!decoder) return;
    const overloaded = decoder.decodeQueueSize >= this.options.maxDecodeQueue;
    if (overloaded && !frame.keyframe) {
      // Behind: what is queued only makes the picture older. Wait for a keyframe.
      this.gate.waitForKeyframe();
    }
    if (!this.gate.admit(frame)) return;
    try {
      if (overloaded) {
        // A keyframe after an overload: throw the backlog away and start from it.
        this.thrownAway += decoder.decodeQueueSize;
        decoder.reset();
        decoder.configure(decoderConfig(this.config as ConfigMessage));
      }
      decoder.decode(
        new EncodedVideoChunk({ type: frame.keyframe ? "key" : "delta", timestamp: frame.captureUs, data: frame.data }),
      );
    } catch (e) {
      this.fail(e);
    }
  }

  private readonly onOutput = (picture: VideoFrame): void => {
    if (this.destroyed || !this.shown) {
      picture.close();
      return;
    }
    // Only the newest is drawn: one decoded since the last animation frame is superseded.
    this.latest?.close();
    this.latest = picture;
    if (this.raf === null) this.raf = requestAnimationFrame(this.draw);
  };

  private readonly draw = (): void => {
    this.raf = null;
    const picture = this.latest;
    this.latest = null;
    if (!picture) return;
    const captureUs = picture.timestamp;
    try {
      const w = picture.displayWidth;
      const h = picture.displayHeight;
      if (this.canvas.width !== w) this.canvas.width = w;
      if (this.canvas.height !== h) this.canvas.height = h;
      this.ctx?.drawImage(picture, 0, 0, w, h);
      this.width = w;
      this.height = h;
    } finally {
      picture.close();
    }
    this.errors = 0;
    this.events.onShown(captureUs);
  };

  private readonly onError = (error: DOMException): void => {
    this.fail(error);
  };

  /** The decoder is unusable: a new one starts at the next keyframe, or the path gives up. */
  private fail(error: unknown): void {
    if (this.destroyed) return;
    this.gate.waitForKeyframe();
    const decoder = this.decoder;
    this.decoder = null;
    if (decoder && decoder.state !== "closed") {
      try {
        decoder.close();
      } catch {
        // Closing anyway.
      }
    }
    if (++this.errors >= this.options.maxErrors) {
      this.events.onFatal(`WebCodecs: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private cancelDraw(): void {
    if (this.raf !== null) cancelAnimationFrame(this.raf);
    this.raf = null;
  }
}
