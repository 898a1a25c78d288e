/**
 * StreamPlayer: one live stream on one canvas (or, on the MSE path, one `<video>`), entirely
 * outside React.
 *
 * Three paths (ladder.ts picks one per stream): passthrough H.264/H.265 through WebCodecs
 * (webcodecs.ts) or MSE (mse.ts), or MJPEG:
 *
 * - MJPEG (`format: "mjpeg"` in hello, or a gateway that predates formats): WebSocket
 *   (binary = one JPEG) → APP11 tag → jitter buffer (paced by capture time) →
 *   requestAnimationFrame → createImageBitmap(Blob) → drawImage on a 2D canvas → close().
 * - Video (`format: "h264"|"h265"`): `config` → the ladder's choice; each binary message
 *   (18-byte header + access unit) goes to that path. A stream this browser cannot decode
 *   reconnects with `?format=mjpeg` (and stays MJPEG for this page). Video sockets use
 *   credit too (a window of about half a second of frames, counting those the decoder has
 *   not finished), so a decoder that falls behind is sent nothing more until it catches up,
 *   and the gateway skips it to a keyframe instead of sending a backlog.
 *
 * - No per-frame callbacks into React: status changes (a few per connection) go to
 *   `onStatus`, statistics go to `onStats` on a timer (a few times per second).
 * - Every ImageBitmap is closed; no object URLs are ever created.
 * - Off-screen or hidden tiles (`setVisible(false)`, `document.hidden`) do not decode: the
 *   buffer keeps only the newest few frames and the picture resumes at the live edge.
 * - Not shown for long, a player closes its socket (`paused`): after `hiddenCloseMs` (10 s)
 *   on a JPEG socket (credit already stops its frames; closing lets the gateway reap an
 *   on-demand source after its idle_timeout), after `hiddenVideoCloseMs` (1 s) on a video
 *   socket (credit stops its frames too, but a video socket resumed over a second behind
 *   waits for the next keyframe, where a new one gets the current GOP at once). Shown
 *   again, it reconnects at once: JPEG brings the latest picture, video its current GOP.
 * - Variants: `variant: "sub"` plays the stream's low-resolution sub-stream (`?variant=sub`;
 *   `format` negotiated as for the main: a derived sub is JPEG, a camera's own sub-stream may
 *   be H.264); `main` (default) the stream itself.
 * - `poster`: a picture drawn until the first frame of this player is (the tile's last
 *   picture when the focused view opens: no blank frame while main starts).
 * - Credit flow control (`credit.ts`): the gateway sends a frame only when this player has
 *   asked for it (a small window that shrinks on a slow link, one more per frame done
 *   with), always the latest; a
 *   hidden or off-screen player asks for nothing, so it receives (and costs) nothing, and
 *   gets the latest picture at once when shown again.
 * - Reconnects with exponential backoff and jitter; stops on 4004 (stream removed) and
 *   waits for a new sign-in on 4001.
 * - Freshness (`freshness.ts`): every path records each picture it puts on screen (its
 *   capture time and the moment it is drawn); about every 5 s of drawing one `shown` report
 *   goes to the gateway. A player that draws nothing sends nothing.
 * - Picture health: the gateway's `health` messages land in `status.health`.
 */

import { parseFrameTag } from "./app11";
import {
  browserMediaEnv,
  canPlayVideo,
  choosePath,
  isMjpegOnly,
  pathLabel,
  rememberedPath,
  rememberPath,
  type MediaEnv,
  type PlaybackPath,
} from "./ladder";
import { mp4MimeType } from "./fmp4";
import { MseSink, type MseOptions } from "./mse";
import { ReconnectPolicy, type BackoffOptions } from "./backoff";
import { CreditWindow, creditMessage, creditWindowFor, frameIntervalMs, videoCreditWindowFor } from "./credit";
import { clockOffsetMs, FreshnessReporter, localNowMs, type FreshnessOptions } from "./freshness";
import { JitterBuffer, type JitterOptions } from "./jitter";
import {
  decideClose,
  parseServerMessage,
  parseVideoFrame,
  streamSocketUrl,
  VIDEO_FRAME_KIND,
  type ConfigMessage,
  type HelloMessage,
  type PictureHealth,
  type RequestedFormat,
  type SocketFormat,
  type OutageCause,
  type StreamState,
  type VideoFrameMessage,
} from "./protocol";
import { RollingStats, type StatsSnapshot } from "./stats";
import { WebCodecsSink, type VideoSink, type WebCodecsOptions } from "./webcodecs";

