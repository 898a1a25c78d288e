// The player's passthrough paths (WebCodecs, MSE) and the ladder between them and MJPEG,
// wired to fake WebSocket / VideoDecoder / MediaSource / <video> (testFakes.ts). Whether
// real browsers decode what the player builds is checked by ui/e2e/passthrough.mjs.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildTaggedJpeg } from "./app11";
import { forgetPaths } from "./ladder";
import { StreamPlayer, type PlayerStats } from "./player";
import { buildVideoFrame } from "./protocol";
import { FakeEncodedVideoChunk, FakeMediaSource, FakeSocket, FakeVideoDecoder, FakeVideoFrame, fakeVideo } from "./testFakes";

const BASE_US = 1_700_000_000_000_000;
const AVCC = Uint8Array.from([0x01, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x01, 0x00, 0x02, 0x68, 0xce]);
const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

function configMsg(codec = "avc1.42c01f", width = 640, height = 360) {
  return { type: "config", codec, width, height, description: b64(AVCC) };
}

/** A video frame message: seq n captured at BASE + n × 40 ms. */
function vframe(seq: number, keyframe: boolean): ArrayBuffer {
  const data = Uint8Array.of(0, 0, 0, 2, keyframe ? 0x65 : 0x41, seq & 0xff);
  return buildVideoFrame({ keyframe, seq, captureUs: BASE_US + seq * 40_000, data });
}

const drawImage = vi.fn();
const bitmaps: { close: ReturnType<typeof vi.fn> }[] = [];

function makePlayer(extra: Partial<ConstructorParameters<typeof StreamPlayer>[0]> = {}) {
  const canvas = { width: 300, height: 150, getContext: () => ({ drawImage }) } as unknown as HTMLCanvasElement;
  return new StreamPlayer({
    streamId: "lobby",
    canvas,
    jitter: { targetDelayMs: 50 },
    backoff: { random: () => 1 },
    ...extra,
  });
}

/** Opens the newest socket and says hello as a video socket of `format`. */
function hello(ws: FakeSocket | undefined, format = "h264") {
  ws?.open();
  ws?.text({ type: "hello", stream: "lobby", fps: 25, width: 640, height: 360, state: "live", codec: format, format });
}

const lastSocket = () => FakeSocket.instances[FakeSocket.instances.length - 1];
const decoder = () => FakeVideoDecoder.instances[FakeVideoDecoder.instances.length - 1];
const settle = () => vi.advanceTimersByTimeAsync(50);

/** A started player whose socket said hello as an H.264 socket and sent its config. */
async function playingVideo(extra: Partial<ConstructorParameters<typeof StreamPlayer>[0]> = {}) {
  const player = makePlayer(extra);
  player.start();
  const ws = lastSocket();
  hello(ws);
  ws?.text(configMsg());
  await settle();
  return { player, ws };
}

let media: ReturnType<typeof fakeVideo>;

