#!/usr/bin/env node
// End-to-end test of the browser viewer against a REAL camgate gateway, in Debian's headless
// Chromium driven by playwright-core (no browser download).
//
//   CAMGATE_BIN=../target/debug/camgate npm run e2e
//
// It builds nothing: it needs the camgate binary (CAMGATE_BIN, default ../target/debug/camgate)
// and, when the gateway does not serve ui/dist itself yet, a built ui/dist (npm run build),
// which it then serves with `vite preview` proxying /api and /ws to the gateway.
//
// Environment: CAMGATE_BIN, CHROMIUM_BIN (default /usr/bin/chromium), E2E_STRICT=1 (a check
// skipped because the gateway lacks an endpoint counts as a failure), E2E_VIA_PREVIEW=1 (serve
// the page with `vite preview` + proxy even when the gateway serves ui/dist), E2E_HEADFUL=1,
// E2E_ONLY=wall, tiles, ui-fixes, cluster or passthrough (run only that module's checks, while
// developing it). A failed check prints what its gateways warned of meanwhile.
// Artifacts (screenshots, gateway log) go to ui/e2e/artifacts/ (gitignored).

import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CHROMIUM_ARGS, CHROMIUM_BIN } from "./chromium.mjs";
import { passwordEditChecks } from "./password-edit.mjs";
import { tilesChecks } from "./tiles.mjs";

const execFileAsync = promisify(execFile);
const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ARTIFACTS = path.join(UI_DIR, "e2e", "artifacts");
// Every gateway a check starts appends its log here (CI keeps only the console: a failed
// check prints what its gateways warned of while it ran).
const GATEWAY_LOG = path.join(ARTIFACTS, "gateway.log");
const CAMGATE_BIN = path.resolve(UI_DIR, process.env.CAMGATE_BIN ?? "../target/debug/camgate");
const STRICT = process.env.E2E_STRICT === "1";

// ---------------------------------------------------------------------------------------------
// Bookkeeping

const results = [];
const cleanups = [];
let cleaningUp = false;

function log(...args) {
  console.log("[e2e]", ...args);
}

class Skip extends Error {}

/** Bytes in the gateway log so far (0 before the first gateway starts). */
function gatewayLogSize() {
  try {
    return fs.statSync(GATEWAY_LOG).size;
  } catch {
    return 0;
  }
}

/**
 * The gateways' warnings, errors and source state changes logged since byte `from` (at most
 * the last 40): what a failed check prints, so a CI log that keeps only the console still says
 * what the gateway saw.
 */
function gatewayNotesSince(from) {
  let text;
  try {
    const fd = fs.openSync(GATEWAY_LOG, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, size - from));
      fs.readSync(fd, buf, 0, buf.length, from);
      text = buf.toString("utf8");
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((line) => / (WARN|ERROR) |source state|source st(arted|opped)|stopping idle/.test(line))
    .slice(-40);
}