export type ConnectionStatus =
  /** Opening the socket. */
  | "connecting"
  /** Socket open (the stream itself may still be connecting to its camera). */
  | "open"
  /** Lost; a retry is scheduled (`retryAt`). */
  | "reconnecting"
  /** Closed with 4001: waiting for a sign-in. */
  | "unauthorized"
  /** Closed with 4004: the stream no longer exists. */
  | "removed"
  /** Not shown for a while: the socket is closed until the picture is shown again. */
  | "paused"
  /** Destroyed. */
  | "closed";

export interface PlayerStatus {
  connection: ConnectionStatus;
  /** The stream's state as the gateway reports it (hello / state messages). */
  streamState: StreamState | null;
  /** Last message from the gateway (error text, close reason). */
  message: string;
  /** When `message` last changed (Date.now() ms): its "retrying in 10.9s" counts from here. */
  messageAt: number;
  /** When the next reconnect attempt happens (Date.now() ms), while reconnecting. */
  retryAt: number | null;
  hello: HelloMessage | null;
  /** True once a frame was drawn (the canvas, or the video on the MSE path, holds a picture). */
  hasPicture: boolean;
  /** The path that plays (null until known): the MSE path shows the `<video>`, the others the canvas. */
  path: PlaybackPath | null;
  /** The picture's health as the gateway last said (`health` messages); null before any. */
  health: PictureHealth | null;
  /** Why the source is down, as the gateway last said (hello / state); null when not down. */
  cause: OutageCause | null;
  /** True while the canvas shows the `poster` (no frame of this player drawn yet). */
  poster: boolean;
  /** When that verdict began (RFC 3339; "" if not said). */
  healthSince: string;
}

export interface PlayerStats extends StatsSnapshot {
  width: number;
  height: number;
  /** Frames the gateway skipped for this viewer (`dropped` notices). */
  droppedByGateway: number;
  /** Frames the jitter buffer skipped to stay close to live. */
  droppedLate: number;
  /** Gaps in sequence numbers (includes frames skipped by `max_fps`, or not asked for). */
  missing: number;
  /** Frames drawn since the player started. */
  framesShown: number;
  buffered: number;
  path: PlaybackPath | null;
  /** "WebCodecs · H.264", "MSE · H.265", "MJPEG" ("–" until known). */
  pathLabel: string;
}

export interface PlayerOptions {
  streamId: string;
  canvas: HTMLCanvasElement;
  /** Per-viewer rate cap (grid thumbnails); omit for full rate. */
  maxFps?: number | null;
  onStatus?: (status: PlayerStatus) => void;
  onStats?: (stats: PlayerStats) => void;
  onUnauthorized?: () => void;
  onRemoved?: () => void;
  statsIntervalMs?: number;
  jitter?: Partial<JitterOptions>;
  backoff?: Partial<BackoffOptions>;
  /** A socket that opens but brings no hello within this time is retried. */
  connectTimeoutMs?: number;
  /** Decode this long before a frame is due, so it is on screen on time. */
  decodeLeadMs?: number;
  /** Where the MSE path plays (without one, that path is not taken). */
  video?: HTMLVideoElement | null;
  /** The page's `?player=` (ladder.ts `forcedPath`): forces a path. */
  forcePath?: PlaybackPath | null;
  /** The browser's media APIs (default: this browser's). */
  media?: MediaEnv;
  webcodecs?: Partial<WebCodecsOptions>;
  mse?: Partial<MseOptions>;
  /** Freshness reports (tests shorten the interval or fix the sample). */
  freshness?: Partial<FreshnessOptions>;
  /** Which of the stream's variants to play (default `main`). */
  variant?: "main" | "sub";
  /** Drawn on the canvas until this player's first picture (see `status.poster`). */
  poster?: CanvasImageSource & { width: number; height: number };
  /** Not shown this long, a JPEG socket is closed (default HIDDEN_CLOSE_MS). */
  hiddenCloseMs?: number;
  /** Not shown this long, a video socket is closed (default HIDDEN_VIDEO_CLOSE_MS). */
  hiddenVideoCloseMs?: number;
}

