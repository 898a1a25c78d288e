/**
 * The MSE path: passthrough H.264/H.265 frames → fMP4 built in the page (fmp4.ts) →
 * `ManagedMediaSource` (if present, else `MediaSource`) → a muted `<video>`. For browsers
 * without WebCodecs, which is every browser on a plain-HTTP LAN page (no secure context).
 *
 * Invariants:
 * - One SourceBuffer in `segments` mode; appends one at a time from a queue (never while
 *   `updating`). An init segment is appended first, and again on every new `config` (with
 *   `changeType` when the codec string changes); then one moof+mdat fragment per frame.
 * - Media time is the capture time, in µs, from the first frame: decode time advances by
 *   the real capture interval (a jump of more than `maxGapUs`, or backwards, advances by one
 *   frame interval instead, so the timeline has no holes).
 * - Sample durations are not the next interval (unknown yet: waiting for it would add a
 *   frame of delay) but the longest of the stream's nominal interval (hello's fps) and the
 *   recent intervals. MSE treats a step of more than twice the previous sample's duration as
 *   a discontinuity and drops delta frames up to the next keyframe: with jittery capture
 *   times (20 ms then 60 ms) or a 10 fps stream, a duration taken from the last step alone
 *   would freeze the picture. Overlapping a little into the next sample is harmless.
 * - Live edge, measured from the last frame appended (not `buffered.end`, which the generous
 *   durations push ahead): more than `maxLagS` behind, the video seeks to `liveDelayS` before
 *   that frame (so the GOP sent on join is decoded and its last picture shown); more than
 *   `catchUpLagS` behind it plays slightly faster until close again.
 * - Bounded memory: data more than `keepBehindS` behind the playhead is removed, up to a
 *   keyframe (removing part of a GOP would remove the rest of it with it); and the append
 *   queue is bounded: beyond `maxQueued` fragments, queued fragments are dropped and the
 *   next keyframe starts over (`GopGate`).
 * - Not shown: nothing is appended and the video is paused; the GOP needed for the current
 *   picture is kept and appended when shown again, then the video seeks to the live edge.
 * - The object URL this path creates is revoked once the source is open; `destroy()`
 *   detaches the source from the `<video>` (which frees its buffers).
 */

import { initSegment, mediaFragment, mp4MimeType } from "./fmp4";
import { GopGate } from "./gop";
import type { ConfigMessage, VideoFrameMessage } from "./protocol";
import type { VideoSink, VideoSinkEvents } from "./webcodecs";

export interface MseOptions {
  /** Play this far behind the last frame received (s): room for network jitter. */
  liveDelayS: number;
  /** Seek to the live edge when the buffered end is this far ahead of the playhead (s). */
  maxLagS: number;
  /** Play faster (`catchUpRate`) while it is this far ahead (s). */
  catchUpLagS: number;
  catchUpRate: number;
  /** Keep this much behind the playhead (s); older data is removed. */
  keepBehindS: number;
  /** Fragments waiting to be appended beyond which they are dropped up to a keyframe. */
  maxQueued: number;
  /** A capture-time step larger than this (µs) is a discontinuity, not an interval. */
  maxGapUs: number;
  /** The stream's frame interval (µs) from hello's fps; a default when it is unknown. */
  nominalIntervalUs: number;
}

export const DEFAULT_MSE_OPTIONS: MseOptions = {
  liveDelayS: 0.1,
  maxLagS: 1.5,
  catchUpLagS: 0.5,
  catchUpRate: 1.1,
  keepBehindS: 4,
  maxQueued: 120,
  maxGapUs: 5_000_000,
  nominalIntervalUs: 100_000,
};

/** The constructor this path uses: `ManagedMediaSource` where it exists (Safari), else `MediaSource`. */
export function mediaSourceConstructor(): (new () => MediaSource) | null {
  const g = globalThis as unknown as { ManagedMediaSource?: new () => MediaSource; MediaSource?: new () => MediaSource };
  return g.ManagedMediaSource ?? g.MediaSource ?? null;
}

type Op = { kind: "append"; bytes: Uint8Array; media: boolean } | { kind: "changeType"; mime: string };

/** A keyframe's place on the media timeline, and its capture time. */
interface Anchor {
  timeS: number;
  captureUs: number;
}

export class MseSink implements VideoSink {
  readonly path = "mse" as const;
  private readonly video: HTMLVideoElement;
  private readonly events: VideoSinkEvents;
  private readonly options: MseOptions;
  private readonly source: MediaSource;
  private readonly gate = new GopGate();
  private url: string | null;
  private buffer: SourceBuffer | null = null;
  private queue: Op[] = [];
  private codec: string;
  private sequence = 0;
  private lastCaptureUs: number | null = null;
  private nextDecodeUs = 0;
  /** Recent valid capture intervals (µs). */
  private steps: number[] = [];
  /** Media time of the last frame appended (s); null before the first. */
  private lastFrameS: number | null = null;
  private anchors: Anchor[] = [];
  private shown = true;
  private destroyed = false;
  private thrownAway = 0;
  private lastQuality = 0;

