// Renders deploy/grafana/camgate.json to a PNG without Grafana (which is not packaged for
// Debian): panels laid out by their gridPos, every panel's expressions evaluated against a
// real Prometheus' query_range API and drawn as simple SVG (time series as lines or bars,
// stat values, state timelines as coloured blocks), screenshot by Debian's Chromium. The
// image says on itself that it is this script's preview, not Grafana.
//
//   scripts/dashboard-preview --run 300          start a gateway + demo camera + Prometheus,
//                                                collect 300 s of data, render
//   scripts/dashboard-preview --prometheus URL   render the last --minutes (30) from URL
//   options: --out PATH (docs/dashboard-preview.png), --rate-interval D ($__rate_interval)
//
// In --run mode every child (demo camera, gateway, Prometheus) binds 127.0.0.1, lives in a
// temporary directory and is killed on exit; the run stops the camera for a minute, has a
// reload rejected and fixed, keeps three viewers, and has one camera that freezes and one
// that goes dark now and then (the demo camera's /frozen and /dark mounts), so every panel
// has something to show.

import { spawn, execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM_ARGS, CHROMIUM_BIN } from "../ui/e2e/chromium.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(ROOT, "ui", "package.json"));
const { chromium } = require("playwright-core");

// ---------------------------------------------------------------- arguments
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const runSeconds = args.includes("--run") ? Number(opt("--run", "300")) : null;
const out = path.resolve(opt("--out", path.join(ROOT, "docs", "dashboard-preview.png")));
const dashboardPath = path.join(ROOT, "deploy", "grafana", "camgate.json");
const rulesPath = path.join(ROOT, "deploy", "prometheus", "camgate-rules.yml");
if (runSeconds === null && !args.includes("--prometheus")) {
  console.error("usage: scripts/dashboard-preview --run SECONDS | --prometheus URL [--minutes N] [--out PATH]");
  process.exit(2);
}

// ---------------------------------------------------------------- children
const children = [];
function startChild(cmd, argv, options = {}) {
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], ...options });
  children.push(child);
  return child;
}
function killChildren() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}
process.on("exit", killChildren);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error("dashboard-preview:", ...a);

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function waitFor(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

function startCamera(port) {
  const child = startChild("/usr/bin/python3", [
    path.join(ROOT, "demo_rtsp_server", "server.py"),
    "--host", "127.0.0.1", "--port", String(port),
    "--width", "640", "--height", "360", "--fps", "15",
  ]);
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout.on("data", (d) => {
      buffer += d;
      const m = buffer.match(/READY rtsp:\/\/[^:]+:(\d+)/);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on("exit", (code) => reject(new Error(`demo camera exited (${code})`)));
  });
}

// ---------------------------------------------------------------- the --run scenario
const ADMIN = `admin-${Math.random().toString(16).slice(2)}-preview`;
const METRICS = `metrics-${Math.random().toString(16).slice(2)}-preview`;

function manifest(port, cameraPort, broken = false) {
  return `${broken ? "this: is: not: yaml\n" : ""}server:
  listen: 127.0.0.1:${port}
auth:
  tokens:
    - { role: admin, token: ${ADMIN} }
    - { role: metrics, token_file: metrics-token }
streams:
  - id: demo-camera
    name: Demo RTSP camera
    on_demand: false
    source: { plugin: rtsp, url: "rtsp://127.0.0.1:${cameraPort}/test" }
  - id: pattern
    name: Test pattern
    on_demand: false
    source: { plugin: testsrc, width: 640, height: 360, fps: 10 }
  - id: loading-dock
    name: Loading dock (freezes now and then)
    on_demand: false
    source: { plugin: rtsp, url: "rtsp://127.0.0.1:${cameraPort}/frozen?live=40&frozen=50" }
  - id: parking
    name: Parking (goes dark now and then)
    on_demand: false
    source: { plugin: ffmpeg-mjpeg, url: "rtsp://127.0.0.1:${cameraPort}/dark?live=50&dark=40", fps: 10 }
`;
}

/// A WebSocket viewer that reports what it "shows" like the browser UI does.
function wsViewer(port, stream) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/streams/${stream}?access_token=${ADMIN}`);
  ws.binaryType = "arraybuffer";
  let frames = 0;
  let ages = [];
  ws.onmessage = (event) => {
    if (typeof event.data === "string") return;
    const bytes = new Uint8Array(event.data);
    frames += 1;
    // The CAMG APP11 tag right after SOI: capture time (µs since the epoch) at offset 17.
    if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff && bytes[3] === 0xeb) {
      const view = new DataView(event.data);
      const captured = Number(view.getBigUint64(4 + 2 + 5 + 8));
      if (ages.length < 32) ages.push(Math.max(0, Math.round(Date.now() - captured / 1000)));
    }
  };
  const timer = setInterval(() => {
    if (ws.readyState === WebSocket.OPEN && frames > 0) {
      ws.send(JSON.stringify({ type: "shown", frames, age_ms: ages }));
      frames = 0;
      ages = [];
    }
  }, 5000);
  return () => {
    clearInterval(timer);
    ws.close();
  };
}

/// An MJPEG viewer reading and discarding the multipart stream.
function mjpegViewer(port, stream) {
  const controller = new AbortController();
  fetch(`http://127.0.0.1:${port}/api/streams/${stream}/mjpeg?access_token=${ADMIN}`, {
    signal: controller.signal,
  })
    .then(async (response) => {
      const reader = response.body.getReader();
      for (;;) {
        const { done } = await reader.read();
        if (done) break;
      }
    })
    .catch(() => {});
  return () => controller.abort();
}

