/**
 * What a tile's picture-health badge says. The gateway judges each stream's picture (`ok`,
 * `frozen`, `dark`, `late`, `unknown`; see docs/configuration.md, "Picture health"); a
 * badge appears only for the three problems — a live camera whose picture users cannot
 * trust. Pure: unit-tested.
 *
 * The live connection's `health` message wins over `GET /api/streams`'s `health` (polled,
 * and absent from gateways that predate it: then nothing is shown).
 */

import type { PlayerStatus } from "@/player/player";

/** The health values a badge is shown for. */
export type HealthProblem = "frozen" | "dark" | "late";

export interface HealthBadgeInfo {
  health: HealthProblem;
  /** Short visible text. */
  label: string;
  /** What it means, for the tooltip and the accessible name. */
  description: string;
  /** When it began (RFC 3339), "" if unknown. */
  since: string;
}

const PROBLEMS: Record<HealthProblem, { label: string; description: string }> = {
  frozen: { label: "Frozen", description: "Picture frozen: frames keep arriving but the picture does not change" },
  dark: { label: "Dark", description: "Picture dark: black or uniform (covered lens, no light?)" },
  late: { label: "Late", description: "Frames late: old, or well below the camera's configured rate" },
};

function isProblem(health: unknown): health is HealthProblem {
  return typeof health === "string" && Object.prototype.hasOwnProperty.call(PROBLEMS, health);
}

/**
 * The badge for a stream, or null (healthy, unknown, or nothing said). `apiHealth` and
 * `apiSince` are the stream list's fields (optional), `player` the live connection's status.
 */
export function displayHealth(
  apiHealth: string | null | undefined,
  apiSince: string | null | undefined,
  player: Pick<PlayerStatus, "health" | "healthSince"> | null,
): HealthBadgeInfo | null {
  const fromPlayer = player?.health ?? null;
  const health = fromPlayer ?? apiHealth ?? null;
  const since = fromPlayer !== null ? (player?.healthSince ?? "") : (apiSince ?? "");
  if (!isProblem(health)) return null;
  return { health, ...PROBLEMS[health], since };
}

/** "since 14:26:36" in the page's locale, or "" when `since` is not a date. */
export function sinceText(since: string, format: (d: Date) => string = (d) => d.toLocaleTimeString()): string {
  if (!since) return "";
  const date = new Date(since);
  return Number.isNaN(date.getTime()) ? "" : `since ${format(date)}`;
}
