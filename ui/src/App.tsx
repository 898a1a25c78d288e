import { useCallback, useEffect, useMemo, useState } from "react";
import { ArrowLeft, LogIn, ShieldOff, WifiOff } from "lucide-react";
import { AppHeader } from "@/components/AppHeader";
import { DeleteStreamDialog } from "@/components/DeleteStreamDialog";
import { FocusView } from "@/components/FocusView";
import { LoginDialog } from "@/components/LoginDialog";
import { StreamFormDialog } from "@/components/StreamFormDialog";
import { StreamGrid } from "@/components/StreamGrid";
import { Button } from "@/components/ui/button";
import { TooltipProvider } from "@/components/ui/tooltip";
import { PlayerContext, type PlayerContextValue } from "@/hooks/playerContext";
import { useHashRoute } from "@/hooks/useHashRoute";
import { signedIn, useSession } from "@/hooks/useSession";
import { useStreams } from "@/hooks/useStreams";
import { useTheme } from "@/hooks/useTheme";
import { ApiError, FALLBACK_PLUGINS, api, type Plugin, type Stream } from "@/lib/api";

const POLL_MS = 3000;

export default function App() {
  const [route, navigate] = useHashRoute();
  const [theme, cycleTheme] = useTheme();
  const { session, reload: reloadSession, markSignedOut } = useSession();
  const [loginOpen, setLoginOpen] = useState(false);
  const [authEpoch, setAuthEpoch] = useState(0);
  const [formOpen, setFormOpen] = useState(false);
  const [formKey, setFormKey] = useState(0);
  const [editing, setEditing] = useState<Stream | null>(null);
  const [deleting, setDeleting] = useState<Stream | null>(null);
  const [plugins, setPlugins] = useState<Plugin[]>(FALLBACK_PLUGINS);

  const openLogin = useCallback(() => setLoginOpen(true), []);
  // A refused request (401, or a socket closed with 4001): the caller is signed out. Nothing
  // that needs a session runs until a sign-in (no polling, no players), so this happens once.
  const requestLogin = markSignedOut;
  const isSignedIn = signedIn(session);
  const signedOut = session !== null && !isSignedIn;
  const { streams, loaded, error, refresh } = useStreams(POLL_MS, requestLogin, authEpoch, isSignedIn);
  const isAdmin = isSignedIn && session?.role === "admin";

  // The sign-in dialog opens once per sign-out (closed, it stays closed: "Sign in" reopens it).
  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- follows the session, once per change
    if (signedOut) setLoginOpen(true);
  }, [signedOut]);

  // Plugins for the add form (older gateways have no /api/plugins: assume the built-ins).
  useEffect(() => {
    if (!isAdmin) return;
    api
      .listPlugins()
      .then((list) => {
        if (list.length > 0) setPlugins(list);
      })
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.unauthorized) requestLogin();
      });
  }, [isAdmin, authEpoch, requestLogin]);

  // The page's aria-live region: tiles announce their state changes here.
  const [announcement, setAnnouncement] = useState("");
  const playerContext = useMemo<PlayerContextValue>(
    () => ({
      authEpoch,
      onUnauthorized: requestLogin,
      onRemoved: () => void refresh(),
      announce: setAnnouncement,
    }),
    [authEpoch, requestLogin, refresh],
  );

  const onLoggedIn = useCallback(() => {
    setAuthEpoch((n) => n + 1);
    void reloadSession();
  }, [reloadSession]);

  // After a sign-in (the epoch has been seen by useStreams), fetch the list at once.
  useEffect(() => {
    if (authEpoch > 0) void refresh();
  }, [authEpoch, refresh]);

  // Signed out at once: every player is unmounted (its socket closed, its picture gone) before
  // the gateway is even told; the gateway would only notice at its next keepalive.
  const onLogout = useCallback(() => {
    markSignedOut();
    void api
      .logout()
      .catch(() => undefined)
      .then(() => reloadSession());
  }, [markSignedOut, reloadSession]);

  const openAdd = useCallback(() => {
    setEditing(null);
    setFormKey((k) => k + 1);
    setFormOpen(true);
  }, []);
  const openEdit = useCallback((stream: Stream) => {
    setEditing(stream);
    setFormKey((k) => k + 1);
    setFormOpen(true);
  }, []);
  const openDelete = useCallback((stream: Stream) => setDeleting(stream), []);

  const focused = route.name === "stream" ? streams.find((s) => s.id === route.id) : undefined;
  const unreachable = error !== null && !error.unauthorized;

  useEffect(() => {
    document.title = focused ? `${focused.name} · Camgate` : "Camgate";
  }, [focused]);

  return (
    <TooltipProvider>
      <PlayerContext.Provider value={playerContext}>
        <div role="status" aria-live="polite" aria-atomic="true" className="sr-only" data-testid="announcer">
          {announcement}
        </div>
        <div className="min-h-dvh">
          <AppHeader
            streams={streams}
            session={session}
            theme={theme}
            onCycleTheme={cycleTheme}
            onAdd={openAdd}
            onLogin={openLogin}
            onLogout={onLogout}
          />
          <main className="mx-auto max-w-[120rem] px-3 py-4 pb-[max(1rem,env(safe-area-inset-bottom))] sm:px-5 sm:py-5">
            {unreachable && (
              <div
                role="status"
                className="mb-4 flex items-center gap-2 rounded-lg border border-warn/40 bg-warn/10 px-3 py-2 text-sm"
                data-testid="api-error"
              >
                <WifiOff className="size-4 shrink-0" />
                <span>
                  {error.status === 0 ? "Cannot reach the gateway" : `The gateway answered: ${error.message}`} — retrying every few seconds.
                </span>
              </div>
            )}
            {signedOut ? (
              <SignedOut onLogin={openLogin} />
            ) : session === null || !loaded ? (
              <GridSkeleton />
            ) : route.name === "stream" ? (
              focused ? (
                <FocusView key={focused.id} stream={focused} streams={streams} isAdmin={isAdmin} onBack={() => navigate("#/")} onEdit={openEdit} onDelete={openDelete} />
              ) : (
                <StreamNotShown key={route.id} id={route.id} onBack={() => navigate("#/")} />
              )
            ) : (
              <StreamGrid streams={streams} isAdmin={isAdmin} onAdd={openAdd} onEdit={openEdit} onDelete={openDelete} />
            )}
          </main>
        </div>

        <StreamFormDialog
          key={formKey}
          open={formOpen}
          stream={editing}
          plugins={plugins}
          onOpenChange={setFormOpen}
          onSaved={() => void refresh()}
          onUnauthorized={requestLogin}
        />
        <DeleteStreamDialog
          stream={deleting}
          onClose={() => setDeleting(null)}
          onDeleted={(s) => {
            if (route.name === "stream" && route.id === s.id) navigate("#/");
            void refresh();
          }}
          onUnauthorized={requestLogin}
        />
        <LoginDialog open={loginOpen} onOpenChange={setLoginOpen} onLoggedIn={onLoggedIn} />
      </PlayerContext.Provider>
    </TooltipProvider>
  );
}