async function runScenario(seconds) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camgate-preview-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
  const bin = process.env.CAMGATE_BIN ?? path.join(targetDir, "debug", "camgate");
  if (!process.env.CAMGATE_BIN) {
    log("building the gateway (cargo build -p camgate)");
    execFileSync("cargo", ["build", "--quiet", "-p", "camgate"], { cwd: ROOT, stdio: "inherit" });
  }

  let camera = await startCamera(0);
  const cameraPort = camera.port;
  const gatewayPort = await freePort();
  const promPort = await freePort();
  fs.writeFileSync(path.join(dir, "metrics-token"), METRICS);
  const manifestPath = path.join(dir, "camgate.yaml");
  fs.writeFileSync(manifestPath, manifest(gatewayPort, cameraPort));
  const gateway = startChild(bin, ["run", "--config", manifestPath], { cwd: dir });
  gateway.stderr.on("data", () => {});
  gateway.stdout.on("data", () => {});
  await waitFor("the gateway", 30000, async () => (await fetch(`http://127.0.0.1:${gatewayPort}/readyz`)).ok);

  fs.writeFileSync(
    path.join(dir, "prometheus.yml"),
    `global: { scrape_interval: 2s, evaluation_interval: 2s }
rule_files: ["${rulesPath}"]
scrape_configs:
  - job_name: camgate
    authorization: { type: Bearer, credentials_file: "${path.join(dir, "metrics-token")}" }
    static_configs: [{ targets: ["127.0.0.1:${gatewayPort}"] }]
`,
  );
  const prometheus = startChild("prometheus", [
    `--config.file=${path.join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    "--log.level=warn",
  ]);
  prometheus.stderr.on("data", () => {});
  const promUrl = `http://127.0.0.1:${promPort}`;
  await waitFor("Prometheus", 30000, async () => (await fetch(`${promUrl}/-/ready`)).ok);
  const start = Date.now() / 1000;

  const stops = [wsViewer(gatewayPort, "pattern"), wsViewer(gatewayPort, "demo-camera"), mjpegViewer(gatewayPort, "pattern")];
  const at = (fraction) => sleep(Math.max(0, start * 1000 + seconds * 1000 * fraction - Date.now()));
  log(`collecting ${seconds} s of data (Prometheus at ${promUrl})`);
  // The camera goes away for a while (source retrying, error restarts, source-down pending).
  await at(0.35);
  log("stopping the demo camera");
  camera.child.kill("SIGKILL");
  await at(0.55);
  log("starting the demo camera again");
  camera = await startCamera(cameraPort);
  // A rejected reload, fixed a little later.
  await at(0.7);
  log("saving a broken manifest, then fixing it");
  fs.writeFileSync(manifestPath, manifest(gatewayPort, cameraPort, true));
  gateway.kill("SIGHUP");
  await at(0.8);
  fs.writeFileSync(manifestPath, manifest(gatewayPort, cameraPort));
  gateway.kill("SIGHUP");
  await at(1);
  for (const stop of stops) stop();
  return { promUrl, start, end: Date.now() / 1000, note: "real gateway + demo RTSP camera + Prometheus, scripts/dashboard-preview --run" };
}

// ---------------------------------------------------------------- queries
async function queryRange(promUrl, expr, start, end, step) {
  const url = new URL("/api/v1/query_range", promUrl);
  url.search = new URLSearchParams({ query: expr, start, end, step }).toString();
  const answer = await (await fetch(url)).json();
  if (answer.status !== "success") throw new Error(`${expr}: ${answer.error}`);
  return answer.data.result;
}

function substitute(expr, rateInterval) {
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("$__interval", rateInterval)
    .replaceAll('=~"$stream"', '=~".*"');
}

function legendOf(format, metric) {
  if (!format) return JSON.stringify(metric);
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => metric[k] ?? "");
}

