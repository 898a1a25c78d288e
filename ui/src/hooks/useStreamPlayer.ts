import { useCallback, useContext, useEffect, useRef, useState } from "react";
import { PlayerContext } from "@/hooks/playerContext";
import { forcedPath } from "@/player/ladder";
import { StreamPlayer, type PlayerStats, type PlayerStatus } from "@/player/player";

export interface StreamPlayerHandle {
  /** Attach to the <canvas>. */
  canvasRef: (canvas: HTMLCanvasElement | null) => void;
  /** Attach to the <video> the MSE path plays in (shown only while `status.path` is "mse"). */
  videoRef: (video: HTMLVideoElement | null) => void;
  /**
   * Attach to the element whose visibility decides whether to decode and to ask the gateway
   * for frames (the tile): off-screen, it receives nothing (credit, see player/credit.ts).
   */
  viewportRef: (el: HTMLElement | null) => void;
  status: PlayerStatus | null;
}

/**
 * Runs a StreamPlayer for as long as the component is mounted. Statistics never go through
 * React state: `onStats` writes them to the DOM (refs) a few times per second.
 */
export function useStreamPlayer(
  streamId: string,
  maxFps: number | null,
  onStats: (stats: PlayerStats) => void,
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
      onStatus: setStatus,
      onStats: (s) => statsRef.current(s),
      onUnauthorized: () => ctxRef.current.onUnauthorized(),
      onRemoved: () => ctxRef.current.onRemoved(streamId),
    });
    playerRef.current = player;
    player.start();
    return () => {
      player.destroy();
      playerRef.current = null;
    };
  }, [canvas, video, streamId, maxFps]);

  // After a sign-in, sockets that were refused come back at once.
  const epoch = ctx.authEpoch;
  const firstEpoch = useRef(epoch);
  useEffect(() => {
    if (epoch !== firstEpoch.current) playerRef.current?.reconnectNow();
  }, [epoch]);

  useEffect(() => {
    if (!viewport || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) playerRef.current?.setVisible(entry.isIntersecting);
      },
      { rootMargin: "100px" },
    );
    observer.observe(viewport);
    return () => observer.disconnect();
  }, [viewport, canvas]);

  const canvasRef = useCallback((el: HTMLCanvasElement | null) => setCanvas(el), []);
  const videoRef = useCallback((el: HTMLVideoElement | null) => setVideo(el), []);
  const viewportRef = useCallback((el: HTMLElement | null) => setViewport(el), []);
  return { canvasRef, videoRef, viewportRef, status };
}
