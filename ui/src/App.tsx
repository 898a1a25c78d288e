import { useCallback, useEffect, useMemo, useState } from "react";
import { ArrowLeft, FolderX, LogIn, ShieldOff, WifiOff } from "lucide-react";
import { AppHeader } from "@/components/AppHeader";
import { DeleteStreamDialog } from "@/components/DeleteStreamDialog";
import { FocusView } from "@/components/FocusView";
import { GroupDialog } from "@/components/GroupDialog";
import { LoginDialog } from "@/components/LoginDialog";
import { StreamFormDialog } from "@/components/StreamFormDialog";
import { StreamGrid } from "@/components/StreamGrid";
import { WallControls } from "@/components/WallControls";
import { Button } from "@/components/ui/button";
import { TooltipProvider } from "@/components/ui/tooltip";
import { PlayerContext, type PlayerContextValue } from "@/hooks/playerContext";
import { fullscreenSupported, useFullscreen } from "@/hooks/useFullscreen";
import { useGroups } from "@/hooks/useGroups";
import { groupHref, useHashRoute } from "@/hooks/useHashRoute";
import { signedIn, useSession } from "@/hooks/useSession";
import { useStoredChoice } from "@/hooks/useStoredChoice";
import { useStreams } from "@/hooks/useStreams";
import { useTheme } from "@/hooks/useTheme";
import { ApiError, FALLBACK_PLUGINS, api, type Group, type Plugin, type Stream } from "@/lib/api";
import { LAYOUT_STORAGE_KEY, parseLayoutChoice } from "@/lib/layout";
import { cn } from "@/lib/utils";

