import { describe, expect, it } from "vitest";
import { decideClose, parseServerMessage, streamSocketUrl } from "./protocol";

describe("parseServerMessage", () => {
  it("parses hello with metadata", () => {
    const msg = parseServerMessage(
      JSON.stringify({ type: "hello", stream: "lobby", name: "Lobby", fps: 10, width: 1280, height: 720, state: "live" }),
    );
    expect(msg).toEqual({
      type: "hello",
      stream: "lobby",
      name: "Lobby",
      fps: 10,
      width: 1280,
      height: 720,
      state: "live",
      message: "",
    });
  });

  it("tolerates a hello with missing or null fields", () => {
    const msg = parseServerMessage(JSON.stringify({ type: "hello", stream: "x", fps: null, state: "bogus" }));
    expect(msg).toMatchObject({ type: "hello", stream: "x", name: null, fps: null, width: null, height: null, state: null });
  });

  it("parses state changes with their message", () => {
    expect(parseServerMessage('{"type":"state","state":"retrying","message":"Connection refused"}')).toEqual({
      type: "state",
      state: "retrying",
      message: "Connection refused",
    });
    expect(parseServerMessage('{"type":"state","state":"live"}')).toEqual({ type: "state", state: "live", message: "" });
  });

  it("refuses a state message with an unknown state", () => {
    expect(parseServerMessage('{"type":"state","state":"exploded"}')).toBeNull();
  });

  it("parses dropped notices", () => {
    expect(parseServerMessage('{"type":"dropped","frames":3}')).toEqual({ type: "dropped", frames: 3 });
    expect(parseServerMessage('{"type":"dropped","frames":-1}')).toBeNull();
    expect(parseServerMessage('{"type":"dropped","frames":"3"}')).toBeNull();
  });

  it("ignores unknown types and malformed text", () => {
    expect(parseServerMessage('{"type":"future-thing"}')).toBeNull();
    expect(parseServerMessage("not json")).toBeNull();
    expect(parseServerMessage("[1,2]")).toBeNull();
    expect(parseServerMessage("null")).toBeNull();
  });
});

describe("decideClose", () => {
  it("reconnects when the gateway shuts down (1001)", () => {
    expect(decideClose(1001, "")).toMatchObject({ action: "reconnect", resetBackoff: false });
  });

  it("asks for a login on 4001", () => {
    expect(decideClose(4001, "")).toMatchObject({ action: "login" });
  });

  it("stops for good on 4004 (stream removed)", () => {
    expect(decideClose(4004, "stream removed from the manifest")).toEqual({
      action: "removed",
      reason: "stream removed from the manifest",
    });
  });

  it("reconnects promptly after 4008 (too slow)", () => {
    expect(decideClose(4008, "")).toMatchObject({ action: "reconnect", resetBackoff: true });
  });

  it("reconnects with backoff on abnormal closes (1006) and anything else", () => {
    expect(decideClose(1006, "")).toMatchObject({ action: "reconnect", resetBackoff: false, reason: "connection lost" });
    expect(decideClose(1011, "internal")).toMatchObject({ action: "reconnect", reason: "internal" });
    expect(decideClose(1000, "")).toMatchObject({ action: "reconnect" });
  });
});

describe("streamSocketUrl", () => {
  it("builds ws/wss URLs with an optional max_fps", () => {
    expect(streamSocketUrl({ protocol: "http:", host: "cam:8000" }, "lobby")).toBe("ws://cam:8000/ws/streams/lobby");
    expect(streamSocketUrl({ protocol: "https:", host: "cam" }, "a b", 5)).toBe("wss://cam/ws/streams/a%20b?max_fps=5");
    expect(streamSocketUrl({ protocol: "http:", host: "cam" }, "x", null)).toBe("ws://cam/ws/streams/x");
    expect(streamSocketUrl({ protocol: "http:", host: "cam" }, "x", 5, 2)).toBe("ws://cam/ws/streams/x?max_fps=5&credit=2");
    expect(streamSocketUrl({ protocol: "http:", host: "cam" }, "x", null, 0)).toBe("ws://cam/ws/streams/x?credit=0");
  });
});
