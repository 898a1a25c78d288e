// Browser checks for issue 15's tiles and focused view, against real gateways:
//
// - visibility drives bandwidth: a hidden tab (a minimized window, for real: see
//   lib.mjs `rawChromium`) with 6 tiles costs the gateway ≈ 0 bytes per hour once its
//   players have closed their sockets, an on-demand stream only it watched is stopped after
//   its idle_timeout, and shown again every tile has a picture within about 2 s; a tile behind
//   a modal dialog receives nothing and its socket closes;
// - the focused view: previous/next (buttons and ←/→, wrapping), snapshot download, copy
//   link, no blank frame when it opens from a tile, a phone in landscape sees the whole
//   picture, axe-core finds nothing serious;
// - outages: the headline is the cause, "Retry now" for admins;
// - unattended sign-in with `#token=`;
// - variants: tiles play `sub` at full rate, the focused view `main` (skipped while the
//   gateway has no variants).
//
// Called from run.mjs: tilesChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith,
// pageOrigin, forcePreview, gatewayLog, cleanups }).

import fs from "node:fs";
import { axeSerious, metricsText, rawChromium, sample, tilePicture } from "./lib.mjs";
import { startDemoCamera } from "./passthrough.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...args) => console.log("[e2e]      ", ...args);

const ADMIN = "e2e-tiles-admin-token-0123456789";
const VIEWER = "e2e-tiles-viewer-token-0123456789";
const METRICS = "e2e-tiles-metrics-token-0123456789";

