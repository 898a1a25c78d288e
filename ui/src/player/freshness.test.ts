import { describe, expect, it } from "vitest";
import { clockOffsetMs, FreshnessReporter, MAX_AGE_MS, MAX_REPORT_AGES, MAX_REPORT_FRAMES } from "./freshness";

describe("clockOffsetMs", () => {
  it("is the gateway's clock minus ours at the hello's arrival", () => {
    // The gateway wrote the hello at 1 000 000.5 ms; it arrived at our 999 000 ms: the
    // gateway's clock is (at least) 1000.5 ms ahead.
    expect(clockOffsetMs(1_000_000_500, 999_000)).toBe(1000.5);
    expect(clockOffsetMs(1_000_000_000, 1_000_250)).toBe(-250);
  });

  it("is unknown without a usable server time (an older gateway)", () => {
    for (const bad of [null, 0, -5, Number.NaN, Number.POSITIVE_INFINITY]) expect(clockOffsetMs(bad, 1000)).toBeNull();
  });
});

describe("FreshnessReporter", () => {
  const T0 = 1_767_225_600_000; // local epoch ms

  it("reports nothing before anything is drawn, however long", () => {
    const r = new FreshnessReporter();
    r.setClockOffset(0);
    expect(r.take(T0)).toBeNull();
    expect(r.take(T0 + 60_000)).toBeNull();
  });

  it("reports every ~5 s of drawing: frames drawn, ages on the gateway's clock", () => {
    const r = new FreshnessReporter();
    // The gateway's clock is 2 s ahead of ours.
    r.setClockOffset(2000);
    for (let i = 0; i < 10; i++) {
      const drawn = T0 + i * 400;
      // Captured (gateway clock) 80 ms before it was drawn.
      r.record(drawn + 2000 - 80, drawn);
    }
    expect(r.take(T0 + 4999)).toBeNull();
    const report = r.take(T0 + 5000);
    expect(report).toEqual({ type: "shown", frames: 10, age_ms: Array(10).fill(80) });
    // A new period starts with the next picture drawn.
    expect(r.take(T0 + 10_000)).toBeNull();
    r.record(T0 + 20_000 + 2000 - 35.25, T0 + 20_000);
    expect(r.take(T0 + 24_999)).toBeNull();
    expect(r.take(T0 + 25_000)).toEqual({ type: "shown", frames: 1, age_ms: [35.3] });
  });

  it("keeps within the gateway's bounds: at most 32 ages, 10 000 frames, ages from 0 to 600 000 ms", () => {
    const r = new FreshnessReporter({ random: () => 0.999 });
    r.setClockOffset(0);
    for (let i = 0; i < 20_000; i++) r.record(T0 - i, T0);
    const report = r.take(T0 + 5000);
    expect(report?.frames).toBe(MAX_REPORT_FRAMES);
    expect(report?.age_ms).toHaveLength(MAX_REPORT_AGES);

    // A capture "after" the draw (the estimate's error): 0. Beyond the bound: left out, counted.
    r.record(T0 + 50, T0);
    r.record(T0 - MAX_AGE_MS - 1, T0);
    r.record(T0 - MAX_AGE_MS, T0);
    expect(r.take(T0 + 5000)).toEqual({ type: "shown", frames: 3, age_ms: [0, MAX_AGE_MS] });
  });

  it("samples ages uniformly over the period (reservoir)", () => {
    // random() = 0: each later age replaces the first slot; 0.999: none does.
    const first = new FreshnessReporter({ random: () => 0 });
    const none = new FreshnessReporter({ random: () => 0.999 });
    for (const r of [first, none]) {
      r.setClockOffset(0);
      for (let age = 1; age <= 100; age++) r.record(T0 - age, T0);
    }
    const kept = Array.from({ length: 32 }, (_, i) => i + 1);
    expect(none.take(T0 + 5000)?.age_ms).toEqual(kept);
    expect(first.take(T0 + 5000)?.age_ms).toEqual([100, ...kept.slice(1)]);
    // Over many periods every age is about as likely to be kept.
    const r = new FreshnessReporter();
    r.setClockOffset(0);
    const counts = new Array<number>(100).fill(0);
    for (let period = 0; period < 400; period++) {
      for (let age = 0; age < 100; age++) r.record(T0 - age, T0);
      for (const age of r.take(T0 + 5000)?.age_ms ?? []) counts[age] = (counts[age] ?? 0) + 1;
    }
    // Expected 400 × 32 / 100 = 128 per age.
    expect(Math.min(...counts.slice(0, 50))).toBeGreaterThan(70);
    expect(Math.min(...counts.slice(50))).toBeGreaterThan(70);
  });

  it("without the gateway's clock counts frames but reports no ages", () => {
    const r = new FreshnessReporter();
    r.record(T0 - 40, T0);
    r.record(null, T0 + 100);
    expect(r.take(T0 + 5000)).toEqual({ type: "shown", frames: 2, age_ms: [] });
  });
});