beforeEach(() => {
  vi.useFakeTimers();
  forgetPaths();
  FakeSocket.instances = [];
  FakeVideoDecoder.instances = [];
  FakeVideoDecoder.supportQueries = [];
  FakeVideoFrame.all = [];
  FakeMediaSource.instances = [];
  drawImage.mockClear();
  bitmaps.length = 0;
  media = fakeVideo();
  vi.stubGlobal("WebSocket", FakeSocket);
  vi.stubGlobal("window", { location: { protocol: "http:", host: "gw:8000" } });
  vi.stubGlobal("document", { hidden: false, addEventListener: vi.fn(), removeEventListener: vi.fn() });
  vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => setTimeout(() => cb(performance.now()), 16));
  vi.stubGlobal("cancelAnimationFrame", (id: number) => clearTimeout(id));
  vi.stubGlobal("createImageBitmap", () => {
    const bmp = { width: 320, height: 180, close: vi.fn() };
    bitmaps.push(bmp);
    return Promise.resolve(bmp);
  });
  vi.stubGlobal("isSecureContext", true);
  vi.stubGlobal("VideoDecoder", FakeVideoDecoder);
  vi.stubGlobal("EncodedVideoChunk", FakeEncodedVideoChunk);
  vi.stubGlobal("MediaSource", FakeMediaSource);
  vi.spyOn(URL, "createObjectURL").mockImplementation(media.createObjectURL as unknown as typeof URL.createObjectURL);
  vi.spyOn(URL, "revokeObjectURL").mockImplementation(media.revokeObjectURL);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe("the WebCodecs path", () => {
  it("asks for format=auto, checks the config first, then configures the decoder from it", async () => {
    const player = makePlayer();
    player.start();
    const ws = lastSocket();
    expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?format=auto&credit=2");
    hello(ws);
    ws?.text(configMsg());
    await settle();
    const expected = { codec: "avc1.42c01f", description: AVCC, codedWidth: 640, codedHeight: 360, optimizeForLatency: true };
    expect(FakeVideoDecoder.supportQueries).toEqual([expected]);
    expect(player.getStatus().path).toBe("webcodecs");
    ws?.binary(vframe(1, true));
    expect(decoder()?.configs).toEqual([expected]);
    expect(decoder()?.chunks.map((c) => [c.type, c.timestamp])).toEqual([["key", BASE_US + 40_000]]);
    player.destroy();
    expect(decoder()?.state).toBe("closed");
  });

  it("decodes the whole GOP sent on join and draws only its last picture", async () => {
    const player = makePlayer();
    player.start();
    const ws = lastSocket();
    hello(ws);
    // The gateway sends config then the GOP at once, before the page has chosen a path.
    ws?.text(configMsg());
    ws?.binary(vframe(10, true));
    for (let seq = 11; seq <= 15; seq++) ws?.binary(vframe(seq, false));
    await settle();
    expect(decoder()?.chunks.map((c) => c.type)).toEqual(["key", "delta", "delta", "delta", "delta", "delta"]);
    expect(drawImage).toHaveBeenCalledTimes(1);
    const drawn = drawImage.mock.calls[0]?.[0] as FakeVideoFrame;
    expect(drawn.timestamp).toBe(BASE_US + 15 * 40_000);
    expect(FakeVideoFrame.all).toHaveLength(6);
    for (const f of FakeVideoFrame.all) expect(f.closes).toBe(1);
    expect(player.getStatus().hasPicture).toBe(true);
    player.destroy();
  });

  it("closes every VideoFrame: drawn, superseded, decoded while hidden or after destroy", async () => {
    const { player, ws } = await playingVideo();
    let seq = 0;
    for (let i = 0; i < 60; i++) {
      seq++;
      ws?.binary(vframe(seq, seq % 25 === 1));
      // Two frames per animation frame now and then: one is superseded, never drawn.
      await vi.advanceTimersByTimeAsync(i % 3 === 0 ? 5 : 20);
      if (i === 30) player.setVisible(false);
      if (i === 40) player.setVisible(true);
    }
    // One decoded and not drawn yet when the player goes away.
    ws?.binary(vframe(seq + 1, false));
    await Promise.resolve();
    player.destroy();
    await settle();
    expect(FakeVideoFrame.all.length).toBeGreaterThan(40);
    expect(FakeVideoFrame.all.filter((f) => f.closes !== 1)).toEqual([]);
    expect(drawImage.mock.calls.length).toBeLessThan(FakeVideoFrame.all.length);
  });

  it("reconfigures on a new config and waits for its keyframe", async () => {
    const { player, ws } = await playingVideo();
    ws?.binary(vframe(1, true));
    ws?.binary(vframe(2, false));
    ws?.text(configMsg("avc1.64001f", 1280, 720));
    ws?.binary(vframe(3, false)); // a delta after the new config: not decodable yet
    ws?.binary(vframe(4, true));
    ws?.binary(vframe(5, false));
    await settle();
    expect(FakeVideoDecoder.instances).toHaveLength(1);
    expect(decoder()?.configs.map((c) => [c.codec, c.codedWidth, c.codedHeight])).toEqual([
      ["avc1.42c01f", 640, 360],
      ["avc1.64001f", 1280, 720],
    ]);
    expect(decoder()?.chunks.map((c) => c.timestamp)).toEqual([1, 2, 4, 5].map((s) => BASE_US + s * 40_000));
    player.destroy();
  });

  it("ignores a config that repeats the one in force (no reconfiguration, no wait for a keyframe)", async () => {
    const { player, ws } = await playingVideo();
    ws?.binary(vframe(1, true));
    ws?.text(configMsg());
    ws?.binary(vframe(2, false));
    await settle();
    expect(decoder()?.configs).toHaveLength(1);
    expect(decoder()?.chunks).toHaveLength(2);
    player.destroy();
  });

  it("skips to the next keyframe when the decoder falls behind, and throws its backlog away", async () => {
    const stats: PlayerStats[] = [];
    const { player, ws } = await playingVideo({ webcodecs: { maxDecodeQueue: 8 }, onStats: (s) => stats.push(s), statsIntervalMs: 100 });
    ws?.binary(vframe(1, true));
    const dec = decoder();
    if (!dec) throw new Error("no decoder");
    dec.stalled = true;
    for (let seq = 2; seq <= 20; seq++) ws?.binary(vframe(seq, false));
    expect(dec.decodeQueueSize).toBe(8);
    ws?.binary(vframe(21, true));
    expect(dec.resets).toBe(1);
    ws?.binary(vframe(22, false));
    dec.drain();
    await settle();
    await vi.advanceTimersByTimeAsync(100);
    expect(dec.chunks.at(-2)?.timestamp).toBe(BASE_US + 21 * 40_000);
    expect(dec.chunks.at(-1)?.timestamp).toBe(BASE_US + 22 * 40_000);
    expect(stats.at(-1)?.droppedLate).toBeGreaterThanOrEqual(19 - 7);
    player.destroy();
  });

  it("decodes nothing off-screen, and the held GOP at once when shown again", async () => {
    const { player, ws } = await playingVideo();
    player.setVisible(false);
    for (let seq = 1; seq <= 30; seq++) ws?.binary(vframe(seq, seq === 1 || seq === 26));
    await settle();
    expect(decoder()?.chunks ?? []).toHaveLength(0);
    player.setVisible(true);
    await settle();
    // The GOP since the last keyframe (26..30), only its last picture drawn.
    expect(decoder()?.chunks.map((c) => c.timestamp)).toEqual([26, 27, 28, 29, 30].map((s) => BASE_US + s * 40_000));
    expect(drawImage).toHaveBeenCalledTimes(1);
    player.destroy();
  });

  it("grants a credit per frame decoded on a video socket, and reports the path and the bytes received", async () => {
    const stats: PlayerStats[] = [];
    const { player, ws } = await playingVideo({ onStats: (s) => stats.push(s), statsIntervalMs: 2000 });
    let bytes = 0;
    for (let seq = 1; seq <= 20; seq++) {
      const f = vframe(seq, seq === 1);
      bytes += f.byteLength;
      ws?.binary(f);
      await vi.advanceTimersByTimeAsync(40);
    }
    // The window (15 frames at 25 fps, 2 of them in the URL) once hello says the rate, then
    // one more for each frame the decoder is done with.
    expect(ws?.credits()).toEqual([13, ...new Array<number>(20).fill(1)]);
    await vi.advanceTimersByTimeAsync(2000 - 20 * 40 - 50);
    const last = stats.at(-1);
    expect(last).toMatchObject({ path: "webcodecs", pathLabel: "WebCodecs · H.264", width: 640, height: 360 });
    expect(last?.bitrate).toBeCloseTo((bytes * 8) / 2, 0);
    expect(last?.framesShown).toBeGreaterThan(10);
    player.destroy();
  });

  it("asks for nothing while the decoder is behind, and pays for a GOP sent below zero once it is decoded", async () => {
    const { player, ws } = await playingVideo();
    expect(ws?.credits()).toEqual([13]);
    ws?.binary(vframe(1, true));
    await settle();
    expect(ws?.credits()).toEqual([13, 1]); // decoded: one more
    const dec = decoder();
    if (!dec) throw new Error("no decoder");
    dec.stalled = true;
    // 19 more frames at once on 15 credits (the gateway's balance is now -4: the rest of a
    // GOP), all waiting for the decoder: nothing more is asked for.
    for (let seq = 2; seq <= 20; seq++) ws?.binary(vframe(seq, false));
    await vi.advanceTimersByTimeAsync(1000);
    expect(dec.decodeQueueSize).toBe(19);
    expect(ws?.credits()).toEqual([13, 1]);
    // Decoded: 4 pay for the frames sent below zero, 15 refill the window.
    dec.drain();
    await settle();
    expect(ws?.credits()).toEqual([13, 1, 19]);
    // Hidden: nothing asked for, whatever arrives.
    player.setVisible(false);
    const before = ws?.credits().length;
    for (let seq = 21; seq <= 25; seq++) ws?.binary(vframe(seq, false));
    await vi.advanceTimersByTimeAsync(500);
    expect(ws?.credits().length).toBe(before);
    player.destroy();
  });

  it("takes the next path down the ladder when the decoder keeps failing", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const player = makePlayer({ video: media.video as unknown as HTMLVideoElement });
    player.start();
    hello(lastSocket());
    lastSocket()?.text(configMsg());
    await settle();
    for (let i = 0; i < 3; i++) {
      lastSocket()?.binary(vframe(i * 2 + 1, true));
      decoder()?.fail();
    }
    expect(FakeSocket.instances).toHaveLength(2); // reconnected at once
    hello(lastSocket());
    lastSocket()?.text(configMsg());
    await settle();
    expect(player.getStatus().path).toBe("mse");
    expect(warn).toHaveBeenCalledOnce();
    player.destroy();
  });
});

