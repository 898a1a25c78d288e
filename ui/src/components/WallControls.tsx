/**
 * The wall's controls in the header: which cameras (all, or a group), the layout, full screen,
 * and for admins the group editor's buttons. Every control has a name and, on a phone, a 44 px
 * touch target.
 */
import { Expand, FolderPlus, LayoutGrid, Pencil } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { Tooltip, TooltipContent, TooltipTrigger } from "@/components/ui/tooltip";
import type { Group } from "@/lib/api";
import { LAYOUT_CHOICES, type LayoutChoice } from "@/lib/layout";
import { cn } from "@/lib/utils";

/** The group picker's value for "All cameras" (group ids never contain `:`). */
const ALL = ":all";

const LAYOUT_LABELS: Record<LayoutChoice, { short: string; long: string }> = {
  auto: { short: "Auto", long: "Auto: fit every camera" },
  "2x2": { short: "2 × 2", long: "2 × 2" },
  "3x3": { short: "3 × 3", long: "3 × 3" },
  "4x4": { short: "4 × 4", long: "4 × 4" },
};

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

const TRIGGER = "h-8 w-auto gap-1.5 max-sm:h-11";

export function WallControls({ groups, groupId, onGroup, layout, onLayout, isAdmin, onNewGroup, onEditGroup, onFullscreen, className }: WallControlsProps) {
  const group = groups.find((g) => g.id === groupId) ?? null;
  return (
    <div className={cn("flex min-w-0 items-center gap-1.5", className)} data-testid="wall-controls">
      <Select value={group ? group.id : ALL} onValueChange={(v) => onGroup(v === ALL ? null : v)}>
        <SelectTrigger className={cn(TRIGGER, "max-w-56 min-w-0 max-sm:flex-1")} aria-label="Cameras shown" data-testid="group-picker">
          <SelectValue />
        </SelectTrigger>
        <SelectContent className="max-w-[min(20rem,calc(100vw-2rem))]">
          <SelectItem value={ALL} data-testid="group-option-all" className="max-sm:min-h-11">
            All cameras
          </SelectItem>
          {groups.map((g) => (
            <SelectItem key={g.id} value={g.id} data-testid={`group-option-${g.id}`} className="max-sm:min-h-11">
              {g.name}
            </SelectItem>
          ))}
        </SelectContent>
      </Select>
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
      <Select value={layout} onValueChange={(v) => onLayout(v as LayoutChoice)}>
        <SelectTrigger className={TRIGGER} aria-label={`Layout: ${LAYOUT_LABELS[layout].long}`} data-testid="layout-picker">
          <LayoutGrid aria-hidden />
          <SelectValue>{LAYOUT_LABELS[layout].short}</SelectValue>
        </SelectTrigger>
        <SelectContent>
          {LAYOUT_CHOICES.map((choice) => (
            <SelectItem key={choice} value={choice} data-testid={`layout-option-${choice}`} className="max-sm:min-h-11">
              {LAYOUT_LABELS[choice].long}
            </SelectItem>
          ))}
        </SelectContent>
      </Select>
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
