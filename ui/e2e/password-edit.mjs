// Browser check: editing a camera whose password sits in its URL keeps the password.
//
// The API shows the URL with the password masked (`rtsp://admin:***@...`); the edit form is
// pre-filled with that. Renaming the camera and saving must not store `***` as the password:
// the form leaves an unchanged URL out and the API keeps the stored one. The proof is read
// back from the API-managed file next to the manifest (what the gateway runs from).

import fs from "node:fs";

const ID = "e2e-secret-camera";
const PASSWORD = "Raw'Pw9x";
const URL_WITH_PASSWORD = `rtsp://admin:${PASSWORD}@127.0.0.1:9/cam`;

/**
 * Runs the check. `ctx` carries run.mjs's helpers and state: `check`, `assert`, `Skip`,
 * `page` (on the grid), `gatewayUrl`, `apiFile` (the API-managed streams file), `tile`
 * (locator of a stream's tile) and `hasFfmpeg`.
 */
export async function passwordEditChecks({ check, assert, Skip, page, gatewayUrl, apiFile, tile, hasFfmpeg }) {
  await check("editing a camera with a password in its URL keeps the password", async () => {
    if (!hasFfmpeg) throw new Skip("ffmpeg-mjpeg is not in `camgate plugins`");
    const json = { "content-type": "application/json" };
    const created = await fetch(`${gatewayUrl}/api/streams`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ id: ID, name: "E2E secret camera", source: { plugin: "ffmpeg-mjpeg", url: URL_WITH_PASSWORD } }),
    });
    if (created.status === 404 || created.status === 405) throw new Skip(`the gateway has no POST /api/streams yet (HTTP ${created.status})`);
    assert(created.status === 201, `creating the stream: HTTP ${created.status} ${await created.text()}`);
    try {
      const t = tile(page, ID);
      await t.waitFor({ timeout: 10_000 });
      await t.locator('[data-testid="edit-stream"]').click();
      const form = page.locator('[data-testid="stream-form"]');
      await form.waitFor();
      const shown = await form.locator('input[name="url"]').inputValue();
      assert(shown === "rtsp://admin:***@127.0.0.1:9/cam", `the form shows the url as ${shown}`);
      await form.locator('input[name="name"]').fill("E2E renamed secret camera");
      await form.locator('[data-testid="save-stream"]').click();
      await form.waitFor({ state: "detached", timeout: 10_000 });
      await page.waitForFunction(
        (id) => document.querySelector(`[data-stream-id="${id}"] [data-testid="stream-name"]`)?.textContent === "E2E renamed secret camera",
        ID,
        { timeout: 10_000 },
      );
      const stored = fs.readFileSync(apiFile, "utf8");
      assert(stored.includes(JSON.stringify(URL_WITH_PASSWORD)), `the stored url lost its password:\n${stored}`);
      assert(!stored.includes("***"), `the mask was stored:\n${stored}`);
      const listed = await (await fetch(`${gatewayUrl}/api/streams/${ID}`)).json();
      assert(listed.name === "E2E renamed secret camera", `the API lists the name ${listed.name}`);
      assert(!JSON.stringify(listed).includes(PASSWORD), "the API shows the password");
    } finally {
      await fetch(`${gatewayUrl}/api/streams/${ID}`, { method: "DELETE", headers: json });
    }
  });

  await check("editing a camera whose password has its own field keeps its URL and every other setting (health thresholds too)", async () => {
    // What the add form creates: the URL carries no password, so it is shown as stored and
    // the edit form must send it back (an update without it would remove it).
    if (!hasFfmpeg) throw new Skip("ffmpeg-mjpeg is not in `camgate plugins`");
    const json = { "content-type": "application/json" };
    const id = `${ID}-field`;
    const url = "rtsp://127.0.0.1:9/cam";
    const created = await fetch(`${gatewayUrl}/api/streams`, {
      method: "POST",
      headers: json,
      // With settings the form has no field for: an edit must keep them too.
      body: JSON.stringify({
        id,
        name: "E2E field camera",
        idle_timeout: "45s",
        health_rules: { dark_after: "1m" },
        source: { plugin: "ffmpeg-mjpeg", url, username: "admin", password: PASSWORD, transport: "udp", height: 240 },
      }),
    });
    assert(created.status === 201, `creating the stream: HTTP ${created.status} ${await created.text()}`);
    try {
      const t = tile(page, id);
      await t.waitFor({ timeout: 10_000 });
      await t.locator('[data-testid="edit-stream"]').click();
      const form = page.locator('[data-testid="stream-form"]');
      await form.waitFor();
      await form.locator('input[name="name"]').fill("E2E renamed field camera");
      await form.locator('[data-testid="save-stream"]').click();
      await form.waitFor({ state: "detached", timeout: 10_000 });
      const listed = await (await fetch(`${gatewayUrl}/api/streams/${id}`)).json();
      assert(listed.name === "E2E renamed field camera", `the API lists the name ${listed.name}`);
      assert(listed.source?.url === url, `the url became ${listed.source?.url}`);
      assert(listed.idle_timeout === "45s", `the idle timeout became ${listed.idle_timeout}`);
      assert(listed.source?.transport === "udp" && listed.source?.height === 240, `options the form has no field for were lost: ${JSON.stringify(listed.source)}`);
      assert(listed.health_rules?.dark_after === "1m" && listed.health_rules?.enabled === true, `health thresholds were lost: ${JSON.stringify(listed.health_rules)}`);
      const stored = fs.readFileSync(apiFile, "utf8");
      assert(stored.includes(JSON.stringify(PASSWORD)), `the stored password was lost:\n${stored}`);

      // Switching picture-health reports off keeps the other thresholds.
      await t.locator('[data-testid="edit-stream"]').click();
      await form.waitFor();
      const judge = form.locator('input[name="judgeHealth"]');
      assert(await judge.isChecked(), "the form shows picture-health reports on");
      await judge.uncheck();
      await form.locator('[data-testid="save-stream"]').click();
      await form.waitFor({ state: "detached", timeout: 10_000 });
      const off = (await (await fetch(`${gatewayUrl}/api/streams/${id}`)).json()).health_rules;
      assert(off?.enabled === false && off?.dark_after === "1m", `after switching reports off: ${JSON.stringify(off)}`);
    } finally {
      await fetch(`${gatewayUrl}/api/streams/${id}`, { method: "DELETE", headers: json });
    }
  });
}
