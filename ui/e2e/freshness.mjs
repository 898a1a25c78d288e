// Viewer freshness and picture health (issue 17) in a real Chromium against a real gateway:
//
// - The page reports what it draws (`shown` messages, see README "Viewing protocol"): after
//   it has shown a stream for a while, the gateway's /metrics (scraped with the test's admin
//   token, as a Prometheus would with its credential) counts frames shown and has picture
//   ages that are plausible on loopback (> 20 ms: the MJPEG path's smoothing buffer alone
//   holds 200 ms; < 5 s), which also proves the clock offset from hello's `server_time_us`.
// - A stream the gateway reports `frozen` gets a Frozen badge on its tile and in the focused
//   view: a test pattern that repeats one picture, judged by the gateway's picture-health
//   monitor with a 2 s `frozen_after` (the badge's markup is also covered by
//   src/components/HealthBadge.test.ts).
//
// Called from run.mjs with its helpers:
// freshnessChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview }).

const STREAM = "fresh-cam";
const ADMIN = "e2e-freshness-admin-0123456789";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One scrape of /metrics with the admin token. */
async function scrape(gatewayUrl) {
  const r = await fetch(`${gatewayUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status}`);
  return r.text();
}

/** The value of `series` (exactly as exposed) in a scrape, or null. */
function value(text, series) {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : null;
}

/** Signs the page in with the admin token (the gateway asks for one). */
async function signIn(page, origin) {
  await page.goto(`${origin}/`);
  const dialog = page.locator('[data-testid="login-dialog"]');
  await dialog.waitFor({ timeout: 10_000 });
  await dialog.locator("input").fill(ADMIN);
  await dialog.locator('button[type="submit"]').click();
  await dialog.waitFor({ state: "detached", timeout: 10_000 });
}

export async function freshnessChecks({ context, check, assert, gatewayWith, pageOrigin, forcePreview }) {
  const { gateway, gatewayUrl } = await gatewayWith("freshness", [
    "auth:",
    "  tokens:",
    `    - { role: admin, token: ${ADMIN} }`,
    "streams:",
    `  - id: ${STREAM}`,
    "    name: Freshness camera",
    "    on_demand: false",
    "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
  ]);
  const { origin } = await pageOrigin(gatewayUrl, forcePreview);
  const page = await context.newPage();
  try {
    await context.clearCookies();
    await signIn(page, origin);

    await check("freshness: a page showing a stream reports what it draws: /metrics counts frames shown and has plausible picture ages", async () => {
      await page.waitForFunction(
        (id) => {
          const c = document.querySelector(`[data-stream-id="${id}"] canvas`);
          return c instanceof HTMLCanvasElement && c.width !== 300 && c.height !== 150;
        },
        STREAM,
        { timeout: 20_000 },
      );
      const shown = `camgate_viewer_frames_shown_total{stream="${STREAM}"}`;
      const count = `camgate_viewer_frame_age_seconds_count{stream="${STREAM}"}`;
      // The page reports every ~5 s of drawing: two reports within 15 s.
      let text = "";
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        text = await scrape(gatewayUrl);
        if ((value(text, count) ?? 0) > 0 && (value(text, shown) ?? 0) > 0 && Date.now() > until - 4000) break;
        await sleep(500);
      }
      const frames = value(text, shown) ?? 0;
      const ages = value(text, count) ?? 0;
      const sum = value(text, `camgate_viewer_frame_age_seconds_sum{stream="${STREAM}"}`) ?? 0;
      const bucket = (le) => value(text, `camgate_viewer_frame_age_seconds_bucket{stream="${STREAM}",le="${le}"}`) ?? 0;
      console.log(`[e2e]       frames shown ${frames}, ${ages} ages sampled, mean ${((sum / Math.max(1, ages)) * 1000).toFixed(0)} ms; ≤ 20 ms: ${bucket("0.02")}, ≤ 0.5 s: ${bucket("0.5")}, ≤ 5 s: ${bucket("5")}`);
      assert(frames > 0, `camgate_viewer_frames_shown_total is ${frames}`);
      assert(ages > 0 && ages <= frames, `${ages} ages for ${frames} frames`);
      assert(sum > 0, `the ages sum to ${sum} s`);
      assert(bucket("5") === ages, `only ${bucket("5")} of ${ages} ages are under 5 s`);
      assert(bucket("0.02") < ages, `all ${ages} ages are under 20 ms: not the picture's age at display`);
      // A grid tile asks for 5 fps: not more frames than the gateway sent to the page.
      const sent = value(text, `camgate_frames_sent_total{stream="${STREAM}",transport="websocket"}`) ?? 0;
      assert(frames <= sent, `${frames} frames shown but ${sent} sent`);
    });
  } finally {
    await page.close();
    await gateway.stop();
  }

  await check("freshness: a tile whose stream the gateway reports frozen shows a Frozen badge, in the grid and the focused view", async () => {
    const frozen = await gatewayWith("frozen", [
      "auth:",
      "  tokens:",
      `    - { role: admin, token: ${ADMIN} }`,
      "streams:",
      "  - id: still",
      "    name: Still camera",
      "    on_demand: false",
      // The same picture over and over (fresh tags): frozen after two seconds.
      "    source: { plugin: testsrc, width: 320, height: 180, fps: 10, loop_frames: 1 }",
      "    health_rules: { frozen_after: 2s }",
    ]);
    const page = await context.newPage();
    try {
      const health = async () => {
        const r = await fetch(`${frozen.gatewayUrl}/api/streams/still`, { headers: { authorization: `Bearer ${ADMIN}` } });
        return (await r.json()).health;
      };
      const until = Date.now() + 20_000;
      while ((await health()) !== "frozen" && Date.now() < until) await sleep(500);
      const verdict = await health();
      assert(verdict === "frozen", `the gateway reports the still stream ${verdict}, not frozen, after 20 s`);
      const { origin } = await pageOrigin(frozen.gatewayUrl, forcePreview);
      await context.clearCookies();
      await signIn(page, origin);
      const inTile = page.locator('[data-stream-id="still"] [data-testid="health-badge"][data-health="frozen"]');
      await inTile.waitFor({ timeout: 10_000 });
      const text = (await inTile.innerText()).trim();
      const name = await inTile.getAttribute("aria-label");
      assert(text === "Frozen", `the tile's badge reads ${text}`);
      assert(/frozen/i.test(name ?? ""), `the badge's accessible name is ${name}`);
      await page.goto(`${origin}/#/streams/still`);
      await page.locator('[data-testid="focus-view"] [data-testid="health-badge"][data-health="frozen"]').waitFor({ timeout: 10_000 });
    } finally {
      await page.close();
      await frozen.gateway.stop();
    }
  });
  await context.clearCookies();
}
