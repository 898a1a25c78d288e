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

/** What a refused request (401) says about the caller: not signed in (any more). */
export const SIGNED_OUT_SESSION: Session = { auth_required: true, authenticated: false, role: null };

/** Whether the page may show cameras: the session is known and lets the caller in. */
export function signedIn(session: Session | null): boolean {
  return session !== null && (!session.auth_required || session.authenticated);
}

export interface SessionHandle {
  session: Session | null;
  reload: () => Promise<Session>;
  /**
   * The caller is signed out (a 401, or the user signed out): the page stops everything
   * that needs a session at once, without waiting for the gateway.
   */
  markSignedOut: () => void;
}

export function useSession(): SessionHandle {
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

  const markSignedOut = useCallback(() => setSession(SIGNED_OUT_SESSION), []);

  return { session, reload, markSignedOut };
}