async function check(name, fn) {
  const started = Date.now();
  const logFrom = gatewayLogSize();
  try {
    await fn();
    results.push({ name, status: "passed" });
    log(`PASS  ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    if (e instanceof Skip) {
      const status = STRICT ? "failed" : "skipped";
      results.push({ name, status, note: e.message });
      log(`${STRICT ? "FAIL" : "SKIP"}  ${name}: ${e.message}`);
    } else {
      results.push({ name, status: "failed", note: e?.stack ?? String(e) });
      log(`FAIL  ${name}\n${String(e?.stack ?? e).replace(/^/gm, "      ")}`);
      const notes = gatewayNotesSince(logFrom);
      if (notes.length > 0) log(`      the gateway meanwhile (${GATEWAY_LOG}):\n${notes.join("\n").replace(/^/gm, "        ")}`);
    }
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (e) {
      log("cleanup:", e?.message ?? e);
    }
  }
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

// ---------------------------------------------------------------------------------------------
// The gateway

function manifest(withFailing) {
  const lines = [
    "# Written by ui/e2e/run.mjs",
    "server:",
    "  listen: 127.0.0.1:0",
    "defaults:",
    "  idle_timeout: 5s",
    "streams:",
    "  - id: alpha",
    "    name: Alpha (always on)",
    "    on_demand: false",
    "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
    "  - id: bravo",
    "    name: Bravo",
    "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
    "  - id: charlie",
    "    name: Charlie",
    // 720p at best quality: frames above 16 KiB take the gateway's sendfile path; the loop
    // keeps the debug build from spending the test's CPU on JPEG encoding.
    "    source: { plugin: testsrc, width: 1280, height: 720, fps: 10, quality: 2, loop_frames: 20 }",
  ];
  if (withFailing) {
    lines.push(
      "  - id: broken",
      "    name: Broken camera",
      "    source: { plugin: ffmpeg-mjpeg, url: 'rtsp://127.0.0.1:9/nope', fps: 5 }",
    );
  }
  return lines.join("\n") + "\n";
}

const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

/** Starts `camgate run`; resolves once it logs its address. `stop()` is also registered as a cleanup. */
async function startGateway(manifestPath, logPath, listen = "127.0.0.1:0") {
  const logFile = fs.createWriteStream(logPath, { flags: "a" });
  const child = spawn(CAMGATE_BIN, ["run", "--config", manifestPath, "--listen", listen], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", RUST_LOG_STYLE: "never" },
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exit = once(child, "exit");
      child.kill("SIGTERM");
      const exited = await Promise.race([exit.then(() => true), sleep(5000).then(() => false)]);
      if (!exited) {
        log("gateway did not stop on SIGTERM: SIGKILL");
        child.kill("SIGKILL");
        await exit;
      }
    }
    logFile.end();
  };
  cleanups.push(stop);
  child.stdout.on("data", (chunk) => logFile.write(chunk));
  child.stderr.on("data", (chunk) => logFile.write(chunk));
  let buffered = "";
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the gateway did not log `camgate listening addr=...` within 20 s")), 20_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited early (code ${code}, signal ${signal}); see ${logPath}`));
    });
    child.stderr.on("data", (chunk) => {
      buffered += chunk.toString("utf8").replace(ANSI_ESCAPE, "");
      const m = /listening.*?addr=([0-9.:[\]a-f]+)/i.exec(buffered);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return { child, addr, stop };
}

// ---------------------------------------------------------------------------------------------
// Where the page comes from: the gateway itself, or `vite preview` proxying to it

// Writes a manifest of `lines` to <tmp>/<name>.yaml and starts a gateway on it: the check
// files get this as `gatewayWith(name, lines)`.
async function startGatewayWith(tmp, gatewayLog, name, lines) {
  const manifestPath = path.join(tmp, `${name}.yaml`);
  fs.writeFileSync(manifestPath, [...lines, ""].join("\n"));
  const gateway = await startGateway(manifestPath, gatewayLog);
  return { gateway, gatewayUrl: `http://${gateway.addr}` };
}

async function pageOrigin(gatewayUrl, forcePreview = false) {
  let html = "";
  try {
    html = await (await fetch(`${gatewayUrl}/`)).text();
  } catch {
    // Treated as "not serving the UI".
  }
  const dist = path.join(UI_DIR, "dist", "index.html");
  const built = fs.existsSync(dist) ? fs.readFileSync(dist, "utf8") : null;
  const entry = (text) => /src="(\/assets\/[^"]+\.js)"/.exec(text)?.[1] ?? null;
  let reason = "the gateway does not serve ui/dist yet";
  if (/id="root"/.test(html)) {
    // Test this UI, not an older build embedded in (or read by) the binary.
    if (!built || entry(html) === entry(built)) {
      if (!forcePreview) {
        log(`the gateway serves the built UI at ${gatewayUrl}/`);
        return { origin: gatewayUrl, via: "gateway" };
      }
    } else {
      reason = `the gateway serves another UI build (${entry(html)}, ui/dist has ${entry(built)})`;
    }
  }
  if (forcePreview) reason = "E2E_VIA_PREVIEW=1";
  if (!built) throw new Error(`the gateway does not serve ui/dist and ${dist} is missing: run \`npm run build\` first`);
  process.env.CAMGATE_API = gatewayUrl; // read by vite.config.ts
  const { preview } = await import("vite");
  const port = await freePort();
  const server = await preview({
    root: UI_DIR,
    configFile: path.join(UI_DIR, "vite.config.ts"),
    logLevel: "warn",
    preview: { host: "127.0.0.1", port, strictPort: true, open: false },
  });
  cleanups.push(() => server.close());
  const origin = `http://127.0.0.1:${port}`;
  log(`${reason}: using vite preview at ${origin} (proxy → ${gatewayUrl})`);
  return { origin, via: "vite-preview" };
}

