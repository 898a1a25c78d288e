/**
 * The page's route, read from the URL fragment (linkable, works from a static file server).
 *
 * `#/` → the wall (with the group this browser chose last), `#/groups/{id}` → the wall showing
 * one group (a wall display can be pointed at it), `#/streams/{id}` → the focused view. Anything
 * after a `?` (e.g. `?token=...`, read by useSession) is not part of the route, and a fragment
 * that is not a route (`#token=...`) is the wall.
 */
import { useCallback, useSyncExternalStore } from "react";

export type Route = { name: "grid" } | { name: "group"; id: string } | { name: "stream"; id: string };

const ROUTE = /^\/(streams|groups)\/([^/?#]+)\/?$/;

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, "").split("?")[0] ?? "";
  const match = ROUTE.exec(path);
  if (match?.[1] && match[2]) {
    try {
      const id = decodeURIComponent(match[2]);
      return match[1] === "streams" ? { name: "stream", id } : { name: "group", id };
    } catch {
      return { name: "grid" };
    }
  }
  return { name: "grid" };
}

export function streamHref(id: string): string {
  return `#/streams/${encodeURIComponent(id)}`;
}

/** The wall showing one group; `null` → every camera. */
export function groupHref(id: string | null): string {
  return id === null ? "#/" : `#/groups/${encodeURIComponent(id)}`;
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