/** A JPEG player not shown for this long closes its socket (credit already stopped its frames). */
export const HIDDEN_CLOSE_MS = 10_000;
/**
 * A video player not shown for this long closes its socket: its credit already stopped the
 * frames, but a video socket that resumes over a second behind waits for the next keyframe
 * (up to a GOP), where a new socket gets the current GOP at once. (A second, not zero: a
 * tile that only flickers out of view while scrolling keeps its socket and resumes in order.)
 */
export const HIDDEN_VIDEO_CLOSE_MS = 1_000;

function sameConfig(a: ConfigMessage, b: ConfigMessage): boolean {
  return (
    a.codec === b.codec &&
    a.width === b.width &&
    a.height === b.height &&
    a.description.length === b.description.length &&
    a.description.every((byte, i) => byte === b.description[i])
  );
}

/** Frames kept while the path for a new `config` is being chosen (then the GOP starts over). */
const MAX_PENDING_FRAMES = 600;
const MAX_PENDING_BYTES = 32 * 1024 * 1024;

interface Payload {
  data: ArrayBuffer;
  captureMs: number | null;
}

export class StreamPlayer {
  private readonly opts: PlayerOptions;
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D | null;
  private readonly jitter: JitterBuffer<Payload>;
  private readonly backoff: ReconnectPolicy;
  private readonly stats = new RollingStats(2000);
  private readonly credit = new CreditWindow();
  private readonly freshness: FreshnessReporter;
  private ws: WebSocket | null = null;
  private generation = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  /** Closes the socket of a player not shown for a while (see `pause`). */
  private hideTimer: ReturnType<typeof setTimeout> | null = null;
  private started = false;
  /** The socket was closed because the picture was not shown; reopened when it is. */
  private paused = false;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private raf: number | null = null;
  private decoding = false;
  private visible = true;
  private destroyed = false;
  private syntheticSeq = 0;
  private droppedByGateway = 0;
  private framesShown = 0;
  private gotFrameThisConnection = false;
  private readonly media: MediaEnv;
  /** What this socket carries (hello), null before hello. */
  private format: SocketFormat | null = null;
  private sink: VideoSink | null = null;
  private config: ConfigMessage | null = null;
  /** The decision in progress for a `config` (0: none); frames wait in `pending` meanwhile. */
  private deciding = 0;
  private decisions = 0;
  private pending: VideoFrameMessage[] = [];
  private pendingBytes = 0;
  private lastVideoSeq: number | null = null;
  private videoMissing = 0;
  /** Frames skipped by video paths already torn down. */
  private videoSkipped = 0;
  private codec: string | null = null;
  /** The `format` this socket asked for. */
  private asked: RequestedFormat | null = null;
  private status: PlayerStatus = {
    connection: "connecting",
    streamState: null,
    message: "",
    messageAt: 0,
    retryAt: null,
    hello: null,
    hasPicture: false,
    path: null,
    health: null,
    healthSince: "",
    cause: null,
    poster: false,
  };

  constructor(options: PlayerOptions) {
    this.opts = options;
    this.canvas = options.canvas;
    this.ctx = this.canvas.getContext("2d", { alpha: false });
    this.jitter = new JitterBuffer<Payload>({ maxFrames: 8, ...options.jitter });
    this.backoff = new ReconnectPolicy(options.backoff);
    this.media = options.media ?? browserMediaEnv();
    this.freshness = new FreshnessReporter(options.freshness);
  }

  start(): void {
    if (this.destroyed || this.started) return;
    this.started = true;
    document.addEventListener("visibilitychange", this.onVisibilityChange);
    this.statsTimer = setInterval(() => this.emitStats(), this.opts.statsIntervalMs ?? 500);
    this.drawPoster();
    this.connect();
    if (!this.shown()) this.armHideTimer();
  }

