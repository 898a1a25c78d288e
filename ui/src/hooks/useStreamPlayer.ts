import { useCallback, useContext, useEffect, useRef, useState } from "react";
import { PlayerContext } from "@/hooks/playerContext";
import type { StreamVariant } from "@/lib/api";
import { modalOpen, subscribeModal } from "@/lib/modal";
import { holdPicture, releasePicture, takePicture } from "@/player/lastPicture";
import { forcedPath } from "@/player/ladder";
import { StreamPlayer, type PlayerStats, type PlayerStatus } from "@/player/player";

export interface StreamPlayerHandle {
  /** Attach to the <canvas>. */
  canvasRef: (canvas: HTMLCanvasElement | null) => void;
  /** Attach to the <video> the MSE path plays in (shown only while `status.path` is "mse"). */
  videoRef: (video: HTMLVideoElement | null) => void;
  /**
   * Attach to the element whose visibility decides whether to decode and to ask the gateway
   * for frames (the tile): off-screen or behind a modal dialog, it receives nothing (credit,
   * see player/credit.ts), and after a while its socket is closed (player.ts).
   */
  viewportRef: (el: HTMLElement | null) => void;
  status: PlayerStatus | null;
}

/**
 * Runs a StreamPlayer for as long as the component is mounted. Statistics never go through
 * React state: `onStats` writes them to the DOM (refs) a few times per second. A new player
 * starts with the stream's latest picture on this page (player/lastPicture.ts) until it draws
 * its own.
 */
export function useStreamPlayer(
  streamId: string,
  maxFps: number | null,
  onStats: (stats: PlayerStats) => void,
  variant: StreamVariant = "main",
): StreamPlayerHandle {
  const ctx = useContext(PlayerContext);
  const [canvas, setCanvas] = useState<HTMLCanvasElement | null>(null);
  const [video, setVideo] = useState<HTMLVideoElement | null>(null);
  const [viewport, setViewport] = useState<HTMLElement | null>(null);
  const [status, setStatus] = useState<PlayerStatus | null>(null);
  const playerRef = useRef<StreamPlayer | null>(null);
  const statsRef = useRef(onStats);
  useEffect(() => {
    statsRef.current = onStats;
  }, [onStats]);
  const ctxRef = useRef(ctx);
  useEffect(() => {
    ctxRef.current = ctx;
  }, [ctx]);

  useEffect(() => {
    if (!canvas) return;
    const player = new StreamPlayer({
      streamId,
      canvas,
      video,
      // `?player=webcodecs|mse|mjpeg` on the page URL forces a path (tests, troubleshooting).
      forcePath: forcedPath(window.location.search),
      maxFps,
      variant,
      poster: takePicture(streamId) ?? undefined,
      onStatus: setStatus,
      onStats: (s) => statsRef.current(s),
      onUnauthorized: () => ctxRef.current.onUnauthorized(),
      onRemoved: () => ctxRef.current.onRemoved(streamId),
    });
    playerRef.current = player;
    // Where this player's picture is (for the next player of the stream), while it has one.
    const picture = () => {
      const s = player.getStatus();
      if (!s.hasPicture) return null;
      return s.path === "mse" && !s.poster ? video : canvas;
    };
    const forget = holdPicture(streamId, picture);
    // Visible unless something says otherwise (IntersectionObserver, a dialog).
    player.setVisible(!modalOpen());
    player.start();
    return () => {
      forget();
      releasePicture(streamId, picture());
      player.destroy();
      playerRef.current = null;
    };
  }, [canvas, video, streamId, maxFps, variant]);

  // After a sign-in, sockets that were refused come back at once.
  const epoch = ctx.authEpoch;
  const firstEpoch = useRef(epoch);
  useEffect(() => {
    if (epoch !== firstEpoch.current) playerRef.current?.reconnectNow();
  }, [epoch]);

  // Seen = on screen (IntersectionObserver) and not behind a modal dialog.
  useEffect(() => {
    if (!viewport) return;
    let intersecting = true;
    const apply = () => playerRef.current?.setVisible(intersecting && !modalOpen());
    const unsubscribe = subscribeModal(apply);
    let observer: IntersectionObserver | null = null;
    if (typeof IntersectionObserver !== "undefined") {
      observer = new IntersectionObserver(
        (entries) => {
          for (const entry of entries) intersecting = entry.isIntersecting;
          apply();
        },
        { rootMargin: "100px" },
      );
      observer.observe(viewport);
    }
    apply();
    return () => {
      observer?.disconnect();
      unsubscribe();
    };
  }, [viewport, canvas, video, variant, maxFps, streamId]);

  const canvasRef = useCallback((el: HTMLCanvasElement | null) => setCanvas(el), []);
  const videoRef = useCallback((el: HTMLVideoElement | null) => setVideo(el), []);
  const viewportRef = useCallback((el: HTMLElement | null) => setViewport(el), []);
  return { canvasRef, videoRef, viewportRef, status };
}
