import { useCallback, useSyncExternalStore } from "react";

export type Route = { name: "grid" } | { name: "stream"; id: string };

/** `#/` → grid, `#/streams/{id}` → focused view (linkable, works from a static file server). */
export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, "");
  const match = /^\/streams\/([^/?#]+)\/?$/.exec(path);
  if (match?.[1]) {
    try {
      return { name: "stream", id: decodeURIComponent(match[1]) };
    } catch {
      return { name: "grid" };
    }
  }
  return { name: "grid" };
}

export function streamHref(id: string): string {
  return `#/streams/${encodeURIComponent(id)}`;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("hashchange", onChange);
  return () => window.removeEventListener("hashchange", onChange);
}

const getHash = () => window.location.hash;

export function useHashRoute(): [Route, (hash: string) => void] {
  const hash = useSyncExternalStore(subscribe, getHash, () => "");
  const navigate = useCallback((next: string) => {
    if (window.location.hash !== next) window.location.hash = next;
  }, []);
  return [parseHash(hash), navigate];
}
