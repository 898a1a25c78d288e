import { describe, expect, it } from "vitest";
import { FOCUS_PLAYBACK, GRID_MAX_FPS, tilePlayback } from "./variants";

describe("tilePlayback", () => {
  it("plays sub at full rate when the stream lists it", () => {
    expect(tilePlayback({ variants: ["main", "sub"] })).toEqual({ variant: "sub", maxFps: null });
  });

  it("plays main capped when there is no sub, or the gateway does not say", () => {
    expect(tilePlayback({ variants: ["main"] })).toEqual({ variant: "main", maxFps: GRID_MAX_FPS });
    expect(tilePlayback({})).toEqual({ variant: "main", maxFps: GRID_MAX_FPS });
    expect(tilePlayback({ variants: null })).toEqual({ variant: "main", maxFps: GRID_MAX_FPS });
  });

  it("the focused view plays main at full rate", () => {
    expect(FOCUS_PLAYBACK).toEqual({ variant: "main", maxFps: null });
  });
});
