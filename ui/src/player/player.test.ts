// The player's wiring (socket → buffer → decode → canvas, reconnect decisions) with fake
// browser APIs: no browser needed. Rendering itself is covered by the e2e run.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildTaggedJpeg } from "./app11";
import { StreamPlayer, type PlayerStatus } from "./player";
import { FakeSocket } from "./testFakes";

const bitmaps: { close: ReturnType<typeof vi.fn> }[] = [];
const drawImage = vi.fn();

function makePlayer(statuses: PlayerStatus[], extra: Partial<ConstructorParameters<typeof StreamPlayer>[0]> = {}) {
  const canvas = { width: 300, height: 150, getContext: () => ({ drawImage }) } as unknown as HTMLCanvasElement;
  return new StreamPlayer({
    streamId: "lobby",
    canvas,
    maxFps: 5,
    onStatus: (s) => statuses.push(s),
    jitter: { targetDelayMs: 50 },
    backoff: { random: () => 1 },
    ...extra,
  });
}

function frame(seq: number): ArrayBuffer {
  return buildTaggedJpeg({ seq, captureUs: Date.now() * 1000, publishUs: Date.now() * 1000 }).buffer;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.instances = [];
  bitmaps.length = 0;
  drawImage.mockClear();
  vi.stubGlobal("WebSocket", FakeSocket);
  vi.stubGlobal("window", { location: { protocol: "http:", host: "gw:8000" } });
  vi.stubGlobal("document", { hidden: false, addEventListener: vi.fn(), removeEventListener: vi.fn() });
  vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => setTimeout(() => cb(performance.now()), 16));
  vi.stubGlobal("cancelAnimationFrame", (id: number) => clearTimeout(id));
  vi.stubGlobal("createImageBitmap", () => {
    const bmp = { width: 640, height: 360, close: vi.fn() };
    bitmaps.push(bmp);
    return Promise.resolve(bmp);
  });
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("StreamPlayer", () => {
  it("connects with max_fps, follows hello/state, draws frames and closes every bitmap", async () => {
    const statuses: PlayerStatus[] = [];
    const player = makePlayer(statuses);
    player.start();
    const ws = FakeSocket.instances[0];
    expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?max_fps=5&credit=2");
    expect(ws?.binaryType).toBe("arraybuffer");
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", name: "Lobby", fps: 10, width: 640, height: 360, state: "connecting" });
    expect(player.getStatus()).toMatchObject({ connection: "open", streamState: "connecting" });
    ws?.text({ type: "state", state: "live", message: "" });
    expect(player.getStatus().streamState).toBe("live");

    for (let i = 1; i <= 5; i++) {
      ws?.binary(frame(i));
      await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(200);
    expect(drawImage).toHaveBeenCalled();
    expect(player.getStatus().hasPicture).toBe(true);
    expect(bitmaps.length).toBeGreaterThan(0);
    for (const b of bitmaps) expect(b.close).toHaveBeenCalledTimes(1);
    player.destroy();
    expect(ws?.closedWith).toBe(1000);
    expect(player.getStatus().connection).toBe("closed");
  });

  it("reconnects with backoff after 1001 and an abnormal close", async () => {
    const player = makePlayer([]);
    player.start();
    FakeSocket.instances[0]?.open();
    FakeSocket.instances[0]?.serverClose(1001, "gateway shutting down");
    expect(player.getStatus()).toMatchObject({ connection: "reconnecting", message: "gateway shutting down" });
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.instances).toHaveLength(2); // 500 ms
    FakeSocket.instances[1]?.serverClose(1006);
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeSocket.instances).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.instances).toHaveLength(3); // 1000 ms: the delay grew
    player.destroy();
  });

  it("stops for good on 4004 and tells the page", async () => {
    const onRemoved = vi.fn();
    const player = makePlayer([], { onRemoved });
    player.start();
    FakeSocket.instances[0]?.open();
    FakeSocket.instances[0]?.serverClose(4004, "stream removed");
    expect(player.getStatus().connection).toBe("removed");
    expect(onRemoved).toHaveBeenCalledOnce();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    player.destroy();
  });

  it("waits for a sign-in on 4001, then reconnects at once", async () => {
    const onUnauthorized = vi.fn();
    const player = makePlayer([], { onUnauthorized });
    player.start();
    FakeSocket.instances[0]?.serverClose(4001, "");
    expect(player.getStatus().connection).toBe("unauthorized");
    expect(onUnauthorized).toHaveBeenCalledOnce();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    player.reconnectNow();
    expect(FakeSocket.instances).toHaveLength(2);
    player.destroy();
  });

  it("retries a socket that never says hello", async () => {
    const player = makePlayer([], { connectTimeoutMs: 2000 });
    player.start();
    FakeSocket.instances[0]?.open();
    await vi.advanceTimersByTimeAsync(2000);
    expect(FakeSocket.instances[0]?.closedWith).toBe(1000);
    expect(player.getStatus().connection).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(500);
    expect(FakeSocket.instances).toHaveLength(2);
    player.destroy();
  });

  it("does not decode while off-screen, and resumes at the live edge", async () => {
    const player = makePlayer([]);
    player.start();
    const ws = FakeSocket.instances[0];
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", state: "live" });
    player.setVisible(false);
    for (let i = 1; i <= 20; i++) {
      ws?.binary(frame(i));
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(bitmaps).toHaveLength(0);
    player.setVisible(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(bitmaps).toHaveLength(1); // only the newest frame, not a backlog
    player.destroy();
  });

  describe("credit", () => {
    /** Draws whatever is due (fake rAF every 16 ms, jitter target 50 ms). */
    const settle = () => vi.advanceTimersByTimeAsync(100);

    it("asks for a small window in the URL, sizes it from hello, and asks for one more per frame done with", async () => {
      const player = makePlayer([], { maxFps: null });
      player.start();
      const ws = FakeSocket.instances[0];
      expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?credit=2");
      ws?.open();
      expect(ws?.credits()).toEqual([]);
      ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live" });
      expect(ws?.credits()).toEqual([1]); // 10 fps through a 200 ms pipe: 3 in flight
      for (let i = 1; i <= 6; i++) {
        ws?.binary(frame(i));
        await settle();
      }
      expect(bitmaps).toHaveLength(6);
      const granted = ws?.credits().reduce((a, b) => a + b, 0);
      expect(granted).toBe(1 + 6); // the window stays full: one grant per frame shown
      expect(Math.max(...(ws?.credits() ?? []))).toBeLessThanOrEqual(3);
      player.destroy();
    });

    it("frames the jitter buffer skips are done with too", async () => {
      const player = makePlayer([], { maxFps: null });
      player.start();
      const ws = FakeSocket.instances[0];
      ws?.open();
      ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live" });
      // Three frames at once: the buffer shows the newest and skips the others.
      for (let i = 1; i <= 3; i++) ws?.binary(frame(i));
      await settle();
      await settle();
      expect(bitmaps.length).toBeLessThan(3);
      expect(ws?.credits().reduce((a, b) => a + b, 0)).toBe(1 + 3);
      player.destroy();
    });

    it("an off-screen tile asks for nothing, and for the latest frame when it scrolls back", async () => {
      const player = makePlayer([], { maxFps: null });
      player.setVisible(false);
      player.start();
      const ws = FakeSocket.instances[0];
      expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?credit=0"); // on credit, nothing to send
      ws?.open();
      ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live" });
      await settle();
      expect(ws?.credits()).toEqual([]);
      player.setVisible(true);
      expect(ws?.credits()).toEqual([3]);
      ws?.binary(frame(7));
      await settle();
      expect(bitmaps).toHaveLength(1);
      // Off-screen again: what is owed may still come, nothing more is asked for.
      player.setVisible(false);
      const before = ws?.credits().length;
      for (let i = 8; i <= 10; i++) {
        ws?.binary(frame(i));
        await settle();
      }
      expect(ws?.credits().length).toBe(before);
      player.destroy();
    });

    it("a hidden tab asks for nothing until it is shown", () => {
      const doc = { hidden: true, addEventListener: vi.fn(), removeEventListener: vi.fn() };
      vi.stubGlobal("document", doc);
      const player = makePlayer([], { maxFps: null });
      player.start();
      const ws = FakeSocket.instances[0];
      expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?credit=0");
      ws?.open();
      expect(ws?.credits()).toEqual([]);
      const onChange = doc.addEventListener.mock.calls.find(([type]) => type === "visibilitychange")?.[1] as () => void;
      doc.hidden = false;
      onChange();
      expect(ws?.credits()).toEqual([2]);
      player.destroy();
    });

    it("a tile shown while its socket connects asks on open for what its URL did not", () => {
      const player = makePlayer([], { maxFps: null });
      player.setVisible(false);
      player.start();
      const ws = FakeSocket.instances[0];
      expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?credit=0");
      player.setVisible(true); // still connecting: nothing can be sent, nothing is owed
      expect(ws?.credits()).toEqual([]);
      ws?.open();
      expect(ws?.credits()).toEqual([2]);
      player.destroy();
    });

    it("starts over on a new connection", async () => {
      const player = makePlayer([], { maxFps: null });
      player.start();
      FakeSocket.instances[0]?.open();
      FakeSocket.instances[0]?.text({ type: "hello", stream: "lobby", fps: 10, state: "live" });
      FakeSocket.instances[0]?.serverClose(1001, "gateway shutting down");
      await vi.advanceTimersByTimeAsync(500);
      const ws = FakeSocket.instances[1];
      expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?credit=2");
      player.destroy();
    });
  });
});

