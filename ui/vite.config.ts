import path from "node:path";
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";
import type { ProxyOptions } from "vite";

// Where the dev server and `vite preview` forward `/api` and `/ws` (a running gateway).
const gateway = process.env.CAMGATE_API ?? "http://127.0.0.1:8000";

// The gateway checks `Origin` on WebSocket upgrades (and may on state-changing API calls):
// present the gateway's own origin so proxied requests look same-origin to it.
function rewriteOrigin(): ProxyOptions["configure"] {
  return (proxy) => {
    proxy.on("proxyReq", (proxyReq) => {
      if (proxyReq.getHeader("origin")) proxyReq.setHeader("origin", gateway);
    });
    proxy.on("proxyReqWs", (proxyReq) => {
      proxyReq.setHeader("origin", gateway);
    });
  };
}

const proxy: Record<string, ProxyOptions> = {
  "/api": { target: gateway, changeOrigin: true, configure: rewriteOrigin() },
  "/ws": { target: gateway, changeOrigin: true, ws: true, configure: rewriteOrigin() },
  "/healthz": { target: gateway, changeOrigin: true },
};

export default defineConfig({
  plugins: [react(), tailwindcss()],
  resolve: {
    alias: { "@": path.resolve(import.meta.dirname, "src") },
  },
  server: { proxy },
  preview: { proxy },
  build: {
    // Hashed assets under /assets/ are served with a long cache by the gateway.
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
