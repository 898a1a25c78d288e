import { describe, expect, it } from "vitest";
import { ReconnectPolicy } from "./backoff";

describe("ReconnectPolicy", () => {
  it("grows exponentially up to the cap (no jitter)", () => {
    const p = new ReconnectPolicy({ initialMs: 500, factor: 2, maxMs: 10_000, jitter: 0 });
    const delays = Array.from({ length: 8 }, () => p.nextDelay());
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(p.attempts).toBe(8);
  });

  it("never exceeds the cap, whatever the attempt count", () => {
    const p = new ReconnectPolicy({ random: () => 0.999999 });
    for (let i = 0; i < 200; i++) expect(p.nextDelay()).toBeLessThanOrEqual(10_000);
  });

  it("keeps jittered delays within [raw/2, raw]", () => {
    let r = 0;
    const values = [0, 0.25, 0.5, 0.75, 0.999];
    const p = new ReconnectPolicy({ jitter: 0.5, random: () => values[r++ % values.length] ?? 0 });
    for (let attempt = 0; attempt < 40; attempt++) {
      const raw = p.rawDelay(attempt);
      const delay = p.nextDelay();
      expect(delay).toBeGreaterThanOrEqual(Math.floor(raw / 2));
      expect(delay).toBeLessThanOrEqual(raw);
    }
  });

  it("spreads delays with real randomness", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const p = new ReconnectPolicy();
      p.nextDelay();
      p.nextDelay();
      seen.add(p.nextDelay()); // third attempt: raw 2000 → [1000, 2000]
    }
    expect(seen.size).toBeGreaterThan(5);
    for (const d of seen) {
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(2000);
    }
  });

  it("starts over after a success", () => {
    const p = new ReconnectPolicy({ jitter: 0 });
    p.nextDelay();
    p.nextDelay();
    p.nextDelay();
    expect(p.nextDelay()).toBe(4000);
    p.reset();
    expect(p.attempts).toBe(0);
    expect(p.nextDelay()).toBe(500);
  });

  it("clamps a misbehaving random source", () => {
    const p = new ReconnectPolicy({ random: () => 7 });
    expect(p.nextDelay()).toBe(500);
    const q = new ReconnectPolicy({ random: () => -3 });
    expect(q.nextDelay()).toBe(250);
  });
});