describe("the ladder", () => {
  it("reconnects as MJPEG when the codec cannot be decoded here, and stays MJPEG", async () => {
    const stats: PlayerStats[] = [];
    const player = makePlayer({ video: media.video as unknown as HTMLVideoElement, onStats: (s) => stats.push(s), statsIntervalMs: 500 });
    player.start();
    const first = lastSocket();
    hello(first, "h265");
    first?.text(configMsg("hvc1.1.6.L93.B0", 1280, 720));
    first?.binary(vframe(1, true));
    await settle();
    expect(first?.closedWith).toBe(1000);
    expect(FakeSocket.instances).toHaveLength(2);
    const second = lastSocket();
    expect(second?.url).toBe("ws://gw:8000/ws/streams/lobby?format=mjpeg&credit=2");
    second?.open();
    second?.text({ type: "hello", stream: "lobby", fps: 10, state: "live", codec: "h265", format: "mjpeg" });
    for (let seq = 1; seq <= 3; seq++) {
      second?.binary(buildTaggedJpeg({ seq, captureUs: Date.now() * 1000, publishUs: Date.now() * 1000 }).buffer);
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(bitmaps.length).toBeGreaterThan(0);
    expect(second?.credits().length).toBeGreaterThan(0); // the MJPEG path keeps its credit
    expect(player.getStatus().path).toBe("mjpeg");
    await vi.advanceTimersByTimeAsync(500);
    expect(stats.at(-1)?.pathLabel).toBe("MJPEG");
    // Later connections go straight to MJPEG: no flapping.
    second?.serverClose(1001);
    await vi.advanceTimersByTimeAsync(1000);
    expect(lastSocket()?.url).toBe("ws://gw:8000/ws/streams/lobby?format=mjpeg&credit=2");
    expect(FakeVideoDecoder.instances).toHaveLength(0);
    expect(FakeMediaSource.instances).toHaveLength(0);
    player.destroy();
  });

  it("never loops: video sent where MJPEG was asked for is retried with backoff", async () => {
    const player = makePlayer({ forcePath: "mjpeg" });
    player.start();
    const ws = lastSocket();
    expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?format=mjpeg&credit=2");
    hello(ws); // a misbehaving gateway: h264 anyway
    ws?.text(configMsg());
    await settle();
    expect(ws?.closedWith).toBe(1000);
    expect(player.getStatus().connection).toBe("reconnecting");
    expect(FakeSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(FakeSocket.instances).toHaveLength(2);
    player.destroy();
  });

  it("plays a JPEG-native stream answered as mjpeg to format=auto exactly as before", async () => {
    const player = makePlayer();
    player.start();
    const ws = lastSocket();
    expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?format=auto&credit=2");
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live", codec: "jpeg", format: "mjpeg" });
    expect(ws?.credits()).toEqual([1]);
    ws?.binary(buildTaggedJpeg({ seq: 1, captureUs: Date.now() * 1000, publishUs: Date.now() * 1000 }).buffer);
    await vi.advanceTimersByTimeAsync(200);
    expect(bitmaps).toHaveLength(1);
    expect(player.getStatus().path).toBe("mjpeg");
    player.destroy();
  });

  it("waits for the first message when auto is not decided yet (a stream that had not sent a frame)", async () => {
    // Video: the config decides.
    const player = makePlayer();
    player.start();
    const ws = lastSocket();
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", fps: 25, state: "connecting", codec: null, format: null });
    expect(player.getStatus().path).not.toBe("mjpeg");
    ws?.text(configMsg());
    await settle();
    expect(player.getStatus().path).toBe("webcodecs");
    ws?.binary(vframe(1, true));
    await settle();
    expect(decoder()?.chunks).toHaveLength(1);
    player.destroy();
    // JPEG: its first frame decides.
    const jpegPlayer = makePlayer();
    jpegPlayer.start();
    const jws = lastSocket();
    jws?.open();
    jws?.text({ type: "hello", stream: "lobby", fps: 10, state: "connecting", codec: null, format: null });
    jws?.binary(buildTaggedJpeg({ seq: 1, captureUs: Date.now() * 1000, publishUs: Date.now() * 1000 }).buffer);
    await vi.advanceTimersByTimeAsync(200);
    expect(jpegPlayer.getStatus().path).toBe("mjpeg");
    expect(bitmaps).toHaveLength(1);
    jpegPlayer.destroy();
  });

  it("asks for no format where neither WebCodecs nor MSE can play H.264", () => {
    vi.stubGlobal("VideoDecoder", undefined);
    vi.stubGlobal("MediaSource", undefined);
    const player = makePlayer();
    player.start();
    expect(lastSocket()?.url).toBe("ws://gw:8000/ws/streams/lobby?credit=2");
    player.destroy();
  });

  it("follows ?player= : mse even in a secure context, mjpeg without asking for video", async () => {
    const player = makePlayer({ video: media.video as unknown as HTMLVideoElement, forcePath: "mse" });
    player.start();
    hello(lastSocket());
    lastSocket()?.text(configMsg());
    await settle();
    expect(player.getStatus().path).toBe("mse");
    expect(FakeVideoDecoder.supportQueries).toEqual([]);
    player.destroy();

    const mjpeg = makePlayer({ streamId: "other", forcePath: "mjpeg" });
    mjpeg.start();
    expect(lastSocket()?.url).toBe("ws://gw:8000/ws/streams/other?format=mjpeg&credit=2");
    mjpeg.destroy();
  });
});

describe("the MSE path", () => {
  function msePlayer(extra: Partial<ConstructorParameters<typeof StreamPlayer>[0]> = {}) {
    vi.stubGlobal("isSecureContext", false); // a plain-HTTP LAN page: no WebCodecs
    return makePlayer({ video: media.video as unknown as HTMLVideoElement, ...extra });
  }
  const boxType = (b: Uint8Array | undefined) => (b ? String.fromCharCode(...b.subarray(4, 8)) : "");

  it("appends the init segment, then one fragment per frame, and seeks to the live edge", async () => {
    const player = msePlayer();
    player.start();
    const ws = lastSocket();
    expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?format=auto&credit=2");
    hello(ws);
    ws?.text(configMsg());
    // The GOP on join: 2 s of frames at once.
    for (let seq = 1; seq <= 50; seq++) ws?.binary(vframe(seq, seq === 1));
    await vi.advanceTimersByTimeAsync(500);
    expect(player.getStatus().path).toBe("mse");
    const source = FakeMediaSource.instances[0];
    const buffer = source?.buffers[0];
    expect(buffer?.types).toEqual(['video/mp4; codecs="avc1.42c01f"']);
    expect(buffer?.mode).toBe("segments");
    expect(buffer?.appended.map(boxType)).toEqual(["ftyp", ...new Array<string>(50).fill("moof")]);
    // The fragments carry the frames in order (mfhd sequence 1..50), the access unit intact.
    const seqs = buffer?.appended.slice(1).map((b) => new DataView(b.buffer).getUint32(20));
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const lastFrag = buffer?.appended.at(-1) ?? new Uint8Array();
    expect(Array.from(lastFrag.subarray(-6))).toEqual([0, 0, 0, 2, 0x41, 50]);
    // The object URL it made is revoked once open; the video is muted, at the live edge, playing.
    expect(media.createObjectURL).toHaveBeenCalledTimes(1);
    expect(media.revokeObjectURL).toHaveBeenCalledWith(media.video.src);
    expect(media.video.muted).toBe(true);
    // 100 ms before the last frame (seq 50, at 49 × 40 ms).
    expect(media.video.currentTime).toBeCloseTo(1.96 - 0.1, 5);
    expect(media.video.paused).toBe(false);
    // Credit: the window (15 frames at 25 fps) once hello says the rate; then, the GOP on
    // join (50 frames, 35 below zero) appended, what pays for it and refills the window.
    expect(ws?.credits()).toEqual([13, 50]);
    // The picture counts as shown when the video has its first frame (not on the stats timer).
    expect(player.getStatus().hasPicture).toBe(false);
    const loaded = media.video.addEventListener.mock.calls.find(([type]) => type === "loadeddata")?.[1] as () => void;
    loaded();
    expect(player.getStatus().hasPicture).toBe(true);
    player.destroy();
    expect(media.video.removeAttribute).toHaveBeenCalledWith("src");
    expect(media.video.load).toHaveBeenCalled();
  });

  it("gives samples durations MSE will not take for a discontinuity (10 fps, jittery capture times)", async () => {
    const player = msePlayer();
    player.start();
    const ws = lastSocket();
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live", codec: "h264", format: "h264" });
    ws?.text(configMsg());
    // 10 fps, then jitter: steps of 100, 100, 20, 180, 100 ms.
    const times = [0, 100, 200, 220, 400, 500].map((ms) => BASE_US + ms * 1000);
    times.forEach((captureUs, i) => {
      const data = Uint8Array.of(0, 0, 0, 2, i === 0 ? 0x65 : 0x41, i);
      ws?.binary(buildVideoFrame({ keyframe: i === 0, seq: i + 1, captureUs, data }));
    });
    await settle();
    const frags = FakeMediaSource.instances[0]?.buffers[0]?.appended.slice(1) ?? [];
    const view = (b: Uint8Array) => new DataView(b.buffer);
    const decode = frags.map((b) => view(b).getUint32(64) / 1000);
    const durations = frags.map((b) => view(b).getUint32(88) / 1000);
    expect(decode).toEqual([0, 100, 200, 220, 400, 500]); // the real capture times
    for (let i = 1; i < decode.length; i++) {
      // MSE's rule: a step beyond twice the previous duration is a discontinuity.
      expect((decode[i] ?? 0) - (decode[i - 1] ?? 0)).toBeLessThanOrEqual(2 * (durations[i - 1] ?? 0));
    }
    expect(Math.min(...durations)).toBe(100);
    player.destroy();
  });

  it("plays faster when behind, and removes old data up to a keyframe", async () => {
    const player = msePlayer();
    player.start();
    const ws = lastSocket();
    hello(ws);
    ws?.text(configMsg());
    let seq = 0;
    // 12 s of live frames, a keyframe every 25 (1 s); the playhead follows 0.8 s behind.
    for (let i = 0; i < 300; i++) {
      seq++;
      ws?.binary(vframe(seq, seq % 25 === 1));
      await vi.advanceTimersByTimeAsync(40);
      media.video.currentTime = Math.max(0, (seq - 1) * 0.04 - 0.8);
    }
    await vi.advanceTimersByTimeAsync(40);
    expect(media.video.playbackRate).toBe(1.1);
    const buffer = FakeMediaSource.instances[0]?.buffers[0];
    expect(buffer?.removed.length).toBeGreaterThan(0);
    const [start, end] = buffer?.removed.at(-1) ?? [NaN, NaN];
    expect(start).toBe(0);
    // Up to a keyframe (a whole number of seconds here), at least 4 s behind the playhead.
    expect(end).toBeCloseTo(Math.round(end), 6);
    expect(end).toBeLessThanOrEqual(media.video.currentTime - 4);
    expect(media.video.buffered.start(0)).toBeGreaterThan(5);
    player.destroy();
  });

  it("changes type and appends a new init segment on a new config", async () => {
    const player = msePlayer();
    player.start();
    const ws = lastSocket();
    hello(ws);
    ws?.text(configMsg());
    ws?.binary(vframe(1, true));
    await settle();
    ws?.text(configMsg("avc1.64001f", 1280, 720));
    ws?.binary(vframe(2, false)); // not decodable with the new config
    ws?.binary(vframe(3, true));
    await settle();
    const buffer = FakeMediaSource.instances[0]?.buffers[0];
    expect(FakeMediaSource.instances).toHaveLength(1);
    expect(buffer?.types).toEqual(['video/mp4; codecs="avc1.42c01f"', 'video/mp4; codecs="avc1.64001f"']);
    expect(buffer?.appended.map(boxType)).toEqual(["ftyp", "moof", "ftyp", "moof"]);
    player.destroy();
  });
});

describe("hidden video", () => {
  it("closes a video socket a second after it is hidden (a new socket gets the current GOP at once), and reopens when shown", async () => {
    const { player, ws } = await playingVideo();
    player.setVisible(false);
    await vi.advanceTimersByTimeAsync(999);
    expect(ws?.closedWith).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(ws?.closedWith).toBe(1000);
    expect(player.getStatus().connection).toBe("paused");
    const count = FakeSocket.instances.length;
    player.setVisible(true);
    expect(FakeSocket.instances).toHaveLength(count + 1);
    expect(lastSocket()?.url).toContain("format=auto");
    player.destroy();
  });
});
