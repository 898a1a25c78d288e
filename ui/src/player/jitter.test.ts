import { describe, expect, it } from "vitest";
import { JitterBuffer } from "./jitter";

// Capture clock (the camera's, epoch ms) and local clock (performance.now()) differ by a
// large constant: the buffer must only ever use differences.
const CLOCK_OFFSET = 1_700_000_000_000;
const local = (captureMs: number, transitMs: number) => captureMs - CLOCK_OFFSET + transitMs;
const capture = (i: number, intervalMs = 100) => CLOCK_OFFSET + 5_000 + i * intervalMs;

function frame(seq: number, captureMs: number) {
  return { seq, captureMs, payload: `f${seq}` };
}

describe("JitterBuffer pacing", () => {
  it("holds the first frame for the target delay", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 200 });
    const c0 = capture(0);
    const t0 = local(c0, 40);
    jb.push(frame(1, c0), t0);
    expect(jb.take(t0).frame).toBeNull();
    expect(jb.take(t0 + 199).frame).toBeNull();
    expect(jb.take(t0 + 200).frame?.seq).toBe(1);
  });

  it("spreads a burst out at the capture rate", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 200 });
    // Frame 0 arrives on time, then frames 1..4 arrive together 350 ms late (a stall).
    const t0 = local(capture(0), 30);
    jb.push(frame(1, capture(0)), t0);
    const burst = local(capture(4), 30) + 0; // they all arrive when frame 4 would have
    for (let i = 1; i <= 4; i++) jb.push(frame(i + 1, capture(i)), burst);
    const shown: [number, number][] = [];
    for (let t = t0; t <= t0 + 1000; t += 5) {
      const { frame: f, dropped } = jb.take(t);
      expect(dropped).toEqual([]);
      if (f) shown.push([f.seq, t - t0]);
    }
    // Each frame is shown at capture + base + target: 200, 300, 400, 500, 600 ms after t0.
    expect(shown).toEqual([
      [1, 200],
      [2, 300],
      [3, 400],
      [4, 500],
      [5, 600],
    ]);
  });

  it("absorbs arrival jitter smaller than the target delay", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 200 });
    const jitters = [20, 150, 60, 190, 20, 100, 30, 170, 20, 80];
    const arrivals = jitters.map((j, i) => ({ seq: i + 1, at: local(capture(i), j), c: capture(i) }));
    const shownAt = new Map<number, number>();
    let next = 0;
    for (let t = arrivals[0]?.at ?? 0; t < (arrivals[arrivals.length - 1]?.at ?? 0) + 500; t += 1) {
      while (next < arrivals.length && (arrivals[next]?.at ?? Infinity) <= t) {
        const a = arrivals[next++];
        if (a) jb.push(frame(a.seq, a.c), t);
      }
      const { frame: f, dropped } = jb.take(t);
      expect(dropped).toEqual([]);
      if (f) shownAt.set(f.seq, t);
    }
    // Every frame shown, exactly 100 ms apart (the capture interval).
    expect(shownAt.size).toBe(10);
    const times = [...shownAt.values()];
    for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBe(100);
  });
});

describe("JitterBuffer bounded latency", () => {
  it("catches up by dropping: after a stall only the newest due frame is shown", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 200, maxFrames: 100 });
    for (let i = 0; i < 20; i++) jb.push(frame(i + 1, capture(i)), local(capture(i), 30));
    // Nobody took frames for a while (hidden tab, long decode): now it is well past frame 20.
    const now = local(capture(19), 30) + 200;
    const { frame: f, dropped } = jb.take(now);
    expect(f?.seq).toBe(20);
    expect(dropped.map((d) => d.seq)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(jb.size).toBe(0);
    expect(jb.counters.droppedLate).toBe(19);
    // The frame shown is at most base + target old, not 2 s.
    expect(now - (f?.arrivalMs ?? 0)).toBeLessThanOrEqual(200);
  });

  it("never shows a frame later than base + target when taken every animation frame", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 150 });
    const transit = 40;
    // Arrivals every 100 ms of capture time, bunched up: 0..81 ms of extra delay.
    const arrivals = Array.from({ length: 200 }, (_, i) => ({
      seq: i + 1,
      c: capture(i),
      at: local(capture(i), transit + (i % 10 === 0 ? 0 : 90 - (i % 10) * 9)),
    }));
    let maxLatency = 0;
    let shown = 0;
    let next = 0;
    const start = arrivals[0]?.at ?? 0;
    for (let t = start; t < start + 21_000; t += 16) {
      while (next < arrivals.length && (arrivals[next]?.at ?? Infinity) <= t) {
        const a = arrivals[next++];
        if (a) jb.push(frame(a.seq, a.c), a.at);
      }
      const f = jb.take(t).frame;
      if (f) {
        shown++;
        maxLatency = Math.max(maxLatency, t - local(f.captureMs, 0));
      }
    }
    expect(shown).toBe(200);
    expect(maxLatency).toBeLessThanOrEqual(transit + 150 + 16);
  });

  it("caps the buffer size, dropping the oldest frames", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 200, maxFrames: 3 });
    const t = local(capture(0), 10);
    const dropped: number[] = [];
    for (let i = 0; i < 6; i++) dropped.push(...jb.push(frame(i + 1, capture(i)), t).dropped.map((d) => d.seq));
    expect(jb.size).toBe(3);
    expect(dropped).toEqual([1, 2, 3]);
    expect(jb.counters.droppedOverflow).toBe(3);
  });

  it("tracks the minimum transit over a sliding window", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 100, windowMs: 1000 });
    jb.push(frame(1, capture(0)), local(capture(0), 50));
    jb.push(frame(2, capture(1)), local(capture(1), 20));
    jb.push(frame(3, capture(2)), local(capture(2), 80));
    const base = jb.baseMs ?? 0;
    expect(base - (local(capture(0), 0) - capture(0))).toBe(20);
    // Transit grows for good (a slower path): after the window the base follows it.
    for (let i = 3; i < 30; i++) jb.push(frame(i + 1, capture(i)), local(capture(i), 300));
    expect((jb.baseMs ?? 0) - (local(capture(0), 0) - capture(0))).toBe(300);
  });
});

