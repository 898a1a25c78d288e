import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { ApiError, api, type Session } from "@/lib/api";
import { forgetPictures } from "@/player/lastPicture";

/**
 * Unattended sign-in (a wall display): the page opened as `#token=<t>`, or with a route
 * `#/groups/lobby?token=<t>` (also `&token=` among other parameters). The token is taken out
 * of the fragment: `{ token, hash }` where `hash` is the fragment without it ("" when nothing
 * is left). Fragments never leave the browser; the token goes to the gateway only in the
 * body of `POST /api/session`.
 */
export function takeTokenFromHash(hash: string): { token: string | null; hash: string } {
  const body = hash.replace(/^#/, "");
  if (!body) return { token: null, hash };
  // `#token=...` or `#a=1&token=...` (no route): the whole fragment is parameters.
  const q = body.indexOf("?");
  const [route, query] = q >= 0 ? [body.slice(0, q), body.slice(q + 1)] : body.startsWith("/") ? [body, ""] : ["", body];
  let token: string | null = null;
  const kept: string[] = [];
  for (const part of query.split("&")) {
    if (part === "") continue;
    if (part.startsWith("token=")) {
      if (token === null) {
        try {
          token = decodeURIComponent(part.slice("token=".length));
        } catch {
          token = part.slice("token=".length);
        }
      }
    } else {
      kept.push(part);
    }
  }
  if (token === null) return { token: null, hash };
  const params = kept.join("&");
  // Parameters after a route (or after a `?` of their own) keep their `?`.
  const rest = q >= 0 || route ? route + (params ? `?${params}` : "") : params;
  return { token, hash: rest ? `#${rest}` : "" };
}

/**
 * Done once per page load, before the first session read: a token in the fragment is removed
 * from the address bar (history.replaceState: no navigation, no history entry) and exchanged
 * for the session cookie. Never logged.
 */
let linkSignIn: Promise<void> | null = null;
let linkSignInError: string | null = null;
const linkErrorListeners = new Set<() => void>();

function setLinkSignInError(error: string | null): void {
  linkSignInError = error;
  for (const l of linkErrorListeners) l();
}

function signInFromLink(): Promise<void> {
  if (linkSignIn) return linkSignIn;
  const { token, hash } = takeTokenFromHash(window.location.hash);
  if (!token) {
    linkSignIn = Promise.resolve();
    return linkSignIn;
  }
  window.history.replaceState(window.history.state, "", `${window.location.pathname}${window.location.search}${hash}`);
  linkSignIn = api.login(token.trim()).then(
    () => setLinkSignInError(null),
    (e: unknown) => {
      const err = e instanceof ApiError ? e : null;
      setLinkSignInError(
        err?.status === 401 || err?.status === 403
          ? "The sign-in link's token was not accepted."
          : `Signing in with the link failed: ${err?.message ?? "unknown error"}`,
      );
    },
  );
  return linkSignIn;
}

/** Why the sign-in link did not sign in (null: no link, or it worked); the sign-in dialog shows it. */
export function useLinkSignInError(): [string | null, () => void] {
  const error = useSyncExternalStore(
    (cb) => {
      linkErrorListeners.add(cb);
      return () => linkErrorListeners.delete(cb);
    },
    () => linkSignInError,
    () => null,
  );
  return [error, useCallback(() => setLinkSignInError(null), [])];
}

/** What an open gateway (no auth configured, or no /api/session yet) means: everyone is admin. */
export const OPEN_SESSION: Session = { auth_required: false, authenticated: true, role: "admin" };

/** Reads the session, normalising missing fields and older gateways. */
export async function fetchSession(): Promise<Session> {
  try {
    const s = (await api.getSession()) as Partial<Session> | undefined;
    const authRequired = s?.auth_required === true;
    const cluster_node = typeof s?.cluster_node === "string" ? s.cluster_node : null;
    if (!authRequired) return { auth_required: false, authenticated: true, role: s?.role ?? "admin", cluster_node };
    return { auth_required: true, authenticated: s.authenticated === true, role: s.role ?? null, cluster_node };
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
    const read = () =>
      void signInFromLink()
        .then(() => fetchSession())
        .then((s) => {
          if (!cancelled) setSession(s);
        });
    read();
    // A sign-in link typed into the address bar of an open page (only the fragment changes).
    const onHash = () => {
      if (takeTokenFromHash(window.location.hash).token === null) return;
      linkSignIn = null;
      read();
    };
    window.addEventListener("hashchange", onHash);
    return () => {
      cancelled = true;
      window.removeEventListener("hashchange", onHash);
    };
  }, []);

  const reload = useCallback(async (): Promise<Session> => {
    const next = await fetchSession();
    setSession(next);
    return next;
  }, []);

  const markSignedOut = useCallback(() => setSession(SIGNED_OUT_SESSION), []);

  // Signed out: the pictures the players left behind (player/lastPicture.ts) go too. This
  // effect runs after the unmounted players' cleanups (which keep their last picture).
  const out = session !== null && !signedIn(session);
  useEffect(() => {
    if (out) forgetPictures();
  }, [out]);

  return { session, reload, markSignedOut };
}
