import { useCallback, useEffect, useRef, useState } from "react";
import { usePolling } from "@/hooks/usePolling";
import { ApiError, api, type Stream } from "@/lib/api";

const EMPTY: Stream[] = [];

export interface StreamsState {
  streams: Stream[];
  loaded: boolean;
  error: ApiError | null;
  refresh: () => Promise<void>;
}

/**
 * The stream list, polled every `intervalMs` while the tab is visible and `enabled` (signed
 * in: while signed out the list is empty and nothing is polled, so a signed-out page costs
 * the gateway no refused requests). `authEpoch` changes on each sign-in: a 401 for a request
 * sent before the latest sign-in is stale and ignored (it must not reopen the sign-in dialog
 * that was just completed).
 */
export function useStreams(intervalMs: number, onUnauthorized: () => void, authEpoch: number, enabled = true): StreamsState {
  const [streams, setStreams] = useState<Stream[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const unauthorized = useRef(onUnauthorized);
  useEffect(() => {
    unauthorized.current = onUnauthorized;
  }, [onUnauthorized]);
  const epoch = useRef(authEpoch);
  useEffect(() => {
    epoch.current = authEpoch;
  }, [authEpoch]);

  const refresh = useCallback(async () => {
    const sentAt = epoch.current;
    try {
      const list = await api.listStreams();
      setStreams(list);
      setError(null);
      setLoaded(true);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, "unknown", String(e));
      setError(err);
      if (err.unauthorized && sentAt === epoch.current) {
        // Not allowed to see them (any more): show none.
        setStreams([]);
        setLoaded(true);
        unauthorized.current();
      }
    }
  }, []);

  usePolling(refresh, intervalMs, enabled);

  // Signed out: no cameras are shown (their names are not the caller's to see either).
  return { streams: enabled ? streams : EMPTY, loaded, error, refresh };
}