/** Polls `fn` until it returns a truthy value (returned), or throws after `timeout` ms. */
async function waitFor(fn, timeout, what, interval = 100) {
  const until = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

const TILE_STREAMS = ["tile-1", "tile-2", "tile-3", "tile-4", "tile-5", "tile-od"];

/** Canvases of grid tiles that hold a picture (the player sizes the canvas on its first draw). */
const PICTURES_JS = `[...document.querySelectorAll('[data-testid="stream-tile"] canvas')].filter((c) => c.width !== 300 && c.height !== 150).length`;

/** A fingerprint of each tile's picture (a coarse sample of its pixels), in grid order. */
const FINGERPRINTS_JS = `[...document.querySelectorAll('[data-testid="stream-tile"]')].map((t) => {
  const c = t.querySelector("canvas");
  const v = t.querySelector("video");
  const src = v && !v.classList.contains("hidden") ? v : c;
  const o = document.createElement("canvas");
  o.width = 16;
  o.height = 9;
  const g = o.getContext("2d");
  try { g.drawImage(src, 0, 0, 16, 9); } catch { return ""; }
  return Array.from(g.getImageData(0, 0, 16, 9).data).join(",");
})`;

/** Records, on every animation frame, whether the focused view's picture is blank. */
function watchFocusFrames() {
  window.__focusFrames = [];
  const tick = () => {
    const view = document.querySelector('[data-testid="focus-view"] [data-testid="live-view"]');
    if (view) {
      const canvas = view.querySelector("canvas");
      const video = view.querySelector("video");
      const shown = (el) => el && !el.classList.contains("hidden") && Number(getComputedStyle(el).opacity) >= 0.99;
      const canvasPicture = shown(canvas) && canvas.width !== 300;
      const videoPicture = shown(video) && video.readyState >= 2;
      window.__focusFrames.push({ picture: Boolean(canvasPicture || videoPicture), width: canvas?.width ?? 0 });
    }
    if (window.__focusFrames.length < 240) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

export async function tilesChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview, gatewayLog, cleanups }) {
  // --- An open gateway: 5 always-on cameras (tile-5: the demo RTSP camera's H.264, played
  // as video, when the demo camera runs here) and an on-demand one ------------------------------
  const camera = await startDemoCamera().catch((e) => {
    log(`NOTE: no demo camera (${e.message}): tile-5 is a testsrc camera, the video socket is not checked`);
    return null;
  });
  const source = (id) =>
    id === "tile-5" && camera ? `    source: { plugin: rtsp, url: '${camera.base}/test' }` : "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }";
  const { gateway, gatewayUrl } = await gatewayWith("tiles", [
    "streams:",
    ...TILE_STREAMS.flatMap((id, i) => [
      `  - id: ${id}`,
      `    name: ${id === "tile-od" ? "On demand" : `Tile ${i + 1}`}`,
      id === "tile-od" ? "    on_demand: true" : "    on_demand: false",
      ...(id === "tile-od" ? ["    idle_timeout: 2s"] : []),
      source(id),
    ]),
  ]);
  const { origin } = await pageOrigin(gatewayUrl, forcePreview);
  const metrics = () => metricsText(gatewayUrl);
  const framesSent = (text, id) => sample(text, "camgate_frames_sent_total", [`stream="${id}"`]);

  try {
    await check("tiles: a hidden tab with 6 tiles costs ≈ 0 bytes per hour, its on-demand camera is stopped, and shown again it plays within 2 s", async () => {
      const raw = await rawChromium(cleanups);
      try {
        await raw.send("Page.enable");
        await raw.send("Network.enable");
        let pageBytes = 0;
        raw.on((m) => {
          if (m.method === "Network.webSocketFrameReceived") pageBytes += m.params.response.payloadData.length;
          if (m.method === "Network.dataReceived") pageBytes += m.params.encodedDataLength || m.params.dataLength || 0;
        });
        await raw.setWindowState("normal");
        // Tall enough for every tile to be on screen (off-screen tiles ask for nothing).
        await raw.send("Emulation.setDeviceMetricsOverride", { width: 1440, height: 2400, deviceScaleFactor: 1, mobile: false });
        await raw.navigate(`${origin}/`);
        await waitFor(async () => (await raw.evaluate(PICTURES_JS).catch(() => 0)) === 6, 30_000, "6 tiles with a picture");
        const before = await metrics();
        assert(sample(before, "camgate_source_up", ['stream="tile-od"']) === 1, "the on-demand camera is not up while watched");

        const videoPath = camera
          ? await waitFor(
              async () => {
                const label = await raw.evaluate(`document.querySelector('[data-stream-id="tile-5"] [data-testid="stat-path"]')?.textContent ?? ""`);
                return /WebCodecs|MSE/.test(label) ? label : null;
              },
              20_000,
              "tile-5 to play video",
            )
          : null;

        await raw.setWindowState("minimized");
        const hiddenAt = Date.now();
        const state = await raw.evaluate("document.visibilityState");
        assert(state === "hidden", `a minimized window reports visibilityState ${state}`);
        if (videoPath) {
          // The video socket closes within a second or so (a new one gets the current GOP at
          // once; a resumed one waits for a keyframe); JPEG ones stay 10 s.
          await sleep(2_500);
          const m = await metrics();
          const video = sample(m, "camgate_viewers", ['stream="tile-5"', 'transport="websocket"']);
          const jpeg = sample(m, "camgate_viewers", ['stream="tile-1"', 'transport="websocket"']);
          log(`2.5 s hidden: tile-5 (${videoPath}) has ${video} socket(s), tile-1 (JPEG) ${jpeg}`);
          assert(video === 0, `the hidden video tile still has ${video} socket(s) after 2.5 s`);
          assert(jpeg === 1, `the hidden JPEG tile has ${jpeg} sockets after 2.5 s (expected 1 until 10 s)`);
        }
        await sleep(10_000 + 1_000 - (Date.now() - hiddenAt));
        const m0 = await metrics();
        const page0 = pageBytes;
        // 20 s, watching for the on-demand camera to stop.
        let stoppedAfter = null;
        while (Date.now() - hiddenAt < 11_000 + 20_000) {
          await sleep(250);
          if (stoppedAfter === null && sample(await metrics(), "camgate_source_up", ['stream="tile-od"']) === 0) stoppedAfter = Date.now() - hiddenAt;
        }
        const m1 = await metrics();
        const sent = sample(m1, "camgate_bytes_sent_total", []) - sample(m0, "camgate_bytes_sent_total", []);
        const received = pageBytes - page0;
        const perHour = Math.round(sent * 180);
        log(`hidden tab, 6 tiles, 20 s after the first 11 s: the gateway sent ${sent} bytes (${perHour} bytes/hour); the page received ${received} bytes`);
        assert(sent === 0, `the gateway sent ${sent} bytes to a hidden tab in 20 s (${perHour} bytes/hour)`);
        assert(received < 2048, `the hidden page received ${received} bytes in 20 s`);
        const viewersLeft = sample(m1, "camgate_viewers", ['transport="websocket"']);
        assert(viewersLeft === 0, `the gateway still counts ${viewersLeft} WebSocket viewers of the hidden tab`);
        // Closed at ~10 s, idle_timeout 2 s: stopped well within the 20 s.
        assert(sample(m1, "camgate_source_up", ['stream="tile-od"']) === 0, "the on-demand camera is still up");
        const od = await (await fetch(`${gatewayUrl}/api/streams/tile-od`)).json();
        assert(od.state === "stopped", `the on-demand camera's state is ${od.state}`);
        log(`on-demand camera (idle_timeout 2 s): source_up 0 from ${stoppedAfter ?? "?"} ms after the tab was hidden (socket closed at 10 s); API state ${od.state}`);

        const sentBefore = Object.fromEntries(TILE_STREAMS.map((id) => [id, framesSent(m1, id)]));
        const picturesBefore = await raw.evaluate(FINGERPRINTS_JS);
        await raw.setWindowState("normal");
        const shownAt = Date.now();
        assert((await raw.evaluate("document.visibilityState")) === "visible", "the restored window is not visible");
        // Every camera sends again (the on-demand one restarts), and every tile draws.
        await waitFor(
          async () => {
            const text = await metrics();
            return TILE_STREAMS.every((id) => framesSent(text, id) > sentBefore[id]);
          },
          5_000,
          "frames for every tile",
          50,
        );
        const framesAfter = Date.now() - shownAt;
        // And every tile draws a new picture.
        await waitFor(
          async () => {
            const now = await raw.evaluate(FINGERPRINTS_JS);
            return now.every((f, i) => f !== "" && f !== picturesBefore[i]);
          },
          5_000,
          "a new picture in every tile",
          50,
        );
        const drawnAfter = Date.now() - shownAt;
        log(`shown again: every camera (the on-demand one restarted) sent a frame within ${framesAfter} ms, every tile drew a new picture within ${drawnAfter} ms`);
        assert(drawnAfter <= 3_000, `shown again, the tiles took ${drawnAfter} ms to draw new pictures`);
        assert(framesAfter <= 3_000, `shown again, the tiles waited ${framesAfter} ms for frames`);
      } finally {
        await raw.close();
      }
    });

    const page = await context.newPage();
    try {
      await page.goto(`${origin}/`);
      await page.waitForFunction(PICTURES_JS + " === 6", null, { timeout: 30_000 });

      await check("tiles: a tile behind a modal dialog receives nothing, and its socket closes after 10 s", async () => {
        await page.locator('[data-testid="add-camera"]').first().click();
        await page.locator('[role="dialog"]').waitFor({ timeout: 5_000 });
        const openedAt = Date.now();
        await sleep(1_500); // what was granted before may still come
        const a = await metrics();
        await sleep(2_000);
        const b = await metrics();
        const sent = TILE_STREAMS.reduce((n, id) => n + framesSent(b, id) - framesSent(a, id), 0);
        assert(sent === 0, `the gateway sent ${sent} frames to tiles behind the dialog in 2 s`);
        await sleep(Math.max(0, 10_000 + 1_500 - (Date.now() - openedAt)));
        const viewers = sample(await metrics(), "camgate_viewers", ['transport="websocket"']);
        assert(viewers === 0, `${viewers} sockets are still open 11.5 s after the dialog opened`);
        await page.keyboard.press("Escape");
        const closedAt = Date.now();
        const c = await metrics();
        await waitFor(async () => framesSent(await metrics(), "tile-1") > framesSent(c, "tile-1"), 3_000, "frames after the dialog closed", 50);
        log(`behind the dialog: 0 frames, sockets closed after 10 s; frames again ${Date.now() - closedAt} ms after it closed`);
      });

      await check("tiles: the focused view opens from a tile without a blank frame, with previous/next (buttons, ←/→, wrapping)", async () => {
        await page.evaluate(watchFocusFrames);
        await page.locator('[data-testid="stream-tile"][data-stream-id="tile-2"] [data-testid="open-stream"]').click();
        await page.waitForSelector('[data-testid="focus-view"][data-stream-id="tile-2"]');
        await page.waitForFunction(() => window.__focusFrames.length >= 30, null, { timeout: 10_000 });
        const frames = await page.evaluate(() => window.__focusFrames);
        const blank = frames.filter((f) => !f.picture).length;
        log(`focused view: ${blank} blank frames of the first ${frames.length} painted`);
        assert(blank === 0, `the focused view showed ${blank} blank frames of ${frames.length} (first: ${JSON.stringify(frames.slice(0, 5))})`);

        const prev = page.locator('[data-testid="previous-camera"]');
        const next = page.locator('[data-testid="next-camera"]');
        assert((await prev.getAttribute("aria-label")) === "Previous camera: Tile 1", `previous is ${await prev.getAttribute("aria-label")}`);
        assert((await next.getAttribute("aria-label")) === "Next camera: Tile 3", `next is ${await next.getAttribute("aria-label")}`);
        await next.click();
        await page.waitForSelector('[data-testid="focus-view"][data-stream-id="tile-3"]');
        await page.keyboard.press("ArrowRight");
        await page.waitForSelector('[data-testid="focus-view"][data-stream-id="tile-4"]');
        for (const id of ["tile-3", "tile-2", "tile-1"]) {
          await page.keyboard.press("ArrowLeft");
          await page.waitForSelector(`[data-testid="focus-view"][data-stream-id="${id}"]`);
        }
        await page.keyboard.press("ArrowLeft"); // wraps to the last camera
        await page.waitForSelector('[data-testid="focus-view"][data-stream-id="tile-od"]');
        assert((await next.getAttribute("aria-label")) === "Next camera: Tile 1", "next does not wrap to the first camera");
        assert(page.url().endsWith("#/streams/tile-od"), `URL is ${page.url()}`);
      });

      await check("tiles: the focused view's snapshot downloads a JPEG, copy-link copies the camera's absolute link and says so", async () => {
        await page.goto(`${origin}/#/streams/tile-3`);
        await page.waitForSelector('[data-testid="focus-view"][data-stream-id="tile-3"]');
        const [download] = await Promise.all([page.waitForEvent("download", { timeout: 10_000 }), page.locator('[data-testid="snapshot"]').click()]);
        const file = await download.path();
        const bytes = fs.readFileSync(file);
        assert(bytes[0] === 0xff && bytes[1] === 0xd8, "the snapshot is not a JPEG");
        assert(/^tile-3-.*\.jpg$/.test(download.suggestedFilename()), `file name ${download.suggestedFilename()}`);
        log(`snapshot: ${download.suggestedFilename()}, ${bytes.length} bytes`);

        await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
        await page.locator('[data-testid="copy-link"]').click();
        await page.waitForFunction(() => document.querySelector('[data-testid="announcer"]')?.textContent === "Link copied", null, { timeout: 5_000 });
        const copied = await page.evaluate(() => navigator.clipboard.readText());
        assert(copied === `${origin}/#/streams/tile-3`, `copied ${copied}`);
      });

      await check("tiles: axe-core finds nothing serious on the focused view with its new buttons", async () => {
        await page.waitForSelector('[data-testid="focus-view"] [data-testid="next-camera"]');
        const found = await axeSerious(page);
        assert(found.length === 0, `axe-core found:\n${found.join("\n")}`);
      });
    } finally {
      await page.close();
    }

    await check("tiles: a phone in landscape (844x390) sees the whole focused picture", async () => {
      const phone = await context.newPage();
      try {
        await phone.setViewportSize({ width: 844, height: 390 });
        await phone.goto(`${origin}/#/streams/tile-1`);
        await phone.waitForFunction(() => (document.querySelector('[data-testid="focus-view"] canvas')?.width ?? 300) !== 300, null, { timeout: 20_000 });
        const r = await phone.locator('[data-testid="focus-view"] [data-testid="live-view"]').boundingBox();
        assert(r, "the focused picture has no box");
        log(`focused picture at 844x390: ${Math.round(r.x)},${Math.round(r.y)} ${Math.round(r.width)}x${Math.round(r.height)}`);
        assert(r.y >= 0 && r.y + r.height <= 390 && r.x >= 0 && r.x + r.width <= 844, `the picture's box ${JSON.stringify(r)} leaves the 844x390 screen`);
        assert(r.width >= 300, `the picture is only ${r.width} px wide`);
      } finally {
        await phone.close();
      }
    });
  } finally {
    await gateway.stop();
    await camera?.stop();
  }

  await authAndOutageChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview, gatewayLog });
  await variantChecks({ context, check, assert, Skip, gatewayWith, pageOrigin, forcePreview });
}

