// Cross-site requests against a real gateway in a real Chromium (docs/security.md, "Cross-site
// requests and DNS rebinding"): the browser is logged in to the gateway (session cookie), then
// opens a page served from ANOTHER port of 127.0.0.1 — the same site for the browser, since
// SameSite does not separate ports — which tries to create a stream (with and without a JSON
// content type) and to open a viewer WebSocket with that cookie. The gateway must refuse all of
// them: afterwards no stream was created, the page saw no open WebSocket, and the gateway's own
// metrics show the refusals (so it was the gateway, not only the browser, that said no).
//
// Called from run.mjs with its helpers: crossSiteChecks({ context, check, assert, gatewayWith, apiJson }).

import { once } from "node:events";
import http from "node:http";

const ADMIN = "e2e-cross-site-admin-0123456789";

/** The attacker's page: tries everything once and leaves its findings in `window.crossSite`. */
function attackerPage(gateway) {
  return `<!doctype html><meta charset="utf-8"><title>another site</title><script>
const gw = ${JSON.stringify(gateway)};
const body = JSON.stringify({ id: "", source: { plugin: "testsrc" } });
// A Blob without a type is sent with no Content-Type at all (a "simple" request, no preflight).
async function attempt(id, headers, asBlob) {
  const text = body.replace('""', JSON.stringify(id));
  try {
    const r = await fetch(gw + "/api/streams", {
      method: "POST", credentials: "include", headers, body: asBlob ? new Blob([text]) : text,
    });
    return "status " + r.status;
  } catch (e) {
    return "failed: " + e.name;
  }
}
function socket() {
  return new Promise((resolve) => {
    const ws = new WebSocket(gw.replace("http:", "ws:") + "/ws/streams/echo");
    const timer = setTimeout(() => { ws.close(); resolve("no answer in 10 s"); }, 10000);
    ws.onopen = () => { clearTimeout(timer); ws.close(); resolve("open"); };
    ws.onerror = () => { clearTimeout(timer); resolve("refused"); };
  });
}
window.crossSite = (async () => ({
  jsonPost: await attempt("cross-json", { "Content-Type": "application/json" }),
  plainPost: await attempt("cross-plain", {}, true),
  textPost: await attempt("cross-text", { "Content-Type": "text/plain" }),
  webSocket: await socket(),
}))();
</script>`;
}

/** The value of one series in Prometheus text (0 when absent). */
function series(text, prefix) {
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(prefix.length).trim()) : 0;
}

export async function crossSiteChecks({ context, check, assert, gatewayWith, apiJson }) {
  const { gateway, gatewayUrl } = await gatewayWith("cross-site", [
    "auth:",
    "  tokens:",
    `    - { role: admin, token: ${ADMIN} }`,
    "streams:",
    "  - id: echo",
    "    source: { plugin: testsrc, width: 160, height: 90, fps: 5 }",
  ]);
  const bearer = { Authorization: `Bearer ${ADMIN}` };

  const attacker = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(attackerPage(gatewayUrl));
  });
  attacker.listen(0, "127.0.0.1");
  await once(attacker, "listening");
  const attackerUrl = `http://127.0.0.1:${attacker.address().port}/`;
  const page = await context.newPage();
  try {
    await check("cross-site: the browser is logged in to the gateway (same-origin writes work)", async () => {
      await context.clearCookies();
      await page.goto(`${gatewayUrl}/healthz`);
      const result = await page.evaluate(async (token) => {
        const json = { "Content-Type": "application/json" };
        const login = await fetch("/api/session", { method: "POST", headers: json, body: JSON.stringify({ token }) });
        const me = await (await fetch("/api/session")).json();
        const create = await fetch("/api/streams", {
          method: "POST", headers: json, body: JSON.stringify({ id: "same-origin", source: { plugin: "testsrc" } }),
        });
        const remove = await fetch("/api/streams/same-origin", { method: "DELETE" });
        return { login: login.status, authenticated: me.authenticated, create: create.status, remove: remove.status };
      }, ADMIN);
      assert(result.login === 204 && result.authenticated === true, `login failed: ${JSON.stringify(result)}`);
      assert(result.create === 201 && result.remove === 204, `same-origin writes failed: ${JSON.stringify(result)}`);
    });

    await check("cross-site: a page on another port cannot create streams or open viewers with the cookie", async () => {
      await page.goto(attackerUrl);
      const seen = await page.evaluate(() => window.crossSite);
      // The JSON POST needs a CORS preflight the gateway never grants; the others are sent with
      // the cookie and refused by the gateway; none is readable by the page.
      for (const key of ["jsonPost", "plainPost", "textPost"]) {
        assert(/^failed/.test(seen[key]) || /^status 4/.test(seen[key]), `${key}: ${seen[key]}`);
      }
      assert(seen.webSocket === "refused", `the WebSocket: ${seen.webSocket}`);
      const { status, body } = await apiJson(`${gatewayUrl}/api/streams`, { headers: bearer });
      assert(status === 200, `listing streams: HTTP ${status}`);
      const ids = body.streams.map((s) => s.id);
      assert(ids.length === 1 && ids[0] === "echo", `streams after the attack: ${ids.join(", ")}`);
      // The gateway itself refused (403 for the Origin), not only the browser.
      const metrics = await (await fetch(`${gatewayUrl}/metrics`, { headers: bearer })).text();
      const posts = series(metrics, 'camgate_http_requests_total{method="POST",route="/api/streams",status="403"}');
      const sockets = series(metrics, 'camgate_http_requests_total{method="GET",route="/ws/streams/{id}",status="403"}');
      const opened = series(metrics, 'camgate_http_requests_total{method="GET",route="/ws/streams/{id}",status="101"}');
      assert(posts >= 2, `the gateway refused ${posts} cross-site POSTs (want the 2 sent without preflight)`);
      assert(sockets >= 1 && opened === 0, `WebSocket upgrades: ${sockets} refused, ${opened} opened`);
    });
  } finally {
    await page.close();
    attacker.close();
    await gateway.stop();
  }
}
