/**
 * Calls `refresh` while `enabled`: at once, every `intervalMs` after the previous call
 * finished (never two at a time), and when the tab becomes visible again; never while the
 * tab is hidden (a background tab costs the gateway nothing). `restartKey` starts the cycle
 * over (e.g. a sign-in), so the first read after it happens at once.
 */
import { useEffect } from "react";

export function usePolling(refresh: () => Promise<void>, intervalMs: number, enabled: boolean, restartKey: unknown = null): void {
  useEffect(() => {
    if (!enabled) return;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let stopped = false;
    const loop = async () => {
      if (!document.hidden) await refresh();
      if (!stopped) timer = setTimeout(() => void loop(), intervalMs);
    };
    void loop();
    const onVisible = () => {
      if (!document.hidden) void refresh();
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [intervalMs, refresh, enabled, restartKey]);
}
