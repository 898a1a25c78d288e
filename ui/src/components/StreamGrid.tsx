/**
 * The wall: the cameras' tiles laid out to fit the space it is given (below the header, or the
 * whole screen in full screen) without page scrolling. The layout math is lib/layout.ts; this
 * measures the box (ResizeObserver) and a rendered tile's caption, and pages the cameras when
 * more than one page holds (Previous/Next buttons, PageUp/PageDown). Only the current page's
 * tiles are mounted: the others play nothing and cost nothing.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import { Camera, ChevronLeft, ChevronRight, Minimize, Plus } from "lucide-react";
import { StreamTile } from "@/components/StreamTile";
import { Button } from "@/components/ui/button";
import type { Stream } from "@/lib/api";
import { DEFAULT_METRICS, clampPage, pageItems, planWall, type LayoutChoice, type WallBox } from "@/lib/layout";
import { cn } from "@/lib/utils";

export interface StreamGridProps {
  streams: Stream[];
  isAdmin: boolean;
  layout: LayoutChoice;
  /** Absent: cameras cannot be added here (not an admin, or a cluster node). */
  onAdd?: () => void;
  onEdit: (stream: Stream) => void;
  onDelete: (stream: Stream) => void;
  /** The wall's element (what the header's full-screen button puts in full screen). */
  containerRef?: (el: HTMLDivElement | null) => void;
  /** The wall is in full screen: a bar with "Leave full screen" is always shown. */
  fullscreen?: boolean;
  onExitFullscreen?: () => void;
  /** Shown instead of "No cameras yet" when the list is empty because of a filter (a group). */
  empty?: ReactNode;
}

/** The box's size (whole pixels, minus one for rounding), or null before the first layout. */
function useBox(): [WallBox | null, (el: HTMLDivElement | null) => void] {
  const [box, setBox] = useState<WallBox | null>(null);
  const observer = useRef<ResizeObserver | null>(null);
  const ref = useCallback((el: HTMLDivElement | null) => {
    observer.current?.disconnect();
    observer.current = null;
    if (!el) return;
    const measure = () => {
      const style = getComputedStyle(el);
      const px = (v: string) => parseFloat(v) || 0;
      const next = {
        width: Math.max(0, Math.floor(el.clientWidth - px(style.paddingLeft) - px(style.paddingRight)) - 1),
        height: Math.max(0, Math.floor(el.clientHeight - px(style.paddingTop) - px(style.paddingBottom)) - 1),
      };
      setBox((b) => (b && b.width === next.width && b.height === next.height ? b : next));
    };
    observer.current = new ResizeObserver(measure);
    observer.current.observe(el);
    measure();
  }, []);
  return [box, ref];
}

function isEditable(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.closest('[role="dialog"], [role="alertdialog"], [role="listbox"]') !== null)
  );
}

