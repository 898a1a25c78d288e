// HTTPS for LAN viewers (docs/security.md, "HTTPS on the LAN"): a gateway with `server.tls`
// (a self-signed certificate made here with the README's openssl one-liner) serves the UI at
// https://cams.test:PORT/, where the page is a secure context with WebCodecs (which
// http://cams.test would not be: unlike 127.0.0.1 or localhost, a LAN name or address is not
// trustworthy without TLS) and a wss:// viewer on the same origin gets frames. The name is
// mapped to 127.0.0.1 inside Chromium (`--host-resolver-rules`), so nothing leaves the
// machine; the browser accepts the self-signed certificate (`ignoreHTTPSErrors`) as a user
// clicking through the warning would.
//
// Called from run.mjs with its helpers:
// httpsChecks({ check, assert, Skip, gatewayWith, launch }), `launch(extraArgs)` starting a
// Chromium.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const STREAM = "tls-cam";
const NAME = "cams.test";

/** Makes a self-signed certificate for NAME in `dir`: { cert, key } paths. */
function selfSigned(dir, Skip) {
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  const args = [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-keyout", key, "-out", cert, "-subj", "/CN=camgate e2e",
    "-addext", `subjectAltName=DNS:${NAME}`,
  ];
  try {
    execFileSync("openssl", args, { stdio: "pipe" });
  } catch (e) {
    if (e.code === "ENOENT") throw new Skip("openssl is not installed");
    throw e;
  }
  return { cert, key };
}

export async function httpsChecks({ check, assert, Skip, gatewayWith, launch }) {
  await check("over HTTPS the page is a secure context with WebCodecs, and wss:// delivers frames", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camgate-e2e-tls-"));
    let gateway = null;
    let browser = null;
    try {
      const { cert, key } = selfSigned(dir, Skip);
      const started = await gatewayWith("https", [
        "server:",
        `  allowed_hosts: [${NAME}]`,
        "  tls:",
        `    cert: ${cert}`,
        `    key: ${key}`,
        "streams:",
        `  - id: ${STREAM}`,
        "    on_demand: false",
        "    source: { plugin: testsrc, width: 320, height: 180, fps: 10 }",
      ]);
      gateway = started.gateway;
      const port = new URL(started.gatewayUrl).port;
      const origin = `https://${NAME}:${port}`;
      browser = await launch([`--host-resolver-rules=MAP ${NAME} 127.0.0.1`]);
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      const response = await page.goto(`${origin}/`);
      assert(response?.status() === 200, `GET ${origin}/: HTTP ${response?.status()}`);
      const facts = await page.evaluate(
        (stream) =>
          new Promise((resolve) => {
            const facts = { protocol: location.protocol, secure: isSecureContext, decoder: typeof VideoDecoder };
            const ws = new WebSocket(`wss://${location.host}/ws/streams/${stream}`);
            ws.binaryType = "arraybuffer";
            const timer = setTimeout(() => resolve({ ...facts, frame: "none within 10 s" }), 10_000);
            ws.onerror = () => {
              clearTimeout(timer);
              resolve({ ...facts, frame: "WebSocket error" });
            };
            ws.onmessage = (e) => {
              if (typeof e.data === "string") return; // hello, state
              const bytes = new Uint8Array(e.data);
              clearTimeout(timer);
              ws.close();
              resolve({ ...facts, frame: bytes[0] === 0xff && bytes[1] === 0xd8 ? "jpeg" : `starts ${bytes[0]}` });
            };
          }),
        STREAM,
      );
      assert(facts.protocol === "https:", `page protocol ${facts.protocol}`);
      assert(facts.secure === true, `isSecureContext is ${facts.secure}`);
      assert(facts.decoder === "function", `typeof VideoDecoder is ${facts.decoder}`);
      assert(facts.frame === "jpeg", `wss:// viewer: ${facts.frame}`);
    } finally {
      await browser?.close();
      await gateway?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
