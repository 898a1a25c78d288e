/**
 * The Fullscreen API for one element (the wall): whether it is full screen now, and a toggle.
 * Esc (the browser's own) leaves; the state follows `fullscreenchange` whatever ended it.
 */
import { useCallback, useSyncExternalStore } from "react";

function subscribe(onChange: () => void): () => void {
  document.addEventListener("fullscreenchange", onChange);
  return () => document.removeEventListener("fullscreenchange", onChange);
}

/** Whether this browser can put an element in full screen (phones' Safari cannot). */
export const fullscreenSupported = () => typeof document !== "undefined" && "fullscreenEnabled" in document && document.fullscreenEnabled;

export function useFullscreen(element: HTMLElement | null): [boolean, () => void] {
  const current = useSyncExternalStore(
    subscribe,
    () => document.fullscreenElement,
    () => null,
  );
  const active = element !== null && current === element;
  const toggle = useCallback(() => {
    if (document.fullscreenElement) void document.exitFullscreen().catch(() => undefined);
    else void element?.requestFullscreen({ navigationUI: "hide" }).catch(() => undefined);
  }, [element]);
  return [active, toggle];
}
