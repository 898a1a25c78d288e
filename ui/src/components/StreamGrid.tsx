import type { CSSProperties } from "react";
import { Camera, Plus } from "lucide-react";
import { StreamTile } from "@/components/StreamTile";
import { Button } from "@/components/ui/button";
import type { Stream } from "@/lib/api";
import { gridColumns } from "@/lib/format";
import { cn } from "@/lib/utils";

// Column classes per planned column count; narrower screens get fewer columns (a phone: one).
const COLUMNS: Record<number, string> = {
  1: "grid-cols-1",
  2: "grid-cols-1 md:grid-cols-2",
  3: "grid-cols-1 sm:grid-cols-2 xl:grid-cols-3",
  4: "grid-cols-1 sm:grid-cols-2 lg:grid-cols-3 2xl:grid-cols-4",
  5: "grid-cols-1 sm:grid-cols-2 lg:grid-cols-3 xl:grid-cols-4 2xl:grid-cols-5",
};
// From this breakpoint on, all planned columns are in use, so the grid can be sized to fit
// the viewport's height (no scrolling for a 2x2 or 3x3 wall on a desktop screen).
const FIT = {
  1: "max-w-[var(--fit)]",
  2: "md:max-w-[var(--fit)]",
  3: "xl:max-w-[var(--fit)]",
  4: "2xl:max-w-[var(--fit)]",
  5: "",
} as Record<number, string>;

export function StreamGrid({
  streams,
  isAdmin,
  onAdd,
  onEdit,
  onDelete,
}: {
  streams: Stream[];
  isAdmin: boolean;
  onAdd: () => void;
  onEdit: (stream: Stream) => void;
  onDelete: (stream: Stream) => void;
}) {
  if (streams.length === 0) {
    return (
      <div className="mx-auto mt-16 flex max-w-md flex-col items-center gap-4 rounded-xl border border-dashed p-10 text-center" data-testid="empty-grid">
        <div className="flex size-12 items-center justify-center rounded-full bg-muted">
          <Camera className="size-6 text-muted-foreground" />
        </div>
        <div className="space-y-1">
          <h2 className="font-semibold">No cameras yet</h2>
          <p className="text-sm text-muted-foreground">
            {isAdmin
              ? "Add a camera by pasting its RTSP URL, or list streams in the manifest file."
              : "An administrator can add cameras in the manifest file or from this page."}
          </p>
        </div>
        {isAdmin && (
          <Button onClick={onAdd}>
            <Plus /> Add camera
          </Button>
        )}
      </div>
    );
  }
  const cols = gridColumns(streams.length);
  const rows = Math.ceil(streams.length / cols);
  // Width at which `rows` rows of 16:9 tiles (plus their 3.5rem captions and 1rem gaps)
  // fill the height below the header; never narrower than 40rem.
  const fit = `max(40rem, calc(((100dvh - 6.5rem - ${rows} * 4.5rem) / ${rows}) * 16 / 9 * ${cols} + ${cols - 1}rem))`;
  return (
    <div
      className={cn("mx-auto grid w-full gap-4", COLUMNS[cols], FIT[cols])}
      style={{ "--fit": fit } as CSSProperties}
      data-testid="stream-grid"
      data-columns={cols}
    >
      {streams.map((stream) => (
        <StreamTile key={stream.id} stream={stream} isAdmin={isAdmin} onEdit={onEdit} onDelete={onDelete} />
      ))}
    </div>
  );
}
