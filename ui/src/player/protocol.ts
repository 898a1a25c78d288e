/**
 * The viewer side of the WebSocket protocol (`GET /ws/streams/{id}`): text message parsing,
 * the video frame header (passthrough H.264/H.265, `?format=auto|h264|h265`) and what to do
 * when the socket closes. Pure functions, no browser needed.
 *
 * Binary messages are told apart by their first byte: `0xFF` is a JPEG (`format: "mjpeg"`,
 * see app11.ts), `0x01` a video frame (`parseVideoFrame`).
 */

export type StreamState = "stopped" | "connecting" | "live" | "retrying" | "failed";

const STATES: readonly StreamState[] = ["stopped", "connecting", "live", "retrying", "failed"];

export function isStreamState(value: unknown): value is StreamState {
  return typeof value === "string" && (STATES as readonly string[]).includes(value);
}

export interface HelloMessage {
  type: "hello";
  stream: string;
  name: string | null;
  fps: number | null;
  width: number | null;
  height: number | null;
  state: StreamState | null;
  message: string;
  /** The stream's native codec (null while unknown, or from a gateway that predates it). */
  codec: StreamCodec | null;
  /**
   * What this socket carries; an older gateway says nothing, which means `mjpeg`; `null`:
   * not decided yet (`format=auto` on a stream that has not sent a frame): the first
   * `config` (video) or JPEG message says.
   */
  format: SocketFormat | null;
  /** Why the source is down (as in `state` messages); absent when it is not down or not said. */
  cause?: OutageCause;
  /** The variant this socket plays (absent: `main`, also from gateways that predate variants). */
  variant?: "main" | "sub";
  /**
   * The gateway's clock when it wrote the hello (µs since the Unix epoch): the viewer's
   * estimate of its clock offset (freshness.ts). Null from a gateway that predates it.
   */
  serverTimeUs: number | null;
}

/** A stream's native codec as `hello` names it. */
export type StreamCodec = "jpeg" | "h264" | "h265";

/** What a socket carries: JPEG messages, or video frames with a header. */
export type SocketFormat = "mjpeg" | "h264" | "h265";

/** What the viewer asks for in `?format=`: `auto` takes the native codec when it is video. */
export type RequestedFormat = "auto" | SocketFormat;

/**
 * The decoder configuration of a video socket: first text message after `hello` for
 * h264/h265, again whenever it changes (frames after it use the new one).
 */
export interface ConfigMessage {
  type: "config";
  /** RFC 6381 codec string, e.g. `avc1.64001f`, `hvc1.1.6.L93.B0`. */
  codec: string;
  width: number;
  height: number;
  /** The avcC / hvcC record (base64-decoded). */
  description: Uint8Array;
}

export interface StateMessage {
  type: "state";
  state: StreamState;
  message: string;
  /** Why the source is down (only while `retrying` or `failed`); absent otherwise or when not said. */
  cause?: OutageCause;
}

/** Why a source is down, as the gateway classifies it. */
export type OutageCause = "auth_failed" | "not_found" | "unreachable" | "stalled" | "error";

const CAUSES: readonly OutageCause[] = ["auth_failed", "not_found", "unreachable", "stalled", "error"];

/** The picture's health as the gateway judges it (`unknown`: not running, or no frames yet). */
export type PictureHealth = "ok" | "frozen" | "dark" | "late" | "unknown";

export const PICTURE_HEALTH: readonly PictureHealth[] = ["ok", "frozen", "dark", "late", "unknown"];

/** After `hello`, and whenever the stream's picture health changes. */
export interface HealthMessage {
  type: "health";
  health: PictureHealth;
  /** When this verdict began (RFC 3339), "" if the gateway gave none. */
  since: string;
}

export interface DroppedMessage {
  type: "dropped";
  frames: number;
}

export interface ErrorMessage {
  type: "error";
  message: string;
}

export type ServerMessage = HelloMessage | StateMessage | HealthMessage | DroppedMessage | ErrorMessage | ConfigMessage;