/** Signed out: no cameras are listed, and the page says why (not "No cameras yet"). */
function SignedOut({ onLogin }: { onLogin: () => void }) {
  return (
    <div className="mx-auto mt-16 flex max-w-md flex-col items-center gap-4 rounded-xl border border-dashed p-10 text-center" data-testid="signed-out">
      <div className="space-y-1">
        <h1 className="font-semibold">Sign in to see the cameras</h1>
        <p className="text-sm text-muted-foreground">This gateway shows its cameras to signed-in users only.</p>
      </div>
      <Button onClick={onLogin}>
        <LogIn /> Sign in
      </Button>
    </div>
  );
}

/**
 * A link to a stream the list does not have: either it does not exist (any more), or this
 * caller may not watch it (the gateway answers 403: for a token limited to some streams, also
 * for ids that do not exist, so as not to tell which do). The two are told apart.
 */
function StreamNotShown({ id, onBack }: { id: string; onBack: () => void }) {
  const [forbidden, setForbidden] = useState<boolean | null>(null);
  useEffect(() => {
    let cancelled = false;
    void api
      .getStream(id)
      .then(() => false)
      .catch((e: unknown) => e instanceof ApiError && e.status === 403)
      .then((f) => {
        if (!cancelled) setForbidden(f);
      });
    return () => {
      cancelled = true;
    };
  }, [id]);
  if (forbidden === null) return <GridSkeleton />;
  return (
    <div className="mx-auto mt-16 max-w-md text-center" data-testid="stream-not-found" data-reason={forbidden ? "forbidden" : "missing"}>
      {forbidden ? (
        <>
          <ShieldOff className="mx-auto mb-2 size-8 text-muted-foreground" aria-hidden />
          <h1 className="text-lg font-semibold">You may not watch “{id}”</h1>
          <p className="mt-1 text-sm text-muted-foreground">
            You are not allowed to see this camera: your access token does not include it. Ask the gateway's operator for access.
          </p>
        </>
      ) : (
        <>
          <h1 className="text-lg font-semibold">No stream “{id}”</h1>
          <p className="mt-1 text-sm text-muted-foreground">It may have been removed or renamed.</p>
        </>
      )}
      <Button variant="outline" className="mt-4" onClick={onBack}>
        <ArrowLeft /> All cameras
      </Button>
    </div>
  );
}

function GridSkeleton() {
  return (
    <div className="mx-auto grid max-w-5xl grid-cols-1 gap-4 md:grid-cols-2" aria-busy="true" aria-label="Loading cameras">
      {[0, 1].map((i) => (
        <div key={i} className="overflow-hidden rounded-xl border bg-card">
          <div className="aspect-video animate-pulse bg-muted" />
          <div className="space-y-2 p-3">
            <div className="h-3 w-1/3 animate-pulse rounded bg-muted" />
            <div className="h-2.5 w-1/4 animate-pulse rounded bg-muted" />
          </div>
        </div>
      ))}
    </div>
  );
}
