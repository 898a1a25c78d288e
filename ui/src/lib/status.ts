/**
 * What a tile's badge says, from the stream's state in the API and the live connection's
 * status. Pure: unit-tested.
 *
 * An outage is one state: a source that retries goes "retrying" → "connecting" (the next
 * attempt) → "retrying" on every attempt, and so does a socket to a gateway that is down;
 * `stabilize` keeps such a tile "retrying" from its first failure until it is live again (or
 * something else happens: offline, idle, signed out). The gateway's "retrying in 10.9s" is
 * rewritten as a live countdown (`countdown`) from when the message arrived.
 *
 * The headline of a source's outage is its cause (`cause` in the API and the WebSocket's
 * `state` messages: `causeHeadline`), kept through the attempts like the reason.
 */

import type { PlayerStatus } from "@/player/player";
import type { OutageCause, StreamState } from "@/player/protocol";

export type BadgeKind = "live" | "connecting" | "retrying" | "offline" | "idle" | "locked" | "removed";

export interface DisplayStatus {
  kind: BadgeKind;
  label: string;
  /** Why (an error text, a close reason), or "" when all is well. */
  reason: string;
  /** A source's outage: what went wrong, in words (from its `cause`); absent when not known. */
  headline?: string;
}

/** The outage's headline for each cause the gateway reports. */
const HEADLINES: Record<OutageCause, string> = {
  auth_failed: "Camera refused the sign-in",
  not_found: "Stream not found on the camera",
  unreachable: "Camera unreachable",
  stalled: "Camera stopped sending",
  error: "Camera error",
};

/** The words for a cause (null: none known). */
export function causeHeadline(cause: OutageCause | null | undefined): string | null {
  return cause ? HEADLINES[cause] : null;
}

export function displayStatus(
  apiState: StreamState | null | undefined,
  apiMessage: string | null | undefined,
  player: PlayerStatus | null,
  nowMs: number = Date.now(),
  apiCause: OutageCause | null = null,
): DisplayStatus {
  if (player) {
    switch (player.connection) {
      case "removed":
        return { kind: "removed", label: "Removed", reason: player.message || "stream removed" };
      case "unauthorized":
        return { kind: "locked", label: "Sign in", reason: player.message || "sign in to watch" };
      case "reconnecting": {
        const when = player.retryAt === null ? "" : ` — ${retryIn(player.retryAt - nowMs)}`;
        return { kind: "retrying", label: "Reconnecting", reason: `${player.message || "connection lost"}${when}` };
      }
      case "closed":
      case "connecting":
      case "open":
        break;
    }
  }
  const state: StreamState | null = player?.streamState ?? apiState ?? null;
  const message = player?.streamState ? countdown(player.message, player.messageAt, nowMs) : (apiMessage ?? "");
  const headline = causeHeadline(player?.streamState ? player.cause : apiCause);
  const withHeadline = (s: DisplayStatus): DisplayStatus => (headline ? { ...s, headline } : s);
  if (player && player.connection === "connecting" && !player.hasPicture) {
    return { kind: "connecting", label: "Connecting", reason: "" };
  }
  switch (state) {
    case "live":
      return { kind: "live", label: "Live", reason: "" };
    case "connecting":
      return { kind: "connecting", label: "Connecting", reason: message };
    case "retrying":
      return withHeadline({ kind: "retrying", label: "Retrying", reason: message || "the source is reconnecting" });
    case "failed":
      return withHeadline({ kind: "offline", label: "Offline", reason: message || "the source failed" });
    case "stopped":
      return { kind: "idle", label: "Idle", reason: message || "starts when someone watches" };
    case null:
      return { kind: "connecting", label: "Connecting", reason: "" };
  }
}

/** "retrying in 4s" (whole seconds, rounded up) or "retrying now". */
function retryIn(ms: number): string {
  const secs = Math.ceil(ms / 1000);
  return secs <= 0 ? "retrying now" : `retrying in ${secs}s`;
}

const RETRY_IN = /retrying in (\d+(?:\.\d+)?)\s*s\b/i;

/**
 * The gateway's "…; retrying in 10.9s (attempt 3)" as seen `nowMs - sinceMs` after it
 * arrived: "…; retrying in 8s (attempt 3)", then "…; retrying now". Other text is unchanged.
 */
export function countdown(message: string, sinceMs: number, nowMs: number): string {
  const m = RETRY_IN.exec(message);
  if (!m) return message;
  const remaining = Number(m[1]) * 1000 - Math.max(0, nowMs - sinceMs);
  return message.replace(RETRY_IN, retryIn(remaining));
}

/** An outage's reason without its schedule ("Connection refused; retrying in 4s (attempt 3)" → "Connection refused"). */
export function outageReason(reason: string): string {
  return reason.replace(/\s*(?:[;,]|—)?\s*retrying (?:in \d+(?:\.\d+)?\s*s|now)(?:\s*\(attempt \d+\))?/i, "").trim();
}

/** An outage in progress: what the tile keeps showing between two attempts. */
export interface Outage {
  label: string;
  reason: string;
  /** The cause's headline, kept while the next attempt runs (it has no cause of its own). */
  headline?: string;
}

/**
 * One stable state per outage. `outage` is what the previous call returned; the result is
 * what to show and the outage to pass next time. A "connecting" during an outage (the next
 * attempt) stays "retrying"; "live" or any other state ends the outage.
 */
export function stabilize(outage: Outage | null, status: DisplayStatus): { shown: DisplayStatus; outage: Outage | null } {
  if (status.kind === "retrying") {
    const headline = status.headline ?? (status.label === outage?.label ? outage.headline : undefined);
    const shown = headline ? { ...status, headline } : status;
    return { shown, outage: { label: status.label, reason: outageReason(status.reason), ...(headline ? { headline } : {}) } };
  }
  if (status.kind === "connecting" && outage) {
    const reason = outage.reason ? `${outage.reason} — trying again now` : "trying again now";
    const shown: DisplayStatus = { kind: "retrying", label: outage.label, reason };
    if (outage.headline) shown.headline = outage.headline;
    return { shown, outage };
  }
  return { shown: status, outage: null };
}

/** How long an accepted "Retry now" shows as connecting when no state change follows. */
export const RETRY_SHOWN_MS = 3000;

/** A source's outage (not the gateway connection's): what "Retry now" is for. */
export function sourceDown(status: DisplayStatus): boolean {
  return (status.kind === "retrying" && status.label !== "Reconnecting") || status.kind === "offline";
}

/**
 * What to show after an accepted "Retry now" (at `requestedAt`): the new attempt, as
 * connecting, while the state still reads as the old outage (the gateway's `connecting` may
 * not have arrived yet) and for at most `forMs`; null once the state has moved on (show it).
 */
export function retryShown(status: DisplayStatus, requestedAt: number | null, nowMs: number, forMs = RETRY_SHOWN_MS): DisplayStatus | null {
  if (requestedAt === null || !sourceDown(status) || nowMs - requestedAt >= forMs) return null;
  return { kind: "connecting", label: "Connecting", reason: "retrying now" };
}
