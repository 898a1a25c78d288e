/**
 * The last picture of each stream, for the next player of the same stream to show until its
 * own first picture (the focused view opening from a tile: the tile's picture stays on screen
 * while main starts, no blank frame).
 *
 * Players that hold a picture register where it is (`holdPicture`); when one goes away its
 * picture is copied (`releasePicture`) and kept for a few seconds. `takePicture` returns a
 * copy: from a player still on the page, else the kept one if it is recent.
 */

/** A kept picture older than this is not shown (it would show the past). */
export const KEEP_MS = 10_000;

type Source = HTMLCanvasElement | HTMLVideoElement;

const live = new Map<string, Set<() => Source | null>>();
const kept = new Map<string, { picture: HTMLCanvasElement; at: number }>();

function size(source: Source): [number, number] {
  return source instanceof HTMLVideoElement ? [source.videoWidth, source.videoHeight] : [source.width, source.height];
}

/** A copy of what `source` shows (null when it shows nothing). */
function copy(source: Source | null): HTMLCanvasElement | null {
  if (!source) return null;
  const [w, h] = size(source);
  if (w <= 0 || h <= 0) return null;
  const out = document.createElement("canvas");
  out.width = w;
  out.height = h;
  try {
    out.getContext("2d")?.drawImage(source, 0, 0);
  } catch {
    return null;
  }
  return out;
}

/** A player of `streamId` shows a picture in `where()`; returns the function that forgets it. */
export function holdPicture(streamId: string, where: () => Source | null): () => void {
  let set = live.get(streamId);
  if (!set) {
    set = new Set();
    live.set(streamId, set);
  }
  set.add(where);
  return () => {
    set.delete(where);
    if (set.size === 0) live.delete(streamId);
  };
}

/** A player of `streamId` goes away: keep a copy of its picture for a moment. */
export function releasePicture(streamId: string, source: Source | null, nowMs = Date.now()): void {
  const picture = copy(source);
  if (picture) kept.set(streamId, { picture, at: nowMs });
}

/** The stream's latest picture on this page (null: none, or too old). */
export function takePicture(streamId: string, nowMs = Date.now()): HTMLCanvasElement | null {
  for (const where of live.get(streamId) ?? []) {
    const picture = copy(where());
    if (picture) return picture;
  }
  const k = kept.get(streamId);
  kept.delete(streamId);
  return k && nowMs - k.at <= KEEP_MS ? k.picture : null;
}

/** Whether `takePicture` would find a picture now (nothing is copied). */
export function hasPicture(streamId: string, nowMs = Date.now()): boolean {
  for (const where of live.get(streamId) ?? []) {
    const source = where();
    if (source && size(source)[0] > 0) return true;
  }
  const k = kept.get(streamId);
  return k !== undefined && nowMs - k.at <= KEEP_MS;
}

/** Forgets every kept picture (signed out: the next user's players start blank). */
export function forgetPictures(): void {
  kept.clear();
}