export function StreamGrid({ streams, isAdmin, layout, onAdd, onEdit, onDelete, containerRef, fullscreen = false, onExitFullscreen, empty }: StreamGridProps) {
  const [box, boxRef] = useBox();
  const setRefs = useCallback(
    (el: HTMLDivElement | null) => {
      boxRef(el);
      containerRef?.(el);
    },
    [boxRef, containerRef],
  );
  // What a tile needs besides its picture (its borders: the caption is over the picture),
  // measured from a rendered one.
  const [captionHeight, setCaptionHeight] = useState(DEFAULT_METRICS.captionHeight);
  const gridRef = useRef<HTMLDivElement>(null);
  // The first camera shown: the page follows it when the layout changes.
  const [first, setFirst] = useState(0);

  const metrics = { ...DEFAULT_METRICS, captionHeight };
  // In full screen the bar (to leave it) is always there: its height is never the tiles'.
  const wall = box
    ? fullscreen
      ? planWall(streams.length, layout, { ...box, height: box.height - metrics.pagerHeight }, { ...metrics, pagerHeight: 0 })
      : planWall(streams.length, layout, box, metrics)
    : null;
  const pages = wall?.pages ?? 1;
  const page = wall ? clampPage(Math.floor(first / wall.perPage), pages) : 0;
  const shown = wall ? pageItems(streams, wall, page) : [];
  const perPage = wall?.perPage ?? 1;

  const goTo = (next: number) => setFirst(clampPage(next, pages) * perPage);

  useLayoutEffect(() => {
    const tile = gridRef.current?.querySelector<HTMLElement>('[data-testid="stream-tile"]');
    const picture = tile?.querySelector<HTMLElement>('[data-testid="live-view"]');
    if (!tile || !picture) return;
    const measured = Math.ceil(tile.getBoundingClientRect().height - picture.getBoundingClientRect().height);
    if (measured >= 0 && Math.abs(measured - captionHeight) >= 1) setCaptionHeight(measured);
  }, [captionHeight, wall?.tileWidth, shown.length]);

  // PageUp / PageDown turn the wall's pages (not while typing or in a dialog).
  useEffect(() => {
    if (pages <= 1) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || isEditable(e.target)) return;
      if (e.key === "PageDown") setFirst(clampPage(page + 1, pages) * perPage);
      else if (e.key === "PageUp") setFirst(clampPage(page - 1, pages) * perPage);
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [pages, page, perPage]);

  if (streams.length === 0) {
    return (
      <div ref={setRefs} className="flex min-h-0 flex-1 flex-col bg-background" data-testid="wall">
        {empty ?? (
          <div className="mx-auto mt-16 flex max-w-md flex-col items-center gap-4 rounded-xl border border-dashed p-10 text-center" data-testid="empty-grid">
            <div className="flex size-12 items-center justify-center rounded-full bg-muted">
              <Camera className="size-6 text-muted-foreground" />
            </div>
            <div className="space-y-1">
              <h2 className="font-semibold">No cameras yet</h2>
              <p className="text-sm text-muted-foreground">
                {isAdmin && onAdd
                  ? "Add a camera by pasting its RTSP URL, or list streams in the manifest file."
                  : isAdmin
                    ? "This gateway is a cluster node: cameras come from the manifest every node shares."
                    : "An administrator can add cameras in the manifest file or from this page."}
              </p>
            </div>
            {isAdmin && onAdd && (
              <Button onClick={onAdd}>
                <Plus /> Add camera
              </Button>
            )}
          </div>
        )}
      </div>
    );
  }

  const showBar = pages > 1 || fullscreen;
  return (
    <div
      ref={setRefs}
      className={cn("flex min-h-0 flex-1 flex-col bg-background", fullscreen && "p-2")}
      data-testid="wall"
      data-layout={layout}
      data-columns={wall?.columns}
      data-rows={wall?.rows}
      data-pages={pages}
      data-page={page + 1}
    >
      {wall && (
        <div
          ref={gridRef}
          className="grid min-h-0 flex-1 content-center justify-center"
          style={{ gap: `${metrics.gap}px`, gridTemplateColumns: `repeat(${wall.columns}, ${wall.tileWidth}px)` }}
          data-testid="stream-grid"
          data-columns={wall.columns}
          aria-label={pages > 1 ? `Cameras, page ${page + 1} of ${pages}` : "Cameras"}
          role="region"
        >
          {shown.map((stream) => (
            <StreamTile key={stream.id} stream={stream} isAdmin={isAdmin} onEdit={onEdit} onDelete={onDelete} />
          ))}
        </div>
      )}
      {showBar && (
        <nav
          className="flex shrink-0 items-center justify-center gap-2 pt-2"
          style={{ height: `${metrics.pagerHeight}px` }}
          aria-label="Wall pages"
          data-testid="pager"
        >
          {pages > 1 && (
            <>
              <Button variant="outline" className="size-11" onClick={() => goTo(page - 1)} disabled={page === 0} aria-label="Previous page" data-testid="page-prev">
                <ChevronLeft />
              </Button>
              <p className="min-w-28 text-center text-sm tabular-nums text-muted-foreground" aria-live="polite" data-testid="page-label">
                Page {page + 1} of {pages}
              </p>
              <Button variant="outline" className="size-11" onClick={() => goTo(page + 1)} disabled={page >= pages - 1} aria-label="Next page" data-testid="page-next">
                <ChevronRight />
              </Button>
            </>
          )}
          {fullscreen && (
            <Button variant="ghost" className="h-11" onClick={onExitFullscreen} data-testid="exit-fullscreen">
              <Minimize /> Leave full screen
            </Button>
          )}
        </nav>
      )}
    </div>
  );
}
