/**
 * The playback ladder: which path plays a stream in this browser.
 *
 * 1. WebCodecs (`VideoDecoder` → canvas) when the page is a secure context, `VideoDecoder`
 *    exists and `VideoDecoder.isConfigSupported` accepts the stream's `config`.
 * 2. Media Source Extensions (`ManagedMediaSource` if present, else `MediaSource`) with fMP4
 *    built in the page, when `isTypeSupported` accepts the codec (plain-HTTP LANs: no
 *    secure context, no WebCodecs).
 * 3. MJPEG (the gateway transcodes): anything else, e.g. H.265 without a platform decoder.
 *
 * The player asks for `?format=auto` only when this browser can play H.264 one way or the
 * other (`canPlayVideo`); otherwise it asks for nothing, exactly today's MJPEG protocol.
 * Decisions are remembered per stream and codec for the page's lifetime, so a stream does
 * not flap between paths on reconnects.
 *
 * A page URL query parameter forces a path (tests, troubleshooting):
 * `?player=webcodecs|mse|mjpeg`. A forced video path the browser cannot take falls back to
 * MJPEG (the label on the picture says which path really plays).
 *
 * The browser's APIs come in through `MediaEnv`, so the decisions are testable without one.
 */

import { mp4MimeType } from "./fmp4";
import type { ConfigMessage } from "./protocol";

export type PlaybackPath = "webcodecs" | "mse" | "mjpeg";

const PATHS: readonly PlaybackPath[] = ["webcodecs", "mse", "mjpeg"];

/** What the ladder needs of `VideoDecoder`. */
export interface DecoderSupport {
  isConfigSupported(config: VideoDecoderConfig): Promise<{ supported?: boolean }>;
}

/** What the ladder needs of `MediaSource` / `ManagedMediaSource`. */
export interface MediaSourceSupport {
  isTypeSupported(type: string): boolean;
}

export interface MediaEnv {
  /** `isSecureContext`: WebCodecs is only exposed there. */
  secure: boolean;
  VideoDecoder: DecoderSupport | null;
  /** `ManagedMediaSource` if present, else `MediaSource`. */
  MediaSource: MediaSourceSupport | null;
}

/** A codec every H.264 decoder takes: the probe for asking `format=auto` at all. */
export const PROBE_CODEC = "avc1.42e01e";

/** This browser's media APIs. */
export function browserMediaEnv(): MediaEnv {
  const g = globalThis as unknown as {
    isSecureContext?: boolean;
    VideoDecoder?: DecoderSupport;
    ManagedMediaSource?: MediaSourceSupport;
    MediaSource?: MediaSourceSupport;
  };
  return {
    secure: g.isSecureContext === true,
    VideoDecoder: typeof g.VideoDecoder === "function" ? g.VideoDecoder : null,
    MediaSource: g.ManagedMediaSource ?? g.MediaSource ?? null,
  };
}

/** The `VideoDecoder` configuration of a `config` message. */
export function decoderConfig(config: ConfigMessage): VideoDecoderConfig {
  return {
    codec: config.codec,
    description: config.description,
    codedWidth: config.width,
    codedHeight: config.height,
    optimizeForLatency: true,
  };
}

function mseSupports(env: MediaEnv, codec: string): boolean {
  try {
    return env.MediaSource?.isTypeSupported(mp4MimeType(codec)) ?? false;
  } catch {
    return false;
  }
}

/** Whether to ask for `?format=auto`: this browser can play H.264 by WebCodecs or MSE. */
export function canPlayVideo(env: MediaEnv, forced: PlaybackPath | null = null): boolean {
  if (forced === "mjpeg") return false;
  const webcodecs = env.secure && env.VideoDecoder !== null;
  const mse = mseSupports(env, PROBE_CODEC);
  if (forced === "webcodecs") return webcodecs;
  if (forced === "mse") return mse;
  return webcodecs || mse;
}

/** Whether WebCodecs can decode `config` (false on any doubt). */
async function webCodecsSupports(env: MediaEnv, config: ConfigMessage): Promise<boolean> {
  if (!env.secure || !env.VideoDecoder) return false;
  try {
    return (await env.VideoDecoder.isConfigSupported(decoderConfig(config))).supported === true;
  } catch {
    return false;
  }
}

/** The best path for a stream whose `config` just arrived (`forced`: the page's `?player=`). */
export async function choosePath(config: ConfigMessage, env: MediaEnv, forced: PlaybackPath | null = null): Promise<PlaybackPath> {
  if (forced === "mjpeg") return "mjpeg";
  if (forced !== "mse" && (await webCodecsSupports(env, config))) return "webcodecs";
  if (forced !== "webcodecs" && mseSupports(env, config.codec)) return "mse";
  return "mjpeg";
}

/** The path forced by the page URL's `?player=` (null: choose). */
export function forcedPath(search: string): PlaybackPath | null {
  const value = new URLSearchParams(search).get("player");
  return (PATHS as readonly (string | null)[]).includes(value) ? (value as PlaybackPath) : null;
}

// Decisions of this page, per stream: `${stream}\n${codec}` → path, and streams found
// unplayable as video (they connect with `format=mjpeg` from then on).
const decisions = new Map<string, PlaybackPath>();
const mjpegOnly = new Set<string>();

/** The path decided before for this stream and codec, if any. */
export function rememberedPath(streamId: string, codec: string): PlaybackPath | null {
  return decisions.get(`${streamId}\n${codec}`) ?? null;
}

/** Remembers a decision; `mjpeg` also makes the stream connect as MJPEG from now on. */
export function rememberPath(streamId: string, codec: string, path: PlaybackPath): void {
  decisions.set(`${streamId}\n${codec}`, path);
  if (path === "mjpeg") mjpegOnly.add(streamId);
}

/** Whether this stream was found unplayable as video in this page. */
export function isMjpegOnly(streamId: string): boolean {
  return mjpegOnly.has(streamId);
}

/** Forgets every decision (tests). */
export function forgetPaths(): void {
  decisions.clear();
  mjpegOnly.clear();
}

/** A codec string's common name: `avc1.64001f` → H.264, `hvc1…`/`hev1…` → H.265. */
export function codecName(codec: string | null): string | null {
  if (!codec) return null;
  if (/^avc[13]/.test(codec)) return "H.264";
  if (/^(hvc1|hev1)/.test(codec)) return "H.265";
  return codec;
}

const PATH_NAMES: Record<PlaybackPath, string> = { webcodecs: "WebCodecs", mse: "MSE", mjpeg: "MJPEG" };

/** What the picture says plays it: "WebCodecs · H.264", "MSE · H.265", "MJPEG". */
export function pathLabel(path: PlaybackPath | null, codec: string | null): string {
  if (!path) return "–";
  const name = path === "mjpeg" ? null : codecName(codec);
  return name ? `${PATH_NAMES[path]} · ${name}` : PATH_NAMES[path];
}
