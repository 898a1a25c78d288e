import { describe, expect, it } from "vitest";
import { formatBitrate, formatDuration, formatFps, formatLatency, maskUrl, slugify } from "./format";

describe("format", () => {
  it("formats rates and latencies", () => {
    expect(formatBitrate(1_234_567)).toBe("1.2 Mb/s");
    expect(formatBitrate(850_000)).toBe("850 kb/s");
    expect(formatBitrate(null)).toBe("–");
    expect(formatFps(9.96)).toBe("10.0 fps");
    expect(formatFps(25)).toBe("25 fps");
    expect(formatLatency(123.4)).toBe("123 ms");
    expect(formatLatency(2500)).toBe("2.5 s");
    expect(formatDuration(3725)).toBe("1h 2m");
  });

  it("masks URL passwords", () => {
    expect(maskUrl("rtsp://admin:hunter2@10.0.0.5:554/stream")).toBe("rtsp://admin:***@10.0.0.5:554/stream");
    expect(maskUrl("rtsp://admin@cam/stream")).toBe("rtsp://admin@cam/stream");
    expect(maskUrl("rtsp://cam/stream")).toBe("rtsp://cam/stream");
    expect(maskUrl("rtsp://admin:***@cam/")).toBe("rtsp://admin:***@cam/");
    expect(maskUrl(undefined)).toBe("");
  });

  it("suggests ids from names", () => {
    expect(slugify("Front door (4K)")).toBe("front-door-4k");
    expect(slugify("  Café   Entrée ")).toBe("cafe-entree");
    expect(slugify("___")).toBe("");
  });
});
