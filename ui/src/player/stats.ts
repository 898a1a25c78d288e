/**
 * Rolling client-side statistics of one player: frames shown per second, bitrate received
 * and glass-to-glass latency, over a short sliding window. Pure (time is passed in).
 */

export interface StatsSnapshot {
  /** Frames drawn per second. */
  fps: number;
  /** Frames received per second. */
  receivedFps: number;
  /** Bits per second received (JPEG bytes). */
  bitrate: number;
  /** Mean latency of the frames drawn in the window (capture → drawn), or null. */
  latencyMs: number | null;
}

interface Sample {
  at: number;
  value: number;
}

export class RollingStats {
  private received: Sample[] = [];
  private shown: Sample[] = [];

  readonly windowMs: number;

  constructor(windowMs = 2000) {
    this.windowMs = windowMs;
  }

  recordReceived(nowMs: number, bytes: number): void {
    this.received.push({ at: nowMs, value: bytes });
    this.prune(nowMs);
  }

  recordShown(nowMs: number, latencyMs: number | null): void {
    this.shown.push({ at: nowMs, value: latencyMs ?? Number.NaN });
    this.prune(nowMs);
  }

  snapshot(nowMs: number): StatsSnapshot {
    this.prune(nowMs);
    const seconds = this.windowMs / 1000;
    let bytes = 0;
    for (const s of this.received) bytes += s.value;
    let latencySum = 0;
    let latencyCount = 0;
    for (const s of this.shown) {
      if (!Number.isNaN(s.value)) {
        latencySum += s.value;
        latencyCount++;
      }
    }
    return {
      fps: this.shown.length / seconds,
      receivedFps: this.received.length / seconds,
      bitrate: (bytes * 8) / seconds,
      latencyMs: latencyCount > 0 ? latencySum / latencyCount : null,
    };
  }

  clear(): void {
    this.received = [];
    this.shown = [];
  }

  private prune(nowMs: number): void {
    const oldest = nowMs - this.windowMs;
    while (this.received.length > 0 && (this.received[0]?.at ?? Infinity) < oldest) this.received.shift();
    while (this.shown.length > 0 && (this.shown[0]?.at ?? Infinity) < oldest) this.shown.shift();
  }
}
