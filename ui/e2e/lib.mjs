// Helpers shared by the e2e check modules (run.mjs calls them with its own helpers too):
// reading the gateway's metrics, axe-core, and a Chromium driven over the raw DevTools
// protocol (for what Playwright's page sessions hide, such as a hidden tab).

import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { CHROMIUM_ARGS, CHROMIUM_BIN } from "./chromium.mjs";

/** axe-core's source, injected into a page for an accessibility audit. */
export const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Sum of the samples of `name` whose labels include every `label="value"` in `labels`. */
export function sample(text, name, labels) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const [series, value] = [line.slice(0, line.lastIndexOf(" ")), line.slice(line.lastIndexOf(" ") + 1)];
    if (labels.every((l) => series.includes(l))) sum += Number(value);
  }
  return sum;
}

/** The gateway's /metrics text (`token`: a scrape token, for gateways with auth). */
export async function metricsText(gatewayUrl, token = null) {
  const r = await fetch(`${gatewayUrl}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status}`);
  return r.text();
}

/** axe-core's serious and critical violations on the page, one line each. */
/** Resolves once the tile of stream `id` on `page` has drawn a picture (its canvas was sized). */
export function tilePicture(page, id) {
  return page.waitForFunction(
    (sel) => {
      const c = document.querySelector(sel);
      return c instanceof HTMLCanvasElement && c.width !== 300 && c.height !== 150;
    },
    `[data-testid="stream-tile"][data-stream-id="${id}"] canvas`,
    { timeout: 20_000 },
  );
}

export async function axeSerious(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ content: AXE_SOURCE });
  return page.evaluate(async () => {
    const { violations } = await window.axe.run(document, { resultTypes: ["violations"] });
    return violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")}`);
  });
}

/**
 * A headless Chromium of its own, driven over the DevTools protocol through a pipe (no
 * Playwright). Playwright keeps every page it drives "visible" (it turns on focus emulation,
 * which Chromium counts as someone watching the page), so a minimized window or a background
 * tab still reports `document.visibilityState === "visible"` there; without it, Chromium's
 * headless mode hides both for real. `close()` ends the process (it is also registered with
 * `cleanups` when given).
 */
export async function rawChromium(cleanups = null) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "camgate-e2e-raw-"));
  const child = spawn(CHROMIUM_BIN, [...CHROMIUM_ARGS, "--remote-debugging-pipe", `--user-data-dir=${userDataDir}`, "about:blank"], {
    stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"],
  });
  const toChrome = child.stdio[3];
  const fromChrome = child.stdio[4];
  let nextId = 0;
  const pending = new Map();
  const listeners = [];
  let buffered = "";
  fromChrome.on("data", (chunk) => {
    buffered += chunk.toString("utf8");
    let end;
    while ((end = buffered.indexOf("\0")) >= 0) {
      const message = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      if (message.id !== undefined && pending.has(message.id)) {
        const { resolve, reject } = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) reject(new Error(`${message.error.message} (${message.error.code})`));
        else resolve(message.result);
      } else if (message.method) {
        for (const l of listeners) l(message);
      }
    }
  });
  const send = (method, params = {}, sessionId = undefined) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      toChrome.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
    });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (child.exitCode === null && child.signalCode === null) {
      send("Browser.close").catch(() => undefined);
      const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
      if (!done) {
        child.kill("SIGKILL");
        await exited;
      }
    }
    fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  cleanups?.push(close);
  const { targetInfos } = await send("Target.getTargets");
  const target = targetInfos.find((t) => t.type === "page");
  if (!target) throw new Error("the raw Chromium has no page");
  const { sessionId } = await send("Target.attachToTarget", { targetId: target.targetId, flatten: true });
  const { windowId } = await send("Browser.getWindowForTarget", { targetId: target.targetId });
  /** Evaluates `expression` in the page (awaiting a promise), returning its value. */
  const evaluate = async (expression) => {
    const r = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, sessionId);
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  };
  return {
    send: (method, params = {}) => send(method, params, sessionId),
    browserSend: send,
    evaluate,
    on: (fn) => listeners.push(fn),
    navigate: (url) => send("Page.navigate", { url }, sessionId),
    /** Minimizes (`hidden`) or restores the window. */
    setWindowState: (windowState) => send("Browser.setWindowBounds", { windowId, bounds: { windowState } }),
    close,
  };
}