// ---------------------------------------------------------------- drawing
const PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#fade2a", "#96d98d", "#ffb357"];
const NAMED = { green: "#73bf69", red: "#f2495c", yellow: "#fade2a", orange: "#ff9830", blue: "#5794f2", purple: "#b877d9", gray: "#8e8e8e" };
const color = (c) => NAMED[c] ?? c;
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function formatValue(v, unit, decimals) {
  if (v === null || Number.isNaN(v)) return "–";
  if ((unit === "none" || unit === undefined) && Number.isInteger(v)) return String(v);
  const fixed = (x) => (decimals !== undefined ? x.toFixed(decimals) : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
  switch (unit) {
    case "s":
      return v < 1 ? `${fixed(v * 1000)} ms` : `${fixed(v)} s`;
    case "Bps": {
      const units = ["B/s", "kB/s", "MB/s", "GB/s"];
      let i = 0;
      while (Math.abs(v) >= 1000 && i < units.length - 1) {
        v /= 1000;
        i += 1;
      }
      return `${fixed(v)} ${units[i]}`;
    }
    case "fps":
      return `${fixed(v)} fps`;
    default:
      return fixed(v);
  }
}

function mappingFor(defaults, value) {
  for (const m of defaults.mappings ?? []) {
    const hit = m.options?.[String(Math.round(value))];
    if (m.type === "value" && hit) return hit;
  }
  return null;
}

function thresholdColor(defaults, value) {
  let c = "#5794f2";
  for (const step of defaults.thresholds?.steps ?? []) {
    if (step.value === null || value >= step.value) c = color(step.color);
  }
  return c;
}

/// An axis time label: HH:MM (UTC), with seconds for ranges under 15 minutes.
function clock(t, range) {
  return new Date(t * 1000).toISOString().slice(11, range.end - range.start < 900 ? 19 : 16);
}

function drawStat(panel, series, w, h) {
  const d = panel.fieldConfig.defaults;
  const items = series.map((s) => {
    const last = s.values.at(-1);
    const v = last ? Number(last[1]) : null;
    const m = v === null ? null : mappingFor(d, v);
    return { name: s.legend, text: m ? m.text : formatValue(v, d.unit, d.decimals), fill: m ? color(m.color) : v === null ? "#8e8e8e" : thresholdColor(d, v) };
  });
  if (!items.length) return `<div class="nodata">No data</div>`;
  const withName = panel.options.textMode === "value_and_name";
  return `<div class="stats">${items
    .map((i) => `<div class="stat">${withName ? `<div class="statname">${esc(i.name)}</div>` : ""}<div class="statvalue" style="color:${i.fill}">${esc(i.text)}</div></div>`)
    .join("")}</div>`;
}

function drawTimeseries(panel, series, range, w, h) {
  if (!series.length) return `<div class="nodata">No data</div>`;
  const d = panel.fieldConfig.defaults;
  const legendH = 18 * Math.ceil(series.length / 3);
  const left = 58, right = 8, top = 6, bottom = 18 + legendH;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const s of series) for (const [, v] of s.values) if (Number.isFinite(Number(v))) max = Math.max(max, Number(v));
  // Four ticks on a round step (1, 2, 2.5 or 5 times a power of ten) above the largest value.
  const raw = (max > 0 ? max : 1) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const tick = [1, 2, 2.5, 5, 10].map((m) => m * power).find((t) => t * 4 >= raw * 4 * 1.05) ?? 10 * power;
  max = tick * 4;
  const decimals = tick >= 1 ? d.decimals : undefined;
  const x = (t) => left + ((t - range.start) / (range.end - range.start)) * pw;
  const y = (v) => top + ph - (v / max) * ph;
  let svg = "";
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg += `<line x1="${left}" x2="${w - right}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${left - 4}" y="${y(v) + 3}" class="axis" text-anchor="end">${esc(formatValue(v, d.unit, decimals))}</text>`;
  }
  for (let i = 0; i <= 4; i++) {
    const t = range.start + ((range.end - range.start) * i) / 4;
    const label = clock(t, range);
    svg += `<text x="${x(t)}" y="${top + ph + 13}" class="axis" text-anchor="middle">${label}</text>`;
  }
  series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length];
    const bars = (s.drawStyle ?? d.custom?.drawStyle) === "bars";
    const pts = s.values.filter(([, v]) => Number.isFinite(Number(v)));
    if (bars) {
      const bw = Math.max(1, pw / Math.max(1, (range.end - range.start) / range.step) - 1);
      for (const [t, v] of pts) if (Number(v) > 0) svg += `<rect x="${x(t) - bw / 2}" y="${y(Number(v))}" width="${bw}" height="${top + ph - y(Number(v))}" fill="${c}" opacity="0.8"/>`;
    } else {
      // Break the line where samples are missing (more than two steps apart).
      let dpath = "";
      let prev = null;
      for (const [t, v] of pts) {
        dpath += `${prev === null || t - prev > 2 * range.step ? "M" : "L"}${x(t).toFixed(1)},${y(Number(v)).toFixed(1)} `;
        prev = t;
      }
      svg += `<path d="${dpath}" fill="none" stroke="${c}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`;
    }
  });
  const legend = series
    .map((s, i) => `<span class="lg"><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(s.legend)}</span>`)
    .join("");
  return `<svg width="${w}" height="${h - legendH}">${svg}</svg><div class="legend">${legend}</div>`;
}

