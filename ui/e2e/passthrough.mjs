// Passthrough playback (issue 14 item 6) in a real Chromium: the player's WebCodecs and MSE
// paths and the ladder down to MJPEG.
//
// Two parts:
//
// 1. `playerStandInChecks` needs no gateway: the real player modules (ui/src/player/*.ts,
//    transpiled on the fly) in a bare page, against a small WebSocket server in this file
//    that speaks the viewing protocol of the README/COMMON14 (hello with codec/format,
//    config, 18-byte video frame header) with REAL H.264 made by ffmpeg (libx264,
//    constrained baseline, GOP 1 s, SPS/PPS in-band before each IDR, like the demo camera).
//    It proves what the unit tests cannot: Chromium's VideoDecoder takes the player's
//    configuration and its MSE takes the fMP4 the player builds (fmp4.ts), pictures change,
//    every VideoFrame is closed, the SourceBuffer stays bounded, and an H.265 stream this
//    Chromium cannot decode falls back to MJPEG.
//    Run alone: `node e2e/passthrough.mjs` (needs /usr/bin/chromium and ffmpeg).
//
// 2. `gatewayChecks`: the real gateway with the demo RTSP camera through the passthrough
//    `rtsp` plugin, the real UI forced to each path with `?player=`.
//
//    Also: an MJPEG viewer of a passthrough stream starts exactly one transcoder, which
//    stops after the idle timeout; a joining viewer's first decoded picture (20 joins);
//    the camera sees one RTSP session per stream throughout (its --stats-file).
//
// `passthroughChecks(...)` runs both (called from run.mjs).

import { spawn, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const REPO_DIR = path.resolve(UI_DIR, "..");
const PLAYER_DIR = path.join(UI_DIR, "src", "player");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...args) => console.log("[e2e]      ", ...args);

// ---------------------------------------------------------------------------------------------
// Real H.264 (and a JPEG) from ffmpeg, split into access units as the gateway sends them

/** Splits an Annex B byte stream into NAL units (without start codes). */
function annexBNalUnits(buf) {
  const starts = [];
  for (let i = 0; i + 3 <= buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && (buf[i + 2] === 1 || (buf[i + 2] === 0 && buf[i + 3] === 1))) {
      const len = buf[i + 2] === 1 ? 3 : 4;
      starts.push([i, i + len]);
      i += len - 1;
    }
  }
  return starts.map(([, from], k) => buf.subarray(from, k + 1 < starts.length ? starts[k + 1][0] : buf.length));
}

/**
 * `seconds` of 320x180 25 fps H.264 as { codec, description (avcC), frames: [{ keyframe, data
 * (AVCC access unit) }] }: what a passthrough gateway has for a demo camera.
 */