// ---------------------------------------------------------------------------------------------
// Page helpers

const tile = (page, id) => page.locator(`[data-testid="stream-tile"][data-stream-id="${id}"]`);

/** Waits for a canvas to hold a real frame (the player sizes it on the first draw). */
async function waitForPicture(page, canvasSelector, timeout = 20_000) {
  await page.waitForFunction(
    (sel) => {
      const c = document.querySelector(sel);
      return c instanceof HTMLCanvasElement && c.width > 0 && c.width !== 300 && c.height !== 150;
    },
    canvasSelector,
    { timeout },
  );
}

/** A small grayscale thumbnail of a canvas (via an offscreen canvas). */
function sampleCanvas(page, canvasSelector) {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel);
    if (!(c instanceof HTMLCanvasElement)) return null;
    const w = 64;
    const h = 36;
    const off = document.createElement("canvas");
    off.width = w;
    off.height = h;
    const ctx = off.getContext("2d");
    ctx.drawImage(c, 0, 0, w, h);
    const data = ctx.getImageData(0, 0, w, h).data;
    const gray = [];
    for (let i = 0; i < data.length; i += 4) gray.push(Math.round((data[i] + data[i + 1] + data[i + 2]) / 3));
    return gray;
  }, canvasSelector);
}

/** Asserts the canvas shows a non-blank picture that changes over time. */
async function assertPlaying(page, canvasSelector, label) {
  await waitForPicture(page, canvasSelector);
  const a = await sampleCanvas(page, canvasSelector);
  assert(a, `${label}: no canvas`);
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
  assert(variance > 20, `${label}: the canvas is blank (variance ${variance.toFixed(1)})`);
  let changed = 0;
  for (let i = 0; i < 10 && changed === 0; i++) {
    await sleep(400);
    const b = await sampleCanvas(page, canvasSelector);
    changed = b.reduce((n, v, j) => n + (Math.abs(v - a[j]) > 8 ? 1 : 0), 0);
  }
  assert(changed > 0, `${label}: the picture did not change in 4 s`);
  return { variance, changed };
}

