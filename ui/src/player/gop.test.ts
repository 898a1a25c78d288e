import { describe, expect, it } from "vitest";
import { GopGate } from "./gop";
import type { VideoFrameMessage } from "./protocol";

const f = (seq: number, keyframe: boolean, size = 10): VideoFrameMessage => ({ seq, keyframe, captureUs: seq * 40_000, data: new Uint8Array(size) });
const seqs = (frames: VideoFrameMessage[]) => frames.map((x) => x.seq);

describe("GopGate", () => {
  it("starts at a keyframe, and again after losing the decoder's state", () => {
    const g = new GopGate();
    expect(g.admit(f(1, false))).toBe(false);
    expect(g.admit(f(2, true))).toBe(true);
    expect(g.admit(f(3, false))).toBe(true);
    g.waitForKeyframe();
    expect(g.admit(f(4, false))).toBe(false);
    expect(g.admit(f(5, true))).toBe(true);
    expect(g.skipped).toBe(2);
  });

  it("while hidden keeps only the frames since the last keyframe", () => {
    const g = new GopGate();
    g.admit(f(1, true));
    g.hide();
    for (let s = 2; s <= 10; s++) g.hold(f(s, s === 6));
    expect(seqs(g.show())).toEqual([6, 7, 8, 9, 10]);
    expect(g.skipped).toBe(4);
    expect(g.waitingForKeyframe).toBe(false);
  });

  it("keeps the frames since it was hidden when no keyframe came (they continue the decoder)", () => {
    const g = new GopGate();
    g.admit(f(1, true));
    g.hide();
    g.hold(f(2, false));
    g.hold(f(3, false));
    expect(seqs(g.show())).toEqual([2, 3]);
    expect(g.admit(f(4, false))).toBe(true);
  });

  it("hidden while waiting for a keyframe: keeps nothing before one", () => {
    const g = new GopGate();
    g.hide();
    g.hold(f(1, false));
    expect(g.show()).toEqual([]);
    expect(g.waitingForKeyframe).toBe(true);
  });

  it("gives up a GOP too long to keep, and waits for the next keyframe", () => {
    const g = new GopGate({ maxHeldFrames: 3, maxHeldBytes: 1000 });
    g.admit(f(1, true));
    g.hide();
    for (let s = 2; s <= 6; s++) g.hold(f(s, s === 2));
    expect(g.show()).toEqual([]);
    expect(g.waitingForKeyframe).toBe(true);
    const b = new GopGate({ maxHeldFrames: 100, maxHeldBytes: 25 });
    b.hide();
    b.hold(f(1, true));
    b.hold(f(2, false));
    b.hold(f(3, false));
    expect(b.show()).toEqual([]);
  });
});
