import { memo, useCallback, useContext, useId, useState } from "react";
import { LiveView } from "@/components/LiveView";
import { RetryNow } from "@/components/RetryNow";
import { StreamActions } from "@/components/StreamActions";
import { PlayerContext } from "@/hooks/playerContext";
import { streamHref } from "@/hooks/useHashRoute";
import type { Stream } from "@/lib/api";
import { sourceDown, type DisplayStatus } from "@/lib/status";
import { tilePlayback } from "@/lib/variants";
import type { PlayerStatus } from "@/player/player";

export { GRID_MAX_FPS } from "@/lib/variants";


interface StreamTileProps {
  stream: Stream;
  isAdmin: boolean;
  onEdit: (stream: Stream) => void;
  onDelete: (stream: Stream) => void;
}

function StreamTileImpl({ stream, isAdmin, onEdit, onDelete }: StreamTileProps) {
  const plugin = stream.source.plugin;
  // Grid tiles play the stream's sub-stream when it has one, at its full rate.
  const { variant, maxFps } = tilePlayback(stream);
  const [down, setDown] = useState(false);
  const [retryAt, setRetryAt] = useState<number | null>(null);
  const onStatus = useCallback((_: PlayerStatus | null, display: DisplayStatus) => setDown(sourceDown(display)), []);
  const { onUnauthorized } = useContext(PlayerContext);
  const detailsId = useId();
  return (
    // Keyboard: at most two tab stops per tile (the picture's link, and the actions toolbar
    // for admins). The focus ring is drawn by the tile itself: the link sits inside the
    // tile's rounded, clipped box, where a ring of its own would be cut off.
    <article
      className="group relative min-w-0 overflow-hidden rounded-xl border bg-video text-card-foreground shadow-sm transition-shadow hover:shadow-md has-[a:focus-visible]:ring-[3px] has-[a:focus-visible]:ring-ring"
      data-testid="stream-tile"
      data-stream-id={stream.id}
    >
      {/* The whole tile is picture: the name and the live stats are over its bottom edge, the
          status badges top left, the admin's actions top right. */}
      <LiveView
        streamId={stream.id}
        name={stream.name}
        maxFps={maxFps}
        variant={variant}
        apiState={stream.state}
        apiCause={stream.cause}
        retryRequestedAt={retryAt}
        onStatus={isAdmin ? onStatus : undefined}
        apiMessage={stream.message}
        apiHealth={stream.health}
        apiHealthSince={stream.health_since}
        className="aspect-video w-full"
        caption={<span data-testid="stream-name">{stream.name}</span>}
        cover={
          // Over the picture, with no text of its own: its name is the camera's; the id, plugin
          // and viewer count (in the focused view's details too) are its description.
          <a
            href={streamHref(stream.id)}
            className="absolute inset-0 outline-none"
            aria-label={`Open ${stream.name}`}
            aria-describedby={detailsId}
            data-testid="open-stream"
          />
        }
        actions={
          isAdmin ? (
            <StreamActions
              stream={stream}
              onEdit={onEdit}
              onDelete={onDelete}
              overlay
              // With a mouse, shown while the pointer is over the tile (or the keyboard in it),
              // so that the wall is picture; on a touch screen, always.
              className="transition-opacity group-focus-within:opacity-100 group-hover:opacity-100 [@media(hover:hover)]:opacity-0"
            />
          ) : undefined
        }
      />
      <span id={detailsId} className="sr-only" data-testid="stream-details-line">
        {stream.id} · {plugin}
        {typeof stream.viewers === "number" && ` · ${stream.viewers} ${stream.viewers === 1 ? "viewer" : "viewers"}`}
      </span>
      {/* Over the link (which covers the picture), while the camera is down. Not a tab stop:
          a tile has two (the link and the toolbar); from the keyboard, Retry now is in the
          focused view the link opens. */}
      {isAdmin && down && (
        <RetryNow
          streamId={stream.id}
          name={stream.name}
          onAccepted={() => setRetryAt(Date.now())}
          onUnauthorized={onUnauthorized}
          className="absolute right-2 bottom-8 z-10"
          tabIndex={-1}
        />
      )}
    </article>
  );
}

export const StreamTile = memo(
  StreamTileImpl,
  (a, b) =>
    a.isAdmin === b.isAdmin &&
    a.onEdit === b.onEdit &&
    a.onDelete === b.onDelete &&
    a.stream.id === b.stream.id &&
    a.stream.name === b.stream.name &&
    a.stream.state === b.stream.state &&
    a.stream.cause === b.stream.cause &&
    (a.stream.variants ?? []).join() === (b.stream.variants ?? []).join() &&
    a.stream.message === b.stream.message &&
    a.stream.health === b.stream.health &&
    a.stream.health_since === b.stream.health_since &&
    a.stream.viewers === b.stream.viewers &&
    a.stream.editable === b.stream.editable &&
    a.stream.source.plugin === b.stream.source.plugin,
);
