/**
 * The viewer side of the WebSocket protocol (`GET /ws/streams/{id}`): text message parsing
 * and what to do when the socket closes. Pure functions, no browser needed.
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
}

export interface StateMessage {
  type: "state";
  state: StreamState;
  message: string;
}

export interface DroppedMessage {
  type: "dropped";
  frames: number;
}

export interface ErrorMessage {
  type: "error";
  message: string;
}

export type ServerMessage = HelloMessage | StateMessage | DroppedMessage | ErrorMessage;

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
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
      };
    case "state":
      if (!isStreamState(m.state)) return null;
      return { type: "state", state: m.state, message: str(m.message) };
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
 * `credit` (0 or more) puts the viewer on credit flow control from its first frame.
 */
export function streamSocketUrl(
  location: Pick<Location, "protocol" | "host">,
  streamId: string,
  maxFps?: number | null,
  credit?: number | null,
): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params: string[] = [];
  if (maxFps && maxFps > 0) params.push(`max_fps=${encodeURIComponent(String(maxFps))}`);
  if (typeof credit === "number" && Number.isInteger(credit) && credit >= 0) params.push(`credit=${credit}`);
  const query = params.length > 0 ? `?${params.join("&")}` : "";
  return `${scheme}//${location.host}/ws/streams/${encodeURIComponent(streamId)}${query}`;
}
