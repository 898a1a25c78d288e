import { useRef, useState, type KeyboardEvent } from "react";
import { Pencil, Trash2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Tooltip, TooltipContent, TooltipTrigger } from "@/components/ui/tooltip";
import type { Stream } from "@/lib/api";
import { cn } from "@/lib/utils";

export const NOT_EDITABLE_REASON = "Defined in the manifest file: change it there (the gateway reloads it by itself).";

/**
 * Edit and delete buttons for admins; disabled with the reason for manifest streams.
 *
 * A toolbar with one tab stop (arrow keys move between its buttons, "roving tabindex"), so
 * a tile costs keyboard users at most two stops; a manifest stream's disabled buttons cost
 * none (the reason is in their tooltip, on hover).
 */
export function StreamActions({
  stream,
  onEdit,
  onDelete,
  className,
  size = "icon-sm",
  overlay = false,
}: {
  stream: Stream;
  onEdit: (stream: Stream) => void;
  onDelete: (stream: Stream) => void;
  className?: string;
  size?: "icon-sm" | "icon";
  /** Over a picture (a wall tile): white icons on a dark translucent bar. */
  overlay?: boolean;
}) {
  const editable = stream.editable === true;
  const [active, setActive] = useState(0);
  const buttons = useRef<(HTMLButtonElement | null)[]>([]);
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const step = e.key === "ArrowRight" || e.key === "ArrowDown" ? 1 : e.key === "ArrowLeft" || e.key === "ArrowUp" ? -1 : 0;
    if (step === 0 || !editable) return;
    e.preventDefault();
    const next = (active + step + 2) % 2;
    setActive(next);
    buttons.current[next]?.focus();
  };
  const wrap = (button: React.ReactNode, label: string) => (
    <Tooltip>
      <TooltipTrigger asChild>
        {/* A disabled button gets no pointer events: the span keeps the tooltip working. */}
        <span tabIndex={-1} className="inline-flex">
          {button}
        </span>
      </TooltipTrigger>
      <TooltipContent>{editable ? label : NOT_EDITABLE_REASON}</TooltipContent>
    </Tooltip>
  );
  return (
    <div
      role="toolbar"
      aria-label={`Manage ${stream.name}`}
      className={cn("flex items-center gap-0.5", overlay && "rounded-md border border-white/10 bg-black/55 text-white shadow-sm backdrop-blur-md", className)}
      onKeyDown={onKeyDown}
      data-testid="stream-actions"
    >
      {wrap(
        <Button
          ref={(el) => {
            buttons.current[0] = el;
          }}
          variant="ghost"
          size={size}
          disabled={!editable}
          tabIndex={active === 0 ? 0 : -1}
          aria-label={`Edit ${stream.name}`}
          data-testid="edit-stream"
          className={cn(overlay && "hover:bg-white/15 hover:text-white")}
          onFocus={() => setActive(0)}
          onClick={() => onEdit(stream)}
        >
          <Pencil />
        </Button>,
        "Edit",
      )}
      {wrap(
        <Button
          ref={(el) => {
            buttons.current[1] = el;
          }}
          variant="ghost"
          size={size}
          disabled={!editable}
          tabIndex={active === 1 ? 0 : -1}
          aria-label={`Delete ${stream.name}`}
          data-testid="delete-stream"
          className={overlay ? "hover:bg-white/15 hover:text-red-300" : "hover:text-destructive"}
          onFocus={() => setActive(1)}
          onClick={() => onDelete(stream)}
        >
          <Trash2 />
        </Button>,
        "Delete",
      )}
    </div>
  );
}
