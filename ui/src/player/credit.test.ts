import { describe, expect, it } from "vitest";
import { CreditWindow, INITIAL_WINDOW, MAX_CREDIT, creditMessage, creditWindowFor, videoCreditWindowFor } from "./credit";

describe("creditMessage", () => {
  it("is the protocol's message with an integer in range", () => {
    expect(JSON.parse(creditMessage(3))).toEqual({ type: "credit", frames: 3 });
    expect(JSON.parse(creditMessage(0))).toEqual({ type: "credit", frames: 0 });
    expect(JSON.parse(creditMessage(2.7))).toEqual({ type: "credit", frames: 2 });
    expect(JSON.parse(creditMessage(-4))).toEqual({ type: "credit", frames: 0 });
    expect(JSON.parse(creditMessage(1e9))).toEqual({ type: "credit", frames: MAX_CREDIT });
  });
});

describe("creditWindowFor", () => {
  it("covers the frames shown while a grant makes its round trip", () => {
    expect(creditWindowFor(null, null, 200)).toBe(INITIAL_WINDOW);
    expect(creditWindowFor(10, null, 200)).toBe(5); // 10 fps × 350 ms → 4, plus one
    expect(creditWindowFor(10, 5, 200)).toBe(3); // max_fps caps the rate
    expect(creditWindowFor(1, null, 200)).toBe(INITIAL_WINDOW);
    expect(creditWindowFor(120, null, 500)).toBe(16);
    expect(creditWindowFor(Number.NaN, 0, 200)).toBe(INITIAL_WINDOW);
  });
});

describe("videoCreditWindowFor", () => {
  it("carries half a second of frames plus two, within 8..64, not shrunk by the link", () => {
    expect(videoCreditWindowFor(null)).toBe(16);
    expect(videoCreditWindowFor(25)).toBe(15); // 12.5 → 13, plus two
    expect(videoCreditWindowFor(5)).toBe(8);
    expect(videoCreditWindowFor(60)).toBe(32);
    expect(videoCreditWindowFor(240)).toBe(64);
  });
});

describe("CreditWindow", () => {
  it("counts video frames below zero, as the gateway does for a GOP sent on less credit", () => {
    const w = new CreditWindow();
    expect(w.open(true)).toBe(2);
    w.resize(videoCreditWindowFor(25));
    expect(w.topUp(true, 0)).toBe(13);
    // A GOP of 20 frames on 15 credits: 5 owed on both sides.
    for (let i = 0; i < 20; i++) w.receivedVideo();
    expect(w.owed).toBe(-5);
    expect(w.topUp(true, 20)).toBe(0); // all 20 still with the decoder
    expect(w.topUp(true, 10)).toBe(10); // half decoded: the window is 5 ahead again
    expect(w.topUp(true, 0)).toBe(10); // all: 15 in the pipe, none owed
    expect(w.owed).toBe(15);
  });


  it("grants the window on open only when shown", () => {
    const w = new CreditWindow();
    expect(w.topUp(true, 0)).toBe(0); // not open yet: the first message is open()'s
    expect(w.open(false)).toBe(0);
    expect(w.topUp(false, 0)).toBe(0);
    expect(w.topUp(true, 0)).toBe(INITIAL_WINDOW); // shown again: the whole window
    expect(w.owed).toBe(INITIAL_WINDOW);
  });

  it("keeps at most the window in the pipe: owed plus held", () => {
    const w = new CreditWindow();
    expect(w.open(true)).toBe(2);
    w.resize(4, 100);
    expect(w.topUp(true, 0)).toBe(2);
    w.received(null);
    w.received(null);
    expect(w.owed).toBe(2);
    expect(w.topUp(true, 2)).toBe(0); // both frames still waiting to be shown
    expect(w.topUp(true, 1)).toBe(1); // one was drawn
    expect(w.topUp(true, 0)).toBe(1); // and the other
    expect(w.owed).toBe(4);
    expect(w.topUp(false, 0)).toBe(0);
  });

  it("never counts below zero (a frame it did not ask for)", () => {
    const w = new CreditWindow();
    w.received(null);
    expect(w.owed).toBe(0);
    expect(w.open(true)).toBe(2);
    w.reset();
    expect(w.owed).toBe(0);
    expect(w.topUp(true, 0)).toBe(0);
  });

  /**
   * A 10 fps camera and a viewer that shows each frame as it comes, on a link that carries
   * one frame per `transferMs` (frames queue behind each other). The gateway sends the
   * latest frame when credit arrives (up to a frame interval old). The viewer's clock is
   * offset from the camera's. Returns each frame's age on arrival.
   */
  function simulate(w: CreditWindow, transferMs: number, frames: number): number[] {
    const offset = 1_700_000_000_000; // only differences may count
    let now = 0;
    let linkFreeAt = 0;
    const inFlight: { captured: number; arrives: number }[] = [];
    const ages: number[] = [];
    const send = (n: number) => {
      for (let i = 0; i < n; i++) {
        const captured = Math.floor(now / 100) * 100; // the latest frame of a 10 fps camera
        linkFreeAt = Math.max(linkFreeAt, now + 5) + transferMs;
        inFlight.push({ captured, arrives: linkFreeAt });
      }
    };
    send(w.open(true));
    for (let i = 0; i < frames; i++) {
      const next = inFlight.shift();
      if (!next) {
        now += 100; // wait for the next frame
        send(w.topUp(true, 0));
        continue;
      }
      now = next.arrives;
      ages.push(now - next.captured);
      w.received(now - (next.captured + offset));
      send(w.topUp(true, 0));
    }
    return ages;
  }

  it("shrinks on a link slower than the stream: no backlog, pictures at most a queued frame old", () => {
    const w = new CreditWindow();
    w.resize(5, 100);
    // 300 ms a frame: a full window would keep five frames queued (1.5 s).
    const ages = simulate(w, 300, 80);
    expect(w.size).toBeLessThanOrEqual(2);
    expect(Math.max(...ages.slice(40))).toBeLessThanOrEqual(2 * 300 + 100 + 10);
  });

  it("keeps the full window on a link that keeps up, and regains it after a slow spell", () => {
    const w = new CreditWindow();
    w.resize(5, 100);
    simulate(w, 5, 200);
    expect(w.size).toBe(5);
    simulate(w, 300, 40);
    expect(w.size).toBeLessThan(5);
    simulate(w, 5, 300);
    expect(w.size).toBe(5);
  });
});