function drawTimeline(panel, series, range, w, h) {
  if (!series.length) return `<div class="nodata">No data</div>`;
  const d = panel.fieldConfig.defaults;
  const left = 110, legendH = 20, axisH = 16;
  const rowH = Math.min(34, (h - legendH - axisH) / series.length);
  const pw = w - left - 8;
  const x = (t) => left + ((t - range.start) / (range.end - range.start)) * pw;
  let svg = "";
  series.forEach((s, row) => {
    const y0 = row * rowH + 2;
    svg += `<text x="${left - 6}" y="${y0 + rowH / 2 + 4}" class="axis" text-anchor="end">${esc(s.legend)}</text>`;
    const pts = s.values;
    for (let i = 0; i < pts.length; i++) {
      const [t, v] = pts[i];
      const next = i + 1 < pts.length ? Math.min(pts[i + 1][0], t + 2 * range.step) : Math.min(range.end, t + range.step);
      const m = mappingFor(d, Number(v));
      svg += `<rect x="${x(t)}" y="${y0}" width="${Math.max(0.5, x(next) - x(t))}" height="${rowH - 4}" fill="${m ? color(m.color) : "#555"}"/>`;
    }
  });
  const top = series.length * rowH;
  for (let i = 0; i <= 4; i++) {
    const t = range.start + ((range.end - range.start) * i) / 4;
    svg += `<text x="${x(t)}" y="${top + 12}" class="axis" text-anchor="middle">${clock(t, range)}</text>`;
  }
  const legend = Object.values(d.mappings?.[0]?.options ?? {})
    .map((m) => `<span class="lg"><i style="background:${color(m.color)}"></i>${esc(m.text)}</span>`)
    .join("");
  return `<svg width="${w}" height="${top + axisH}">${svg}</svg><div class="legend">${legend}</div>`;
}

