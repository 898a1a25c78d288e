// Browser checks for issue 15's bug fixes (the "Findings from the browser" that may land
// before the wall features), against a real gateway with tokens:
//
// - signing out stops playback at once (sockets closed, picture gone, the gateway's viewer
//   gauge drops) instead of playing until the server's keepalive;
// - a signed-out page does not poll protected endpoints (no 401 per poll) and opens the
//   sign-in dialog once;
// - honest empty states: "sign in to see the cameras" before sign-in, "you may not watch"
//   for a camera the token does not cover, the signed-in role shown as text.
//
// Called from run.mjs with its helpers:
// uiFixChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview }).

import { AXE_SOURCE, sample, tilePicture } from "./lib.mjs";

const ADMIN = "e2e-uifix-admin-token-0123456789";
const VIEWER = "e2e-uifix-viewer-token-0123456789";
const METRICS = "e2e-uifix-metrics-token-0123456789";
const FAILING = "uifix-unreachable";
const EDITABLE = "uifix-editable";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The gateway's metrics (read with the scrape-only token). */
async function metrics(gatewayUrl) {
  const r = await fetch(`${gatewayUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } });
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status}`);
  return r.text();
}


const unauthorizedCount = async (gatewayUrl) => sample(await metrics(gatewayUrl), "camgate_http_requests_total", ['status="401"']);
const viewers = async (gatewayUrl, stream) =>
  sample(await metrics(gatewayUrl), "camgate_viewers", [`stream="${stream}"`, 'transport="websocket"']);

