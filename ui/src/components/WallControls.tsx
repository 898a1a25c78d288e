/**
 * The wall's controls in the header: which cameras (all, or a group), the layout, full screen,
 * and for admins the group editor's buttons. Every control has a name and, on a phone, a 44 px
 * touch target. The pickers are native selects: keyboard, screen readers and phones' own
 * pickers work, and an open picker hides nothing from assistive technology.
 */
import type { ComponentProps, ReactNode } from "react";
import { ChevronDown, Expand, FolderPlus, LayoutGrid, Pencil } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Tooltip, TooltipContent, TooltipTrigger } from "@/components/ui/tooltip";
import type { Group } from "@/lib/api";
import { LAYOUT_CHOICES, parseLayoutChoice, type LayoutChoice } from "@/lib/layout";
import { cn } from "@/lib/utils";

/** The group picker's value for "All cameras" (group ids never contain `:`). */
const ALL = ":all";

const LAYOUT_LABELS: Record<LayoutChoice, string> = { auto: "Auto", "2x2": "2 × 2", "3x3": "3 × 3", "4x4": "4 × 4" };

export interface WallControlsProps {
  groups: Group[];
  /** The group shown, or null for every camera. */
  groupId: string | null;
  onGroup: (id: string | null) => void;
  layout: LayoutChoice;
  onLayout: (layout: LayoutChoice) => void;
  isAdmin: boolean;
  onNewGroup: () => void;
  onEditGroup: (group: Group) => void;
  /** Null when this browser has no full screen for elements (a phone's Safari). */
  onFullscreen: (() => void) | null;
  className?: string;
}

/** A native select styled like the header's buttons, with an optional leading icon. */
function Picker({ icon, className, children, ...props }: ComponentProps<"select"> & { icon?: ReactNode }) {
  return (
    <span className={cn("relative inline-flex min-w-0 items-center", className)}>
      {icon && <span className="pointer-events-none absolute left-2.5 text-muted-foreground [&_svg]:size-4">{icon}</span>}
      <select
        className={cn(
          "h-8 w-full min-w-0 cursor-pointer appearance-none truncate rounded-md border border-input bg-background py-0 pr-8 text-sm shadow-xs outline-none max-sm:h-11 dark:bg-input/30",
          "focus-visible:border-ring focus-visible:ring-[3px] focus-visible:ring-ring/50 [&>option]:bg-popover [&>option]:text-popover-foreground",
          icon ? "pl-8" : "pl-3",
        )}
        {...props}
      >
        {children}
      </select>
      <ChevronDown className="pointer-events-none absolute right-2.5 size-4 opacity-50" aria-hidden />
    </span>
  );
}

export function WallControls({ groups, groupId, onGroup, layout, onLayout, isAdmin, onNewGroup, onEditGroup, onFullscreen, className }: WallControlsProps) {
  const group = groups.find((g) => g.id === groupId) ?? null;
  return (
    <div className={cn("flex min-w-0 items-center gap-1.5", className)} data-testid="wall-controls">
      <Picker
        className="max-w-56 max-sm:max-w-none max-sm:flex-1"
        value={group ? group.id : ALL}
        onChange={(e) => onGroup(e.target.value === ALL ? null : e.target.value)}
        aria-label="Cameras shown"
        data-testid="group-picker"
      >
        <option value={ALL}>All cameras</option>
        {groups.map((g) => (
          <option key={g.id} value={g.id}>
            {g.name}
          </option>
        ))}
      </Picker>
      {isAdmin && group && (
        <Tooltip>
          <TooltipTrigger asChild>
            <Button variant="ghost" size="icon-sm" onClick={() => onEditGroup(group)} aria-label={`Edit group ${group.name}`} data-testid="edit-group">
              <Pencil />
            </Button>
          </TooltipTrigger>
          <TooltipContent>Edit or delete this group</TooltipContent>
        </Tooltip>
      )}
      {isAdmin && (
        <Tooltip>
          <TooltipTrigger asChild>
            <Button variant="ghost" size="icon-sm" onClick={onNewGroup} aria-label="New group" data-testid="new-group">
              <FolderPlus />
            </Button>
          </TooltipTrigger>
          <TooltipContent>New group of cameras</TooltipContent>
        </Tooltip>
      )}
      <Picker icon={<LayoutGrid />} className="w-28 shrink-0 max-sm:w-26" value={layout} onChange={(e) => onLayout(parseLayoutChoice(e.target.value))} aria-label="Layout" data-testid="layout-picker">
        {LAYOUT_CHOICES.map((choice) => (
          <option key={choice} value={choice}>
            {LAYOUT_LABELS[choice]}
          </option>
        ))}
      </Picker>
      {onFullscreen && (
        <Tooltip>
          <TooltipTrigger asChild>
            <Button variant="ghost" size="icon-sm" onClick={onFullscreen} aria-label="Full screen wall" data-testid="wall-fullscreen">
              <Expand />
            </Button>
          </TooltipTrigger>
          <TooltipContent>Show the wall on the whole screen (Esc leaves)</TooltipContent>
        </Tooltip>
      )}
    </div>
  );
}
