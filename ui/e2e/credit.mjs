// Credit flow control in a real Chromium against a real gateway (README, "Viewing protocol"):
// the player grants credit only while its tile is on screen, so a tile scrolled out of view
// stops receiving frames (it costs the gateway nothing) and gets the latest picture at once
// when it comes back. Measured on the gateway's side: `camgate_frames_sent_total` for the
// stream, read from /metrics (this gateway has no tokens, so /metrics is open). And a page
// that takes a second per picture (a busy tab) sees pictures under a second old with credit
// (without, its backlog waits in the browser: the figures are logged for comparison).
//
// Called from run.mjs with its helpers:
// creditChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview }).


const STREAM = "credit-cam";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Frames the gateway has sent to this stream's WebSocket viewers so far. */
async function framesSent(gatewayUrl) {
  const r = await fetch(`${gatewayUrl}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status}`);
  const prefix = `camgate_frames_sent_total{stream="${STREAM}",transport="websocket"}`;
  const line = (await r.text()).split("\n").find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(prefix.length).trim()) : 0;
}

/** Frames sent during `ms` from now. */
async function sentDuring(gatewayUrl, ms) {
  const before = await framesSent(gatewayUrl);
  await sleep(ms);
  return (await framesSent(gatewayUrl)) - before;
}

/**
 * In the page (served by the gateway: same origin): a busy consumer that spends one second
 * of main-thread work on each picture, with or without credit (on credit from the first
 * frame through `?credit=1`, then one grant per picture done with). Returns each picture's
 * age when the page got to it: the page's clock minus the capture time in the frame's
 * APP11 tag (same machine, same clock).
 */
function busyConsumer({ stream, useCredit, pictures }) {
  return new Promise((resolve, reject) => {
    // Credit in the URL holds from the first frame. (A grant sent on open arrives after the
    // gateway may have sent a frame or two freely: one extra frame keeps the pipe one
    // picture ahead, a second old, for the whole session.)
    const query = useCredit ? "?credit=1" : "";
    const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/ws/streams/${stream}${query}`);
    ws.binaryType = "arraybuffer";
    const ages = [];
    ws.onerror = () => reject(new Error("WebSocket error"));
    ws.onmessage = (e) => {
      if (typeof e.data === "string") return; // hello, state
      const view = new DataView(e.data);
      // SOI, APP11 marker and length, "CAMG\0", seq (u64), capture time (u64 µs).
      const captureMs = Number(view.getBigUint64(19) / 1000n);
      ages.push(Date.now() - captureMs);
      const until = performance.now() + 1000;
      while (performance.now() < until) {
        // A busy tab: a second of work per picture.
      }
      if (ages.length >= pictures) {
        ws.close();
        resolve(ages);
      } else if (useCredit) {
        ws.send(JSON.stringify({ type: "credit", frames: 1 }));
      }
    };
  });
}

const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))];

export async function creditChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview }) {
  const { gateway, gatewayUrl } = await gatewayWith("credit", [
    "streams:",
    `  - id: ${STREAM}`,
    "    name: Credit camera",
    "    on_demand: false",
    "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
  ]);
  const { origin } = await pageOrigin(gatewayUrl, forcePreview);
  const page = await context.newPage();
  const tileSelector = `[data-testid="stream-tile"][data-stream-id="${STREAM}"]`;
  /** Where the tile is relative to the viewport (IntersectionObserver's view of it). */
  const tileOnScreen = () =>
    page.evaluate((sel) => {
      const r = document.querySelector(sel)?.getBoundingClientRect();
      return !!r && r.bottom > 0 && r.top < window.innerHeight;
    }, tileSelector);
  try {
    await page.goto(`${origin}/`);
    await page.waitForFunction(
      (sel) => {
        const c = document.querySelector(`${sel} canvas`);
        return c instanceof HTMLCanvasElement && c.width !== 300 && c.height !== 150;
      },
      tileSelector,
      { timeout: 20_000 },
    );

    await check("credit: a visible tile keeps receiving frames", async () => {
      const sent = await sentDuring(gatewayUrl, 2000);
      // A grid tile asks for max_fps=5 of a 10 fps camera: about 10 frames in 2 s.
      assert(sent >= 5, `the gateway sent ${sent} frames to the visible tile in 2 s`);
    });

    await check("credit: a tile scrolled off-screen receives nothing, and its socket stays open", async () => {
      // A tall block above the grid pushes the tile out of view.
      await page.evaluate(() => {
        const spacer = document.createElement("div");
        spacer.id = "credit-spacer";
        spacer.style.height = "5000px";
        document.body.prepend(spacer);
        window.scrollTo(0, 0);
      });
      assert(!(await tileOnScreen()), "the tile is still on screen");
      // What it was granted before it left may still come (a few frames); then nothing.
      await sleep(1500);
      const sent = await sentDuring(gatewayUrl, 3000);
      assert(sent === 0, `the gateway sent ${sent} frames to the off-screen tile in 3 s`);
      const badge = await page.locator(`${tileSelector} [data-testid="status-badge"]`).getAttribute("data-state");
      assert(badge === "live", `the off-screen tile's status is ${badge} (its socket should stay open)`);
    });

    await check("credit: scrolled back, the tile gets the latest picture at once and keeps playing", async () => {
      const before = await framesSent(gatewayUrl);
      const back = Date.now();
      await page.evaluate(() => document.getElementById("credit-spacer")?.remove());
      assert(await tileOnScreen(), "the tile is not on screen");
      let first = null;
      while (Date.now() - back < 3000) {
        if ((await framesSent(gatewayUrl)) > before) {
          first = Date.now() - back;
          break;
        }
        await sleep(50);
      }
      assert(first !== null, "no frame within 3 s of the tile coming back");
      const sent = await sentDuring(gatewayUrl, 2000);
      assert(sent >= 5, `the gateway sent ${sent} frames in 2 s after the tile came back`);
      console.log(`[e2e]       first frame ${first} ms after the tile came back, then ${sent} in 2 s`);
    });

    await check("credit: a consumer busy for a second per picture always sees a picture under a second old", async () => {
      // The same page, served by the gateway (its WebSocket must be same-origin).
      await page.goto(`${gatewayUrl}/healthz`);
      const pictures = 10;
      const withCredit = await page.evaluate(busyConsumer, { stream: STREAM, useCredit: true, pictures });
      const without = await page.evaluate(busyConsumer, { stream: STREAM, useCredit: false, pictures });
      const summary = (ages) => `p50 ${percentile(ages, 50)} ms, max ${Math.max(...ages)} ms`;
      console.log(`[e2e]       picture age with credit: ${summary(withCredit)}; without: ${summary(without)} (${without.join(", ")})`);
      assert(Math.max(...withCredit) < 1000, `with credit, pictures were up to ${Math.max(...withCredit)} ms old: ${withCredit.join(", ")}`);
    });
  } finally {
    await page.close();
    await gateway.stop();
  }
}