  constructor(video: HTMLVideoElement, config: ConfigMessage, events: VideoSinkEvents, options: Partial<MseOptions> = {}) {
    const Source = mediaSourceConstructor();
    if (!Source) throw new Error("no MediaSource in this browser");
    this.video = video;
    this.events = events;
    this.options = { ...DEFAULT_MSE_OPTIONS, ...options };
    this.codec = config.codec;
    this.source = new Source();
    this.source.addEventListener("sourceopen", this.onSourceOpen);
    video.muted = true;
    video.playsInline = true;
    // ManagedMediaSource plays only with remote playback off (or an AirPlay alternative).
    video.disableRemotePlayback = true;
    video.addEventListener("error", this.onVideoError);
    video.addEventListener("loadeddata", this.onLoadedData);
    this.url = URL.createObjectURL(this.source);
    video.src = this.url;
    this.queue.push({ kind: "append", bytes: initSegment(config), media: false });
  }

  get skipped(): number {
    return this.gate.skipped + this.thrownAway;
  }

  get backlog(): number {
    return this.queue.length + this.gate.heldFrames;
  }

  get width(): number {
    return this.video.videoWidth;
  }

  get height(): number {
    return this.video.videoHeight;
  }

  configure(config: ConfigMessage): void {
    if (this.destroyed) return;
    if (config.codec !== this.codec) {
      this.queue.push({ kind: "changeType", mime: mp4MimeType(config.codec) });
      this.codec = config.codec;
    }
    this.queue.push({ kind: "append", bytes: initSegment(config), media: false });
    this.gate.waitForKeyframe();
    this.pump();
  }

  push(frame: VideoFrameMessage): void {
    if (this.destroyed) return;
    if (this.shown) this.append(frame);
    else this.gate.hold(frame);
  }

  setShown(shown: boolean): void {
    if (this.destroyed || shown === this.shown) return;
    this.shown = shown;
    if (!shown) {
      this.gate.hide();
      this.video.pause();
    } else {
      for (const frame of this.gate.show()) this.append(frame);
      this.keepLive();
    }
  }

  /** Stats timer: pictures shown since the last call, and the live edge. */
  poll(): void {
    if (this.destroyed) return;
    this.keepLive();
    const quality = this.video.getVideoPlaybackQuality();
    const shown = quality.totalVideoFrames - quality.droppedVideoFrames;
    const fresh = Math.max(0, shown - this.lastQuality);
    this.lastQuality = shown;
    const captureUs = this.captureAt(this.video.currentTime);
    for (let i = 0; i < fresh; i++) this.events.onShown(captureUs);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queue = [];
    this.gate.reset();
    this.source.removeEventListener("sourceopen", this.onSourceOpen);
    this.buffer?.removeEventListener("updateend", this.onUpdateEnd);
    this.buffer?.removeEventListener("error", this.onBufferError);
    this.video.removeEventListener("error", this.onVideoError);
    this.video.removeEventListener("loadeddata", this.onLoadedData);
    if (this.url !== null) URL.revokeObjectURL(this.url);
    this.url = null;
    this.video.pause();
    // Detaching the source ends it and frees its buffers.
    this.video.removeAttribute("src");
    this.video.load();
  }

