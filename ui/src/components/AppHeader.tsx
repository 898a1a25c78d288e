import type { ReactNode } from "react";
import { LogIn, LogOut, Monitor, Moon, Plus, Sun } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Tooltip, TooltipContent, TooltipTrigger } from "@/components/ui/tooltip";
import type { ThemeChoice } from "@/hooks/useTheme";
import type { Session, Stream } from "@/lib/api";

export function AppHeader({
  streams,
  session,
  theme,
  onCycleTheme,
  onAdd,
  onLogin,
  onLogout,
  wall,
}: {
  streams: Stream[];
  session: Session | null;
  theme: ThemeChoice;
  onCycleTheme: () => void;
  /** Absent: no "Add camera" (not an admin, or a cluster node). */
  onAdd?: () => void;
  onLogin: () => void;
  onLogout: () => void;
  /** The wall's controls (groups, layout, full screen): on a phone, a second row. */
  wall?: ReactNode;
}) {
  const live = streams.filter((s) => s.state === "live").length;
  const troubled = streams.filter((s) => s.state === "retrying" || s.state === "failed").length;
  const isAdmin = session?.role === "admin";
  const ThemeIcon = theme === "dark" ? Moon : theme === "light" ? Sun : Monitor;
  return (
    <header className="sticky top-0 z-40 border-b bg-background/80 backdrop-blur supports-[backdrop-filter]:bg-background/65">
      <div className="mx-auto flex min-h-14 max-w-[120rem] flex-wrap items-center gap-x-3 gap-y-1 px-3 py-1.5 sm:px-5 pt-[max(0.375rem,env(safe-area-inset-top))]">
        <a href="#/" className="flex min-h-11 items-center gap-2 font-semibold tracking-tight" aria-label="Camgate: all cameras">
          <img src="/favicon.svg" alt="" className="size-7" />
          <span className="text-base">Camgate</span>
        </a>
        {streams.length > 0 && (
          <p className="hidden items-center gap-2 text-sm text-muted-foreground xl:flex" data-testid="summary">
            <span className="text-border" aria-hidden>
              /
            </span>
            <span>
              {streams.length} {streams.length === 1 ? "camera" : "cameras"}
            </span>
            <span className="inline-flex items-center gap-1.5">
              <span className="size-1.5 rounded-full bg-live" aria-hidden /> {live} live
            </span>
            {troubled > 0 && (
              <span className="inline-flex items-center gap-1.5">
                <span className="size-1.5 rounded-full bg-destructive" aria-hidden /> {troubled} offline
              </span>
            )}
          </p>
        )}
        {wall && <div className="order-last flex basis-full sm:order-none sm:basis-auto">{wall}</div>}
        <div className="ml-auto flex items-center gap-1.5">
          {session?.cluster_node && (
            <Tooltip>
              <TooltipTrigger asChild>
                <span className="rounded-md border px-2 py-1 text-xs font-medium text-muted-foreground" data-testid="cluster-node" tabIndex={0}>
                  {session.cluster_node}
                </span>
              </TooltipTrigger>
              <TooltipContent>Served by cluster node {session.cluster_node}; cameras come from the shared manifest</TooltipContent>
            </Tooltip>
          )}
          {isAdmin && onAdd && (
            <Button size="sm" onClick={onAdd} data-testid="add-camera" aria-label="Add camera" className="max-lg:w-8 max-lg:px-0 max-sm:w-11">
              <Plus /> <span className="hidden lg:inline">Add camera</span>
            </Button>
          )}
          <Tooltip>
            <TooltipTrigger asChild>
              <Button variant="ghost" size="icon-sm" onClick={onCycleTheme} aria-label={`Theme: ${theme}`} data-testid="theme-toggle">
                <ThemeIcon />
              </Button>
            </TooltipTrigger>
            <TooltipContent>Theme: {theme === "system" ? "follow the system" : theme}</TooltipContent>
          </Tooltip>
          {session?.auth_required &&
            (session.authenticated ? (
              <>
                <span className="rounded-md border px-2 py-1 text-xs font-medium text-muted-foreground" data-testid="session-role">
                  {session.role === "admin" ? "Admin" : "Viewer"}
                </span>
              <Tooltip>
                <TooltipTrigger asChild>
                  <Button variant="ghost" size="icon-sm" onClick={onLogout} aria-label="Sign out">
                    <LogOut />
                  </Button>
                </TooltipTrigger>
                <TooltipContent>Signed in as {session.role ?? "viewer"} — sign out</TooltipContent>
              </Tooltip>
              </>
            ) : (
              <Button variant="outline" size="sm" onClick={onLogin}>
                <LogIn /> Sign in
              </Button>
            ))}
        </div>
      </div>
    </header>
  );
}
