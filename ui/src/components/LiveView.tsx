import { useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { CircleAlert, Loader2, Lock, PowerOff, RefreshCw, Trash2 } from "lucide-react";
import { HealthBadge, StatusBadge } from "@/components/StatusBadge";
import { PlayerContext } from "@/hooks/playerContext";
import { useStreamPlayer } from "@/hooks/useStreamPlayer";
import { formatBitrate, formatFps, formatLatency } from "@/lib/format";
import { displayHealth } from "@/lib/health";
import type { StreamVariant } from "@/lib/api";
import { displayStatus, retryShown, stabilize, type DisplayStatus, type Outage } from "@/lib/status";
import { cn } from "@/lib/utils";
import { hasPicture as pictureKept } from "@/player/lastPicture";
import type { PlayerStats, PlayerStatus } from "@/player/player";
import type { OutageCause, PictureHealth, StreamState } from "@/player/protocol";

/**
 * What the delay figure measures (it is not glass-to-glass): from the gateway's capture of the
 * frame to its display here, including the deliberate jitter buffer.
 */
export const DELAY_EXPLAINED =
  "Gateway → screen: from the frame's capture at the gateway to its display here, including the smoothing buffer of the path that plays it (a deliberate 200 ms on MJPEG, the video element's own few hundred ms on MSE, none on WebCodecs). Not glass-to-glass: the camera's own delay is not counted.";

/** Re-renders every second while `active` (for "retrying in Ns"). */
function useTicker(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [active]);
  return now;
}

export interface LiveViewProps {
  streamId: string;
  /** The camera's name, for announcing its state changes. */
  name: string;
  maxFps: number | null;
  /** Which of the stream's variants to play (default `main`). */
  variant?: StreamVariant;
  apiState: StreamState | null | undefined;
  /** Why the source is down, from the stream list (absent from older gateways). */
  apiCause?: OutageCause | null;
  /**
   * When a "Retry now" was accepted (Date.now() ms): the view shows the new attempt
   * (connecting) instead of the outage, until the stream's state moves on.
   */
  retryRequestedAt?: number | null;
  /** Shown in the problem overlay under its text (the focused view's "Retry now"). */
  problemAction?: ReactNode;
  apiMessage: string | null | undefined;
  /** The stream list's picture health and since when (absent from older gateways). */
  apiHealth?: PictureHealth | null;
  apiHealthSince?: string | null;
  /** Extra statistics consumers (the focused view's details panel). */
  onStats?: (stats: PlayerStats) => void;
  onStatus?: (status: PlayerStatus | null, display: DisplayStatus) => void;
  className?: string;
  /** Rendered over the picture, top right (actions), above `cover`. */
  actions?: ReactNode;
  /**
   * The camera's name over the picture, bottom left (a wall tile's caption: the picture takes
   * the whole tile). The live stats then keep to the right and drop out one by one as the
   * view narrows (container queries), so that nothing wraps or overflows even 160 px wide;
   * without a caption (the focused view) they are all shown, the playback path at the left.
   */
  caption?: ReactNode;
  /** Over the picture, its overlays and its badges, under `actions` (a wall tile's link). */
  cover?: ReactNode;
  containerRef?: (el: HTMLDivElement | null) => void;
  size?: "tile" | "large";
}

