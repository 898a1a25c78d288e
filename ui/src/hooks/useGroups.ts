/**
 * The camera groups (`GET /api/groups`), read while signed in: at once, after each sign-in,
 * when the tab becomes visible again, every `intervalMs`, and on `refresh()` (after an edit).
 * A gateway without groups (404) has none. A 401 reports the caller signed out, once.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { usePolling } from "@/hooks/usePolling";
import { ApiError, groupsApi, type Group } from "@/lib/api";

export interface GroupsState {
  groups: Group[];
  /** False until the first answer (a group chosen in the URL waits for it). */
  loaded: boolean;
  refresh: () => Promise<void>;
}

export function useGroups(intervalMs: number, onUnauthorized: () => void, authEpoch: number, enabled: boolean): GroupsState {
  const [groups, setGroups] = useState<Group[]>([]);
  const [loaded, setLoaded] = useState(false);
  const unauthorized = useRef(onUnauthorized);
  useEffect(() => {
    unauthorized.current = onUnauthorized;
  }, [onUnauthorized]);

  const refresh = useCallback(async () => {
    try {
      setGroups(await groupsApi.list());
      setLoaded(true);
    } catch (e) {
      if (e instanceof ApiError && e.unauthorized) {
        setGroups([]);
        setLoaded(true);
        unauthorized.current();
      }
      // Other failures (the gateway is down): keep the last list, and do not call a group
      // missing on no answer; the stream list says why.
    }
  }, []);

  usePolling(refresh, intervalMs, enabled, authEpoch);

  return { groups: enabled ? groups : [], loaded, refresh };
}
