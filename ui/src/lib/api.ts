/**
 * The gateway's HTTP API (`/api/...`): types and a small fetch client. Fields the gateway
 * may not send yet are optional/nullable; the UI copes with their absence.
 */

import type { PictureHealth, StreamState } from "@/player/protocol";

export interface StreamSource {
  plugin: string;
  url?: string;
  username?: string;
  fps?: number;
  width?: number;
  height?: number;
  quality?: number;
  [option: string]: unknown;
}

export interface Stream {
  id: string;
  name: string;
  on_demand: boolean;
  idle_timeout?: string | null;
  source: StreamSource;
  /** True when created through the API (PUT/DELETE allowed). */
  editable?: boolean;
  state: StreamState;
  message?: string | null;
  viewers?: number | null;
  fps?: number | null;
  bitrate?: number | null;
  width?: number | null;
  height?: number | null;
  uptime_seconds?: number | null;
  frames_in?: number | null;
  /** The picture's health (absent from gateways that predate it). */
  health?: PictureHealth | null;
  /** When that verdict began (RFC 3339). */
  health_since?: string | null;
  /** The thresholds the verdict is judged by, every value in force (absent from older gateways). */
  health_rules?: HealthRules | null;
  /** The variants a viewer may ask for (`["main"]` or `["main","sub"]`; absent from older gateways). */
  variants?: StreamVariant[] | null;
  /** The sub variant as configured (the manifest's form, password masked), when there is one. */
  sub?: Record<string, unknown> | null;
  /** Why the source is down: present only while the state is `retrying` or `failed`. */
  cause?: OutageCause | null;
}

/** A stream's picture-health thresholds (docs/configuration.md, "Picture health"). */
export interface HealthRules {
  enabled: boolean;
  frozen_after?: string;
  dark_after?: string;
  dark_luma?: number;
  late_after?: string;
  min_fps_ratio?: number;
  [key: string]: unknown;
}

export interface Plugin {
  name: string;
  version?: string;
  description?: string;
  abi_version?: number | string;
  /** Built in, or loaded from a file (shape decided by the gateway). */
  origin?: unknown;
}

export interface Session {
  auth_required: boolean;
  authenticated: boolean;
  role: "admin" | "viewer" | "metrics" | null;
  /** The cluster node serving this page, `null` outside cluster mode: a cluster's streams and
   * groups come from its shared manifest, so the page offers no way to change them. */
  cluster_node?: string | null;
}

/** The body of POST /api/streams and PUT /api/streams/{id}. */
export interface StreamInput {
  id: string;
  name: string;
  on_demand?: boolean;
  idle_timeout?: string;
  /** Omitted on update: the stored thresholds stay. */
  health_rules?: Record<string, unknown>;
  source: {
    plugin: string;
    url?: string;
    username?: string;
    password?: string;
    fps?: number;
    width?: number;
    height?: number;
    quality?: number;
    /** Options the form has no field for, sent back as the API showed them. */
    [option: string]: unknown;
  };
}

