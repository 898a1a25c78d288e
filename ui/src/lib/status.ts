/**
 * What a tile's badge says, from the stream's state in the API and the live connection's
 * status. Pure: unit-tested.
 */

import type { PlayerStatus } from "@/player/player";
import type { StreamState } from "@/player/protocol";

export type BadgeKind = "live" | "connecting" | "retrying" | "offline" | "idle" | "locked" | "removed";

export interface DisplayStatus {
  kind: BadgeKind;
  label: string;
  /** Why (an error text, a close reason), or "" when all is well. */
  reason: string;
}

export function displayStatus(
  apiState: StreamState | null | undefined,
  apiMessage: string | null | undefined,
  player: PlayerStatus | null,
  nowMs: number = Date.now(),
): DisplayStatus {
  if (player) {
    switch (player.connection) {
      case "removed":
        return { kind: "removed", label: "Removed", reason: player.message || "stream removed" };
      case "unauthorized":
        return { kind: "locked", label: "Sign in", reason: player.message || "sign in to watch" };
      case "reconnecting": {
        const secs = player.retryAt === null ? null : Math.max(0, Math.ceil((player.retryAt - nowMs) / 1000));
        const when = secs === null ? "" : secs <= 0 ? " — retrying now" : ` — retrying in ${secs}s`;
        return { kind: "retrying", label: "Reconnecting", reason: `${player.message || "connection lost"}${when}` };
      }
      case "closed":
      case "connecting":
      case "open":
        break;
    }
  }
  const state: StreamState | null = player?.streamState ?? apiState ?? null;
  const message = (player?.streamState ? player.message : apiMessage) ?? "";
  if (player && player.connection === "connecting" && !player.hasPicture) {
    return { kind: "connecting", label: "Connecting", reason: "" };
  }
  switch (state) {
    case "live":
      return { kind: "live", label: "Live", reason: "" };
    case "connecting":
      return { kind: "connecting", label: "Connecting", reason: message };
    case "retrying":
      return { kind: "retrying", label: "Retrying", reason: message || "the source is reconnecting" };
    case "failed":
      return { kind: "offline", label: "Offline", reason: message || "the source failed" };
    case "stopped":
      return { kind: "idle", label: "Idle", reason: message || "starts when someone watches" };
    case null:
      return { kind: "connecting", label: "Connecting", reason: "" };
  }
}
