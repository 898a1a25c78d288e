import { describe, expect, it } from "vitest";
import { RollingStats } from "./stats";

describe("RollingStats", () => {
  it("computes fps, bitrate and mean latency over the window", () => {
    const s = new RollingStats(2000);
    for (let i = 0; i < 20; i++) {
      s.recordReceived(i * 100, 10_000);
      s.recordShown(i * 100 + 5, 100 + (i % 2) * 20);
    }
    const snap = s.snapshot(1999);
    expect(snap.fps).toBe(10);
    expect(snap.receivedFps).toBe(10);
    expect(snap.bitrate).toBe(800_000);
    expect(snap.latencyMs).toBe(110);
  });

  it("forgets samples older than the window", () => {
    const s = new RollingStats(1000);
    s.recordReceived(0, 1000);
    s.recordShown(0, 50);
    expect(s.snapshot(5000)).toEqual({ fps: 0, receivedFps: 0, bitrate: 0, latencyMs: null });
  });
});
