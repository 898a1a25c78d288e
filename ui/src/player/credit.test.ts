import { describe, expect, it } from "vitest";
import { CreditWindow, INITIAL_WINDOW, MAX_CREDIT, creditMessage, creditWindowFor } from "./credit";

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

describe("CreditWindow", () => {
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
    w.resize(4);
    expect(w.topUp(true, 0)).toBe(2);
    w.received();
    w.received();
    expect(w.owed).toBe(2);
    expect(w.topUp(true, 2)).toBe(0); // both frames still waiting to be shown
    expect(w.topUp(true, 1)).toBe(1); // one was drawn
    expect(w.topUp(true, 0)).toBe(1); // and the other
    expect(w.owed).toBe(4);
    expect(w.topUp(false, 0)).toBe(0);
  });

  it("never counts below zero (the frame sent with hello comes without credit)", () => {
    const w = new CreditWindow();
    w.received();
    expect(w.owed).toBe(0);
    expect(w.open(true)).toBe(2);
    w.reset();
    expect(w.owed).toBe(0);
    expect(w.topUp(true, 0)).toBe(0);
  });
});
