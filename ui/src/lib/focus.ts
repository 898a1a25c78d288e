/**
 * The focused view's helpers: previous/next camera in the grid's order (wrapping around), the
 * snapshot's URL and file name, the camera's shareable link, copying text. Pure where it can
 * be (unit-tested).
 */

import { streamHref } from "@/hooks/useHashRoute";

/** The cameras before and after `id` in `order`, wrapping around (null: no other camera). */
export function neighbours<T extends { id: string }>(order: readonly T[], id: string): { previous: T | null; next: T | null } {
  const i = order.findIndex((s) => s.id === id);
  if (i < 0 || order.length < 2) return { previous: null, next: null };
  const previous = order[(i - 1 + order.length) % order.length] ?? null;
  const next = order[(i + 1) % order.length] ?? null;
  return { previous, next };
}

/** The stream's current picture as a JPEG (the gateway's `snapshot.jpg`). */
export function snapshotUrl(id: string): string {
  return `/api/streams/${encodeURIComponent(id)}/snapshot.jpg`;
}

/** `front-door-2026-11-30T17-04-05.jpg`: the camera and the local time, safe in a file name. */
export function snapshotFileName(id: string, at: Date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}-${pad(at.getMinutes())}-${pad(at.getSeconds())}`;
  return `${id.replace(/[^A-Za-z0-9_.-]/g, "_")}-${stamp}.jpg`;
}

/**
 * The absolute link to the camera's focused view: this page without its query or fragment
 * (nothing the viewer carries, such as a sign-in token, goes into a shared link), plus
 * `#/streams/{id}`.
 */
export function streamLink(location: Pick<Location, "origin" | "pathname">, id: string): string {
  return `${location.origin}${location.pathname}${streamHref(id)}`;
}

/** Copies `text` (the Clipboard API, or a hidden text area on pages without it); true when done. */
export async function copyText(text: string): Promise<boolean> {
  try {
    // Absent on insecure origins (the type says otherwise).
    const clipboard = (navigator as Partial<Navigator>).clipboard;
    if (clipboard && typeof clipboard.writeText === "function") {
      await clipboard.writeText(text);
      return true;
    }
  } catch {
    // Not allowed (an insecure origin, no focus): try the old way.
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let ok: boolean;
  try {
    // The only way without the Clipboard API (plain-HTTP gateways on a LAN).
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}