  private readonly onSourceOpen = (): void => {
    if (this.destroyed || this.buffer) return;
    if (this.url !== null) URL.revokeObjectURL(this.url);
    this.url = null;
    try {
      const buffer = this.source.addSourceBuffer(mp4MimeType(this.codec));
      buffer.mode = "segments";
      buffer.addEventListener("updateend", this.onUpdateEnd);
      buffer.addEventListener("error", this.onBufferError);
      this.buffer = buffer;
    } catch (e) {
      this.events.onFatal(`MSE: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.pump();
  };

  private readonly onUpdateEnd = (): void => {
    if (this.destroyed) return;
    // Once what was queued is in (the GOP sent on join, a burst): one seek, not one per frame.
    if (this.queue.length === 0) this.keepLive();
    if (!this.trim()) this.pump();
  };

  private readonly onBufferError = (): void => {
    if (!this.destroyed) this.events.onFatal("MSE: the source buffer refused a segment");
  };

  private readonly onLoadedData = (): void => {
    if (!this.destroyed) this.events.onPicture?.();
  };

  private readonly onVideoError = (): void => {
    if (!this.destroyed) this.events.onFatal(`MSE: ${this.video.error?.message || "the video element failed"}`);
  };

  private append(frame: VideoFrameMessage): void {
    let queued = 0;
    for (const op of this.queue) if (op.kind === "append" && op.media) queued++;
    if (queued >= this.options.maxQueued) {
      // The page does not keep up: drop what waits, start again at the next keyframe.
      this.queue = this.queue.filter((op) => !(op.kind === "append" && op.media));
      this.thrownAway += queued;
      this.gate.waitForKeyframe();
    }
    if (!this.gate.admit(frame)) return;

    if (this.lastCaptureUs !== null) {
      const step = frame.captureUs - this.lastCaptureUs;
      if (step > 0 && step <= this.options.maxGapUs) {
        this.steps.push(step);
        if (this.steps.length > 32) this.steps.shift();
        this.nextDecodeUs += step;
      } else {
        this.nextDecodeUs += this.options.nominalIntervalUs;
      }
    }
    this.lastCaptureUs = frame.captureUs;
    const decodeUs = this.nextDecodeUs;
    this.lastFrameS = decodeUs / 1e6;
    const durationUs = Math.min(this.options.maxGapUs, Math.round(Math.max(this.options.nominalIntervalUs, ...this.steps)));
    if (frame.keyframe) this.anchors.push({ timeS: decodeUs / 1e6, captureUs: frame.captureUs });
    this.sequence = (this.sequence % 0xffff_ffff) + 1;
    const bytes = mediaFragment({
      sequence: this.sequence,
      decodeTime: decodeUs,
      duration: durationUs,
      keyframe: frame.keyframe,
      data: frame.data,
    });
    this.queue.push({ kind: "append", bytes, media: true });
    this.pump();
  }

  /** Starts the next queued operation if the buffer is free. */
  private pump(): void {
    const buffer = this.buffer;
    if (!buffer || buffer.updating || this.destroyed) return;
    const op = this.queue.shift();
    if (!op) return;
    try {
      switch (op.kind) {
        case "append":
          buffer.appendBuffer(op.bytes as Uint8Array<ArrayBuffer>);
          break;
        case "changeType":
          buffer.changeType(op.mime);
          this.pump(); // synchronous: no updateend follows
          break;
      }
    } catch (e) {
      if (e instanceof DOMException && e.name === "QuotaExceededError") {
        // Full: drop what waits, keep only the newest data and start at the next keyframe.
        this.queue = this.queue.filter((q) => !(q.kind === "append" && q.media));
        this.gate.waitForKeyframe();
        this.trim(true);
        return;
      }
      this.events.onFatal(`MSE: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Keeps the playhead near the buffered end, and playing while shown. */
  private keepLive(): void {
    const ranges = this.video.buffered;
    const edge = this.lastFrameS;
    if (!this.shown || ranges.length === 0 || edge === null) return;
    const last = ranges.length - 1;
    const start = ranges.start(last);
    const end = Math.min(ranges.end(last), edge);
    const now = this.video.currentTime;
    const lag = end - now;
    if (now < start || lag > this.options.maxLagS) {
      this.video.currentTime = Math.max(start, end - this.options.liveDelayS);
      this.video.playbackRate = 1;
    } else if (lag > this.options.catchUpLagS) {
      if (this.video.playbackRate !== this.options.catchUpRate) this.video.playbackRate = this.options.catchUpRate;
    } else if (this.video.playbackRate !== 1 && lag < this.options.catchUpLagS / 2) {
      this.video.playbackRate = 1;
    }
    if (this.video.paused) this.video.play().catch(() => undefined);
  }

  /**
   * Removes data more than `keepBehindS` behind the playhead, up to the keyframe that
   * starts the data kept (`all`: everything before the newest keyframe). Returns whether a
   * removal started (its updateend continues the queue).
   */
  private trim(all = false): boolean {
    const buffer = this.buffer;
    const ranges = this.video.buffered;
    if (!buffer || buffer.updating || ranges.length === 0) return false;
    const limit = all ? Infinity : this.video.currentTime - this.options.keepBehindS;
    let cut: Anchor | null = null;
    for (const a of this.anchors) if (a.timeS <= limit) cut = a;
    if (!cut || ranges.start(0) >= cut.timeS - 0.5) return false;
    const end = cut.timeS;
    this.anchors = this.anchors.filter((a) => a.timeS >= end);
    try {
      buffer.remove(0, end);
      return true;
    } catch {
      return false;
    }
  }

  /** The capture time of the picture at media time `t` (null before the first keyframe). */
  private captureAt(t: number): number | null {
    let anchor: Anchor | null = null;
    for (const a of this.anchors) if (a.timeS <= t) anchor = a;
    return anchor ? anchor.captureUs + Math.max(0, t - anchor.timeS) * 1e6 : null;
  }
}
