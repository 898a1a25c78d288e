import { useState } from "react";
import { Loader2, RotateCw } from "lucide-react";
import { Button } from "@/components/ui/button";
import { ApiError, retryStream } from "@/lib/api";
import { cn } from "@/lib/utils";

/**
 * "Retry now" (admins, while a source is down): `POST /api/streams/{id}/retry` ends the
 * source's wait and starts a new attempt at once. Accepted (202), the view shows it
 * connecting (`onAccepted`); refused, the error is shown next to the button.
 */
export function RetryNow({
  streamId,
  name,
  onAccepted,
  onUnauthorized,
  className,
  tabIndex,
}: {
  streamId: string;
  /** The camera's name: the button's accessible name says which camera it retries. */
  name: string;
  onAccepted: () => void;
  onUnauthorized?: () => void;
  className?: string;
  /** -1 in a grid tile (its two tab stops are the picture's link and the actions toolbar). */
  tabIndex?: number;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const retry = async () => {
    setBusy(true);
    setError(null);
    try {
      await retryStream(streamId);
      onAccepted();
    } catch (e) {
      const err = e instanceof ApiError ? e : null;
      if (err?.unauthorized) onUnauthorized?.();
      setError(
        err?.code === "not_running"
          ? "Not running: it starts when someone watches."
          : err?.status === 404 || err?.status === 405
            ? "This gateway cannot retry a camera yet."
            : (err?.message ?? String(e)),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className={cn("flex flex-col items-end gap-1", className)}>
      <Button
        type="button"
        size="sm"
        variant="secondary"
        className="border border-white/15 bg-black/60 text-white hover:bg-black/80"
        disabled={busy}
        tabIndex={tabIndex}
        onClick={() => void retry()}
        aria-label={`Retry now: ${name}`}
        data-testid="retry-now"
      >
        {busy ? <Loader2 className="animate-spin" aria-hidden /> : <RotateCw aria-hidden />}
        Retry now
      </Button>
      {error && (
        <p role="alert" className="max-w-56 rounded bg-black/70 px-2 py-1 text-right text-xs text-red-200" data-testid="retry-error">
          {error}
        </p>
      )}
    </div>
  );
}