export async function uiFixChecks({ context, check, assert, Skip, hasFfmpeg, gatewayWith, pageOrigin, forcePreview }) {
  const { gateway, gatewayUrl } = await gatewayWith("uifix", [
    "auth:",
    "  tokens:",
    `    - { role: admin, token: ${ADMIN} }`,
    `    - { role: viewer, token: ${VIEWER}, streams: [front] }`,
    `    - { role: metrics, token: ${METRICS} }`,
    "streams:",
    "  - id: front",
    "    name: Front door",
    "    on_demand: false",
    "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
    "  - id: back",
    "    name: Back yard",
    "    on_demand: false",
    "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
  ]);
  const { origin } = await pageOrigin(gatewayUrl, forcePreview);
  await context.clearCookies();
  const page = await context.newPage();
  // Counts how often the sign-in dialog appears (a node added to the document).
  await page.addInitScript(() => {
    window.__loginDialogOpened = 0;
    new MutationObserver((records) => {
      for (const r of records)
        for (const n of r.addedNodes)
          if (n instanceof Element && (n.matches('[data-testid="login-dialog"]') || n.querySelector('[data-testid="login-dialog"]')))
            window.__loginDialogOpened++;
    }).observe(document, { childList: true, subtree: true });
  });
  // WebSocket frames this page receives, counted by the browser (CDP).
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  let wsFrames = 0;
  cdp.on("Network.webSocketFrameReceived", () => wsFrames++);
  const dialog = page.locator('[data-testid="login-dialog"]');
  const signIn = async (token) => {
    await dialog.waitFor({ timeout: 10_000 });
    await dialog.locator("input").fill(token);
    await dialog.locator('button[type="submit"]').click();
    await dialog.waitFor({ state: "detached", timeout: 10_000 });
  };
  const picture = (id) => tilePicture(page, id);

  try {
    const unauthorizedBefore = await unauthorizedCount(gatewayUrl);
    await page.goto(`${origin}/`);

    await check("ui-fixes: before sign-in the page says to sign in, not that there are no cameras", async () => {
      await page.locator('[data-testid="signed-out"]').waitFor({ timeout: 10_000 });
      const text = await page.locator("main").innerText();
      assert(/sign in to see the cameras/i.test(text), `the page says: ${text}`);
      assert(!/no cameras yet/i.test(await page.locator("body").innerText()), "the page says there are no cameras");
    });

    await check("ui-fixes: signed out, the page does not poll into 401s and opens the sign-in dialog once", async () => {
      await dialog.waitFor({ timeout: 10_000 });
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "detached", timeout: 5000 });
      await sleep(5000);
      const grew = (await unauthorizedCount(gatewayUrl)) - unauthorizedBefore;
      const opened = await page.evaluate(() => window.__loginDialogOpened);
      console.log(`[e2e]       signed out for 5 s: ${grew} responses with 401, the dialog opened ${opened} time(s)`);
      assert(grew <= 2, `${grew} requests were refused with 401 while signed out (a poll loop)`);
      assert(opened === 1, `the sign-in dialog opened ${opened} times`);
      assert((await dialog.count()) === 0, "the sign-in dialog reopened by itself");
    });

    await check("ui-fixes: a viewer sees its role, and is told it may not watch a camera its token does not cover", async () => {
      await page.locator('[data-testid="signed-out"] button').click();
      await signIn(VIEWER);
      await picture("front");
      const role = page.locator('[data-testid="session-role"]');
      assert(await role.isVisible(), "the role is not shown");
      assert(/viewer/i.test(await role.innerText()), `the role reads ${await role.innerText()}`);
      assert((await page.locator('[data-testid="stream-tile"]').count()) === 1, "the viewer sees more than its one camera");
      await page.goto(`${origin}/#/streams/back`);
      const notShown = page.locator('[data-testid="stream-not-found"]');
      await notShown.waitFor({ timeout: 10_000 });
      assert((await notShown.getAttribute("data-reason")) === "forbidden", `reason ${await notShown.getAttribute("data-reason")}`);
      const text = await notShown.innerText();
      assert(/may not watch/i.test(text) && !/removed/i.test(text), `the page says: ${text}`);
      await page.goto(`${origin}/#/`);
    });

    await check("ui-fixes: signing out stops playback within a second (no frames, no picture, viewer gone at the gateway)", async () => {
      // Signed in as admin on a fresh load, whatever the checks before left behind.
      const status = await page.evaluate(async (token) => {
        const r = await fetch("/api/session", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) });
        return r.status;
      }, ADMIN);
      assert(status === 200 || status === 204, `signing in: HTTP ${status}`);
      await page.goto(`${origin}/#/`);
      await page.reload();
      await picture("front");
      await picture("back");
      // The focused view too: open one, then sign out from it.
      await page.goto(`${origin}/#/streams/front`);
      await page.waitForFunction(() => {
        const c = document.querySelector('[data-testid="focus-view"] canvas');
        return c instanceof HTMLCanvasElement && c.width !== 300;
      });
      const framesBefore = wsFrames;
      await sleep(1000);
      assert(wsFrames > framesBefore, "no WebSocket frames while playing (is the counter working?)");
      assert((await viewers(gatewayUrl, "front")) >= 1, "the gateway counts no viewer while playing");
      await page.locator('button[aria-label="Sign out"]').click();
      const signedOutAt = Date.now();
      await sleep(1000);
      const at1s = wsFrames;
      const canvases = await page.locator("canvas").count();
      let gauge = await viewers(gatewayUrl, "front");
      while (gauge > 0 && Date.now() - signedOutAt < 1500) {
        await sleep(100);
        gauge = await viewers(gatewayUrl, "front");
      }
      await sleep(2000);
      const later = wsFrames - at1s;
      console.log(`[e2e]       after sign-out: ${canvases} canvases at 1 s, ${later} frames in the next 2 s, viewer gauge ${gauge}`);
      assert(canvases === 0, `${canvases} pictures are still on the page 1 s after signing out`);
      assert(later === 0, `${later} WebSocket frames arrived more than 1 s after signing out`);
      assert(gauge === 0, `the gateway still counts ${gauge} viewer(s) of front after signing out`);
    });

    await check("ui-fixes: a failing tile stays in one retrying state per outage, and its countdown counts down", async () => {
      if (!hasFfmpeg) throw new Skip("ffmpeg-mjpeg is not in `camgate plugins`");
      // Nothing listens on port 1: every attempt fails at once (connection refused).
      const created = await fetch(`${gatewayUrl}/api/streams`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ id: FAILING, name: "Unreachable camera", source: { plugin: "ffmpeg-mjpeg", url: "rtsp://127.0.0.1:1/x" } }),
      });
      assert(created.status === 201, `creating the stream: HTTP ${created.status} ${await created.text()}`);
      await signIn(ADMIN);
      await page.goto(`${origin}/#/`);
      const tileSel = `[data-testid="stream-tile"][data-stream-id="${FAILING}"]`;
      await page.locator(tileSel).waitFor({ timeout: 10_000 });
      // Sample the tile's badge and reason every 50 ms from the moment it appears (it is
      // on demand: its source starts now).
      await page.evaluate((sel) => {
        window.__tileLog = [];
        let last = "";
        window.__tileSampler = setInterval(() => {
          const t = document.querySelector(sel);
          const state = t?.querySelector('[data-testid="status-badge"]')?.getAttribute("data-state") ?? "none";
          const reason = t?.querySelector('[data-testid="status-reason"]')?.textContent ?? "";
          const key = `${state}|${reason}`;
          if (key !== last) window.__tileLog.push({ at: Date.now(), state, reason });
          last = key;
        }, 50);
      }, tileSel);
      await sleep(14_000);
      const samples = await page.evaluate(() => {
        clearInterval(window.__tileSampler);
        return window.__tileLog;
      });
      const states = samples.map((s) => s.state).filter((s, i, all) => i === 0 || all[i - 1] !== s);
      const attempts = new Set(samples.map((s) => /attempt (\d+)/.exec(s.reason)?.[1]).filter(Boolean));
      console.log(`[e2e]       states: ${states.join(" → ")}; ${attempts.size} attempts seen`);
      const first = states.indexOf("retrying");
      assert(first >= 0, `the tile never showed retrying: ${states.join(" → ")}`);
      assert(attempts.size >= 3, `only ${attempts.size} attempts in 14 s (the check needs several)`);
      assert(!states.slice(first).includes("connecting"), `the tile flips back to connecting during the outage: ${states.join(" → ")}`);
      // The countdown: within one attempt, "retrying in Ns" takes several values, going down.
      const byAttempt = new Map();
      for (const s of samples) {
        const m = /retrying in (\d+)s \(attempt (\d+)\)/.exec(s.reason);
        if (!m) continue;
        const seen = byAttempt.get(m[2]) ?? [];
        if (seen.at(-1) !== Number(m[1])) seen.push(Number(m[1]));
        byAttempt.set(m[2], seen);
      }
      const counted = [...byAttempt.entries()].filter(([, secs]) => secs.length >= 2);
      console.log(`[e2e]       countdowns: ${[...byAttempt.entries()].map(([a, secs]) => `#${a}: ${secs.join(",")}`).join("; ")}`);
      assert(counted.length > 0, "no \"retrying in Ns\" ever counted down");
      for (const [a, secs] of counted) assert(secs.every((v, i) => i === 0 || v < secs[i - 1]), `attempt ${a} counts ${secs.join(",")}`);
      await fetch(`${gatewayUrl}/api/streams/${FAILING}`, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN}` } });
    });

    await check("ui-fixes: for an admin (who may see every camera), a link to one that does not exist says it may have been removed", async () => {
      await page.goto(`${origin}/#/streams/no-such-camera`);
      const notShown = page.locator('[data-testid="stream-not-found"]');
      await notShown.waitFor({ timeout: 10_000 });
      assert((await notShown.getAttribute("data-reason")) === "missing", `reason ${await notShown.getAttribute("data-reason")}`);
      assert(/removed/.test(await notShown.innerText()), `the page says: ${await notShown.innerText()}`);
    });

    await check("ui-fixes: a grid of live tiles runs no infinite animations (no pulsing dot, no spinner)", async () => {
      await page.goto(`${origin}/#/`);
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="stream-tile"]').length === 2, null, { timeout: 10_000 });
      await picture("front");
      await picture("back");
      await page.waitForFunction(
        () => [...document.querySelectorAll('[data-testid="status-badge"]')].every((b) => b.getAttribute("data-state") === "live"),
        null,
        { timeout: 10_000 },
      );
      await sleep(500);
      const running = await page.evaluate(() =>
        document
          .getAnimations()
          .filter((a) => a.playState === "running" && a.effect?.getComputedTiming().iterations === Infinity)
          .map((a) => `${a.animationName ?? "animation"} on ${a.effect?.target?.tagName?.toLowerCase()}.${String(a.effect?.target?.getAttribute?.("class") ?? "").slice(0, 60)}`),
      );
      assert(running.length === 0, `infinite animations run on an idle grid:\n${running.join("\n")}`);
    });

    await check("ui-fixes: the delay figure is named for what it measures (gateway capture → screen, not glass-to-glass)", async () => {
      const title = await page.locator('[data-stream-id="front"] [data-testid="stat-latency-label"]').getAttribute("title");
      assert(/gateway → screen/i.test(title ?? "") && /not glass-to-glass/i.test(title ?? "") && /buffer/.test(title ?? ""), `the tile's delay says: ${title}`);
      await page.goto(`${origin}/#/streams/front`);
      await page.locator('[data-testid="detail-latency"]').waitFor();
      const labels = await page.locator('[data-testid="stream-details"] dt').allInnerTexts();
      assert(labels.includes("Gateway → screen") && !labels.includes("Latency"), `the details' labels: ${labels.join(", ")}`);
      const note = await page.locator('[data-testid="detail-latency-note"]').innerText();
      assert(/not glass-to-glass/.test(note), `the note says: ${note}`);
    });

    await check("ui-fixes: accessibility: axe-core finds nothing serious on the grid (desktop and phone), the focused view and the dialogs; focus ring, tab stops, touch targets, announcements", async () => {
      const admin = { "content-type": "application/json", authorization: `Bearer ${ADMIN}` };
      const create = async (body) => {
        const r = await fetch(`${gatewayUrl}/api/streams`, { method: "POST", headers: admin, body: JSON.stringify(body) });
        assert(r.status === 201, `creating ${body.id}: HTTP ${r.status} ${await r.text()}`);
      };
      // An API stream (editable: the admin's toolbar is enabled) and, with ffmpeg, a failing one.
      await create({ id: EDITABLE, name: "Editable camera", source: { plugin: "testsrc", width: 320, height: 180, fps: 5 } });
      if (hasFfmpeg) await create({ id: `${FAILING}-2`, name: "Second unreachable camera", source: { plugin: "ffmpeg-mjpeg", url: "rtsp://127.0.0.1:1/y" } });
      const report = [];
      const audit = async (label) => {
        if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ content: AXE_SOURCE });
        const found = await page.evaluate(async () => {
          const { violations } = await window.axe.run(document, { resultTypes: ["violations"] });
          return violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")}`);
        });
        console.log(`[e2e]       axe on ${label}: ${found.length} serious/critical`);
        for (const f of found) report.push(`${label}: ${f}`);
      };
      /** Visible buttons and links under `root` smaller than 44 x 44 px. */
      const smallTargets = (root) =>
        page.evaluate((sel) => {
          const small = [];
          for (const el of document.querySelector(sel)?.querySelectorAll("button, a[href]") ?? []) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) continue;
            if (r.width < 44 || r.height < 44) small.push(`${el.getAttribute("aria-label") ?? el.textContent?.trim()} ${Math.round(r.width)}x${Math.round(r.height)}`);
          }
          return small;
        }, root);
      try {
        await page.goto(`${origin}/#/`);
        await picture("front");
        await picture(EDITABLE);
        if (hasFfmpeg) {
          // The failing camera's state change is said in the page's aria-live region.
          await page.waitForFunction(
            () => /Second unreachable camera: Retrying/.test(document.querySelector('[role="status"][aria-live="polite"]')?.textContent ?? ""),
            null,
            { timeout: 15_000 },
          );
        }
        await audit("the grid");

        // At most two tab stops per tile; each with a name.
        const stops = await page.evaluate(() =>
          [...document.querySelectorAll('[data-testid="stream-tile"]')].map((t) => ({
            id: t.getAttribute("data-stream-id"),
            stops: [...t.querySelectorAll("a[href], button, input, select, textarea, [tabindex]")]
              .filter((el) => el.tabIndex >= 0 && !el.disabled && el.getClientRects().length > 0)
              .map((el) => el.getAttribute("aria-label") ?? el.textContent?.trim() ?? ""),
          })),
        );
        console.log(`[e2e]       tab stops: ${stops.map((t) => `${t.id}: ${t.stops.length}`).join(", ")}`);
        for (const t of stops) {
          assert(t.stops.length <= 2, `tile ${t.id} has ${t.stops.length} tab stops: ${t.stops.join(" | ")}`);
          assert(t.stops.every((name) => name.length > 0), `tile ${t.id} has a tab stop without a name`);
        }

        // Tabbing onto a tile draws a ring around the whole tile, not clipped by anything.
        await page.locator("body").click({ position: { x: 5, y: 5 } });
        let onTile = false;
        for (let i = 0; i < 30 && !onTile; i++) {
          await page.keyboard.press("Tab");
          onTile = await page.evaluate(() => document.activeElement?.getAttribute("data-testid") === "open-stream");
        }
        assert(onTile, "Tab never reached a tile");
        const ring = await page.evaluate(() => {
          const tileEl = document.activeElement.closest('[data-testid="stream-tile"]');
          const clippedBy = [];
          for (let el = tileEl.parentElement; el && el !== document.documentElement; el = el.parentElement) {
            const s = getComputedStyle(el);
            if (s.overflow !== "visible" || s.overflowX !== "visible" || s.overflowY !== "visible") clippedBy.push(el.tagName);
          }
          return { focused: getComputedStyle(tileEl).boxShadow, blurred: null, clippedBy };
        });
        assert(/\b3px\b/.test(ring.focused), `the focused tile shows no ring (box-shadow: ${ring.focused})`);
        assert(ring.clippedBy.length === 0, `the ring is clipped by ${ring.clippedBy.join(", ")}`);

        await page.goto(`${origin}/#/streams/${EDITABLE}`);
        await page.locator('[data-testid="focus-view"]').waitFor();
        await page.waitForFunction(() => document.querySelector('[data-testid="focus-view"] canvas')?.width !== 300);
        await audit("the focused view");

        // A phone: every control is a 44 px touch target and has a name (the "+" too).
        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForFunction(() => window.innerWidth === 390);
        await sleep(500); // buttons change size with a transition
        const focusSmall = [...(await smallTargets("header")), ...(await smallTargets('[data-testid="focus-view"]'))];
        await page.goto(`${origin}/#/`);
        await picture("front");
        await audit("the grid on a phone");
        const gridSmall = [...(await smallTargets("header")), ...(await smallTargets('[data-testid="stream-grid"]'))];
        await page.setViewportSize({ width: 1280, height: 800 });
        assert(focusSmall.length === 0 && gridSmall.length === 0, `touch targets under 44 px on a phone: ${[...focusSmall, ...gridSmall].join(", ")}`);

        await page.locator('[data-testid="add-camera"]').click();
        await page.locator('[data-testid="stream-form"]').waitFor();
        await audit("the stream dialog");
        await page.keyboard.press("Escape");
        await page.locator('[data-testid="stream-form"]').waitFor({ state: "detached" });
        await page.locator('button[aria-label="Sign out"]').click();
        await dialog.waitFor();
        await audit("the sign-in dialog");
        assert(report.length === 0, `axe-core found:\n${report.join("\n")}`);
      } finally {
        for (const id of [EDITABLE, `${FAILING}-2`]) await fetch(`${gatewayUrl}/api/streams/${id}`, { method: "DELETE", headers: admin });
      }
    });
  } finally {
    await cdp.detach().catch(() => undefined);
    await page.close();
    await gateway.stop();
  }
}
