import { afterEach, describe, expect, it } from "vitest";
import {
  canPlayVideo,
  choosePath,
  codecName,
  decoderConfig,
  forcedPath,
  forgetPaths,
  isMjpegOnly,
  pathLabel,
  rememberedPath,
  rememberPath,
  type MediaEnv,
} from "./ladder";
import type { ConfigMessage } from "./protocol";

const h264: ConfigMessage = { type: "config", codec: "avc1.64001f", width: 1280, height: 720, description: Uint8Array.of(1, 0x64) };
const h265: ConfigMessage = { ...h264, codec: "hvc1.1.6.L93.B0" };

/** A browser that decodes `decodes` with WebCodecs and `mse` with MSE. */
function env(secure: boolean, decodes: string[] | null, mse: string[] | null): MediaEnv & { asked: VideoDecoderConfig[] } {
  const asked: VideoDecoderConfig[] = [];
  return {
    asked,
    secure,
    VideoDecoder: decodes && {
      isConfigSupported: (c) => {
        asked.push(c);
        return Promise.resolve({ supported: decodes.includes(c.codec) });
      },
    },
    MediaSource: mse && { isTypeSupported: (t) => mse.some((c) => t === `video/mp4; codecs="${c}"`) },
  };
}

afterEach(() => forgetPaths());

describe("choosePath", () => {
  it("prefers WebCodecs in a secure context when the decoder takes the config", async () => {
    const e = env(true, ["avc1.64001f"], ["avc1.64001f"]);
    expect(await choosePath(h264, e)).toBe("webcodecs");
    expect(e.asked).toEqual([decoderConfig(h264)]);
    expect(decoderConfig(h264)).toEqual({
      codec: "avc1.64001f",
      description: h264.description,
      codedWidth: 1280,
      codedHeight: 720,
      optimizeForLatency: true,
    });
  });

  it("takes MSE on a plain-HTTP page (no secure context), without asking WebCodecs", async () => {
    const e = env(false, ["avc1.64001f"], ["avc1.64001f"]);
    expect(await choosePath(h264, e)).toBe("mse");
    expect(e.asked).toEqual([]);
  });

  it("takes MSE when WebCodecs refuses the config or fails to answer", async () => {
    expect(await choosePath(h264, env(true, [], ["avc1.64001f"]))).toBe("mse");
    const throwing: MediaEnv = { ...env(true, [], ["avc1.64001f"]), VideoDecoder: { isConfigSupported: () => Promise.reject(new TypeError("bad")) } };
    expect(await choosePath(h264, throwing)).toBe("mse");
  });

  it("falls back to MJPEG when nothing decodes the codec (H.265 without a platform decoder)", async () => {
    expect(await choosePath(h265, env(true, ["avc1.64001f"], ["avc1.64001f"]))).toBe("mjpeg");
    expect(await choosePath(h264, env(false, null, null))).toBe("mjpeg");
  });

  it("follows a forced path, and forces MJPEG when the forced path is impossible", async () => {
    const both = env(true, ["avc1.64001f"], ["avc1.64001f"]);
    expect(await choosePath(h264, both, "mse")).toBe("mse");
    expect(await choosePath(h264, both, "mjpeg")).toBe("mjpeg");
    expect(await choosePath(h264, env(false, ["avc1.64001f"], ["avc1.64001f"]), "webcodecs")).toBe("mjpeg");
    expect(await choosePath(h264, env(true, ["avc1.64001f"], null), "mse")).toBe("mjpeg");
  });
});

describe("canPlayVideo", () => {
  it("asks for video only when H.264 plays one way or the other", () => {
    expect(canPlayVideo(env(true, [], null))).toBe(true); // a VideoDecoder: ask, check the config later
    expect(canPlayVideo(env(false, ["avc1.42e01e"], null))).toBe(false); // no WebCodecs outside secure contexts
    expect(canPlayVideo(env(false, null, ["avc1.42e01e"]))).toBe(true);
    expect(canPlayVideo(env(false, null, []))).toBe(false);
    expect(canPlayVideo(env(true, [], ["avc1.42e01e"]), "mjpeg")).toBe(false);
    expect(canPlayVideo(env(false, null, ["avc1.42e01e"]), "webcodecs")).toBe(false);
    expect(canPlayVideo(env(true, [], null), "mse")).toBe(false);
  });
});

describe("forcedPath, remembered decisions and labels", () => {
  it("reads ?player=", () => {
    expect(forcedPath("?player=webcodecs")).toBe("webcodecs");
    expect(forcedPath("?a=1&player=mse")).toBe("mse");
    expect(forcedPath("?player=mjpeg")).toBe("mjpeg");
    expect(forcedPath("?player=flash")).toBeNull();
    expect(forcedPath("")).toBeNull();
  });

  it("remembers per stream and codec; MJPEG makes the stream MJPEG-only", () => {
    expect(rememberedPath("a", "avc1.64001f")).toBeNull();
    rememberPath("a", "avc1.64001f", "webcodecs");
    expect(rememberedPath("a", "avc1.64001f")).toBe("webcodecs");
    expect(rememberedPath("a", "hvc1.1.6.L93.B0")).toBeNull();
    expect(isMjpegOnly("a")).toBe(false);
    rememberPath("b", "hvc1.1.6.L93.B0", "mjpeg");
    expect(isMjpegOnly("b")).toBe(true);
    forgetPaths();
    expect(isMjpegOnly("b")).toBe(false);
  });

  it("labels the path and codec", () => {
    expect(pathLabel("webcodecs", "avc1.64001f")).toBe("WebCodecs · H.264");
    expect(pathLabel("mse", "hev1.1.6.L93.B0")).toBe("MSE · H.265");
    expect(pathLabel("mjpeg", "avc1.64001f")).toBe("MJPEG");
    expect(pathLabel(null, null)).toBe("–");
    expect(codecName("avc3.42e01e")).toBe("H.264");
    expect(codecName("vp09.00.10.08")).toBe("vp09.00.10.08");
  });
});