function makeH264(tmp, seconds = 4) {
  const file = path.join(tmp, "clip.h264");
  execFileSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", `testsrc2=size=320x180:rate=25:duration=${seconds}`,
    "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
    "-tune", "zerolatency", "-x264-params", "aud=1:repeat-headers=1", "-pix_fmt", "yuv420p",
    "-f", "h264", file,
  ]);
  const nals = annexBNalUnits(fs.readFileSync(file));
  let sps = null;
  let pps = null;
  const units = [];
  let current = null;
  for (const nal of nals) {
    const type = nal[0] & 0x1f;
    if (type === 9) {
      current = [];
      units.push(current);
      continue; // access unit delimiter: not carried
    }
    if (type === 7) sps ??= nal;
    if (type === 8) pps ??= nal;
    current?.push(nal);
  }
  const frames = units
    .filter((u) => u.some((n) => [1, 5].includes(n[0] & 0x1f)))
    .map((u) => {
      const data = Buffer.concat(u.flatMap((n) => [Buffer.from([n.length >>> 24, (n.length >>> 16) & 0xff, (n.length >>> 8) & 0xff, n.length & 0xff]), n]));
      return { keyframe: u.some((n) => (n[0] & 0x1f) === 5), data };
    });
  const description = Buffer.concat([
    Buffer.from([1, sps[1], sps[2], sps[3], 0xff, 0xe1, sps.length >> 8, sps.length & 0xff]),
    sps,
    Buffer.from([1, pps.length >> 8, pps.length & 0xff]),
    pps,
  ]);
  const codec = `avc1.${[sps[1], sps[2], sps[3]].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  return { codec, width: 320, height: 180, description, frames };
}

function makeJpeg(tmp) {
  const file = path.join(tmp, "frame.jpg");
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1", file]);
  return fs.readFileSync(file);
}

// ---------------------------------------------------------------------------------------------
// A stand-in gateway: the viewing protocol over a minimal WebSocket server

function wsFrame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]) : Buffer.alloc(10);
  if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

function videoMessage(frame, seq, captureMs = Date.now()) {
  const head = Buffer.alloc(18);
  head[0] = 0x01;
  head[1] = frame.keyframe ? 1 : 0;
  head.writeBigUInt64BE(BigInt(seq), 2);
  head.writeBigUInt64BE(BigInt(Math.round(captureMs * 1000)), 10);
  return Buffer.concat([head, frame.data]);
}

/** The streams the stand-in has, as `GET /api/streams` shows them. */
const STAND_IN_STREAMS = ["h264", "h265"].map((id) => ({
  id,
  name: `Stand-in ${id.toUpperCase()}`,
  on_demand: false,
  source: { plugin: "stand-in" },
  editable: false,
  state: "live",
  width: 320,
  height: 180,
}));

const CONTENT_TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon" };

/**
 * Serves the player modules and a bare page (`/player`), the built UI (`ui/dist`, at `/`)
 * with just enough API for it (an open session, two live streams), and
 * `/ws/streams/{h264,h265}` (H.265: a config with an hvc1 codec string; asked for
 * `format=mjpeg` it sends JPEGs, like the gateway's transcoder). Records each socket's URL.
 */
async function startStandIn(clip, jpeg) {
  const ts = await import("typescript");
  const sockets = new Set();
  const urls = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const m = /^\/m\/([a-z0-9]+)\.js$/i.exec(url.pathname);
    if (m) {
      const file = path.join(PLAYER_DIR, `${m[1]}.ts`);
      if (!fs.existsSync(file)) return res.writeHead(404).end();
      const js = ts.transpileModule(fs.readFileSync(file, "utf8"), {
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
      }).outputText.replace(/from "\.\/([a-z0-9]+)"/gi, 'from "./$1.js"');
      return res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    }
    const json = (body) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (url.pathname === "/api/session") return json({ auth_required: false, authenticated: true, role: "admin" });
    if (url.pathname === "/api/streams") return json({ streams: STAND_IN_STREAMS });
    if (url.pathname === "/api/plugins") return json({ plugins: [] });
    const one = /^\/api\/streams\/([^/]+)$/.exec(url.pathname);
    if (one) return json(STAND_IN_STREAMS.find((s) => s.id === one[1]) ?? {});
    if (url.pathname !== "/player") {
      const dist = path.join(UI_DIR, "dist");
      const file = path.join(dist, url.pathname === "/" ? "index.html" : path.normalize(url.pathname));
      if (!file.startsWith(dist) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return res.writeHead(404).end();
      return res.writeHead(200, { "content-type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream" }).end(fs.readFileSync(file));
    }
    res.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html><title>player</title>
<body style="margin:0"><canvas id="c"></canvas><video id="v" muted playsinline></video>
<script type="module">
import { StreamPlayer } from "/m/player.js";
window.StreamPlayer = StreamPlayer;
window.playerReady = true;
</script>`);
  });
  server.on("upgrade", (req, socket) => {
    const url = new URL(req.url, "http://x");
    urls.push(req.url);
    const accept = crypto.createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    sockets.add(socket);
    const stream = url.pathname.split("/").pop();
    const format = url.searchParams.get("format") ?? "mjpeg";
    const native = stream === "h265" ? "h265" : "h264";
    const carries = format === "auto" || format === native ? native : "mjpeg";
    const send = (opcode, payload) => socket.writable && socket.write(wsFrame(opcode, payload));
    const text = (obj) => send(1, Buffer.from(JSON.stringify(obj)));
    text({ type: "hello", stream, name: stream, fps: 25, width: 320, height: 180, state: "live", message: "", codec: native, format: carries });
    let seq = 1000;
    let at = 0;
    let timer = null;
    if (carries === "mjpeg") {
      timer = setInterval(() => send(2, jpeg), 100);
    } else {
      const codec = native === "h265" ? "hvc1.1.6.L93.B0" : clip.codec;
      text({ type: "config", codec, width: 320, height: 180, description: clip.description.toString("base64") });
      // Join: the GOP since the last keyframe at once, with the times they were captured at
      // (the camera is half a GOP past its last keyframe).
      at = 25 + 12;
      const now = Date.now();
      for (let i = 25; i <= at; i++) send(2, videoMessage(clip.frames[i], ++seq, now - (at - i) * 40));
      timer = setInterval(() => {
        at = (at + 1) % clip.frames.length;
        send(2, videoMessage(clip.frames[at], ++seq));
      }, 40);
    }
    const stop = () => {
      clearInterval(timer);
      sockets.delete(socket);
    };
    socket.on("data", (d) => {
      if ((d[0] & 0x0f) === 8) {
        send(8, Buffer.alloc(0));
        socket.end();
      }
    });
    socket.on("close", stop);
    socket.on("error", stop);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    urls,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// In the page

/**
 * Runs a StreamPlayer on `stream` with `forcePath` for `ms`, counting VideoFrames made and
 * closed (VideoFrame.prototype.close and the decoder's output wrapped), sampling the
 * picture twice. Returns what it saw.
 */
function runPlayer({ stream, forcePath, ms }) {
  const canvas = document.getElementById("c");
  const video = document.getElementById("v");
  const counts = { made: 0, closed: 0 };
  if (!window.__wrapped && window.VideoDecoder) {
    window.__wrapped = true;
    window.__counts = counts;
    const close = VideoFrame.prototype.close;
    VideoFrame.prototype.close = function () {
      window.__counts.closed++;
      return close.call(this);
    };
    const Real = window.VideoDecoder;
    window.VideoDecoder = class extends Real {
      constructor(init) {
        super({ ...init, output: (f) => (window.__counts.made++, init.output(f)) });
      }
    };
    for (const k of ["isConfigSupported"]) window.VideoDecoder[k] = Real[k].bind(Real);
  }
  window.__counts && Object.assign(window.__counts, { made: 0, closed: 0 });
  const sample = () => {
    const c = document.createElement("canvas");
    c.width = 64;
    c.height = 36;
    const ctx = c.getContext("2d");
    const source = player.getStatus().path === "mse" ? video : canvas;
    ctx.drawImage(source, 0, 0, 64, 36);
    return Array.from(ctx.getImageData(0, 0, 64, 36).data).join(",");
  };
  let stats = null;
  let firstPictureMs = null;
  const started = performance.now();
  const player = new window.StreamPlayer({
    streamId: stream,
    canvas,
    video,
    forcePath,
    statsIntervalMs: 250,
    onStats: (s) => (stats = s),
    onStatus: (s) => {
      if (s.hasPicture && firstPictureMs === null) firstPictureMs = performance.now() - started;
    },
  });
  player.start();
  return new Promise((resolve) => {
    setTimeout(() => {
      const a = sample();
      setTimeout(() => {
        const b = sample();
        const buffered = [];
        for (let i = 0; i < video.buffered.length; i++) buffered.push([video.buffered.start(i), video.buffered.end(i)]);
        const status = player.getStatus();
        const result = {
          path: status.path,
          stats,
          firstPictureMs,
          pictureChanged: a !== b,
          canvas: [canvas.width, canvas.height],
          video: { width: video.videoWidth, currentTime: video.currentTime, buffered, frames: video.getVideoPlaybackQuality().totalVideoFrames },
        };
        player.destroy();
        // Decoder outputs in flight when it was closed are discarded; give them a moment.
        setTimeout(() => resolve({ ...result, frames: window.__counts ? { ...window.__counts } : null }), 300);
      }, 700);
    }, ms - 700);
  });
}

export async function playerStandInChecks({ context, check, assert }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camgate-passthrough-"));
  const clip = makeH264(tmp);
  const jpeg = makeJpeg(tmp);
  const standIn = await startStandIn(clip, jpeg);
  const page = await context.newPage();
  page.on("console", (m) => process.env.E2E_DEBUG && log(`page: ${m.text()}`));
  page.on("pageerror", (e) => log(`page error: ${e.message}`));
  try {
    await page.goto(`${standIn.origin}/player`);
    await page.waitForFunction(() => window.playerReady === true, null, { timeout: 10_000 });
    const caps = await page.evaluate(async (codec) => ({
      secure: isSecureContext,
      mse: MediaSource.isTypeSupported(`video/mp4; codecs="${codec}"`),
      webcodecs: typeof VideoDecoder === "function" && (await VideoDecoder.isConfigSupported({ codec })).supported === true,
      h265: MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"'),
    }), clip.codec);
    log(`Chromium on ${standIn.origin}: ${JSON.stringify(caps)} (clip ${clip.codec}, ${clip.frames.length} frames)`);

    await check("passthrough (stand-in): WebCodecs decodes real H.264 and draws changing pictures, every VideoFrame closed", async () => {
      assert(caps.secure && caps.webcodecs, `this Chromium cannot decode ${clip.codec} with WebCodecs: ${JSON.stringify(caps)}`);
      const r = await page.evaluate(runPlayer, { stream: "h264", forcePath: "webcodecs", ms: 3000 });
      log(`WebCodecs: first picture after ${Math.round(r.firstPictureMs)} ms, ${r.stats?.fps} fps drawn, ${r.frames?.made} frames decoded, ${r.frames?.closed} closed, ${Math.round((r.stats?.bitrate ?? 0) / 1000)} kb/s`);
      assert(r.path === "webcodecs", `path ${r.path}`);
      assert(r.stats?.pathLabel === "WebCodecs · H.264", `label ${r.stats?.pathLabel}`);
      assert(r.canvas[0] === 320 && r.canvas[1] === 180, `canvas ${r.canvas}`);
      assert(r.pictureChanged, "the picture did not change in 0.7 s");
      assert(r.stats.fps >= 15, `${r.stats.fps} fps drawn of 25`);
      assert(r.stats.bitrate > 0, "no bitrate");
      assert(r.frames.made >= 50 && r.frames.closed === r.frames.made, `VideoFrames: ${r.frames.made} made, ${r.frames.closed} closed`);
      assert(r.firstPictureMs !== null && r.firstPictureMs < 1000, `first picture after ${r.firstPictureMs} ms`);
    });

    await check("passthrough (stand-in): MSE plays the fMP4 the player builds from real H.264, near the live edge", async () => {
      assert(caps.mse, `this Chromium's MSE does not take ${clip.codec}`);
      const r = await page.evaluate(runPlayer, { stream: "h264", forcePath: "mse", ms: 3000 });
      log(`MSE: first picture after ${Math.round(r.firstPictureMs)} ms, ${r.video.frames} frames presented, buffered ${JSON.stringify(r.video.buffered)}, at ${r.video.currentTime.toFixed(2)} s`);
      assert(r.path === "mse", `path ${r.path}`);
      assert(r.stats?.pathLabel === "MSE · H.264", `label ${r.stats?.pathLabel}`);
      assert(r.video.width === 320, `video width ${r.video.width}`);
      assert(r.pictureChanged, "the picture did not change in 0.7 s");
      assert(r.video.frames >= 30, `${r.video.frames} frames presented in 3 s`);
      assert(r.firstPictureMs !== null && r.firstPictureMs < 1000, `first picture after ${r.firstPictureMs} ms`);
      // One range: MSE saw no discontinuity (which would drop delta frames up to a keyframe).
      assert(r.video.buffered.length === 1, `buffered ranges ${JSON.stringify(r.video.buffered)}`);
      const end = r.video.buffered.at(-1)?.[1] ?? 0;
      assert(end - r.video.currentTime < 1.5, `the playhead is ${(end - r.video.currentTime).toFixed(2)} s behind the buffered end`);
    });

    await check("passthrough (stand-in): MSE keeps its buffer bounded over time", async () => {
      const r = await page.evaluate(runPlayer, { stream: "h264", forcePath: "mse", ms: 12_000 });
      const [start, end] = [r.video.buffered[0]?.[0] ?? 0, r.video.buffered.at(-1)?.[1] ?? 0];
      log(`MSE after 12 s: buffered ${start.toFixed(2)}..${end.toFixed(2)} s, playhead ${r.video.currentTime.toFixed(2)} s`);
      assert(start > 2, `nothing was removed: buffered from ${start} s`);
      assert(end - start < 8, `${(end - start).toFixed(1)} s buffered`);
    });

    await check("passthrough (stand-in): H.265 without a decoder falls back to MJPEG (format=mjpeg), and plays", async () => {
      if (caps.h265) log("this Chromium decodes H.265: the fallback is checked with a stream it cannot decode anyway");
      const before = standIn.urls.length;
      const r = await page.evaluate(runPlayer, { stream: "h265", forcePath: caps.h265 ? "mjpeg" : null, ms: 2500 });
      const urls = standIn.urls.slice(before);
      log(`H.265: sockets ${urls.join(", ")}; drew ${r.stats?.framesShown} pictures`);
      assert(r.path === "mjpeg" && r.stats?.pathLabel === "MJPEG", `path ${r.path}, label ${r.stats?.pathLabel}`);
      assert(urls.at(-1)?.includes("format=mjpeg"), `the last socket was ${urls.at(-1)}`);
      assert(r.stats.framesShown > 3, `${r.stats.framesShown} pictures`);
    });

    const soakS = Number(process.env.E2E_PASSTHROUGH_SOAK_S ?? 0);
    if (soakS > 0) {
      // Off by default (it takes 2 × soakS): E2E_PASSTHROUGH_SOAK_S=600 node e2e/passthrough.mjs
      for (const forcePath of ["webcodecs", "mse"]) {
        await check(`passthrough (stand-in): ${soakS} s on ${forcePath}: JS heap flat, every VideoFrame closed, buffer bounded`, async () => {
          const cdp = await context.newCDPSession(page);
          await cdp.send("Performance.enable");
          const heap = async () => {
            await cdp.send("HeapProfiler.collectGarbage");
            const { metrics } = await cdp.send("Performance.getMetrics");
            return metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? NaN;
          };
          const run = page.evaluate(runPlayer, { stream: "h264", forcePath, ms: soakS * 1000 });
          await sleep(10_000);
          const early = await heap();
          await sleep(soakS * 1000 - 12_000);
          const late = await heap();
          const r = await run;
          await cdp.detach();
          const mib = (b) => (b / 1048576).toFixed(1);
          const span = (r.video.buffered.at(-1)?.[1] ?? 0) - (r.video.buffered[0]?.[0] ?? 0);
          log(`${forcePath} soak: JS heap ${mib(early)} MiB at 10 s, ${mib(late)} MiB at ${soakS - 2} s; frames ${JSON.stringify(r.frames)}; ${r.stats?.fps} fps; buffered span ${span.toFixed(1)} s`);
          assert(late - early < 4 * 1048576, `the JS heap grew by ${mib(late - early)} MiB`);
          assert(r.stats.fps >= 15, `${r.stats.fps} fps at the end`);
          if (forcePath === "webcodecs") assert(r.frames.made === r.frames.closed, `VideoFrames: ${r.frames.made} made, ${r.frames.closed} closed`);
          else assert(span < 8, `${span.toFixed(1)} s buffered`);
        });
      }
    }

    await check("passthrough (stand-in): the UI's tile and focus view say which path plays and its bitrate, and show its picture", async () => {
      assert(fs.existsSync(path.join(UI_DIR, "dist", "index.html")), "ui/dist is missing: run `npm run build` first");
      const ui = await context.newPage();
      ui.on("pageerror", (e) => log(`page error: ${e.message}`));
      try {
        for (const [query, label, onVideo] of [
          ["?player=webcodecs", "WebCodecs · H.264", false],
          ["?player=mse", "MSE · H.264", true],
        ]) {
          await ui.goto(`${standIn.origin}/${query}#/streams/h264`);
          await ui.waitForFunction((want) => document.querySelector('[data-testid="detail-path"]')?.textContent === want, label, { timeout: 10_000 });
          const overlay = await ui.locator('[data-testid="focus-view"] [data-testid="stat-path"]').textContent();
          assert(overlay === label, `the picture's corner says ${overlay}, the details ${label}`);
          const shown = await ui.evaluate(() => {
            const view = document.querySelector('[data-testid="focus-view"] [data-testid="live-view"]');
            const visible = (el) => !!el && !el.classList.contains("hidden");
            return { video: visible(view?.querySelector("video")), canvas: visible(view?.querySelector("canvas")) };
          });
          assert(shown.video === onVideo && shown.canvas === !onVideo, `${label}: video shown ${shown.video}, canvas shown ${shown.canvas}`);
          const a = await ui.evaluate(pictureHash);
          await sleep(800);
          const b = await ui.evaluate(pictureHash);
          assert(a !== null && a !== b, `${label}: the picture did not change in 0.8 s`);
          const bitrate = await ui.locator('[data-testid="detail-bitrate"]').textContent();
          assert(/b\/s$/.test(bitrate ?? ""), `${label}: bitrate ${bitrate}`);
          log(`UI ${label}: ${bitrate}`);
          fs.mkdirSync(path.join(UI_DIR, "e2e", "artifacts"), { recursive: true });
          await ui.screenshot({ path: path.join(UI_DIR, "e2e", "artifacts", `passthrough-focus-${query.slice(8)}.png`) });
        }
        // The grid on its own (no ?player=): H.264 by WebCodecs on 127.0.0.1, H.265 as MJPEG.
        await ui.goto(`${standIn.origin}/#/`);
        const tilePath = (id) => `[data-testid="stream-tile"][data-stream-id="${id}"] [data-testid="stat-path"]`;
        for (const [id, label] of [
          ["h264", "WebCodecs · H.264"],
          ["h265", caps.h265 ? "WebCodecs · H.265" : "MJPEG"],
        ]) {
          await ui
            .waitForFunction(([sel, want]) => document.querySelector(sel)?.textContent === want, [tilePath(id), label], { timeout: 10_000 })
            .catch(async () => {
              throw new Error(`the ${id} tile says ${await ui.locator(tilePath(id)).textContent()}, expected ${label}`);
            });
        }
        fs.mkdirSync(path.join(UI_DIR, "e2e", "artifacts"), { recursive: true });
        await ui.screenshot({ path: path.join(UI_DIR, "e2e", "artifacts", "passthrough-grid.png") });
      } finally {
        await ui.close();
      }
    });
  } finally {
    await page.close();
    await standIn.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Against the real gateway and the demo camera

/** Starts the demo RTSP camera on a free port; resolves with its base URL and a stop(). */
export async function startDemoCamera() {
  const statsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "camgate-e2e-camera-")), "stats.json");
  const child = spawn("/usr/bin/python3", [path.join(REPO_DIR, "demo_rtsp_server", "server.py"), "--port", "0", "--width", "640", "--height", "360", "--fps", "25", "--stats-file", statsFile], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const readStats = () => {
    try {
      return JSON.parse(fs.readFileSync(statsFile, "utf8"));
    } catch {
      return null; // not written yet (the file is replaced atomically: never half written)
    }
  };
  // The most sessions ever open at once per mount, sampled every 50 ms: two sessions of one
  // camera at the same time is what a gateway must never do, however short.
  const peak = {};
  const sample = () => {
    for (const [mount, open] of Object.entries(readStats()?.sessions ?? {})) peak[mount] = Math.max(peak[mount] ?? 0, open);
  };
  const sampler = setInterval(sample, 50);
  /**
   * RTSP sessions at `mount` (the camera's own count): open now, opened so far, and the most
   * open at once.
   */
  const sessions = (mount) => {
    sample();
    const stats = readStats();
    return { open: stats?.sessions?.[mount] ?? 0, opened: stats?.total_sessions_opened?.[mount] ?? 0, peak: peak[mount] ?? 0 };
  };
  const stop = async () => {
    clearInterval(sampler);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  try {
    const base = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the demo camera printed no READY line within 20 s")), 20_000);
      child.once("exit", (code) => reject(new Error(`the demo camera exited (${code})`)));
      readline.createInterface({ input: child.stdout }).on("line", (line) => {
        const m = /^READY (rtsp:\/\/\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1].replace(/\/$/, ""));
        }
      });
    });
    return { base, stop, sessions };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * In a page of the gateway's origin: `joins` times, a new WebSocket on `format=h264` and a
 * WebCodecs decoder fed what it sends; the time from opening the socket to the first
 * decoded picture (the decoder's first output: the GOP sent on joining decodes at once).
 */
function joinTimes({ stream, joins }) {
  const one = () =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/ws/streams/${stream}?format=h264`);
      ws.binaryType = "arraybuffer";
      const done = (value, error) => {
        ws.close();
        try {
          decoder.close();
        } catch {
          // already closed
        }
        if (error) reject(error);
        else resolve(value);
      };
      const decoder = new VideoDecoder({
        output: (frame) => {
          frame.close();
          done(performance.now() - started);
        },
        error: (e) => done(null, e),
      });
      ws.onerror = () => done(null, new Error("WebSocket error"));
      ws.onmessage = (e) => {
        if (typeof e.data === "string") {
          const msg = JSON.parse(e.data);
          if (msg.type === "config") {
            const description = Uint8Array.from(atob(msg.description), (c) => c.charCodeAt(0));
            decoder.configure({ codec: msg.codec, description, codedWidth: msg.width, codedHeight: msg.height, optimizeForLatency: true });
          }
          return;
        }
        if (decoder.state !== "configured") return;
        const view = new DataView(e.data);
        decoder.decode(new EncodedVideoChunk({
          type: view.getUint8(1) & 1 ? "key" : "delta",
          timestamp: Number(view.getBigUint64(10)),
          data: new Uint8Array(e.data, 18),
        }));
      };
      setTimeout(() => done(null, new Error("no picture within 10 s")), 10_000);
    });
  return (async () => {
    const times = [];
    for (let i = 0; i < joins; i++) times.push(await one());
    return times;
  })();
}

/** A hash of the picture (canvas or, on the MSE path, the video) in the focus view. */
function pictureHash() {
  const view = document.querySelector('[data-testid="focus-view"] [data-testid="live-view"]');
  const video = view?.querySelector("video");
  const canvas = view?.querySelector("canvas");
  const source = video && !video.classList.contains("hidden") ? video : canvas;
  if (!source) return null;
  const c = document.createElement("canvas");
  c.width = 64;
  c.height = 36;
  const ctx = c.getContext("2d");
  ctx.drawImage(source, 0, 0, 64, 36);
  return Array.from(ctx.getImageData(0, 0, 64, 36).data).join(",");
}

async function gatewayChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview, gatewayLog }) {
  const camera = await startDemoCamera();
  const lines = [
    "defaults:",
    "  idle_timeout: 3s",
    "streams:",
    "  - id: pt-h264",
    "    name: Passthrough H.264",
    "    on_demand: false",
    `    source: { plugin: rtsp, url: '${camera.base}/test' }`,
    "  - id: pt-h265",
    "    name: Passthrough H.265",
    `    source: { plugin: rtsp, url: '${camera.base}/h265' }`,
  ];
  let gateway = null;
  const page = await context.newPage();
  try {
    let gatewayUrl;
    ({ gateway, gatewayUrl } = await gatewayWith("passthrough", lines));
    const { origin } = await pageOrigin(gatewayUrl, forcePreview);
    /** Opens the focus view of `id` with `query`; waits for its path label to read `label`. */
    const open = async (id, query, label) => {
      await page.goto(`${origin}/${query}#/streams/${id}`);
      const shown = page.locator('[data-testid="detail-path"]');
      await page.waitForFunction((want) => document.querySelector('[data-testid="detail-path"]')?.textContent === want, label, { timeout: 20_000 }).catch(async () => {
        throw new Error(`the path reads ${await shown.textContent()}, expected ${label}`);
      });
    };
    /** Whether the picture changes (within 8 s: a transcoder starts at the next keyframe). */
    const changing = async () => {
      const until = Date.now() + 8000;
      let first = await page.evaluate(pictureHash);
      while (Date.now() < until) {
        await sleep(400);
        const now = await page.evaluate(pictureHash);
        if (first !== null && now !== null && now !== first) return true;
        first ??= now;
      }
      return false;
    };

    for (const [query, label] of [
      ["?player=webcodecs", "WebCodecs · H.264"],
      ["?player=mse", "MSE · H.264"],
      ["", "WebCodecs · H.264"], // 127.0.0.1 is a secure context: the ladder's first choice
    ]) {
      await check(`passthrough: ${query || "auto"} plays the demo camera as ${label}, with changing pictures and its bitrate`, async () => {
        await open("pt-h264", query, label);
        assert(await changing(), "the picture did not change in 8 s");
        const bitrate = await page.locator('[data-testid="detail-bitrate"]').textContent();
        assert(bitrate && bitrate !== "–", `bitrate ${bitrate}`);
        log(`${label}: ${bitrate}`);
      });
    }

    await check("passthrough: the WebCodecs and MSE paths report the frames they draw (camgate_viewer_frames_shown_total grows, ages under 5 s)", async () => {
      const metric = async (series) => {
        const text = await (await fetch(`${gatewayUrl}/metrics`)).text();
        const line = text.split("\n").find((l) => l.startsWith(`${series} `));
        return line ? Number(line.slice(series.length + 1)) : 0;
      };
      const shown = 'camgate_viewer_frames_shown_total{stream="pt-h264"}';
      const count = 'camgate_viewer_frame_age_seconds_count{stream="pt-h264"}';
      const under5 = 'camgate_viewer_frame_age_seconds_bucket{stream="pt-h264",le="5"}';
      for (const [query, label] of [
        ["?player=webcodecs", "WebCodecs · H.264"],
        ["?player=mse", "MSE · H.264"],
      ]) {
        const [framesBefore, agesBefore, under5Before] = [await metric(shown), await metric(count), await metric(under5)];
        await open("pt-h264", query, label);
        // A report every ~5 s of drawing.
        const until = Date.now() + 15_000;
        while (Date.now() < until && (await metric(count)) === agesBefore) await sleep(500);
        const frames = (await metric(shown)) - framesBefore;
        const ages = (await metric(count)) - agesBefore;
        const fresh = (await metric(under5)) - under5Before;
        log(`${label}: reported ${frames} frames drawn, ${ages} ages (${fresh} under 5 s)`);
        assert(frames > 0 && ages > 0, `${label}: ${frames} frames and ${ages} ages reported in 15 s`);
        assert(fresh === ages, `${label}: ${ages - fresh} of ${ages} ages over 5 s`);
      }
    });

    const transcoders = async (id) => (await (await fetch(`${gatewayUrl}/api/streams/${id}`)).json()).transcoders;

    await check("passthrough: an MJPEG viewer of the H.264 stream starts exactly one transcoder, which stops after the idle timeout", async () => {
      assert((await transcoders("pt-h264")) === 0, "a transcoder ran before any MJPEG viewer");
      await open("pt-h264", "?player=mjpeg", "MJPEG");
      assert(await changing(), "the picture did not change in 8 s");
      assert((await transcoders("pt-h264")) === 1, `transcoders: ${await transcoders("pt-h264")}`);
      await page.goto("about:blank");
      const left = Date.now();
      let stopped = null;
      while (Date.now() - left < 15_000) {
        if ((await transcoders("pt-h264")) === 0) {
          stopped = Date.now() - left;
          break;
        }
        await sleep(250);
      }
      assert(stopped !== null, "the transcoder still runs 15 s after its viewer left");
      assert(stopped >= 2500, `stopped ${stopped} ms after the viewer left, before the 3 s idle timeout`);
      log(`transcoder stopped ${stopped} ms after the last MJPEG viewer left (idle timeout 3 s)`);
    });

    await check("passthrough: H.265 without a platform decoder plays as MJPEG (one transcoder)", async () => {
      await open("pt-h265", "", "MJPEG");
      assert(await changing(), "the picture did not change in 8 s");
      assert((await transcoders("pt-h265")) === 1, `transcoders: ${await transcoders("pt-h265")}`);
    });

    await check("passthrough: a joining H.264 viewer decodes a picture at once (20 joins; GOP 1 s, so waiting for a keyframe would take 500 ms on average)", async () => {
      await page.goto(`${gatewayUrl}/healthz`);
      const times = await page.evaluate(joinTimes, { stream: "pt-h264", joins: 20 });
      const sorted = [...times].sort((a, b) => a - b);
      const p = (q) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]);
      log(`first decoded picture on join (WebCodecs, 640x360 25 fps, GOP 1 s): p50 ${p(0.5)} ms, p95 ${p(0.95)} ms, max ${Math.round(sorted.at(-1))} ms`);
      // The target (p95 ≤ 300 ms) is measured and published (docs/performance.md); the check
      // asserts the median, which a shared machine cannot push past it by accident.
      assert(p(0.5) < 300, `p50 ${p(0.5)} ms`);
    });

    await check("passthrough: the camera saw one RTSP session per stream, whatever the mix of viewers", async () => {
      // WebCodecs, MSE, MJPEG (a transcoder), picture health and joins all read the one
      // session of their stream. A session ends when the stream's source does (idle, or the
      // plugin retrying after an error) and the next start opens the next one; so the camera
      // may count more than one over the run, but never two at once, and never one the
      // gateway did not start (camgate_source_starts_total counts every start and retry).
      const metrics = await (await fetch(`${gatewayUrl}/metrics`)).text();
      for (const [mount, stream] of [["/test", "pt-h264"], ["/h265", "pt-h265"]]) {
        const seen = camera.sessions(mount);
        const starts = {};
        for (const m of metrics.matchAll(/^camgate_source_starts_total\{([^}]*)\} (\d+)$/gm)) {
          const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
          if (labels.stream === stream && Number(m[2]) > 0) starts[labels.reason] = Number(m[2]);
        }
        const started = Object.values(starts).reduce((a, b) => a + b, 0);
        log(`${mount}: ${seen.open} open now, ${seen.opened} opened, at most ${seen.peak} at once; the gateway's starts of ${stream}: ${JSON.stringify(starts)}`);
        if (starts.error) {
          // Not this check's subject, but worth seeing: why the plugin had to reconnect.
          const retries = fs.readFileSync(gatewayLog, "utf8").split("\n").filter((l) => l.includes(`stream=${stream} `) && /state="retrying"/.test(l));
          for (const line of retries.slice(-3)) log(`  ${line}`);
        }
        assert(seen.opened >= 1 && seen.peak === 1, `${mount}: ${JSON.stringify(seen)}`);
        assert(seen.opened <= started, `${mount}: the camera saw ${seen.opened} sessions, the gateway started ${stream} ${started} times`);
      }
      const always = camera.sessions("/test");
      assert(always.open === 1, `/test (always on): ${JSON.stringify(always)}`);
    });
  } finally {
    await page.close();
    await gateway?.stop();
    await camera.stop();
  }
}

/** Everything: the stand-in checks, then the gateway's. */
export async function passthroughChecks(helpers) {
  await playerStandInChecks(helpers);
  await gatewayChecks(helpers);
}

// `node e2e/passthrough.mjs`: the stand-in checks alone, in their own Chromium.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { chromium } = await import("playwright-core");
  const { CHROMIUM_ARGS, CHROMIUM_BIN } = await import("./chromium.mjs");
  const browser = await chromium.launch({
    executablePath: CHROMIUM_BIN,
    args: [...CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
  });
  let failed = 0;
  const check = async (name, fn) => {
    try {
      await fn();
      console.log(`[e2e] PASS  ${name}`);
    } catch (e) {
      failed++;
      console.log(`[e2e] FAIL  ${name}\n${String(e?.stack ?? e).replace(/^/gm, "      ")}`);
    }
  };
  const assert = (ok, message) => {
    if (!ok) throw new Error(message);
  };
  try {
    const context = await browser.newContext();
    await playerStandInChecks({ context, check, assert });
  } finally {
    await browser.close();
  }
  process.exit(failed > 0 ? 1 : 0);
}
