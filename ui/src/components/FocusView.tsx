import { useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { ArrowLeft, Camera, Check, ChevronLeft, ChevronRight, Link2, Maximize, Minimize } from "lucide-react";
import { LiveView } from "@/components/LiveView";
import { RetryNow } from "@/components/RetryNow";
import { StreamActions } from "@/components/StreamActions";
import { Button } from "@/components/ui/button";
import { PlayerContext } from "@/hooks/playerContext";
import { streamHref } from "@/hooks/useHashRoute";
import type { Stream } from "@/lib/api";
import { copyText, neighbours, snapshotFileName, snapshotUrl, streamLink } from "@/lib/focus";
import { modalOpen } from "@/lib/modal";
import { FOCUS_PLAYBACK } from "@/lib/variants";
import { formatBitrate, formatDuration, formatFps, formatLatency, maskUrl } from "@/lib/format";
import type { DisplayStatus } from "@/lib/status";
import type { PlayerStats, PlayerStatus } from "@/player/player";

type FullscreenElement = HTMLElement & { webkitRequestFullscreen?: () => Promise<void> | void };
type FullscreenDocument = Omit<Document, "exitFullscreen"> & {
  exitFullscreen?: () => Promise<void>;
  webkitFullscreenElement?: Element | null;
  webkitExitFullscreen?: () => Promise<void> | void;
};

function fullscreenSupported(): boolean {
  const el = document.documentElement as FullscreenElement;
  return typeof el.requestFullscreen === "function" || typeof el.webkitRequestFullscreen === "function";
}

function currentFullscreen(): Element | null {
  const d = document as FullscreenDocument;
  return d.fullscreenElement ?? d.webkitFullscreenElement ?? null;
}

/** Keys typed into these are not camera navigation. */
function typing(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

export function FocusView({
  stream,
  streams,
  isAdmin,
  onBack,
  onEdit,
  onDelete,
}: {
  stream: Stream;
  /** The cameras in the grid's order: previous/next go through them (wrapping around). */
  streams?: readonly Stream[];
  isAdmin: boolean;
  onBack: () => void;
  onEdit: (stream: Stream) => void;
  onDelete: (stream: Stream) => void;
}) {
  const { announce, onUnauthorized } = useContext(PlayerContext);
  const [retryAt, setRetryAt] = useState<number | null>(null);
  const [copied, setCopied] = useState(false);
  const { previous, next } = neighbours(streams ?? [], stream.id);

  // ← and → go to the previous and next camera (not while typing, nor behind a dialog).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey || typing(e.target) || modalOpen()) return;
      const to = e.key === "ArrowLeft" ? previous : e.key === "ArrowRight" ? next : null;
      if (!to) return;
      e.preventDefault();
      window.location.hash = streamHref(to.id);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [previous, next]);

  useEffect(() => {
    if (!copied) return;
    const t = setTimeout(() => setCopied(false), 2000);
    return () => clearTimeout(t);
  }, [copied]);

  const copyLink = useCallback(async () => {
    const ok = await copyText(streamLink(window.location, stream.id));
    setCopied(ok);
    announce(ok ? "Link copied" : "Could not copy the link");
  }, [stream.id, announce]);
  const containerRef = useRef<HTMLDivElement | null>(null);
  const [isFullscreen, setFullscreen] = useState(false);
  const [playerStatus, setPlayerStatus] = useState<PlayerStatus | null>(null);
  const [display, setDisplay] = useState<DisplayStatus | null>(null);
  const fpsRef = useRef<HTMLElement>(null);
  const receivedRef = useRef<HTMLElement>(null);
  const latencyRef = useRef<HTMLElement>(null);
  const bitrateRef = useRef<HTMLElement>(null);
  const skippedRef = useRef<HTMLElement>(null);
  const resolutionRef = useRef<HTMLElement>(null);
  const pathRef = useRef<HTMLElement>(null);
  const setContainer = useCallback((el: HTMLDivElement | null) => {
    containerRef.current = el;
  }, []);

  useEffect(() => {
    const onChange = () => setFullscreen(currentFullscreen() === containerRef.current && containerRef.current !== null);
    document.addEventListener("fullscreenchange", onChange);
    document.addEventListener("webkitfullscreenchange", onChange);
    return () => {
      document.removeEventListener("fullscreenchange", onChange);
      document.removeEventListener("webkitfullscreenchange", onChange);
    };
  }, []);

  const toggleFullscreen = useCallback(() => {
    const el = containerRef.current as FullscreenElement | null;
    if (!el) return;
    const d = document as FullscreenDocument;
    if (currentFullscreen()) {
      if (d.exitFullscreen) d.exitFullscreen().catch(() => undefined);
      else void d.webkitExitFullscreen?.();
    } else if (typeof el.requestFullscreen === "function") {
      el.requestFullscreen().catch(() => undefined);
    } else {
      void el.webkitRequestFullscreen?.();
    }
  }, []);

  const onStats = useCallback((s: PlayerStats) => {
    const set = (ref: React.RefObject<HTMLElement | null>, text: string) => {
      if (ref.current) ref.current.textContent = text;
    };
    set(fpsRef, formatFps(s.fps));
    set(receivedRef, formatFps(s.receivedFps));
    set(latencyRef, formatLatency(s.latencyMs));
    set(bitrateRef, formatBitrate(s.bitrate));
    set(pathRef, s.pathLabel);
    set(skippedRef, `${s.droppedByGateway} by gateway · ${s.droppedLate} to catch up`);
    if (s.framesShown > 0) set(resolutionRef, `${s.width} × ${s.height}`);
  }, []);

  const onStatus = useCallback((status: PlayerStatus | null, d: DisplayStatus) => {
    setPlayerStatus(status);
    setDisplay(d);
  }, []);

  const hello = playerStatus?.hello ?? null;
  const width = hello?.width ?? stream.width ?? null;
  const height = hello?.height ?? stream.height ?? null;
  const configuredFps = hello?.fps ?? (typeof stream.source.fps === "number" ? stream.source.fps : null);
  const url = typeof stream.source.url === "string" ? maskUrl(stream.source.url) : "";
  const reason = [display?.headline, display?.reason ?? stream.message].filter(Boolean).join(": ");

  return (
    <div className="flex flex-col gap-3 sm:gap-4" data-testid="focus-view" data-stream-id={stream.id}>
      <div className="flex flex-wrap items-center gap-x-2 gap-y-1">
        <Button variant="ghost" size="sm" onClick={onBack} data-testid="back-to-grid">
          <ArrowLeft /> All cameras
        </Button>
        <h1 className="min-w-0 flex-1 truncate text-lg font-semibold sm:text-xl" data-testid="focus-title">
          {stream.name}
        </h1>
        <nav aria-label="Other cameras" className="flex items-center gap-1">
          {previous && (
            <Button asChild variant="outline" size="sm" className="max-sm:min-w-11" title={`Previous camera: ${previous.name} (←)`}>
              <a href={streamHref(previous.id)} data-testid="previous-camera" aria-label={`Previous camera: ${previous.name}`}>
                <ChevronLeft aria-hidden />
                <span className="max-w-32 truncate max-md:sr-only">{previous.name}</span>
              </a>
            </Button>
          )}
          {next && (
            <Button asChild variant="outline" size="sm" className="max-sm:min-w-11" title={`Next camera: ${next.name} (→)`}>
              <a href={streamHref(next.id)} data-testid="next-camera" aria-label={`Next camera: ${next.name}`}>
                <span className="max-w-32 truncate max-md:sr-only">{next.name}</span>
                <ChevronRight aria-hidden />
              </a>
            </Button>
          )}
        </nav>
        <Button asChild variant="outline" size="icon-sm" title="Save a snapshot (JPEG)">
          <a href={snapshotUrl(stream.id)} download={snapshotFileName(stream.id)} aria-label={`Save a snapshot of ${stream.name}`} data-testid="snapshot">
            <Camera aria-hidden />
          </a>
        </Button>
        <Button
          variant="outline"
          size="icon-sm"
          onClick={() => void copyLink()}
          title="Copy a link to this camera"
          aria-label={`Copy a link to ${stream.name}`}
          data-testid="copy-link"
          data-copied={copied ? "true" : undefined}
        >
          {copied ? <Check aria-hidden /> : <Link2 aria-hidden />}
        </Button>
        {isAdmin && <StreamActions stream={stream} onEdit={onEdit} onDelete={onDelete} size="icon" />}
      </div>

      <div className="grid gap-4 lg:grid-cols-[minmax(0,1fr)_20rem]">
        <LiveView
          streamId={stream.id}
          name={stream.name}
          maxFps={FOCUS_PLAYBACK.maxFps}
          variant={FOCUS_PLAYBACK.variant}
          apiCause={stream.cause}
          retryRequestedAt={retryAt}
          problemAction={
            isAdmin ? (
              <RetryNow streamId={stream.id} name={stream.name} onAccepted={() => setRetryAt(Date.now())} onUnauthorized={onUnauthorized} />
            ) : null
          }
          apiState={stream.state}
          apiMessage={stream.message}
          apiHealth={stream.health}
          apiHealthSince={stream.health_since}
          onStats={onStats}
          onStatus={onStatus}
          containerRef={setContainer}
          size="large"
          // As wide as fits the height left under the header and the title row (a phone in
          // landscape: the whole picture on screen), at most the column's width.
          className="mx-auto aspect-video w-full max-w-[calc((100dvh-8.5rem)*16/9)] rounded-xl border shadow-sm [&:fullscreen]:aspect-auto [&:fullscreen]:max-w-none [&:fullscreen]:rounded-none [&:fullscreen]:border-0"
          actions={
            fullscreenSupported() ? (
              <Button
                variant="ghost"
                size="icon-sm"
                className="bg-black/45 text-white hover:bg-black/65 hover:text-white"
                onClick={toggleFullscreen}
                aria-label={isFullscreen ? "Exit full screen" : "Full screen"}
                title={isFullscreen ? "Exit full screen" : "Full screen"}
                data-testid="fullscreen"
              >
                {isFullscreen ? <Minimize /> : <Maximize />}
              </Button>
            ) : null
          }
        />

        <aside className="rounded-xl border bg-card p-4 text-card-foreground shadow-sm" data-testid="stream-details">
          <h2 className="mb-3 text-sm font-semibold">Details</h2>
          <dl className="grid grid-cols-[auto_minmax(0,1fr)] gap-x-4 gap-y-2 text-sm">
            <Row label="Id">
              <span className="font-mono">{stream.id}</span>
            </Row>
            <Row label="State">
              <span data-testid="detail-state">{display?.label ?? stream.state}</span>
              {reason && (
                <span className="block text-xs break-words text-muted-foreground" data-testid="detail-message">
                  {reason}
                </span>
              )}
            </Row>
            <Row label="Source">
              <span data-testid="detail-plugin">{stream.source.plugin}</span>
            </Row>
            {url && (
              <Row label="URL">
                <span className="font-mono text-xs break-all" data-testid="detail-url">
                  {url}
                </span>
              </Row>
            )}
            <Row label="Resolution">
              <span ref={resolutionRef} data-testid="detail-resolution">
                {width && height ? `${width} × ${height}` : "–"}
              </span>
            </Row>
            <Row label="Frame rate">
              {configuredFps !== null ? formatFps(configuredFps) : "–"}
              {typeof stream.fps === "number" && <span className="text-muted-foreground"> · measured {formatFps(stream.fps)}</span>}
            </Row>
            <Row label="Viewers">{typeof stream.viewers === "number" ? stream.viewers : "–"}</Row>
            <Row label="Mode">
              {stream.on_demand ? `On demand${stream.idle_timeout ? ` (idle ${stream.idle_timeout})` : ""}` : "Always on"}
            </Row>
            {typeof stream.uptime_seconds === "number" && <Row label="Uptime">{formatDuration(stream.uptime_seconds)}</Row>}
            {typeof stream.bitrate === "number" && <Row label="Source rate">{formatBitrate(stream.bitrate)}</Row>}
          </dl>
          <h2 className="mt-5 mb-3 text-sm font-semibold">This viewer</h2>
          <dl className="grid grid-cols-[auto_minmax(0,1fr)] gap-x-4 gap-y-2 text-sm">
            <Row label="Playback">
              <span ref={pathRef} data-testid="detail-path">
                –
              </span>
            </Row>
            <Row label="Drawn">
              <span ref={fpsRef} data-testid="detail-fps">
                –
              </span>
            </Row>
            <Row label="Received">
              <span ref={receivedRef} data-testid="detail-received">
                –
              </span>
            </Row>
            <Row label="Gateway → screen">
              <span ref={latencyRef} data-testid="detail-latency">
                –
              </span>
              <span className="block text-xs text-muted-foreground" data-testid="detail-latency-note">
                From capture at the gateway, incl. the smoothing buffer (200 ms on MJPEG); not glass-to-glass
              </span>
            </Row>
            <Row label="Bitrate">
              <span ref={bitrateRef} data-testid="detail-bitrate">
                –
              </span>
            </Row>
            <Row label="Skipped">
              <span ref={skippedRef} className="text-xs text-muted-foreground">
                –
              </span>
            </Row>
          </dl>
        </aside>
      </div>
    </div>
  );
}

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <>
      <dt className="text-muted-foreground">{label}</dt>
      <dd className="min-w-0">{children}</dd>
    </>
  );
}