describe("JitterBuffer sequence handling", () => {
  it("refuses duplicate and older sequence numbers", () => {
    const jb = new JitterBuffer<string>();
    expect(jb.push(frame(5, capture(5)), local(capture(5), 10)).accepted).toBe(true);
    expect(jb.push(frame(5, capture(5)), local(capture(5), 11)).accepted).toBe(false);
    expect(jb.push(frame(4, capture(4)), local(capture(5), 12)).accepted).toBe(false);
    expect(jb.counters.refusedStale).toBe(2);
    expect(jb.size).toBe(1);
  });

  it("counts missing sequence numbers on a gap", () => {
    const jb = new JitterBuffer<string>();
    jb.push(frame(1, capture(0)), local(capture(0), 10));
    const r = jb.push(frame(5, capture(4)), local(capture(4), 10));
    expect(r).toMatchObject({ accepted: true, missing: 3, reset: false });
    expect(jb.counters.missing).toBe(3);
  });

  it("re-anchors after a long gap in capture time and shows the next frame promptly", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 200, resetGapMs: 3000 });
    jb.push(frame(1, capture(0)), local(capture(0), 10));
    expect(jb.take(local(capture(0), 210)).frame?.seq).toBe(1);
    // The source was stopped (on-demand) and restarted 60 s later, through a slower path.
    const later = capture(600);
    const r = jb.push(frame(2, later), local(later, 400));
    expect(r.reset).toBe(true);
    expect(jb.counters.resets).toBe(1);
    expect(jb.take(local(later, 400) + 199).frame).toBeNull();
    expect(jb.take(local(later, 400) + 200).frame?.seq).toBe(2);
  });

  it("treats a sequence that restarts with newer capture times as a reset", () => {
    const jb = new JitterBuffer<string>();
    jb.push(frame(100, capture(0)), local(capture(0), 10));
    jb.push(frame(101, capture(1)), local(capture(1), 10));
    const r = jb.push(frame(1, capture(2)), local(capture(2), 10));
    expect(r.accepted).toBe(true);
    expect(r.reset).toBe(true);
    expect(r.dropped.map((d) => d.seq)).toEqual([100, 101]);
    expect(jb.size).toBe(1);
    // And the new timeline continues normally.
    expect(jb.push(frame(2, capture(3)), local(capture(3), 10))).toMatchObject({ accepted: true, missing: 0 });
  });

  it("forgets everything on reset() (a new connection)", () => {
    const jb = new JitterBuffer<string>();
    jb.push(frame(10, capture(0)), local(capture(0), 10));
    jb.push(frame(11, capture(1)), local(capture(1), 10));
    expect(jb.reset().map((f) => f.seq)).toEqual([10, 11]);
    expect(jb.size).toBe(0);
    expect(jb.baseMs).toBeNull();
    // Sequence 1 is fine again (the gateway restarted).
    expect(jb.push(frame(1, capture(0)), local(capture(0), 10)).accepted).toBe(true);
  });

  it("reports time until the next frame is due", () => {
    const jb = new JitterBuffer<string>({ targetDelayMs: 200 });
    expect(jb.msUntilNext(0)).toBeNull();
    const t = local(capture(0), 30);
    jb.push(frame(1, capture(0)), t);
    expect(jb.msUntilNext(t)).toBe(200);
    expect(jb.msUntilNext(t + 500)).toBe(0);
  });
});