  /** Tears everything down: socket, timers, animation frame. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    document.removeEventListener("visibilitychange", this.onVisibilityChange);
    this.clearTimers();
    this.clearHideTimer();
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.closeSocket();
    this.dropVideo();
    this.jitter.reset();
    this.setStatus({ connection: "closed", retryAt: null });
  }

  /**
   * Whether the picture is on screen (a tile in view, not behind a dialog). Not shown, it asks
   * for nothing and decodes nothing, and after a while closes its socket; shown again, it
   * gets the latest picture at once.
   */
  setVisible(visible: boolean): void {
    this.visible = visible;
    this.followShown();
  }

  /** Reconnects at once (after a sign-in, or a user's "retry"); a paused player stays paused. */
  reconnectNow(): void {
    if (this.destroyed || this.paused) return;
    this.backoff.reset();
    this.clearTimers();
    this.closeSocket();
    this.connect();
  }

  getStatus(): PlayerStatus {
    return this.status;
  }

  /** Acts on a change of `shown()`: resume (reconnect if paused), or start the hide timer. */
  private followShown(): void {
    const shown = this.shown();
    this.sink?.setShown(shown);
    if (!this.started || this.destroyed) return;
    if (!shown) {
      this.armHideTimer();
      return;
    }
    this.clearHideTimer();
    if (this.paused) {
      this.paused = false;
      this.backoff.reset();
      this.clearTimers();
      this.connect();
      return;
    }
    this.schedule();
    this.replenish();
  }

  /** Whether this socket carries video (h264/h265) rather than JPEGs. */
  private onVideoSocket(): boolean {
    return this.format === "h264" || this.format === "h265";
  }

  private armHideTimer(): void {
    if (this.hideTimer !== null || this.paused || this.destroyed) return;
    const delay = this.onVideoSocket()
      ? (this.opts.hiddenVideoCloseMs ?? HIDDEN_VIDEO_CLOSE_MS)
      : (this.opts.hiddenCloseMs ?? HIDDEN_CLOSE_MS);
    this.hideTimer = setTimeout(() => {
      this.hideTimer = null;
      if (!this.shown()) this.pause();
    }, delay);
  }

  private clearHideTimer(): void {
    if (this.hideTimer !== null) clearTimeout(this.hideTimer);
    this.hideTimer = null;
  }

  /**
   * Not shown for a while: closes the socket (the gateway counts one viewer fewer and may stop
   * an on-demand source) and waits, without retrying, until the picture is shown again.
   */
  private pause(): void {
    if (this.destroyed || this.paused) return;
    this.paused = true;
    this.clearTimers();
    this.closeSocket();
    this.dropVideo();
    this.jitter.reset();
    this.setStatus({ connection: "paused", retryAt: null });
  }

  /** The poster (if any) on the canvas until the first frame (then `status.poster` is false). */
  private drawPoster(): void {
    const poster = this.opts.poster;
    if (!poster || !this.ctx || poster.width <= 0 || poster.height <= 0) return;
    try {
      this.canvas.width = poster.width;
      this.canvas.height = poster.height;
      this.ctx.drawImage(poster, 0, 0);
    } catch {
      return; // not drawable (a detached video): start blank
    }
    this.setStatus({ hasPicture: true, poster: true });
  }

  /** One of this player's own pictures is on screen. */
  private markPicture(): void {
    if (!this.status.hasPicture || this.status.poster) this.setStatus({ hasPicture: true, poster: false });
  }

  private connect(): void {
    if (this.destroyed) return;
    const generation = ++this.generation;
    this.jitter.reset();
    this.credit.reset();
    this.dropVideo();
    this.gotFrameThisConnection = false;
    this.setStatus({ connection: "connecting", retryAt: null, hello: null });
    // The first grant goes in the URL, so the gateway holds it from the first frame (a
    // grant sent on open would arrive after it may have sent frames freely); 0 when not
    // shown: nothing is sent until the player asks.
    const credit = this.credit.open(this.shown());
    let ws: WebSocket;
    try {
      this.asked = this.requestedFormat();
      ws = new WebSocket(streamSocketUrl(window.location, this.opts.streamId, this.opts.maxFps, credit, this.asked, this.opts.variant));
    } catch (e) {
      this.scheduleReconnect(e instanceof Error ? e.message : "cannot open WebSocket", false);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (generation === this.generation && !this.status.hello) {
        this.closeSocket();
        this.scheduleReconnect("no answer from the gateway", false);
      }
    }, this.opts.connectTimeoutMs ?? 10_000);

