import { Pencil, Trash2 } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Tooltip, TooltipContent, TooltipTrigger } from "@/components/ui/tooltip";
import type { Stream } from "@/lib/api";
import { cn } from "@/lib/utils";

export const NOT_EDITABLE_REASON = "Defined in the manifest file: change it there (the gateway reloads it by itself).";

/** Edit and delete buttons for admins; disabled with the reason for manifest streams. */
export function StreamActions({
  stream,
  onEdit,
  onDelete,
  className,
  size = "icon-sm",
}: {
  stream: Stream;
  onEdit: (stream: Stream) => void;
  onDelete: (stream: Stream) => void;
  className?: string;
  size?: "icon-sm" | "icon";
}) {
  const editable = stream.editable === true;
  const wrap = (button: React.ReactNode, label: string) => (
    <Tooltip>
      <TooltipTrigger asChild>
        {/* A disabled button gets no pointer events: the span keeps the tooltip working. */}
        <span tabIndex={editable ? -1 : 0} className="inline-flex">
          {button}
        </span>
      </TooltipTrigger>
      <TooltipContent>{editable ? label : NOT_EDITABLE_REASON}</TooltipContent>
    </Tooltip>
  );
  return (
    <div className={cn("flex items-center gap-0.5", className)}>
      {wrap(
        <Button
          variant="ghost"
          size={size}
          disabled={!editable}
          aria-label={`Edit ${stream.name}`}
          data-testid="edit-stream"
          onClick={() => onEdit(stream)}
        >
          <Pencil />
        </Button>,
        "Edit",
      )}
      {wrap(
        <Button
          variant="ghost"
          size={size}
          disabled={!editable}
          aria-label={`Delete ${stream.name}`}
          data-testid="delete-stream"
          className="hover:text-destructive"
          onClick={() => onDelete(stream)}
        >
          <Trash2 />
        </Button>,
        "Delete",
      )}
    </div>
  );
}