/** One live picture: canvas, status badge, overlay for problems, live stats line. */
export function LiveView({
  streamId,
  name,
  maxFps,
  variant = "main",
  apiState,
  apiCause,
  retryRequestedAt = null,
  problemAction,
  apiMessage,
  apiHealth,
  apiHealthSince,
  onStats,
  onStatus,
  className,
  actions,
  caption,
  cover,
  containerRef,
  size = "tile",
}: LiveViewProps) {
  const fpsRef = useRef<HTMLSpanElement>(null);
  const latencyRef = useRef<HTMLSpanElement>(null);
  const bitrateRef = useRef<HTMLSpanElement>(null);
  const pathRef = useRef<HTMLSpanElement>(null);
  const extraStats = useRef(onStats);
  useEffect(() => {
    extraStats.current = onStats;
  }, [onStats]);

  const writeStats = useCallback((s: PlayerStats) => {
    if (fpsRef.current) fpsRef.current.textContent = formatFps(s.fps);
    if (latencyRef.current) latencyRef.current.textContent = formatLatency(s.latencyMs);
    if (bitrateRef.current) bitrateRef.current.textContent = formatBitrate(s.bitrate);
    if (pathRef.current) pathRef.current.textContent = s.pathLabel;
    extraStats.current?.(s);
  }, []);

  const { canvasRef, videoRef, viewportRef, status } = useStreamPlayer(streamId, maxFps, writeStats, variant);
  // The MSE path plays in the <video>; the others draw on the canvas (which also holds the
  // previous view's picture until this player's first one).
  const onVideo = status?.path === "mse" && !status.poster;
  // Retrying (the socket, or the camera behind it): its "retrying in Ns" counts down live.
  const retrying = status?.connection === "reconnecting" || (status?.streamState ?? apiState) === "retrying";
  // "Retry now" accepted: the new attempt shows as connecting (not as the same outage) until
  // the state moves on, or for a few seconds if nothing says otherwise.
  const [retrySeen, setRetrySeen] = useState<number | null>(null);
  const [retryPending, setRetryPending] = useState(false);
  const now = useTicker(retrying || retryPending);
  // One state per outage: the attempts in between ("connecting") do not flip the tile back.
  const [outage, setOutage] = useState<Outage | null>(null);
  const raw = displayStatus(apiState, apiMessage, status, now, apiCause ?? null);
  if (retryRequestedAt !== retrySeen) {
    setRetrySeen(retryRequestedAt);
    setRetryPending(retryRequestedAt !== null);
    if (retryRequestedAt !== null) setOutage(null);
  }
  // Once the state has moved on (or the time is up), the retry is shown as it goes.
  const afterRetry = retryPending ? retryShown(raw, retryRequestedAt, now) : null;
  if (retryPending && !afterRetry) setRetryPending(false);
  const stable = stabilize(afterRetry ? null : outage, raw);
  const display: DisplayStatus = afterRetry ?? stable.shown;
  const nextOutage = afterRetry ? null : stable.outage;
  if (nextOutage?.label !== outage?.label || nextOutage?.reason !== outage?.reason || nextOutage?.headline !== outage?.headline) {
    setOutage(nextOutage);
  }
  // The previous view's picture of this stream will be drawn at once (the player's poster):
  // the canvas is shown from the first paint, with no fade-in (no blank frame).
  const [posterExpected] = useState(() => pictureKept(streamId));
  const hasPicture = status?.hasPicture ?? posterExpected;
  const healthy = display.kind === "live";
  // Picture health matters only for a picture that plays (else the status badge says why).
  const health = healthy ? displayHealth(apiHealth, apiHealthSince, status) : null;

  // State changes are announced (aria-live), except the normal start: connecting, then live.
  const { announce } = useContext(PlayerContext);
  const announced = useRef<{ kind: DisplayStatus["kind"]; wasLive: boolean } | null>(null);
  useEffect(() => {
    const previous = announced.current;
    announced.current = { kind: display.kind, wasLive: (previous?.wasLive ?? false) || display.kind === "live" };
    if (previous === null || previous.kind === display.kind || display.kind === "connecting") return;
    if (display.kind === "live" && !previous.wasLive) return;
    announce(`${name}: ${display.label}`);
  }, [display.kind, display.label, name, announce]);
  // And the picture's problems, when they begin.
  const healthProblem = health?.description ?? null;
  useEffect(() => {
    if (healthProblem) announce(`${name}: ${healthProblem}`);
  }, [healthProblem, name, announce]);

  const statusCallback = useRef(onStatus);
  useEffect(() => {
    statusCallback.current = onStatus;
  }, [onStatus]);
  useEffect(() => {
    statusCallback.current?.(status, display);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [status, display.kind, display.reason]);

  const setContainer = useCallback(
    (el: HTMLDivElement | null) => {
      viewportRef(el);
      containerRef?.(el);
    },
    [viewportRef, containerRef],
  );

  return (
    <div
      ref={setContainer}
      // A captioned view (a wall tile) is a size container: its overlays adapt to its width.
      className={cn("group/live relative isolate overflow-hidden bg-video", caption !== undefined && "@container/live", className)}
      data-testid="live-view"
    >
      <canvas
        ref={canvasRef}
        data-testid="stream-canvas"
        className={cn(
          "absolute inset-0 size-full object-contain transition-[opacity,filter] duration-300",
          hasPicture ? "opacity-100" : "opacity-0",
          hasPicture && !healthy && "opacity-40 grayscale",
          onVideo && "hidden",
        )}
      />
      <video
        ref={videoRef}
        data-testid="stream-video"
        muted
        playsInline
        disablePictureInPicture
        aria-hidden
        tabIndex={-1}
        className={cn(
          "pointer-events-none absolute inset-0 size-full object-contain transition-[opacity,filter] duration-300",
          hasPicture ? "opacity-100" : "opacity-0",
          hasPicture && !healthy && "opacity-40 grayscale",
          !onVideo && "hidden",
        )}
      />

      {(!hasPicture || !healthy) && (
        <ProblemOverlay display={display} hasPicture={hasPicture} size={size} action={problemAction} captioned={caption !== undefined} />
      )}

      <div className="pointer-events-none absolute top-0 left-0 flex flex-wrap items-center gap-1.5 p-2 sm:p-2.5">
        <StatusBadge status={display} overlay className="pointer-events-auto" />
        {health && <HealthBadge info={health} overlay className="pointer-events-auto" />}
      </div>

      <div
        className={cn(
          "pointer-events-none absolute inset-x-0 bottom-0 flex items-baseline justify-end gap-3 bg-gradient-to-t px-2.5 pt-6 pb-1.5 font-mono text-[11px] text-white/90",
          // A caption is always shown (the camera's name, also while it is down): its gradient
          // is darker, for the name's contrast over a bright picture.
          caption !== undefined ? "@container from-black/80 via-black/45 to-transparent" : "from-black/60 to-transparent transition-opacity",
          caption === undefined && (hasPicture ? "opacity-100" : "opacity-0"),
          size === "large" && "text-xs",
        )}
        data-testid="live-stats"
      >
        {caption !== undefined && (
          <span className="mr-auto min-w-0 truncate font-sans text-[13px] leading-5 font-medium text-white [text-shadow:0_1px_2px_rgb(0_0_0/0.9)]">
            {caption}
          </span>
        )}
        {/* In a captioned (tile) view, the stats show as the view's width allows: the fps from
            256 px, the delay from 320, how it plays (the path) from 384, the bitrate from 448. */}
        <span
          className={cn(
            "min-w-0 truncate",
            caption === undefined ? "mr-auto" : ["hidden shrink-0 @sm:inline", hasPicture ? "opacity-100" : "opacity-0"],
          )}
          title="How this picture is played: WebCodecs or MSE (the camera's own H.264/H.265), or MJPEG (transcoded by the gateway)"
        >
          <span ref={pathRef} data-testid="stat-path">
            –
          </span>
        </span>
        <span title="Frames drawn per second" className={cn(caption !== undefined && ["hidden shrink-0 @3xs:inline", hasPicture ? "opacity-100" : "opacity-0"])}>
          <span ref={fpsRef} data-testid="stat-fps">
            –
          </span>
        </span>
        <span
          title={DELAY_EXPLAINED}
          data-testid="stat-latency-label"
          className={cn(caption !== undefined && ["hidden shrink-0 @xs:inline", hasPicture ? "opacity-100" : "opacity-0"])}
        >
          <span ref={latencyRef} data-testid="stat-latency">
            –
          </span>
        </span>
        <span title="Bitrate received" className={cn(caption !== undefined && ["hidden shrink-0 @md:inline", hasPicture ? "opacity-100" : "opacity-0"])}>
          <span ref={bitrateRef} data-testid="stat-bitrate">
            –
          </span>
        </span>
      </div>

      {cover}

      {actions && <div className="pointer-events-auto absolute top-0 right-0 flex gap-1 p-2 sm:p-2.5">{actions}</div>}
    </div>
  );
}

function ProblemOverlay({
  display,
  hasPicture,
  size,
  action,
  captioned,
}: {
  display: DisplayStatus;
  hasPicture: boolean;
  size: "tile" | "large";
  action?: ReactNode;
  /** A caption sits at the bottom: the overlay's text is centred in the space above it. */
  captioned: boolean;
}) {
  const Icon =
    display.kind === "connecting" || display.kind === "live"
      ? Loader2
      : display.kind === "retrying"
        ? RefreshCw
        : display.kind === "offline"
          ? CircleAlert
          : display.kind === "locked"
            ? Lock
            : display.kind === "removed"
              ? Trash2
              : PowerOff;
  // A source's outage is headlined by its cause ("Camera refused the sign-in"), when known.
  const title = display.headline
    ? display.headline
    : display.kind === "live" || display.kind === "connecting"
      ? display.reason
        ? "Connecting to the camera…"
        : "Waiting for the first frame…"
      : display.kind === "retrying"
        ? display.label === "Reconnecting"
          ? "Reconnecting to the gateway…"
          : "Camera not answering, retrying…"
        : display.kind === "offline"
          ? "Camera offline"
          : display.kind === "locked"
            ? "Sign in to watch"
            : display.kind === "removed"
              ? "Stream removed"
              : "Idle";
  return (
    <div
      className={cn(
        "absolute inset-0 flex flex-col items-center justify-center gap-2 px-6 text-center text-white/85",
        hasPicture && "bg-black/30",
        captioned && "pb-7",
      )}
      data-testid="problem-overlay"
    >
      <Icon
        className={cn(
          size === "large" ? "size-8" : "size-6",
          // A tile under 320 px says only the headline (its badge has the icon too), clear of
          // the caption and of an admin's Retry now.
          captioned && "@max-xs/live:hidden",
          // Spins only while connecting (transient); a live tile waiting for a picture (off
          // screen, it asks for none) shows a still icon: nothing animates on an idle wall.
          display.kind === "connecting" && "animate-spin",
          display.kind === "offline" && "text-red-400",
          display.kind === "retrying" && "text-amber-300",
        )}
        aria-hidden
      />
      {/* Under 256 px a tile has no room for it beside an admin's Retry now: its badge says it. */}
      <p className={cn("font-medium", size === "large" ? "text-base" : "text-sm", captioned && "@max-3xs/live:sr-only")} data-testid="status-headline">
        {title}
      </p>
      {display.reason && (
        <p
          className={cn("line-clamp-2 max-w-md text-white/70", size === "large" ? "text-sm" : "text-xs", captioned && "@max-xs/live:hidden")}
          data-testid="status-reason"
        >
          {display.reason}
        </p>
      )}
      {action && (display.kind === "retrying" || display.kind === "offline") && display.label !== "Reconnecting" && (
        <div className="pointer-events-auto mt-1">{action}</div>
      )}
    </div>
  );
}