/** An error answered by the API (`{"error": {"code", "message", "field"?}}`) or the network. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;

  constructor(status: number, code: string, message: string, field: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }
}

/** Reads the JSON error shape; falls back to the status text. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  let field: string | null = null;
  try {
    const body: unknown = await response.json();
    if (typeof body === "object" && body !== null && "error" in body) {
      const err = body.error;
      if (typeof err === "object" && err !== null) {
        const e = err as Record<string, unknown>;
        if (typeof e.code === "string") code = e.code;
        if (typeof e.message === "string" && e.message) message = e.message;
        if (typeof e.field === "string" && e.field) field = e.field;
      } else if (typeof err === "string") {
        message = err;
      }
    }
  } catch {
    // Not JSON: keep the status text.
  }
  return new ApiError(response.status, code, message, field);
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", e instanceof Error ? `cannot reach the gateway (${e.message})` : "cannot reach the gateway");
  }
  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const api = {
  async listStreams(): Promise<Stream[]> {
    const body = await request<{ streams?: Stream[] }>("GET", "/api/streams");
    return Array.isArray(body.streams) ? body.streams : [];
  },
  getStream(id: string): Promise<Stream> {
    return request<Stream>("GET", `/api/streams/${encodeURIComponent(id)}`);
  },
  createStream(input: StreamInput): Promise<Stream> {
    return request<Stream>("POST", "/api/streams", input);
  },
  updateStream(id: string, input: StreamInput): Promise<Stream> {
    return request<Stream>("PUT", `/api/streams/${encodeURIComponent(id)}`, input);
  },
  deleteStream(id: string): Promise<void> {
    return request<undefined>("DELETE", `/api/streams/${encodeURIComponent(id)}`);
  },
  async listPlugins(): Promise<Plugin[]> {
    const body = await request<{ plugins?: Plugin[] }>("GET", "/api/plugins");
    return Array.isArray(body.plugins) ? body.plugins : [];
  },
  getSession(): Promise<Session> {
    return request<Session>("GET", "/api/session");
  },
  login(token: string): Promise<void> {
    return request<undefined>("POST", "/api/session", { token });
  },
  logout(): Promise<void> {
    return request<undefined>("DELETE", "/api/session");
  },
};

// --- Variants, outage cause, retry now (issue 15) ---------------------------------------------

/** A stream's variant: its main picture, or the low-resolution `sub` made for grid tiles. */
export type StreamVariant = "main" | "sub";

/** Why a source is down (`cause` in the API and in the WebSocket's `state` messages). */
export type OutageCause = "auth_failed" | "not_found" | "unreachable" | "stalled" | "error";

export const OUTAGE_CAUSES: readonly OutageCause[] = ["auth_failed", "not_found", "unreachable", "stalled", "error"];

/**
 * `POST /api/streams/{id}/retry` (admin): ends the source's wait or attempt and starts a new
 * attempt at once. 202 with the state it is in now; 409 `not_running` for an idle on-demand
 * stream.
 */
export function retryStream(id: string): Promise<{ state?: StreamState }> {
  return request<{ state?: StreamState }>("POST", `/api/streams/${encodeURIComponent(id)}/retry`);
}

/** Plugins assumed when the gateway has no `/api/plugins` yet. */
export const FALLBACK_PLUGINS: Plugin[] = [
  { name: "rtsp", description: "RTSP camera, its own H.264/H.265 passed through (no transcoding)" },
  { name: "ffmpeg-mjpeg", description: "RTSP/HTTP camera through FFmpeg, as MJPEG" },
  { name: "testsrc", description: "Synthetic moving test pattern" },
];

// ---------------------------------------------------------------------------------------------
// Groups of cameras (the wall): saved by the gateway, so every browser sees them; admins edit.

/** A named, ordered list of cameras (`GET /api/groups`). */
export interface Group {
  id: string;
  name: string;
  /** Stream ids in the saved order (a viewer gets only those it may watch). */
  streams: string[];
}

/** The body of `PUT /api/groups/{id}`. */
export interface GroupInput {
  name: string;
  streams: string[];
}

export const groupsApi = {
  /** The groups; a gateway without groups (404/405) has none. */
  async list(): Promise<Group[]> {
    try {
      const body = await request<{ groups?: Group[] }>("GET", "/api/groups");
      return Array.isArray(body.groups) ? body.groups.filter((g) => typeof g.id === "string" && Array.isArray(g.streams)) : [];
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) return [];
      throw e;
    }
  },
  /** Creates (201) or replaces (200) a group. */
  save(id: string, input: GroupInput): Promise<Group> {
    return request<Group>("PUT", `/api/groups/${encodeURIComponent(id)}`, input);
  },
  remove(id: string): Promise<void> {
    return request<undefined>("DELETE", `/api/groups/${encodeURIComponent(id)}`);
  },
};