async function apiJson(url, init) {
  const r = await fetch(url, init);
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// ---------------------------------------------------------------------------------------------
// The run

/** A Chromium of its own (not the shared context's), with extra command-line `args`. */
async function launchChromium(args = []) {
  const { chromium } = await import("playwright-core");
  const headful = process.env.E2E_HEADFUL === "1";
  return chromium.launch({ executablePath: CHROMIUM_BIN, headless: !headful, args: [...CHROMIUM_ARGS.filter((a) => a !== "--headless" || !headful), ...args] });
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  if (!fs.existsSync(CAMGATE_BIN)) throw new Error(`camgate binary not found at ${CAMGATE_BIN} (set CAMGATE_BIN; build it with cargo build -p camgate)`);
  if (!fs.existsSync(CHROMIUM_BIN)) throw new Error(`Chromium not found at ${CHROMIUM_BIN} (apt-get install -y chromium)`);

  const { stdout: pluginList } = await execFileAsync(CAMGATE_BIN, ["plugins"]);
  const hasFfmpeg = /^\s*ffmpeg-mjpeg\b/m.test(pluginList);
  if (!hasFfmpeg) log("NOTE: `camgate plugins` lists no ffmpeg-mjpeg: the failing-stream check is skipped");

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camgate-e2e-"));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const manifestPath = path.join(tmp, "camgate.yaml");
  fs.writeFileSync(manifestPath, manifest(hasFfmpeg));
  const gatewayLog = GATEWAY_LOG;
  fs.writeFileSync(gatewayLog, "");
  let gateway = await startGateway(manifestPath, gatewayLog);
  const { addr } = gateway;
  const gatewayUrl = `http://${addr}`;
  log(`gateway at ${gatewayUrl} (${CAMGATE_BIN})`);
  const { origin, via } = await pageOrigin(gatewayUrl, process.env.E2E_VIA_PREVIEW === "1");

  const { chromium } = await import("playwright-core");
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "camgate-e2e-chromium-"));
  cleanups.push(() => fs.rmSync(userDataDir, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_BIN,
    headless: process.env.E2E_HEADFUL !== "1",
    args: CHROMIUM_ARGS.filter((a) => a !== "--headless" || process.env.E2E_HEADFUL !== "1"),
    viewport: { width: 1280, height: 800 },
    colorScheme: "dark",
  });
  cleanups.push(() => context.close());
  // E2E_ONLY=<module>: only that module's checks (while developing it).
  if (process.env.E2E_ONLY) {
    const gatewayWith = (name, lines) => startGatewayWith(tmp, gatewayLog, name, lines);
    const forcePreview = process.env.E2E_VIA_PREVIEW === "1";
    const only = {
      wall: async () => (await import("./wall.mjs")).wallChecks({ check, assert, Skip, gatewayWith, pageOrigin, forcePreview, artifacts: ARTIFACTS, launch: launchChromium }),
      tiles: () => tilesChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview, gatewayLog, cleanups }),
      "ui-fixes": async () => (await import("./ui-fixes.mjs")).uiFixChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview }),
      cluster: async () => (await import("./cluster.mjs")).clusterChecks({ check, assert, gatewayWith, pageOrigin, forcePreview, launch: launchChromium }),
      passthrough: async () => (await import("./passthrough.mjs")).passthroughChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview, gatewayLog }),
    }[process.env.E2E_ONLY];
    if (!only) throw new Error(`E2E_ONLY=${process.env.E2E_ONLY}: no such module`);
    await only();
    return;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => {
    // HTTP statuses are judged from responses below (a 409 can be the expected answer).
    if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
  const missingEndpoints = new Set();
  page.on("response", (r) => {
    const url = new URL(r.url());
    if (r.status() >= 500) pageErrors.push(`HTTP ${r.status()} ${r.request().method()} ${url.pathname}`);
    if (r.status() === 404 && (url.pathname === "/api/session" || url.pathname === "/api/plugins")) missingEndpoints.add(url.pathname);
  });

  const { body: listBody } = await apiJson(`${gatewayUrl}/api/streams`);
  const expectedIds = listBody.streams.map((s) => s.id);
  log(`streams in the manifest: ${expectedIds.join(", ")} (page served by ${via})`);

  await page.goto(`${origin}/`);

  await check("grid shows one tile per stream", async () => {
    await page.waitForSelector('[data-testid="stream-grid"]', { timeout: 15_000 });
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="stream-tile"]').length === n, expectedIds.length, {
      timeout: 10_000,
    });
    const ids = await page.locator('[data-testid="stream-tile"]').evaluateAll((els) => els.map((e) => e.getAttribute("data-stream-id")));
    assert(JSON.stringify(ids) === JSON.stringify(expectedIds), `tiles ${ids} != streams ${expectedIds}`);
  });

  await check("every testsrc tile plays (canvas pixels change over time)", async () => {
    for (const id of ["alpha", "bravo", "charlie"]) {
      const sel = `[data-testid="stream-tile"][data-stream-id="${id}"] canvas`;
      const { changed } = await assertPlaying(page, sel, id);
      log(`      ${id}: ${changed}/2304 sampled pixels changed`);
    }
  });

  await check("tiles show live status and client-side fps / latency / bitrate", async () => {
    for (const id of ["alpha", "bravo", "charlie"]) {
      const t = tile(page, id);
      await t.locator('[data-testid="status-badge"][data-state="live"]').waitFor({ timeout: 10_000 });
    }
    await page.waitForFunction(
      () => {
        const t = document.querySelector('[data-stream-id="alpha"]');
        const txt = (sel) => t?.querySelector(sel)?.textContent ?? "–";
        return /fps/.test(txt('[data-testid="stat-fps"]')) && /s$/.test(txt('[data-testid="stat-latency"]')) && /b\/s/.test(txt('[data-testid="stat-bitrate"]'));
      },
      null,
      { timeout: 10_000 },
    );
    const stats = await tile(page, "alpha").locator('[data-testid="live-stats"]').innerText();
    log(`      alpha stats: ${stats.replace(/\s+/g, " ")}`);
    const fps = parseFloat(await tile(page, "alpha").locator('[data-testid="stat-fps"]').innerText());
    assert(fps > 0.5 && fps <= 7, `a grid tile (max_fps=5) draws ${fps} fps`);
  });

  await check("the failing stream shows its error state", async () => {
    if (!hasFfmpeg) throw new Skip("ffmpeg-mjpeg is not in `camgate plugins`");
    const t = tile(page, "broken");
    await t.locator('[data-testid="status-badge"][data-state="retrying"], [data-testid="status-badge"][data-state="offline"]').waitFor({
      timeout: 30_000,
    });
    const reason = await t.locator('[data-testid="status-reason"]').innerText({ timeout: 10_000 });
    log(`      broken: ${reason}`);
    assert(reason.trim().length > 0, "no reason shown");
  });

  await check("grid screenshot (e2e/artifacts/grid.png)", async () => {
    await sleep(1500); // let the stats settle
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(ARTIFACTS, "grid.png") });
  });

  await check("focused view opens from a tile, is linkable and shows details", async () => {
    await tile(page, "alpha").locator("a").first().click();
    await page.waitForSelector('[data-testid="focus-view"][data-stream-id="alpha"]', { timeout: 10_000 });
    assert(page.url().endsWith("#/streams/alpha"), `URL is ${page.url()}`);
    await assertPlaying(page, '[data-testid="focus-view"] canvas', "focus");
    const plugin = await page.locator('[data-testid="detail-plugin"]').innerText();
    assert(plugin === "testsrc", `plugin detail is ${plugin}`);
    await page.waitForFunction(() => document.querySelector('[data-testid="detail-resolution"]')?.textContent === "320 × 180", null, {
      timeout: 10_000,
    });
    assert(await page.locator('[data-testid="fullscreen"]').isVisible(), "no fullscreen button");
    await page.waitForFunction(() => /fps/.test(document.querySelector('[data-testid="detail-fps"]')?.textContent ?? ""), null, { timeout: 5000 });
    await sleep(1500);
    const received = parseFloat(await page.locator('[data-testid="detail-received"]').innerText());
    assert(received > 6, `the focused view (full rate, 10 fps source) receives ${received} fps`);
    await page.screenshot({ path: path.join(ARTIFACTS, "focus.png") });
    // Deep link: a fresh load of the URL opens the same view.
    await page.goto(`${origin}/#/streams/bravo`);
    await page.reload();
    await page.waitForSelector('[data-testid="focus-view"][data-stream-id="bravo"]', { timeout: 10_000 });
    await page.locator('[data-testid="back-to-grid"]').click();
    await page.waitForSelector('[data-testid="stream-grid"]', { timeout: 10_000 });
  });

  // Can the gateway create streams? (The API may not be there yet.)
  const probe = await fetch(`${gatewayUrl}/api/streams`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const canCreate = probe.status !== 404 && probe.status !== 405;
  const ADDED = "e2e-added-camera";

  await check("the add form validates input next to the field", async () => {
    await page.locator('[data-testid="add-camera"]').click();
    const form = page.locator('[data-testid="stream-form"]');
    await form.waitFor();
    await form.locator('input[name="name"]').fill("Bad camera");
    await form.locator('input[name="url"]').fill("file:///etc/passwd");
    await form.locator('[data-testid="save-stream"]').click();
    const err = await form.locator('[data-testid="field-error"]').first().innerText({ timeout: 5000 });
    assert(/rtsp/i.test(err), `unexpected field error: ${err}`);
    await page.keyboard.press("Escape");
    await form.waitFor({ state: "detached" });
  });

  await check("a stream added through the form appears and plays", async () => {
    if (!canCreate) throw new Skip(`the gateway has no POST /api/streams yet (HTTP ${probe.status})`);
    await page.locator('[data-testid="add-camera"]').click();
    const form = page.locator('[data-testid="stream-form"]');
    await form.waitFor();
    await form.locator('input[name="name"]').fill("E2E added camera");
    const suggested = await form.locator('input[name="id"]').inputValue();
    assert(suggested === ADDED, `suggested id is ${suggested}`);
    await form.locator('[data-testid="plugin-select"]').click();
    await page.locator('[data-testid="plugin-option-testsrc"]').click();
    await form.locator('input[name="width"]').fill("320");
    await form.locator('input[name="height"]').fill("180");
    await form.locator('input[name="fps"]').fill("10");
    await form.locator('[data-testid="save-stream"]').click();
    const outcome = await Promise.race([
      form.waitFor({ state: "detached", timeout: 10_000 }).then(() => "saved"),
      form.locator('[data-testid="form-error"], [data-testid="field-error"]').first().waitFor({ timeout: 10_000 }).then(() => "error"),
    ]);
    if (outcome === "error") {
      const msg = await form.locator('[data-testid="form-error"], [data-testid="field-error"]').first().innerText();
      throw new Error(`the gateway refused the new stream: ${msg}`);
    }
    await tile(page, ADDED).waitFor({ timeout: 10_000 });
    await assertPlaying(page, `[data-testid="stream-tile"][data-stream-id="${ADDED}"] canvas`, ADDED);
  });

  await check("the API's validation error is shown in the form (duplicate id)", async () => {
    if (!canCreate) throw new Skip(`the gateway has no POST /api/streams yet (HTTP ${probe.status})`);
    await page.locator('[data-testid="add-camera"]').click();
    const form = page.locator('[data-testid="stream-form"]');
    await form.waitFor();
    await form.locator('input[name="name"]').fill("Alpha");
    await form.locator('input[name="id"]').fill("alpha");
    await form.locator('[data-testid="plugin-select"]').click();
    await page.locator('[data-testid="plugin-option-testsrc"]').click();
    await form.locator('[data-testid="save-stream"]').click();
    const msg = await form.locator('[data-testid="form-error"], [data-testid="field-error"]').first().innerText({ timeout: 10_000 });
    log(`      duplicate id → ${msg}`);
    assert(msg.length > 0, "no error shown");
    await page.keyboard.press("Escape");
    await form.waitFor({ state: "detached" });
  });

  await check("manifest streams cannot be edited from the page", async () => {
    const disabled = await tile(page, "alpha").locator('[data-testid="edit-stream"]').isDisabled();
    assert(disabled, "edit is enabled on a manifest stream");
  });

  await check("an API-created stream can be edited through the form", async () => {
    if (!canCreate) throw new Skip(`the gateway has no POST /api/streams yet (HTTP ${probe.status})`);
    const t = tile(page, ADDED);
    await t.locator('[data-testid="edit-stream"]').click();
    const form = page.locator('[data-testid="stream-form"]');
    await form.waitFor();
    assert((await form.locator('input[name="name"]').inputValue()) === "E2E added camera", "the name is not prefilled");
    assert(await form.locator('input[name="id"]').isDisabled(), "the id can be edited");
    assert((await form.locator('input[name="width"]').inputValue()) === "320", "the width is not prefilled");
    await form.locator('input[name="name"]').fill("E2E renamed camera");
    await form.locator('[data-testid="save-stream"]').click();
    await form.waitFor({ state: "detached", timeout: 10_000 });
    await page.waitForFunction(
      (id) => document.querySelector(`[data-stream-id="${id}"] [data-testid="stream-name"]`)?.textContent === "E2E renamed camera",
      ADDED,
      { timeout: 10_000 },
    );
    await assertPlaying(page, `[data-testid="stream-tile"][data-stream-id="${ADDED}"] canvas`, `${ADDED} after edit`);
  });

  await passwordEditChecks({ check, assert, Skip, page, gatewayUrl, apiFile: path.join(tmp, "camgate.api.yaml"), tile, hasFfmpeg });

  await check("deleting a stream removes its tile", async () => {
    if (!canCreate) throw new Skip(`the gateway has no POST /api/streams yet (HTTP ${probe.status})`);
    const t = tile(page, ADDED);
    await t.waitFor({ timeout: 5000 });
    await t.locator('[data-testid="delete-stream"]').click();
    await page.locator('[data-testid="confirm-delete"]').click();
    await t.waitFor({ state: "detached", timeout: 10_000 });
    const { body } = await apiJson(`${gatewayUrl}/api/streams`);
    assert(!body.streams.some((s) => s.id === ADDED), "the stream is still listed by the API");
  });

  await check("phone layout: one column (e2e/artifacts/phone.png)", async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${origin}/`);
    await phone.waitForSelector('[data-testid="stream-tile"]');
    await waitForPicture(phone, '[data-stream-id="alpha"] canvas');
    const xs = await phone.locator('[data-testid="stream-tile"]').evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().left)));
    assert(new Set(xs).size === 1, `tiles are not in one column: x = ${xs}`);
    await sleep(800);
    await phone.screenshot({ path: path.join(ARTIFACTS, "phone.png") });
    await phone.close();
  });

  await check("no errors in the page", async () => {
    // A refused WebSocket (the failing camera has none: its socket works) would log here.
    if (missingEndpoints.size > 0) log(`NOTE: the gateway lacks ${[...missingEndpoints].join(", ")} (the UI falls back)`);
    const relevant = pageErrors.filter((e) => !/favicon/.test(e));
    assert(relevant.length === 0, `page errors:\n${relevant.join("\n")}`);
  });

  await check("viewers reconnect by themselves after a gateway restart", async () => {
    await page.goto(`${origin}/`);
    await waitForPicture(page, '[data-stream-id="alpha"] canvas');
    await gateway.stop();
    await tile(page, "alpha").locator('[data-testid="status-badge"][data-state="retrying"]').waitFor({ timeout: 10_000 });
    const reason = await tile(page, "alpha").locator('[data-testid="status-reason"]').innerText();
    log(`      while down: ${reason}`);
    gateway = await startGateway(manifestPath, gatewayLog, addr);
    await tile(page, "alpha").locator('[data-testid="status-badge"][data-state="live"]').waitFor({ timeout: 20_000 });
    await assertPlaying(page, '[data-testid="stream-tile"][data-stream-id="alpha"] canvas', "alpha after restart");
  });

  await page.close();
  await authChecks(context, tmp, gatewayLog, process.env.E2E_VIA_PREVIEW === "1");
  const gatewayWith = (name, lines) => startGatewayWith(tmp, gatewayLog, name, lines);
  await (await import("./cross-site.mjs")).crossSiteChecks({ context, check, assert, gatewayWith, apiJson });
  await (await import("./wall.mjs")).wallChecks({ check, assert, Skip, gatewayWith, pageOrigin, forcePreview: process.env.E2E_VIA_PREVIEW === "1", artifacts: ARTIFACTS, launch: launchChromium });
  await (await import("./passthrough.mjs")).passthroughChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview: process.env.E2E_VIA_PREVIEW === "1", gatewayLog });
  await (await import("./credit.mjs")).creditChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview: process.env.E2E_VIA_PREVIEW === "1" });
  await (await import("./freshness.mjs")).freshnessChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview: process.env.E2E_VIA_PREVIEW === "1" });
  await (await import("./ui-fixes.mjs")).uiFixChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview: process.env.E2E_VIA_PREVIEW === "1" });
  await tilesChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview: process.env.E2E_VIA_PREVIEW === "1", gatewayLog, cleanups });
  await (await import("./cluster.mjs")).clusterChecks({ check, assert, gatewayWith, pageOrigin, forcePreview: process.env.E2E_VIA_PREVIEW === "1", launch: launchChromium });
  await (await import("./https.mjs")).httpsChecks({ check, assert, Skip, gatewayWith, launch: (args = []) => chromium.launch({ executablePath: CHROMIUM_BIN, headless: true, args: [...CHROMIUM_ARGS, ...args] }) });
}

/** A gateway with tokens: the page asks for one; viewers cannot manage streams, admins can. */
async function authChecks(context, tmp, gatewayLog, forcePreview) {
  const ADMIN = "e2e-admin-token-0123456789";
  const VIEWER = "e2e-viewer-token-0123456789";
  const manifestPath = path.join(tmp, "auth.yaml");
  fs.writeFileSync(
    manifestPath,
    [
      "auth:",
      "  tokens:",
      `    - { role: admin, token: ${ADMIN} }`,
      `    - { role: viewer, token: ${VIEWER} }`,
      "streams:",
      "  - id: delta",
      "    name: Delta",
      "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
      "",
    ].join("\n"),
  );
  const { addr } = await startGateway(manifestPath, gatewayLog);
  const { origin } = await pageOrigin(`http://${addr}`, forcePreview);
  const page = await context.newPage();
  await context.clearCookies();
  await page.goto(`${origin}/`);
  const dialog = page.locator('[data-testid="login-dialog"]');

  await check("a protected gateway asks for a token; a wrong one is refused", async () => {
    await dialog.waitFor({ timeout: 10_000 });
    await dialog.locator("input").fill("not-the-right-token-at-all");
    await dialog.locator('button[type="submit"]').click();
    const err = await dialog.locator('[role="alert"]').innerText({ timeout: 5000 });
    assert(/not accepted/i.test(err), `unexpected error: ${err}`);
  });

  await check("a viewer token shows the streams but no management", async () => {
    await dialog.locator("input").fill(VIEWER);
    await dialog.locator('button[type="submit"]').click();
    await dialog.waitFor({ state: "detached", timeout: 10_000 });
    await tile(page, "delta").waitFor({ timeout: 10_000 });
    await assertPlaying(page, '[data-stream-id="delta"] canvas', "delta (viewer)");
    assert((await page.locator('[data-testid="add-camera"]').count()) === 0, "a viewer sees Add camera");
    assert((await tile(page, "delta").locator('[data-testid="edit-stream"]').count()) === 0, "a viewer sees edit buttons");
  });

  await check("signing out and in as admin shows the management buttons", async () => {
    await page.locator('button[aria-label="Sign out"]').click();
    await dialog.waitFor({ timeout: 10_000 });
    await dialog.locator("input").fill(ADMIN);
    await dialog.locator('button[type="submit"]').click();
    await dialog.waitFor({ state: "detached", timeout: 10_000 });
    await page.locator('[data-testid="add-camera"]').waitFor({ timeout: 10_000 });
    await assertPlaying(page, '[data-stream-id="delta"] canvas', "delta (admin)");
  });
  await page.close();
}

let fatal = null;
try {
  await main();
} catch (e) {
  fatal = e;
  log(`FATAL ${e?.stack ?? e}`);
} finally {
  await cleanup();
}

const passed = results.filter((r) => r.status === "passed").length;
const failed = results.filter((r) => r.status === "failed").length + (fatal ? 1 : 0);
const skipped = results.filter((r) => r.status === "skipped").length;
for (const r of results.filter((r) => r.status !== "passed")) log(`${r.status.toUpperCase()}: ${r.name}${r.note ? ` — ${r.note.split("\n")[0]}` : ""}`);
console.log(`e2e: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