function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T | null {
  return typeof value === "string" && (allowed as readonly string[]).includes(value) ? (value as T) : null;
}

/** Decodes standard base64 (with or without padding); null when it is not base64. */
export function decodeBase64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) return null;
  let binary: string;
  try {
    binary = atob(text.length % 4 === 0 ? text : text + "=".repeat(4 - (text.length % 4)));
  } catch {
    return null;
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** `{ cause }` when `value` is a known cause, else nothing (the field stays absent). */
function causeOf(value: unknown): { cause?: OutageCause } {
  const cause = oneOf(value, CAUSES);
  return cause ? { cause } : {};
}

/**
 * Parses one text message. Unknown types, malformed JSON and invalid fields give null
 * (newer gateways may send messages this viewer does not know: ignore them).
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case "hello":
      return {
        type: "hello",
        stream: str(m.stream),
        name: typeof m.name === "string" ? m.name : null,
        fps: num(m.fps),
        width: num(m.width),
        height: num(m.height),
        state: isStreamState(m.state) ? m.state : null,
        message: str(m.message),
        codec: oneOf(m.codec, ["jpeg", "h264", "h265"] as const),
        format: m.format === undefined ? "mjpeg" : oneOf(m.format, ["mjpeg", "h264", "h265"] as const),
        serverTimeUs: num(m.server_time_us),
        ...causeOf(m.cause),
        ...(m.variant === "sub" ? { variant: "sub" as const } : {}),
      };
    case "config": {
      const width = num(m.width);
      const height = num(m.height);
      const description = typeof m.description === "string" ? decodeBase64(m.description) : null;
      if (typeof m.codec !== "string" || m.codec === "" || width === null || height === null || !description) return null;
      if (width <= 0 || height <= 0 || description.length === 0) return null;
      return { type: "config", codec: m.codec, width: Math.floor(width), height: Math.floor(height), description };
    }
    case "state":
      if (!isStreamState(m.state)) return null;
      return { type: "state", state: m.state, message: str(m.message), ...causeOf(m.cause) };
    case "health": {
      const health = oneOf(m.health, PICTURE_HEALTH);
      if (health === null) return null;
      return { type: "health", health, since: str(m.since) };
    }
    case "dropped": {
      const frames = num(m.frames);
      if (frames === null || frames < 0) return null;
      return { type: "dropped", frames: Math.floor(frames) };
    }
    case "error":
      return { type: "error", message: str(m.message) };
    default:
      return null;
  }
}

/** First byte of a video frame message (a JPEG message starts with 0xFF). */
export const VIDEO_FRAME_KIND = 0x01;
/** Bytes of the video frame header before the access unit. */
export const VIDEO_HEADER_LENGTH = 18;

/** One video frame message: the header's fields and the access unit (a view, no copy). */
export interface VideoFrameMessage {
  keyframe: boolean;
  /** The hub's sequence number (gaps: frames this viewer skipped). */
  seq: number;
  /** Capture time, µs since the Unix epoch. */
  captureUs: number;
  /** The access unit in AVCC/HVCC form: repeated [u32 BE length][NAL unit]. */
  data: Uint8Array;
}

/** Reads a u64 BE as a Number (exact below 2^53: µs timestamps are, for ~285 years). */
function u64(view: DataView, offset: number): number {
  return view.getUint32(offset) * 0x1_0000_0000 + view.getUint32(offset + 4);
}

/**
 * Parses a video frame message (`format` h264/h265):
 *
 * ```text
 * byte 0       0x01 (kind: video frame)
 * byte 1       flags: bit 0 = keyframe
 * bytes 2..10  sequence number, u64 BE
 * bytes 10..18 capture time, µs since the Unix epoch, u64 BE
 * bytes 18..   access unit
 * ```
 *
 * Null for anything else (a JPEG, another kind, a truncated or empty frame).
 */
export function parseVideoFrame(buffer: ArrayBuffer): VideoFrameMessage | null {
  if (buffer.byteLength <= VIDEO_HEADER_LENGTH) return null;
  const view = new DataView(buffer);
  if (view.getUint8(0) !== VIDEO_FRAME_KIND) return null;
  return {
    keyframe: (view.getUint8(1) & 0x01) !== 0,
    seq: u64(view, 2),
    captureUs: u64(view, 10),
    data: new Uint8Array(buffer, VIDEO_HEADER_LENGTH),
  };
}

/** Builds a video frame message (tests, and tools that feed a player). */
export function buildVideoFrame(frame: { keyframe: boolean; seq: number; captureUs: number; data: Uint8Array }): ArrayBuffer {
  const out = new Uint8Array(VIDEO_HEADER_LENGTH + frame.data.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, VIDEO_FRAME_KIND);
  view.setUint8(1, frame.keyframe ? 1 : 0);
  view.setUint32(2, Math.floor(frame.seq / 0x1_0000_0000));
  view.setUint32(6, frame.seq >>> 0);
  view.setUint32(10, Math.floor(frame.captureUs / 0x1_0000_0000));
  view.setUint32(14, frame.captureUs >>> 0);
  out.set(frame.data, VIDEO_HEADER_LENGTH);
  return out.buffer;
}

export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_STREAM_REMOVED = 4004;
export const CLOSE_TOO_SLOW = 4008;

export type CloseAction =
  /** Try again after the backoff delay. */
  | { action: "reconnect"; reason: string; resetBackoff: boolean }
  /** Stop and ask the user to sign in; reconnect after login. */
  | { action: "login"; reason: string }
  /** The stream is gone: stop for good (the tile goes away). */
  | { action: "removed"; reason: string };

/** Decides what a viewer does when its socket closes with `code` and `reason`. */
export function decideClose(code: number, reason: string): CloseAction {
  switch (code) {
    case CLOSE_UNAUTHORIZED:
      return { action: "login", reason: reason || "sign in to watch this stream" };
    case CLOSE_STREAM_REMOVED:
      return { action: "removed", reason: reason || "stream removed" };
    case CLOSE_GOING_AWAY:
      return { action: "reconnect", reason: reason || "gateway restarting", resetBackoff: false };
    case CLOSE_TOO_SLOW:
      // The connection worked; it just fell behind. Come back quickly.
      return { action: "reconnect", reason: reason || "connection too slow", resetBackoff: true };
    case CLOSE_NORMAL:
      return { action: "reconnect", reason: reason || "closed by the gateway", resetBackoff: false };
    default:
      // 1006 (no close frame: network error, refused upgrade, gateway down) and the rest.
      return { action: "reconnect", reason: reason || "connection lost", resetBackoff: false };
  }
}

/**
 * The WebSocket URL of a stream, relative to the page's location: `maxFps` caps its rate,
 * `credit` (0 or more) puts the viewer on credit flow control from its first frame (video
 * sockets too: every frame spends one, a whole GOP may go below zero), `format` asks for passthrough video
 * (omitted or `mjpeg`: today's MJPEG protocol exactly), `variant` picks the stream's `sub`
 * (omitted for `main`, the default, so older gateways see the URL they know).
 */
export function streamSocketUrl(
  location: Pick<Location, "protocol" | "host">,
  streamId: string,
  maxFps?: number | null,
  credit?: number | null,
  format?: RequestedFormat | null,
  variant?: "main" | "sub" | null,
): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params: string[] = [];
  if (variant === "sub") params.push("variant=sub");
  if (format) params.push(`format=${format}`);
  if (maxFps && maxFps > 0) params.push(`max_fps=${encodeURIComponent(String(maxFps))}`);
  if (typeof credit === "number" && Number.isInteger(credit) && credit >= 0) params.push(`credit=${credit}`);
  const query = params.length > 0 ? `?${params.join("&")}` : "";
  return `${scheme}//${location.host}/ws/streams/${encodeURIComponent(streamId)}${query}`;
}