async function render({ promUrl, start, end, note }, rateInterval) {
  const dashboard = JSON.parse(fs.readFileSync(dashboardPath, "utf8"));
  const width = 1600;
  const colW = width / 24, unitH = 38;
  const step = Math.max(2, Math.round((end - start) / 240));
  const range = { start, end, step };
  let body = "";
  let bottom = 0;
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos;
    const pw = w * colW - 8, ph = h * unitH - 8;
    bottom = Math.max(bottom, (y + h) * unitH);
    const series = [];
    for (const target of panel.targets) {
      const result = await queryRange(promUrl, substitute(target.expr, rateInterval), start, end, step);
      const override = (panel.fieldConfig.overrides ?? []).find((o) => o.matcher.id === "byFrameRefID" && o.matcher.options === target.refId);
      const style = Object.fromEntries((override?.properties ?? []).map((p) => [p.id, p.value]));
      for (const r of result) {
        series.push({
          legend: legendOf(target.legendFormat, r.metric),
          values: r.values.map(([t, v]) => [Number(t), Number(v)]),
          dashed: Boolean(style["custom.lineStyle"]),
          drawStyle: style["custom.drawStyle"],
        });
      }
    }
    const inner = ph - 26;
    const content =
      panel.type === "stat" ? drawStat(panel, series, pw, inner)
      : panel.type === "state-timeline" ? drawTimeline(panel, series, range, pw, inner)
      : drawTimeseries(panel, series, range, pw, inner);
    body += `<div class="panel" style="left:${x * colW + 4}px;top:${y * unitH + 4}px;width:${pw}px;height:${ph}px"><div class="title">${esc(panel.title)}</div><div class="content" style="height:${inner}px">${content}</div></div>`;
  }
  const when = `${new Date(start * 1000).toISOString().slice(0, 16).replace("T", " ")} – ${new Date(end * 1000).toISOString().slice(11, 16)} UTC`;
  return `<!doctype html><html><head><meta charset="utf-8"><style>
  body { margin:0; background:#111217; color:#ccccdc; font:12px "DejaVu Sans", sans-serif; width:${width}px; }
  header { padding:10px 14px; background:#f2cc0c; color:#111; font-weight:bold; font-size:14px; }
  header small { font-weight:normal; display:block; margin-top:2px; }
  h1 { font-size:18px; margin:10px 14px 2px; color:#fff; } .vars { margin:0 14px 6px; color:#9fa7b3; }
  .grid-area { position:relative; height:${bottom + 8}px; }
  .panel { position:absolute; background:#181b1f; border:1px solid #2c3235; border-radius:3px; overflow:hidden; }
  .title { padding:5px 8px; font-weight:bold; color:#d8d9da; height:16px; white-space:nowrap; overflow:hidden; }
  .content { position:relative; padding:0 4px; }
  .nodata { color:#8e8e8e; text-align:center; padding-top:20%; }
  .stats { display:flex; height:100%; align-items:center; justify-content:space-around; }
  .stat { text-align:center; } .statvalue { font-size:30px; font-weight:bold; } .statname { color:#9fa7b3; }
  .grid { stroke:#2c3235; } .axis { fill:#9fa7b3; font-size:10px; }
  .legend { font-size:10px; line-height:18px; } .lg { margin-right:12px; white-space:nowrap; }
  .lg i { display:inline-block; width:10px; height:4px; margin-right:4px; vertical-align:middle; }
  </style></head><body>
  <header>PREVIEW — not Grafana. Rendered from deploy/grafana/camgate.json by scripts/dashboard-preview
  <small>Panels laid out by gridPos; each panel's PromQL evaluated by a real Prometheus (query_range, $stream = all, $__rate_interval = ${esc(rateInterval)}). Data: ${esc(note)}, ${esc(when)}.</small></header>
  <h1>${esc(dashboard.title)}</h1><div class="vars">Data source: Prometheus · Stream: All</div>
  <div class="grid-area">${body}</div></body></html>`;
}

// ---------------------------------------------------------------- main
let source;
let rateInterval = opt("--rate-interval", null);
if (runSeconds !== null) {
  source = await runScenario(runSeconds);
  rateInterval ??= "20s";
} else {
  const end = Date.now() / 1000;
  source = { promUrl: opt("--prometheus"), start: end - 60 * Number(opt("--minutes", "30")), end, note: opt("--note", "Prometheus at " + opt("--prometheus")) };
  rateInterval ??= "1m";
}
const html = await render(source, rateInterval);
const browser = await chromium.launch({ executablePath: CHROMIUM_BIN, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  await page.setContent(html);
  await page.screenshot({ path: out, fullPage: true });
} finally {
  await browser.close();
}
log(`wrote ${path.relative(ROOT, out)}`);
process.exit(0);
