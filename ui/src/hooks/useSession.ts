import { useCallback, useEffect, useState } from "react";
import { ApiError, api, type Session } from "@/lib/api";

/** What an open gateway (no auth configured, or no /api/session yet) means: everyone is admin. */
export const OPEN_SESSION: Session = { auth_required: false, authenticated: true, role: "admin" };

/** Reads the session, normalising missing fields and older gateways. */
export async function fetchSession(): Promise<Session> {
  try {
    const s = (await api.getSession()) as Partial<Session> | undefined;
    const authRequired = s?.auth_required === true;
    if (!authRequired) return { auth_required: false, authenticated: true, role: s?.role ?? "admin" };
    return { auth_required: true, authenticated: s.authenticated === true, role: s.role ?? null };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return { auth_required: true, authenticated: false, role: null };
    // 404/405: a gateway without sessions is open. Network errors: show what an open gateway
    // would; the stream list reports the outage.
    return OPEN_SESSION;
  }
}

export function useSession(): { session: Session | null; reload: () => Promise<Session> } {
  const [session, setSession] = useState<Session | null>(null);

  useEffect(() => {
    let cancelled = false;
    void fetchSession().then((s) => {
      if (!cancelled) setSession(s);
    });
    return () => {
      cancelled = true;
    };
  }, []);

  const reload = useCallback(async (): Promise<Session> => {
    const next = await fetchSession();
    setSession(next);
    return next;
  }, []);

  return { session, reload };
}
