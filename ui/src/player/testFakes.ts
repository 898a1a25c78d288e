// Fake browser APIs for the player's unit tests (WebSocket, WebCodecs, Media Source
// Extensions, <video>): just enough behaviour to check the wiring, and a record of what the
// player did with them. Only imported by *.test.ts files.
import { vi } from "vitest";

export class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static instances: FakeSocket[] = [];
  readyState = FakeSocket.CONNECTING;
  binaryType = "blob";
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  closedWith: number | null = null;
  /** Text messages the player sent. */
  sent: string[] = [];
  readonly url: string;
  constructor(url: string) {
    this.url = url;
    FakeSocket.instances.push(this);
  }
  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }
  text(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  binary(buf: ArrayBuffer) {
    this.onmessage?.({ data: buf });
  }
  serverClose(code: number, reason = "") {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code, reason });
  }
  send(data: string) {
    if (this.readyState !== FakeSocket.OPEN) throw new Error("not open");
    this.sent.push(data);
  }
  /** The frames of each credit message sent so far. */
  credits(): number[] {
    return this.sent
      .map((m) => JSON.parse(m) as { type: string; frames: number })
      .filter((m) => m.type === "credit")
      .map((m) => m.frames);
  }
  close(code?: number) {
    this.readyState = FakeSocket.CLOSED;
    this.closedWith = code ?? 1005;
  }
}

/** A decoded picture: counts its closes (each must be closed exactly once). */
export class FakeVideoFrame {
  static all: FakeVideoFrame[] = [];
  readonly timestamp: number;
  readonly displayWidth: number;
  readonly displayHeight: number;
  closes = 0;
  constructor(timestamp: number, width = 640, height = 360) {
    this.timestamp = timestamp;
    this.displayWidth = width;
    this.displayHeight = height;
    FakeVideoFrame.all.push(this);
  }
  close() {
    this.closes++;
  }
}

export class FakeEncodedVideoChunk {
  readonly type: "key" | "delta";
  readonly timestamp: number;
  readonly byteLength: number;
  readonly data: Uint8Array;
  constructor(init: { type: "key" | "delta"; timestamp: number; data: Uint8Array }) {
    this.type = init.type;
    this.timestamp = init.timestamp;
    this.data = new Uint8Array(init.data); // a real chunk copies too
    this.byteLength = this.data.length;
  }
}

/**
 * A decoder that outputs one picture per chunk on a microtask (or holds them while `stalled`,
 * so `decodeQueueSize` grows), and checks that decoding starts at a keyframe.
 */
export class FakeVideoDecoder {
  static instances: FakeVideoDecoder[] = [];
  /** Codec strings `isConfigSupported` accepts. */
  static supported = new Set<string>(["avc1.42c01f", "avc1.64001f"]);
  static supportQueries: VideoDecoderConfig[] = [];
  static isConfigSupported(config: VideoDecoderConfig): Promise<{ supported: boolean; config: VideoDecoderConfig }> {
    FakeVideoDecoder.supportQueries.push(config);
    return Promise.resolve({ supported: FakeVideoDecoder.supported.has(config.codec), config });
  }

  state: "unconfigured" | "configured" | "closed" = "unconfigured";
  configs: VideoDecoderConfig[] = [];
  chunks: FakeEncodedVideoChunk[] = [];
  resets = 0;
  stalled = false;
  /** Chunks decoded but not yet output (while stalled). */
  private queued: FakeEncodedVideoChunk[] = [];
  private readonly output: (frame: FakeVideoFrame) => void;
  private readonly error: (e: DOMException) => void;
  private needsKey = true;

  constructor(init: { output: (frame: FakeVideoFrame) => void; error: (e: DOMException) => void }) {
    this.output = init.output;
    this.error = init.error;
    FakeVideoDecoder.instances.push(this);
  }

  get decodeQueueSize(): number {
    return this.queued.length;
  }

  configure(config: VideoDecoderConfig) {
    if (this.state === "closed") throw new DOMException("closed", "InvalidStateError");
    this.configs.push(config);
    this.state = "configured";
    this.needsKey = true;
  }

  decode(chunk: FakeEncodedVideoChunk) {
    if (this.state !== "configured") throw new DOMException("not configured", "InvalidStateError");
    if (this.needsKey && chunk.type !== "key") throw new DOMException("a key frame is required", "DataError");
    this.needsKey = false;
    this.chunks.push(chunk);
    this.queued.push(chunk);
    if (!this.stalled) this.flushSoon();
  }

  /** Outputs everything queued (after a stall). */
  drain() {
    this.stalled = false;
    this.flushSoon();
  }

  /** Fails like a real decoder: error callback, then closed. */
  fail() {
    this.state = "closed";
    this.queued = [];
    this.error(new DOMException("decoding failed", "EncodingError"));
  }

  reset() {
    this.resets++;
    this.queued = [];
    this.state = "unconfigured";
  }

  close() {
    this.state = "closed";
    this.queued = [];
  }