    ws.onopen = () => {
      if (generation !== this.generation) return;
      this.setStatus({ connection: "open" });
      // Shown since the socket was asked for (the URL's grant was 0): ask now.
      this.replenish();
    };
    ws.onmessage = (event: MessageEvent) => {
      if (generation !== this.generation) return;
      if (typeof event.data === "string") this.onText(event.data);
      else if (event.data instanceof ArrayBuffer) this.onBinary(event.data);
    };
    ws.onclose = (event: CloseEvent) => {
      if (generation !== this.generation) return;
      this.ws = null;
      this.onClosed(event.code, event.reason);
    };
    ws.onerror = () => {
      // Always followed by onclose, which decides.
    };
  }

  private onText(text: string): void {
    const msg = parseServerMessage(text);
    if (!msg) return;
    switch (msg.type) {
      case "hello":
        if (this.connectTimer !== null) clearTimeout(this.connectTimer);
        this.connectTimer = null;
        this.setStatus({
          hello: msg,
          streamState: msg.state ?? this.status.streamState,
          message: msg.message,
          cause: msg.cause ?? null,
        });
        this.freshness.setClockOffset(clockOffsetMs(msg.serverTimeUs, localNowMs()));
        this.format = msg.format;
        if (msg.format === "mjpeg") this.setPath("mjpeg", null);
        // Hidden since before this hello: a video socket closes sooner than a JPEG one.
        if (this.onVideoSocket() && !this.shown()) {
          this.clearHideTimer();
          this.armHideTimer();
        }
        this.resizeCredit();
        this.replenish();
        break;
      case "state":
        this.setStatus({ streamState: msg.state, message: msg.message, cause: msg.cause ?? null });
        break;
      case "health":
        this.setStatus({ health: msg.health, healthSince: msg.since });
        break;
      case "dropped":
        this.droppedByGateway += msg.frames;
        break;
      case "error":
        this.setStatus({ message: msg.message });
        break;
      case "config":
        this.onConfig(msg);
        break;
    }
  }

  /** `?format=` for a new socket: video when this browser can play it, unless found unplayable. */
  private requestedFormat(): RequestedFormat | null {
    const forced = this.opts.forcePath ?? null;
    if (forced === "mjpeg" || isMjpegOnly(this.opts.streamId)) return "mjpeg";
    return canPlayVideo(this.media, forced) ? "auto" : null;
  }

  private onBinary(data: ArrayBuffer): void {
    const kind = data.byteLength > 0 ? new DataView(data).getUint8(0) : -1;
    if (kind === VIDEO_FRAME_KIND) {
      this.onVideoFrame(data);
      return;
    }
    if (this.format === null) {
      // `auto` on a stream that had not said its codec: its first frame is a JPEG.
      this.format = "mjpeg";
      this.setPath("mjpeg", null);
    }
    this.onFrame(data);
  }

  /** The credit window for what this socket carries (JPEG: adapted to the link; video: fixed). */
  private resizeCredit(): void {
    const hello = this.status.hello;
    const fps = hello?.fps ?? null;
    if (this.onVideoSocket()) {
      this.credit.resize(videoCreditWindowFor(fps));
    } else {
      this.credit.resize(
        creditWindowFor(fps, this.opts.maxFps, this.jitter.options.targetDelayMs),
        frameIntervalMs(fps, this.opts.maxFps),
      );
    }
  }

  /** A (new) `config`: choose the path for it (remembered per stream and codec), then play. */
  private onConfig(config: ConfigMessage): void {
    if (this.format === "mjpeg") return;
    // `auto` decided on the stream's first frame: video.
    if (this.format === null) {
      this.format = config.codec.startsWith("hvc1") || config.codec.startsWith("hev1") ? "h265" : "h264";
      this.resizeCredit();
    }
    const current = this.config;
    if (current && this.sink && this.deciding === 0 && sameConfig(current, config)) return; // nothing changed
    this.config = config;
    const token = ++this.decisions;
    this.deciding = token;
    const apply = (path: PlaybackPath) => {
      if (token !== this.deciding || this.destroyed) return;
      this.deciding = 0;
      this.applyPath(path, config);
    };
    // A forced path (`?player=`) is the page's choice: nothing to remember or recall.
    const forced = this.opts.forcePath ?? null;
    const known = forced ? null : rememberedPath(this.opts.streamId, config.codec);
    if (known) {
      apply(known);
      return;
    }
    choosePath(config, this.media, forced).then(
      (path) => {
        if (!forced) rememberPath(this.opts.streamId, config.codec, path);
        apply(path);
      },
      () => apply("mjpeg"),
    );
  }

  private applyPath(path: PlaybackPath, config: ConfigMessage): void {
    if (path === "mjpeg") {
      this.fallBackToMjpeg(config.codec);
      return;
    }
    let sink: VideoSink;
    try {
      if (this.sink?.path === path) {
        sink = this.sink;
        sink.configure(config);
      } else {
        this.destroySink();
        sink = this.createSink(path, config);
        this.sink = sink;
      }
    } catch {
      this.destroySink();
      this.fallBackToMjpeg(config.codec);
      return;
    }
    this.setPath(path, config.codec);
    const frames = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const frame of frames) sink.push(frame);
  }

  private createSink(path: "webcodecs" | "mse", config: ConfigMessage): VideoSink {
    const generation = this.generation;
    const events = {
      onShown: (captureUs: number | null) => {
        if (generation === this.generation) this.onVideoShown(captureUs);
      },
      onFatal: (message: string) => {
        if (generation === this.generation) this.onSinkFatal(path, message);
      },
      onPicture: () => {
        if (generation === this.generation) this.markPicture();
      },
    };
    let sink: VideoSink;
    if (path === "webcodecs") {
      sink = new WebCodecsSink(this.canvas, this.ctx, events, this.opts.webcodecs);
      sink.configure(config);
    } else {
      if (!this.opts.video) throw new Error("no <video> for the MSE path");
      const fps = this.status.hello?.fps;
      const nominal = typeof fps === "number" && fps > 0 ? { nominalIntervalUs: Math.round(1e6 / fps) } : {};
      sink = new MseSink(this.opts.video, config, events, { ...nominal, ...this.opts.mse });
    }
    sink.setShown(this.shown());
    return sink;
  }

  /**
   * A path failed while playing: take the next one down the ladder (WebCodecs → MSE →
   * MJPEG) for this stream and codec, on a new connection (which brings a fresh GOP).
   */
  private onSinkFatal(path: "webcodecs" | "mse", message: string): void {
    const config = this.config;
    if (!config) return;
    console.warn(`camgate: ${this.opts.streamId}: ${message}; trying the next playback path`);
    const mseOk =
      path === "webcodecs" &&
      this.opts.forcePath !== "webcodecs" &&
      !!this.opts.video &&
      (this.media.MediaSource?.isTypeSupported(mp4MimeType(config.codec)) ?? false);
    rememberPath(this.opts.streamId, config.codec, mseOk ? "mse" : "mjpeg");
    this.closeSocket();
    this.connect();
  }

  /** This browser cannot play the stream's codec: MJPEG from now on (the gateway transcodes). */
  private fallBackToMjpeg(codec: string): void {
    rememberPath(this.opts.streamId, codec, "mjpeg");
    this.closeSocket();
    if (this.asked === "mjpeg") {
      // Asked for MJPEG and got video anyway: retry with backoff, never in a tight loop.
      this.scheduleReconnect(`the gateway sent ${codec} where MJPEG was asked for`, false);
    } else {
      this.connect();
    }
  }

  private onVideoFrame(data: ArrayBuffer): void {
    this.stats.recordReceived(performance.now(), data.byteLength);
    if (!this.gotFrameThisConnection) {
      this.gotFrameThisConnection = true;
      this.backoff.reset();
    }
    this.credit.receivedVideo();
    const frame = parseVideoFrame(data);
    if (!frame) return;
    if (this.lastVideoSeq !== null && frame.seq > this.lastVideoSeq + 1) this.videoMissing += frame.seq - this.lastVideoSeq - 1;
    this.lastVideoSeq = frame.seq;
    if (this.deciding !== 0) {
      if (this.pending.length >= MAX_PENDING_FRAMES || this.pendingBytes + frame.data.byteLength > MAX_PENDING_BYTES) {
        // The path takes too long to choose: the chosen one starts at the next keyframe.
        this.videoSkipped += this.pending.length;
        this.pending = [];
        this.pendingBytes = 0;
      }
      this.pending.push(frame);
      this.pendingBytes += frame.data.byteLength;
    } else if (this.sink) {
      this.sink.push(frame);
    } else {
      this.videoSkipped++; // no config yet: nothing can decode it
    }
    this.replenish();
  }

  private onVideoShown(captureUs: number | null): void {
    this.framesShown++;
    this.freshness.record(captureUs === null ? null : captureUs / 1000, localNowMs());
    this.stats.recordShown(performance.now(), captureUs === null ? null : Math.max(0, Date.now() - captureUs / 1000));
    this.markPicture();
    this.replenish();
  }

  private setPath(path: PlaybackPath, codec: string | null): void {
    this.codec = codec;
    this.setStatus({ path });
  }

  private destroySink(): void {
    if (!this.sink) return;
    this.videoSkipped += this.sink.skipped;
    this.sink.destroy();
    this.sink = null;
  }

  /** Forgets the video state of a connection (a new one brings hello, config and a GOP). */
  private dropVideo(): void {
    this.destroySink();
    this.format = null;
    this.config = null;
    this.deciding = 0;
    this.videoSkipped += this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.lastVideoSeq = null;
  }

  private onFrame(data: ArrayBuffer): void {
    const now = performance.now();
    const tag = parseFrameTag(data);
    this.stats.recordReceived(now, data.byteLength);
    if (!this.gotFrameThisConnection) {
      this.gotFrameThisConnection = true;
      this.backoff.reset();
    }
    let seq: number;
    let captureMs: number;
    if (tag) {
      seq = tag.seq;
      captureMs = tag.captureUs / 1000;
      this.syntheticSeq = seq;
    } else {
      // An untagged JPEG (an older gateway, another source): pace by arrival.
      seq = ++this.syntheticSeq;
      captureMs = now;
    }
    // The buffer's clock is performance.now(); capture times are epoch ms. Only differences
    // matter to it, so the constant offset between the two is harmless.
    // Transit on mixed clocks (performance.now() and the epoch): only its changes count.
    this.credit.received(tag ? now - captureMs : null);
    this.jitter.push({ seq, captureMs, payload: { data, captureMs: tag ? captureMs : null } }, now);
    this.schedule();
    // Frames the buffer let go of (overflow) make room for new ones.
    this.replenish();
  }

  /** Whether the picture is on screen (a tile in view, in a visible tab). */
  private shown(): boolean {
    return this.visible && !document.hidden;
  }

  /**
   * Asks the gateway for as many frames as the window has room for (none while not shown).
   * Only on an open socket: a grant is counted as owed only when it is sent (shown while
   * connecting, the player tops up on open).
   */
  private replenish(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    // Video: frames waiting for a path, for the decoder or for MSE.
    const held = this.onVideoSocket()
      ? this.pending.length + (this.sink?.backlog ?? 0)
      : this.jitter.size + (this.decoding ? 1 : 0);
    const frames = this.credit.topUp(this.shown(), held);
    if (frames <= 0) return;
    try {
      ws.send(creditMessage(frames));
    } catch {
      // Closing: onclose decides what happens next.
    }
  }

  private onClosed(code: number, reason: string): void {
    this.clearTimers();
    const decision = decideClose(code, reason);
    switch (decision.action) {
      case "login":
        this.setStatus({ connection: "unauthorized", message: decision.reason, retryAt: null });
        this.opts.onUnauthorized?.();
        break;
      case "removed":
        this.setStatus({ connection: "removed", message: decision.reason, retryAt: null });
        this.opts.onRemoved?.();
        break;
      case "reconnect":
        this.scheduleReconnect(decision.reason, decision.resetBackoff);
        break;
    }
  }

  private scheduleReconnect(reason: string, resetBackoff: boolean): void {
    if (this.destroyed) return;
    if (resetBackoff) this.backoff.reset();
    const delay = this.backoff.nextDelay();
    this.setStatus({ connection: "reconnecting", message: reason, retryAt: Date.now() + delay, hello: null });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private schedule(): void {
    if (this.raf !== null || this.destroyed || !this.visible || document.hidden) return;
    if (this.jitter.size === 0) return;
    this.raf = requestAnimationFrame(this.tick);
  }

  private readonly tick = (): void => {
    this.raf = null;
    if (this.destroyed || !this.visible || document.hidden) return;
    if (!this.decoding) {
      const { frame } = this.jitter.take(performance.now() + (this.opts.decodeLeadMs ?? 16));
      if (frame) this.decode(frame.payload);
      // Frames skipped to catch up are done with too.
      this.replenish();
    }
    this.schedule();
  };

  private decode(payload: Payload): void {
    if (typeof createImageBitmap !== "function") return;
    this.decoding = true;
    const generation = this.generation;
    const blob = new Blob([payload.data], { type: "image/jpeg" });
    createImageBitmap(blob)
      .then((bitmap) => {
        if (this.destroyed || generation !== this.generation) {
          bitmap.close();
          return;
        }
        this.draw(bitmap, payload.captureMs);
      })
      .catch(() => {
        // A corrupt frame: skip it, the next one replaces it.
      })
      .finally(() => {
        this.decoding = false;
        this.schedule();
        if (generation === this.generation) this.replenish();
      });
  }

  private draw(bitmap: ImageBitmap, captureMs: number | null): void {
    try {
      if (this.canvas.width !== bitmap.width) this.canvas.width = bitmap.width;
      if (this.canvas.height !== bitmap.height) this.canvas.height = bitmap.height;
      this.ctx?.drawImage(bitmap, 0, 0);
    } finally {
      bitmap.close();
    }
    this.framesShown++;
    this.freshness.record(captureMs, localNowMs());
    this.stats.recordShown(performance.now(), captureMs === null ? null : Math.max(0, Date.now() - captureMs));
    this.markPicture();
  }

  private emitStats(): void {
    // The MSE path counts pictures and keeps to the live edge here too.
    this.sink?.poll();
    // Video backlogs drain without a message (MSE appends): top up here as well.
    this.replenish();
    this.reportShown();
    if (!this.opts.onStats) return;
    const snapshot = this.stats.snapshot(performance.now());
    const c = this.jitter.counters;
    const sink = this.sink;
    const path = this.status.path;
    this.opts.onStats({
      ...snapshot,
      width: sink && sink.width > 0 ? sink.width : this.canvas.width,
      height: sink && sink.height > 0 ? sink.height : this.canvas.height,
      droppedByGateway: this.droppedByGateway,
      droppedLate: c.droppedLate + c.droppedOverflow + this.videoSkipped + (sink?.skipped ?? 0),
      missing: c.missing + this.videoMissing,
      framesShown: this.framesShown,
      buffered: this.jitter.size + this.pending.length + (sink?.backlog ?? 0),
      path,
      pathLabel: pathLabel(path, path === "mjpeg" ? null : this.codec),
    });
  }

  /**
   * Sends the freshness report when one is due, on an open socket that had its hello (until
   * then the pictures drawn wait for the next socket's report).
   */
  private reportShown(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.status.hello) return;
    const report = this.freshness.take(localNowMs());
    if (!report) return;
    try {
      ws.send(JSON.stringify(report));
    } catch {
      // Closing: this period's report is lost, the next one counts on.
    }
  }

  private readonly onVisibilityChange = (): void => this.followShown();

  private setStatus(patch: Partial<PlayerStatus>): void {
    const next = { ...this.status, ...patch };
    if (patch.message !== undefined && patch.message !== this.status.message) next.messageAt = Date.now();
    const changed = (Object.keys(patch) as (keyof PlayerStatus)[]).some((k) => this.status[k] !== next[k]);
    this.status = next;
    if (changed) this.opts.onStatus?.(next);
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.raf !== null) cancelAnimationFrame(this.raf);
    this.retryTimer = null;
    this.connectTimer = null;
    this.raf = null;
  }

  private closeSocket(): void {
    const ws = this.ws;
    this.ws = null;
    this.generation++;
    if (!ws) return;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
      try {
        ws.close(1000, "viewer left");
      } catch {
        // Already closing.
      }
    }
  }
}
