import { CircleAlert, Clock, Loader2, Lock, MoonStar, PowerOff, RefreshCw, Snowflake, Trash2 } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Tooltip, TooltipContent, TooltipTrigger } from "@/components/ui/tooltip";
import { sinceText, type HealthBadgeInfo } from "@/lib/health";
import type { BadgeKind, DisplayStatus } from "@/lib/status";
import { cn } from "@/lib/utils";

const VARIANT = {
  live: "live",
  connecting: "muted",
  retrying: "warn",
  offline: "destructive",
  idle: "muted",
  locked: "muted",
  removed: "muted",
} as const;

/** Icon colours for the badge drawn over video (dark translucent background). */
const OVERLAY_ACCENT: Record<BadgeKind, string> = {
  live: "text-emerald-400",
  connecting: "text-white/80",
  retrying: "text-amber-300",
  offline: "text-red-400",
  idle: "text-white/70",
  locked: "text-white/80",
  removed: "text-white/70",
};

export function StatusBadge({
  status,
  overlay = false,
  className,
}: {
  status: DisplayStatus;
  /** Drawn over video: dark glass background, coloured icon. */
  overlay?: boolean;
  className?: string;
}) {
  const accent = overlay ? OVERLAY_ACCENT[status.kind] : undefined;
  const badge = (
    <Badge
      variant={overlay ? "outline" : VARIANT[status.kind]}
      data-testid="status-badge"
      data-state={status.kind}
      className={cn(overlay && "border-white/10 bg-black/55 text-white shadow-sm backdrop-blur-md", className)}
    >
      {/* A still dot: an idle wall runs no animations (a pulse per tile cost main-thread time). */}
      {status.kind === "live" && <span className={cn("size-1.5 rounded-full bg-current", accent)} aria-hidden />}
      {status.kind === "connecting" && <Loader2 className={cn("animate-spin", accent)} aria-hidden />}
      {status.kind === "retrying" && <RefreshCw className={accent} aria-hidden />}
      {status.kind === "offline" && <CircleAlert className={accent} aria-hidden />}
      {status.kind === "idle" && <PowerOff className={accent} aria-hidden />}
      {status.kind === "locked" && <Lock className={accent} aria-hidden />}
      {status.kind === "removed" && <Trash2 className={accent} aria-hidden />}
      {status.label}
    </Badge>
  );
  if (!status.reason) return badge;
  return (
    <Tooltip>
      <TooltipTrigger asChild>{badge}</TooltipTrigger>
      <TooltipContent>{status.reason}</TooltipContent>
    </Tooltip>
  );
}

const HEALTH_ICON = { frozen: Snowflake, dark: MoonStar, late: Clock } as const;

/**
 * The picture-health badge (frozen, dark, late): text and icon, never colour alone; no
 * animation. Its accessible name says what it means and since when.
 */
export function HealthBadge({ info, overlay = false, className }: { info: HealthBadgeInfo; overlay?: boolean; className?: string }) {
  const Icon = HEALTH_ICON[info.health];
  const since = sinceText(info.since);
  const description = since ? `${info.description}, ${since}` : info.description;
  return (
    <Tooltip>
      <TooltipTrigger asChild>
        <Badge
          variant={overlay ? "outline" : "warn"}
          role="status"
          aria-label={description}
          data-testid="health-badge"
          data-health={info.health}
          className={cn(overlay && "border-amber-300/40 bg-black/65 text-amber-200 shadow-sm backdrop-blur-md", className)}
        >
          <Icon aria-hidden />
          {info.label}
        </Badge>
      </TooltipTrigger>
      <TooltipContent>{description}</TooltipContent>
    </Tooltip>
  );
}