const POLL_MS = 3000;
/** Groups change seldom (an admin's edit): read them less often than the stream list. */
const GROUPS_POLL_MS = 15_000;
/** Where this browser keeps the group it shows (the wall's `#/` shows it). */
const GROUP_STORAGE_KEY = "camgate.group";

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
  // A cluster's cameras and groups come from the manifest every node shares (the API refuses
  // changes with 409 cluster_read_only), so admins get no add or group editing there.
  const canChange = isAdmin && !session.cluster_node;

  // The wall: its layout and group (kept per browser), full screen, the group editor.
  const [storedLayout, storeLayout] = useStoredChoice(LAYOUT_STORAGE_KEY);
  const layout = parseLayoutChoice(storedLayout);
  const [storedGroup, storeGroup] = useStoredChoice(GROUP_STORAGE_KEY);
  const { groups, loaded: groupsLoaded, refresh: refreshGroups } = useGroups(GROUPS_POLL_MS, requestLogin, authEpoch, isSignedIn);
  const [wallEl, setWallEl] = useState<HTMLDivElement | null>(null);
  const [fullscreen, toggleFullscreen] = useFullscreen(wallEl);
  const [groupDialog, setGroupDialog] = useState<{ open: boolean; group: Group | null; key: number }>({ open: false, group: null, key: 0 });

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
    leaveFullscreen();
    setEditing(null);
    setFormKey((k) => k + 1);
    setFormOpen(true);
  }, []);
  const openEdit = useCallback((stream: Stream) => {
    leaveFullscreen();
    setEditing(stream);
    setFormKey((k) => k + 1);
    setFormOpen(true);
  }, []);
  const openDelete = useCallback((stream: Stream) => {
    leaveFullscreen();
    setDeleting(stream);
  }, []);

  // Previous/next in the focused view walk the wall it was opened from (the group's order),
  // or every camera when it is not on that wall.
  const focused = route.name === "stream" ? streams.find((s) => s.id === route.id) : undefined;

  // The group shown: the URL's (a wall display pointed at one), else this browser's choice.
  const groupId = route.name === "group" ? route.id : storedGroup;
  const group = groupId === null ? null : (groups.find((g) => g.id === groupId) ?? null);
  // A group that is gone: from the URL it is said so; a stored choice quietly falls back.
  const groupMissing = groupId !== null && groupsLoaded && group === null;
  useEffect(() => {
    if (route.name === "group" && group) storeGroup(group.id);
    else if (route.name !== "group" && groupMissing) storeGroup(null);
  }, [route.name, group, groupMissing, storeGroup]);
  const wallStreams = useMemo(() => {
    if (!group) return streams;
    const byId = new Map(streams.map((s) => [s.id, s]));
    return group.streams.flatMap((id) => byId.get(id) ?? []);
  }, [group, streams]);
  const chooseGroup = useCallback(
    (id: string | null) => {
      storeGroup(id);
      navigate(groupHref(id));
    },
    [storeGroup, navigate],
  );
  const onWall = route.name !== "stream" && !signedOut && session !== null;
  const unreachable = error !== null && !error.unauthorized;

  // A wall display's tab says which group it shows.
  const shownGroupName = onWall ? group?.name : undefined;
  useEffect(() => {
    document.title = focused ? `${focused.name} · Camgate` : shownGroupName ? `${shownGroupName} · Camgate` : "Camgate";
  }, [focused, shownGroupName]);

  return (
    <TooltipProvider>
      <PlayerContext.Provider value={playerContext}>
        <div role="status" aria-live="polite" aria-atomic="true" className="sr-only" data-testid="announcer">
          {announcement}
        </div>
        <div className="flex min-h-dvh flex-col">
          <AppHeader
            streams={onWall ? wallStreams : streams}
            session={session}
            theme={theme}
            onCycleTheme={cycleTheme}
            onAdd={canChange ? openAdd : undefined}
            onLogin={openLogin}
            onLogout={onLogout}
            wall={
              onWall && (
                <WallControls
                  className="w-full sm:w-auto"
                  groups={groups}
                  groupId={group ? group.id : null}
                  onGroup={chooseGroup}
                  layout={layout}
                  onLayout={storeLayout}
                  isAdmin={canChange}
                  onNewGroup={() => setGroupDialog((d) => ({ open: true, group: null, key: d.key + 1 }))}
                  onEditGroup={(g) => setGroupDialog((d) => ({ open: true, group: g, key: d.key + 1 }))}
                  onFullscreen={fullscreenSupported() ? toggleFullscreen : null}
                />
              )
            }
          />
          <main
            className={cn(
              "mx-auto w-full max-w-[120rem] px-3 pb-[max(1rem,env(safe-area-inset-bottom))] sm:px-5",
              // The wall fills the space below the header (it is sized to it, never scrolled).
              onWall ? "flex min-h-0 flex-1 flex-col py-2 pb-[max(0.5rem,env(safe-area-inset-bottom))] sm:py-4" : "py-4 sm:py-5",
            )}
          >
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
                <FocusView key={focused.id} stream={focused} streams={wallStreams.some((s) => s.id === focused.id) ? wallStreams : streams} isAdmin={isAdmin} onBack={() => navigate("#/")} onEdit={openEdit} onDelete={openDelete} />
              ) : (
                <StreamNotShown key={route.id} id={route.id} onBack={() => navigate("#/")} />
              )
            ) : groupId !== null && !groupsLoaded ? (
              <GridSkeleton />
            ) : route.name === "group" && groupMissing ? (
              <GroupNotShown id={route.id} onBack={() => chooseGroup(null)} />
            ) : (
              <StreamGrid
                key={group?.id ?? ""}
                streams={wallStreams}
                isAdmin={isAdmin}
                layout={layout}
                onAdd={canChange ? openAdd : undefined}
                onEdit={openEdit}
                onDelete={openDelete}
                containerRef={setWallEl}
                fullscreen={fullscreen}
                onExitFullscreen={toggleFullscreen}
                empty={group ? <EmptyGroup group={group} isAdmin={canChange} /> : undefined}
              />
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
        {isAdmin && (
          <GroupDialog
            key={groupDialog.key}
            open={groupDialog.open}
            group={groupDialog.group}
            streams={streams}
            taken={groups.map((g) => g.id)}
            onOpenChange={(open) => setGroupDialog((d) => ({ ...d, open }))}
            onSaved={(g) => {
              void refreshGroups();
              chooseGroup(g.id);
            }}
            onDeleted={(id) => {
              void refreshGroups();
              if (group?.id === id) chooseGroup(null);
            }}
            onUnauthorized={requestLogin}
          />
        )}
        <LoginDialog open={loginOpen} onOpenChange={setLoginOpen} onLoggedIn={onLoggedIn} />
      </PlayerContext.Provider>
    </TooltipProvider>
  );
}

/** Dialogs live outside the wall: a full-screen wall is left for them to be seen. */
function leaveFullscreen() {
  if (document.fullscreenElement) void document.exitFullscreen().catch(() => undefined);
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

/** A link to a group that does not exist (any more), or that this caller cannot see. */
function GroupNotShown({ id, onBack }: { id: string; onBack: () => void }) {
  return (
    <div className="mx-auto mt-16 max-w-md text-center" data-testid="group-not-found">
      <FolderX className="mx-auto mb-2 size-8 text-muted-foreground" aria-hidden />
      <h1 className="text-lg font-semibold">No group “{id}”</h1>
      <p className="mt-1 text-sm text-muted-foreground">It may have been deleted or renamed.</p>
      <Button variant="outline" className="mt-4" onClick={onBack}>
        <ArrowLeft /> All cameras
      </Button>
    </div>
  );
}

/** A group with no camera this caller may watch (or none left). */
function EmptyGroup({ group, isAdmin }: { group: Group; isAdmin: boolean }) {
  return (
    <div className="mx-auto mt-16 max-w-md rounded-xl border border-dashed p-10 text-center" data-testid="empty-group">
      <h2 className="font-semibold">No cameras in “{group.name}”</h2>
      <p className="mt-1 text-sm text-muted-foreground">
        {isAdmin ? "Its cameras were removed: edit the group to choose others." : "None of its cameras is one you may watch."}
      </p>
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
