/**
 * Which variant of a stream a view plays, and at what rate. Grid tiles play the stream's
 * `sub` (a low-resolution sub-stream) when it has one, at the stream's full frame rate;
 * without one they play `main` capped at GRID_MAX_FPS (a full-size picture in a small tile).
 * The focused view always plays `main` at full rate.
 */

import type { Stream, StreamVariant } from "@/lib/api";

/** Grid tiles playing `main` ask the gateway for fewer frames. */
export const GRID_MAX_FPS = 5;

export interface Playback {
  variant: StreamVariant;
  /** The rate cap to ask for (null: the stream's full rate). */
  maxFps: number | null;
}

/** What a grid tile plays. */
export function tilePlayback(stream: Pick<Stream, "variants">): Playback {
  const hasSub = Array.isArray(stream.variants) && stream.variants.includes("sub");
  return hasSub ? { variant: "sub", maxFps: null } : { variant: "main", maxFps: GRID_MAX_FPS };
}

/** What the focused view plays. */
export const FOCUS_PLAYBACK: Playback = { variant: "main", maxFps: null };
