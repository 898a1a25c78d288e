// A cluster node's page (docs/configuration.md, "Cluster"): the node says which node serves
// the page, and an admin gets no "Add camera" or group editing (a cluster's cameras and groups
// come from the manifest every node shares; the API would answer 409 cluster_read_only). The
// browser's session is a signed id any node accepts (`c1.`), and the camera plays as usual.
//
// Called from run.mjs: clusterChecks({ check, assert, gatewayWith, pageOrigin, forcePreview, launch }).

import { tilePicture } from "./lib.mjs";

const ADMIN = "e2e-cluster-admin-0123456789";

export async function clusterChecks({ check, assert, gatewayWith, pageOrigin, forcePreview, launch }) {
  const { gatewayUrl } = await gatewayWith("cluster", [
    "auth:",
    "  tokens:",
    `    - { role: admin, token: ${ADMIN} }`,
    "cluster:",
    "  node: solo",
    `  token: ${ADMIN}`,
    // A cluster of one: this node never probes itself, so its own URL is not dialled.
    "  members: [{ name: solo, url: 'http://127.0.0.1:1' }]",
    "streams:",
    "  - { id: only, name: Only camera, source: { plugin: testsrc, width: 320, height: 180, fps: 10 } }",
  ]);
  const { origin } = await pageOrigin(gatewayUrl, forcePreview);
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(`${origin}/#token=${ADMIN}`);

    await check("cluster node: the page names the node and offers no stream or group changes to an admin", async () => {
      await page.waitForSelector('[data-testid="cluster-node"]', { timeout: 15_000 });
      const node = await page.locator('[data-testid="cluster-node"]').textContent();
      assert(node?.trim() === "solo", `node badge says ${node}`);
      const role = await page.locator('[data-testid="session-role"]').textContent();
      assert(role?.trim() === "Admin", `role ${role}`);
      for (const id of ["add-camera", "new-group"]) {
        assert((await page.locator(`[data-testid="${id}"]`).count()) === 0, `${id} is offered`);
      }
      await tilePicture(page, "only");
    });

    await check("cluster node: the browser's session is a signed id every node accepts", async () => {
      const cookies = await ctx.cookies(origin);
      const session = cookies.find((c) => c.name === "camgate_session");
      assert(session?.value.startsWith("c1."), `session cookie ${session ? session.value.slice(0, 3) + "…" : "missing"}`);
      const cluster = await page.evaluate(async () => (await fetch("/api/cluster")).json());
      assert(cluster.node === "solo" && cluster.owners.only === "solo", JSON.stringify(cluster));
    });
    await ctx.close();
  } finally {
    await browser.close();
  }
}