describe("freshness and health", () => {
  it("reports what it draws about every 5 s, ages on the gateway's clock; health lands in the status", async () => {
    const player = makePlayer([], { freshness: { random: () => 0.999 } });
    player.start();
    const ws = FakeSocket.instances[0];
    ws?.open();
    // The gateway's clock runs 3 s ahead of the page's.
    const aheadMs = 3000;
    ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live", server_time_us: (Date.now() + aheadMs) * 1000 });
    ws?.text({ type: "health", health: "frozen", since: "2026-11-30T14:26:36.000Z" });
    expect(player.getStatus()).toMatchObject({ health: "frozen", healthSince: "2026-11-30T14:26:36.000Z" });
    const shown = () => (ws?.sent ?? []).map((t) => JSON.parse(t) as { type: string }).filter((m) => m.type === "shown");
    let seq = 0;
    const play = async (ms: number) => {
      for (let t = 0; t < ms; t += 100) {
        // Captured (gateway clock) just now.
        ws?.binary(buildTaggedJpeg({ seq: ++seq, captureUs: (Date.now() + aheadMs) * 1000, publishUs: 0 }).buffer);
        await vi.advanceTimersByTimeAsync(100);
      }
    };
    await play(4000);
    expect(shown()).toHaveLength(0);
    await play(2000);
    const [report] = shown() as unknown as { frames: number; age_ms: number[] }[];
    expect(shown()).toHaveLength(1);
    expect(report?.frames).toBeGreaterThan(10);
    expect(report?.age_ms.length).toBeGreaterThan(0);
    expect(report?.age_ms.length).toBeLessThanOrEqual(Math.min(32, report?.frames ?? 0));
    // Drawn within the jitter buffer's delay and a frame or two of the capture: not 3 s.
    for (const age of report?.age_ms ?? []) {
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThan(500);
    }

    // Off-screen it draws nothing, so once what it drew before is reported it reports
    // nothing more.
    player.setVisible(false);
    await vi.advanceTimersByTimeAsync(6000);
    const before = shown().length;
    expect(before).toBeLessThanOrEqual(2);
    await play(20_000);
    expect(shown()).toHaveLength(before);
    player.destroy();
  });
});

