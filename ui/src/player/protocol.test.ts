import { describe, expect, it } from "vitest";
import {
  buildVideoFrame,
  decideClose,
  decodeBase64,
  parseServerMessage,
  parseVideoFrame,
  streamSocketUrl,
  VIDEO_HEADER_LENGTH,
} from "./protocol";

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
      codec: null,
      format: "mjpeg",
      serverTimeUs: null,
    });
  });

  it("reads the gateway's clock from hello (null from an older gateway or a bad value)", () => {
    expect(parseServerMessage('{"type":"hello","stream":"a","server_time_us":1767225600123456}')).toMatchObject({
      serverTimeUs: 1767225600123456,
    });
    expect(parseServerMessage('{"type":"hello","stream":"a","server_time_us":"1"}')).toMatchObject({ serverTimeUs: null });
  });

  it("parses health messages; unknown verdicts are ignored", () => {
    expect(parseServerMessage('{"type":"health","health":"frozen","since":"2026-11-30T14:26:36.123Z"}')).toEqual({
      type: "health",
      health: "frozen",
      since: "2026-11-30T14:26:36.123Z",
    });
    for (const health of ["ok", "dark", "late", "unknown"]) {
      expect(parseServerMessage(JSON.stringify({ type: "health", health }))).toEqual({ type: "health", health, since: "" });
    }
    expect(parseServerMessage('{"type":"health","health":"purple"}')).toBeNull();
    expect(parseServerMessage('{"type":"health"}')).toBeNull();
  });

  it("reads the native codec and the socket's format from hello (an older gateway: mjpeg)", () => {
    expect(parseServerMessage('{"type":"hello","stream":"a","codec":"h264","format":"h264"}')).toMatchObject({
      codec: "h264",
      format: "h264",
    });
    expect(parseServerMessage('{"type":"hello","stream":"a","codec":"h265","format":"mjpeg"}')).toMatchObject({
      codec: "h265",
      format: "mjpeg",
    });
    expect(parseServerMessage('{"type":"hello","stream":"a","codec":null}')).toMatchObject({ codec: null, format: "mjpeg" });
    // Not decided yet (`auto` before the stream's first frame), or a format this client does
    // not know: the first config or JPEG says.
    expect(parseServerMessage('{"type":"hello","stream":"a","codec":null,"format":null}')).toMatchObject({ format: null });
    expect(parseServerMessage('{"type":"hello","stream":"a","codec":"vp8","format":"webm"}')).toMatchObject({
      codec: null,
      format: null,
    });
  });

  it("parses config with its base64 description", () => {
    const msg = parseServerMessage(
      JSON.stringify({ type: "config", codec: "avc1.64001f", width: 1280, height: 720, description: "AWQAH//hABdnZA==" }),
    );
    expect(msg).toEqual({
      type: "config",
      codec: "avc1.64001f",
      width: 1280,
      height: 720,
      description: Uint8Array.from([0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x17, 0x67, 0x64]),
    });
  });

  it("refuses a config without a usable codec, size or description", () => {
    const good = { type: "config", codec: "avc1.64001f", width: 1280, height: 720, description: "AWQAHw==" };
    expect(parseServerMessage(JSON.stringify(good))).not.toBeNull();
    for (const bad of [
      { codec: "" },
      { codec: 7 },
      { width: 0 },
      { height: "720" },
      { description: "" },
      { description: "not base64!" },
      { description: null },
    ]) {
      expect(parseServerMessage(JSON.stringify({ ...good, ...bad }))).toBeNull();
    }
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

describe("decodeBase64", () => {
  it("decodes padded and unpadded base64, refuses the rest", () => {
    expect(decodeBase64("AQID")).toEqual(Uint8Array.from([1, 2, 3]));
    expect(decodeBase64("AQI=")).toEqual(Uint8Array.from([1, 2]));
    expect(decodeBase64("AQI")).toEqual(Uint8Array.from([1, 2]));
    expect(decodeBase64("")).toEqual(new Uint8Array());
    expect(decodeBase64("A")).toBeNull();
    expect(decodeBase64("AQ-_")).toBeNull();
  });
});

describe("parseVideoFrame", () => {
  it("reads the 18-byte header and gives the access unit as a view", () => {
    const au = Uint8Array.from([0, 0, 0, 2, 0x65, 0x88]);
    const buf = new Uint8Array(VIDEO_HEADER_LENGTH + au.length);
    buf.set([0x01, 0x01, 0, 0, 0, 0x01, 0, 0, 0, 0x2a, 0x00, 0x06, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f]);
    buf.set(au, VIDEO_HEADER_LENGTH);
    const f = parseVideoFrame(buf.buffer);
    expect(f).toMatchObject({ keyframe: true, seq: 0x1_0000_002a, captureUs: 0x0006_1a2b_3c4d_5e6f });
    expect(f?.data).toEqual(au);
    expect(f?.data.buffer).toBe(buf.buffer); // no copy
  });

  it("reads delta frames, ignores the other flag bits", () => {
    const f = parseVideoFrame(buildVideoFrame({ keyframe: false, seq: 5, captureUs: 1_700_000_000_123_456, data: Uint8Array.of(9) }));
    expect(f).toMatchObject({ keyframe: false, seq: 5, captureUs: 1_700_000_000_123_456 });
    const buf = new Uint8Array(buildVideoFrame({ keyframe: false, seq: 5, captureUs: 0, data: Uint8Array.of(9) }));
    buf[1] = 0xfe;
    expect(parseVideoFrame(buf.buffer)?.keyframe).toBe(false);
    buf[1] = 0xff;
    expect(parseVideoFrame(buf.buffer)?.keyframe).toBe(true);
  });

  it("refuses JPEGs, other kinds and frames with no access unit", () => {
    expect(parseVideoFrame(Uint8Array.of(0xff, 0xd8, 0xff, 0xeb, ...new Array<number>(30).fill(0)).buffer)).toBeNull();
    const other = new Uint8Array(buildVideoFrame({ keyframe: true, seq: 1, captureUs: 1, data: Uint8Array.of(1) }));
    other[0] = 0x02;
    expect(parseVideoFrame(other.buffer)).toBeNull();
    expect(parseVideoFrame(new Uint8Array(VIDEO_HEADER_LENGTH).fill(1).buffer)).toBeNull();
    expect(parseVideoFrame(new ArrayBuffer(0))).toBeNull();
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

  it("asks for a format first when given one", () => {
    expect(streamSocketUrl({ protocol: "http:", host: "cam" }, "x", 5, 2, "auto")).toBe("ws://cam/ws/streams/x?format=auto&max_fps=5&credit=2");
    expect(streamSocketUrl({ protocol: "http:", host: "cam" }, "x", null, 2, "mjpeg")).toBe("ws://cam/ws/streams/x?format=mjpeg&credit=2");
    expect(streamSocketUrl({ protocol: "http:", host: "cam" }, "x", null, null, null)).toBe("ws://cam/ws/streams/x");
  });
});

describe("outage cause and variant", () => {
  it("reads the cause of a state message and of hello, and ignores unknown ones", () => {
    expect(parseServerMessage('{"type":"state","state":"retrying","message":"401","cause":"auth_failed"}')).toEqual({
      type: "state",
      state: "retrying",
      message: "401",
      cause: "auth_failed",
    });
    expect(parseServerMessage('{"type":"state","state":"retrying","cause":"gremlins"}')).toEqual({ type: "state", state: "retrying", message: "" });
    expect(parseServerMessage('{"type":"hello","stream":"x","state":"failed","cause":"not_found","variant":"sub"}')).toMatchObject({
      cause: "not_found",
      variant: "sub",
    });
  });

  it("asks for the sub variant in the socket URL, and says nothing for main", () => {
    const loc = { protocol: "http:", host: "gw" };
    expect(streamSocketUrl(loc, "cam", null, 3, null, "sub")).toBe("ws://gw/ws/streams/cam?variant=sub&credit=3");
    expect(streamSocketUrl(loc, "cam", null, 3, null, "main")).toBe("ws://gw/ws/streams/cam?credit=3");
  });
});