/** A gateway with tokens: unattended sign-in, the outage headline and "Retry now". */
async function authAndOutageChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview, gatewayLog }) {
  const { gateway, gatewayUrl } = await gatewayWith("tiles-auth", [
    "auth:",
    "  tokens:",
    `    - { role: admin, token: ${ADMIN} }`,
    `    - { role: viewer, token: ${VIEWER} }`,
    `    - { role: metrics, token: ${METRICS} }`,
    "streams:",
    "  - id: ok-cam",
    "    name: Working camera",
    "    on_demand: false",
    "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
    ...(hasFfmpeg
      ? [
          "  - id: down-cam",
          "    name: Unreachable camera",
          "    on_demand: false",
          // Nothing listens on port 1: every attempt fails at once (connection refused).
          "    source: { plugin: ffmpeg-mjpeg, url: 'rtsp://127.0.0.1:1/x', fps: 5 }",
        ]
      : []),
  ]);
  const { origin } = await pageOrigin(gatewayUrl, forcePreview);
  const page = await context.newPage();
  const requests = [];
  const consoleLines = [];
  page.on("request", (r) => requests.push(`${r.method()} ${r.url()}`));
  page.on("console", (m) => consoleLines.push(m.text()));
  const picture = (id) => tilePicture(page, id);
  try {
    await check("tiles: unattended sign-in: /#token=<viewer token> plays, the token leaves the address bar and is never sent in a URL or logged", async () => {
      await context.clearCookies();
      await page.goto(`${origin}/#token=${VIEWER}`);
      await picture("ok-cam");
      const href = await page.evaluate(() => location.href);
      assert(!href.includes(VIEWER) && !href.includes("token="), `the address bar still has the token: ${href}`);
      const sessionPosts = requests.filter((r) => r.startsWith("POST ") && r.endsWith("/api/session")).length;
      assert(sessionPosts === 1, `${sessionPosts} POST /api/session`);
      const leaked = requests.filter((r) => r.includes(VIEWER));
      assert(leaked.length === 0, `requests with the token in their URL: ${leaked.join(", ")}`);
      assert(!consoleLines.some((l) => l.includes(VIEWER)), "the token was logged to the console");
      assert((await page.locator('[data-testid="retry-now"]').count()) === 0, "a viewer sees Retry now");
      await sleep(500);
      assert(!fs.readFileSync(gatewayLog, "utf8").includes(VIEWER), "the gateway log contains the token");
      log(`signed in from the link with 1 POST /api/session; now at ${href}`);
    });

    await check("tiles: a sign-in link with a wrong token opens the sign-in dialog with an error, and keeps the route", async () => {
      await context.clearCookies();
      await page.goto("about:blank"); // a fresh load, not a change of fragment
      await page.goto(`${origin}/#/streams/ok-cam?token=not-a-valid-token-000`);
      const dialog = page.locator('[data-testid="login-dialog"]');
      await dialog.waitFor({ timeout: 10_000 });
      const err = await dialog.locator('[role="alert"]').innerText({ timeout: 5_000 });
      assert(/not accepted/i.test(err), `the dialog says: ${err}`);
      const href = await page.evaluate(() => location.href);
      assert(!href.includes("token="), `the address bar still has the token: ${href}`);
      assert(href.endsWith("#/streams/ok-cam"), `the route was lost: ${href}`);
      await dialog.locator("input").fill(ADMIN);
      await dialog.locator('button[type="submit"]').click();
      await dialog.waitFor({ state: "detached", timeout: 10_000 });
    });

    await check("tiles: a camera that is down is headlined by its cause, and an admin's Retry now starts a new attempt at once", async () => {
      if (!hasFfmpeg) throw new Skip("ffmpeg-mjpeg is not in `camgate plugins`");
      await page.goto(`${origin}/#/`);
      const tile = page.locator('[data-testid="stream-tile"][data-stream-id="down-cam"]');
      await tile.locator('[data-testid="status-badge"][data-state="retrying"], [data-testid="status-badge"][data-state="offline"]').waitFor({ timeout: 30_000 });
      const api = await (await fetch(`${gatewayUrl}/api/streams/down-cam`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
      const headline = await tile.locator('[data-testid="status-headline"]').innerText();
      log(`down-cam: API cause ${api.cause ?? "(none)"}, headline "${headline}"`);
      const button = tile.locator('[data-testid="retry-now"]');
      await button.waitFor({ timeout: 5_000 });
      // The badge, sampled every 50 ms from the click on.
      await page.evaluate(() => {
        window.__badges = [];
        const sample = () => window.__badges.push(document.querySelector('[data-stream-id="down-cam"] [data-testid="status-badge"]')?.getAttribute("data-state"));
        window.__badgeTimer = setInterval(sample, 50);
      });
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/api/streams/down-cam/retry"), { timeout: 5_000 }), button.click()]);
      await sleep(1_000);
      const badges = await page.evaluate(() => {
        clearInterval(window.__badgeTimer);
        return window.__badges;
      });
      if (response.status() === 404 || response.status() === 405) throw new Skip(`the gateway has no retry endpoint yet (HTTP ${response.status()})`);
      assert(response.status() === 202, `POST retry: HTTP ${response.status()}`);
      assert(badges.includes("connecting"), `after Retry now the tile showed ${[...new Set(badges)].join(", ")}`);
      // The focused view has it too (over the picture), and passes axe-core.
      await page.goto(`${origin}/#/streams/down-cam`);
      await page.locator('[data-testid="focus-view"] [data-testid="retry-now"]').waitFor({ timeout: 15_000 });
      const focusHeadline = await page.locator('[data-testid="focus-view"] [data-testid="status-headline"]').innerText();
      const found = await axeSerious(page);
      assert(found.length === 0, `axe-core found on the failing camera's focused view:\n${found.join("\n")}`);
      if (api.cause === undefined) throw new Skip("the gateway's API has no `cause` yet (the headline falls back to the generic text)");
      assert(api.cause === "unreachable", `the API's cause for a refused connection is ${api.cause}`);
      assert(headline === "Camera unreachable", `the tile's headline is "${headline}"`);
      assert(focusHeadline === "Camera unreachable", `the focused view's headline is "${focusHeadline}"`);
    });
  } finally {
    await page.close();
    await gateway.stop();
  }
}

/** A stream with a derived sub variant: tiles play it at full rate, the focused view plays main. */
async function variantChecks({ context, check, assert, Skip, gatewayWith, pageOrigin, forcePreview }) {
  await check("tiles: a tile plays the stream's sub variant at full rate; the focused view plays main without a blank frame", async () => {
    let started;
    try {
      started = await gatewayWith("tiles-variants", [
        "streams:",
        "  - id: var-cam",
        "    name: Variant camera",
        "    on_demand: false",
        "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
        "    sub: { width: 160 }",
      ]);
    } catch (e) {
      throw new Skip(`the gateway does not take a sub variant yet (${String(e.message).split("\n")[0]})`);
    }
    const { gateway, gatewayUrl } = started;
    const page = await context.newPage();
    try {
      const stream = await (await fetch(`${gatewayUrl}/api/streams/var-cam`)).json();
      if (!Array.isArray(stream.variants)) throw new Skip("the API lists no `variants` yet");
      assert(stream.variants.includes("sub"), `variants: ${JSON.stringify(stream.variants)}`);
      const { origin } = await pageOrigin(gatewayUrl, forcePreview);
      const sockets = [];
      page.on("websocket", (ws) => sockets.push(ws.url()));
      await page.goto(`${origin}/`);
      const tileCanvas = '[data-testid="stream-tile"][data-stream-id="var-cam"] canvas';
      await page.waitForFunction((sel) => document.querySelector(sel)?.width === 160, tileCanvas, { timeout: 20_000 });
      assert(sockets.some((u) => u.includes("variant=sub") && !u.includes("max_fps")), `the tile's socket: ${sockets.join(", ")}`);
      await sleep(3_000);
      const fps = parseFloat(await page.locator('[data-stream-id="var-cam"] [data-testid="stat-fps"]').innerText());
      log(`tile on sub: 160 px wide, ${fps} fps drawn (source 10 fps)`);
      assert(fps > 7, `the tile draws ${fps} fps of a 10 fps sub`);

      await page.evaluate(watchFocusFrames);
      await page.locator('[data-stream-id="var-cam"] [data-testid="open-stream"]').click();
      await page.waitForFunction(() => document.querySelector('[data-testid="focus-view"] canvas')?.width === 320, null, { timeout: 20_000 });
      await page.waitForFunction(() => window.__focusFrames.length >= 30, null, { timeout: 10_000 });
      const frames = await page.evaluate(() => window.__focusFrames);
      const blank = frames.filter((f) => !f.picture).length;
      const firstMain = frames.findIndex((f) => f.width === 320);
      log(`focused view: ${blank} blank frames; the sub picture shown for ${firstMain} frames until main's first`);
      assert(blank === 0, `the focused view showed ${blank} blank frames`);
      assert(sockets.some((u) => !u.includes("variant=sub")), "the focused view did not open a main socket");
    } finally {
      await page.close();
      await gateway.stop();
    }
  });
}