describe("visibility closes the socket", () => {
  it("a JPEG player not shown for 10 s closes its socket, and reopens at once when shown", async () => {
    const statuses: PlayerStatus[] = [];
    const player = makePlayer(statuses, { maxFps: null });
    player.start();
    const ws = FakeSocket.instances[0];
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live" });
    player.setVisible(false);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(ws?.closedWith).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(ws?.closedWith).toBe(1000);
    expect(player.getStatus().connection).toBe("paused");
    // Paused: no reconnect attempts, however long.
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeSocket.instances).toHaveLength(1);
    player.setVisible(true);
    expect(FakeSocket.instances).toHaveLength(2);
    const again = FakeSocket.instances[1];
    expect(again?.url).toBe("ws://gw:8000/ws/streams/lobby?credit=2"); // asks for the latest picture at once
    player.destroy();
  });

  it("shown again within 10 s, the socket stays open", async () => {
    const player = makePlayer([], { maxFps: null });
    player.start();
    const ws = FakeSocket.instances[0];
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live" });
    player.setVisible(false);
    await vi.advanceTimersByTimeAsync(9_000);
    player.setVisible(true);
    player.setVisible(false);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(ws?.closedWith).toBeNull();
    expect(FakeSocket.instances).toHaveLength(1);
    player.destroy();
  });

  it("a hidden tab closes the socket too, and a tab shown again reconnects", async () => {
    const doc = { hidden: false, addEventListener: vi.fn(), removeEventListener: vi.fn() };
    vi.stubGlobal("document", doc);
    const player = makePlayer([], { maxFps: null });
    player.start();
    FakeSocket.instances[0]?.open();
    const onChange = doc.addEventListener.mock.calls.find(([type]) => type === "visibilitychange")?.[1] as () => void;
    doc.hidden = true;
    onChange();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(FakeSocket.instances[0]?.closedWith).toBe(1000);
    doc.hidden = false;
    onChange();
    expect(FakeSocket.instances).toHaveLength(2);
    player.destroy();
  });

  it("a player retrying while hidden stops retrying once paused", async () => {
    const player = makePlayer([], { maxFps: null });
    player.start();
    player.setVisible(false);
    for (let i = 0; i < 5; i++) {
      FakeSocket.instances.at(-1)?.serverClose(1006);
      await vi.advanceTimersByTimeAsync(2_000);
    }
    const count = FakeSocket.instances.length;
    expect(player.getStatus().connection).toBe("paused");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeSocket.instances).toHaveLength(count);
    player.destroy();
  });

  it("plays the sub variant as JPEG, and draws the poster until its first frame", async () => {
    const poster = { width: 160, height: 90 } as unknown as HTMLCanvasElement;
    const player = makePlayer([], { maxFps: null, variant: "sub", poster });
    player.start();
    expect(drawImage).toHaveBeenCalledWith(poster, 0, 0);
    expect(player.getStatus()).toMatchObject({ hasPicture: true, poster: true });
    const ws = FakeSocket.instances[0];
    expect(ws?.url).toBe("ws://gw:8000/ws/streams/lobby?variant=sub&credit=2");
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", fps: 10, state: "live", variant: "sub" });
    ws?.binary(frame(1));
    await vi.advanceTimersByTimeAsync(300);
    expect(player.getStatus()).toMatchObject({ hasPicture: true, poster: false });
    player.destroy();
  });

  it("keeps the outage cause the gateway reports", () => {
    const player = makePlayer([]);
    player.start();
    const ws = FakeSocket.instances[0];
    ws?.open();
    ws?.text({ type: "hello", stream: "lobby", state: "retrying", cause: "auth_failed" });
    expect(player.getStatus().cause).toBe("auth_failed");
    ws?.text({ type: "state", state: "live", message: "" });
    expect(player.getStatus().cause).toBeNull();
    player.destroy();
  });
});