  private flushSoon() {
    queueMicrotask(() => {
      while (this.queued.length > 0 && this.state === "configured" && !this.stalled) {
        const chunk = this.queued.shift() as FakeEncodedVideoChunk;
        this.output(new FakeVideoFrame(chunk.timestamp));
      }
    });
  }
}

class FakeTimeRanges {
  private readonly ranges: [number, number][];
  constructor(ranges: [number, number][]) {
    this.ranges = ranges;
  }
  get length() {
    return this.ranges.length;
  }
  start(i: number) {
    return (this.ranges[i] as [number, number])[0];
  }
  end(i: number) {
    return (this.ranges[i] as [number, number])[1];
  }
}

/**
 * A SourceBuffer that takes one operation at a time (throws if the player appends while
 * `updating`) and finishes it on a timer, and keeps `buffered` as the span of the fragments'
 * decode times (read from their tfdt/trun).
 */
export class FakeSourceBuffer extends EventTarget {
  mode = "segments";
  updating = false;
  appended: Uint8Array[] = [];
  removed: [number, number][] = [];
  types: string[];
  range: [number, number] | null = null;
  constructor(mime: string) {
    super();
    this.types = [mime];
  }
  appendBuffer(data: Uint8Array) {
    if (this.updating) throw new DOMException("updating", "InvalidStateError");
    this.appended.push(new Uint8Array(data));
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (String.fromCharCode(...data.subarray(4, 8)) === "moof") {
      // tfdt (v1) time at 60..68, trun sample duration at 88 (fmp4.ts's fixed layout).
      const start = (view.getUint32(60) * 2 ** 32 + view.getUint32(64)) / 1e6;
      const end = start + view.getUint32(88) / 1e6;
      this.range = this.range ? [Math.min(this.range[0], start), Math.max(this.range[1], end)] : [start, end];
    }
    this.finishSoon();
  }
  remove(start: number, end: number) {
    if (this.updating) throw new DOMException("updating", "InvalidStateError");
    this.removed.push([start, end]);
    if (this.range) this.range = [Math.max(this.range[0], end), this.range[1]];
    this.finishSoon();
  }
  changeType(mime: string) {
    if (this.updating) throw new DOMException("updating", "InvalidStateError");
    this.types.push(mime);
  }
  private finishSoon() {
    this.updating = true;
    setTimeout(() => {
      this.updating = false;
      this.dispatchEvent(new Event("updateend"));
    }, 1);
  }
}

export class FakeMediaSource extends EventTarget {
  static instances: FakeMediaSource[] = [];
  static supported = new Set<string>(['video/mp4; codecs="avc1.42e01e"', 'video/mp4; codecs="avc1.42c01f"', 'video/mp4; codecs="avc1.64001f"']);
  static isTypeSupported(type: string) {
    return FakeMediaSource.supported.has(type);
  }
  readyState = "closed";
  buffers: FakeSourceBuffer[] = [];
  constructor() {
    super();
    FakeMediaSource.instances.push(this);
  }
  /** What attaching it to a <video> does: opens on a timer. */
  openSoon() {
    setTimeout(() => {
      this.readyState = "open";
      this.dispatchEvent(new Event("sourceopen"));
    }, 1);
  }
  addSourceBuffer(mime: string) {
    if (!FakeMediaSource.isTypeSupported(mime)) throw new DOMException("unsupported", "NotSupportedError");
    const b = new FakeSourceBuffer(mime);
    this.buffers.push(b);
    return b;
  }
}

/** A <video> whose `buffered` is its media source's buffer; attaching a source opens it. */
export function fakeVideo() {
  const objects = new Map<string, FakeMediaSource>();
  let next = 0;
  const createObjectURL = vi.fn((source: FakeMediaSource) => {
    const url = `blob:fake/${++next}`;
    objects.set(url, source);
    return url;
  });
  const revokeObjectURL = vi.fn((url: string) => objects.delete(url));
  let src = "";
  let source: FakeMediaSource | null = null;
  const video = {
    muted: false,
    playsInline: false,
    disableRemotePlayback: false,
    currentTime: 0,
    playbackRate: 1,
    paused: true,
    videoWidth: 0,
    videoHeight: 0,
    error: null,
    framesPresented: 0,
    get src() {
      return src;
    },
    set src(url: string) {
      src = url;
      source = objects.get(url) ?? null;
      source?.openSoon();
    },
    get buffered() {
      const range = source?.buffers[0]?.range;
      return new FakeTimeRanges(range ? [range] : []);
    },
    play: vi.fn(() => {
      video.paused = false;
      return Promise.resolve();
    }),
    pause: vi.fn(() => {
      video.paused = true;
    }),
    load: vi.fn(),
    removeAttribute: vi.fn((name: string) => {
      if (name === "src") {
        src = "";
        source = null;
      }
    }),
    addEventListener: vi.fn(),
    removeEventListener: vi.fn(),
    getVideoPlaybackQuality: () => ({ totalVideoFrames: video.framesPresented, droppedVideoFrames: 0 }),
  };
  return { video, createObjectURL, revokeObjectURL, source: () => source };
}
