/**
 * Create, edit or delete a group of cameras (admins): a name, an id (its link, fixed once
 * made), and a checklist of cameras in the group's order. Errors — local, or the gateway's —
 * are shown next to the field they concern.
 */
import { useId, useState } from "react";
import { ArrowDown, ArrowUp, Loader2, Trash2 } from "lucide-react";
import { Field } from "@/components/FormField";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { ApiError, groupsApi, type Group, type Stream } from "@/lib/api";
import { slugify } from "@/lib/format";
import { buildGroupInput, checklist, groupErrorField, move, type CheckItem, type GroupErrors } from "@/lib/groupForm";
import { cn } from "@/lib/utils";

export interface GroupDialogProps {
  open: boolean;
  /** The group edited, or null to create one. */
  group: Group | null;
  streams: Stream[];
  /** Ids of the groups that exist (a new one may not take one). */
  taken: string[];
  onOpenChange: (open: boolean) => void;
  onSaved: (group: Group) => void;
  onDeleted: (id: string) => void;
  onUnauthorized: () => void;
}

export function GroupDialog({ open, group, streams, taken, onOpenChange, onSaved, onDeleted, onUnauthorized }: GroupDialogProps) {
  const editing = group !== null;
  const [name, setName] = useState(group?.name ?? "");
  const [id, setId] = useState(group?.id ?? "");
  const [idTouched, setIdTouched] = useState(editing);
  const [items, setItems] = useState<CheckItem[]>(() => checklist(streams, group));
  const [errors, setErrors] = useState<GroupErrors>({});
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const listLabel = useId();
  const streamsMessage = useId();

  const clear = (field: keyof GroupErrors) => setErrors((e) => (e[field] || e.form ? { ...e, [field]: undefined, form: undefined } : e));

  const fail = (e: unknown) => {
    const err = e instanceof ApiError ? e : new ApiError(0, "unknown", String(e));
    if (err.status === 401) onUnauthorized();
    let message = err.message;
    if (err.status === 404 && !editing) message = `This gateway has no groups yet (${err.message}).`;
    if (err.status === 403) message = `Only administrators can change groups (${err.message}).`;
    setErrors({ [groupErrorField(err, !editing)]: message });
  };

  const submit = async () => {
    const built = buildGroupInput(id, name, items, editing ? [] : taken);
    if (!built.input) {
      setErrors(built.errors);
      return;
    }
    setBusy(true);
    try {
      // The gateway answers with the group; an empty answer means it was saved as sent.
      const saved = (await groupsApi.save(built.id, built.input)) as Partial<Group> | undefined;
      onSaved(typeof saved?.id === "string" && Array.isArray(saved.streams) ? (saved as Group) : { id: built.id, ...built.input });
      onOpenChange(false);
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!group) return;
    setBusy(true);
    try {
      await groupsApi.remove(group.id);
      onDeleted(group.id);
      onOpenChange(false);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        // Already gone.
        onDeleted(group.id);
        onOpenChange(false);
      } else fail(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog open={open} onOpenChange={(o) => !busy && onOpenChange(o)}>
      <DialogContent className="sm:max-w-lg" data-testid="group-dialog">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
          noValidate
          className="grid min-w-0 gap-5"
        >
          <DialogHeader>
            <DialogTitle>{editing ? `Edit group ${group.name}` : "New group"}</DialogTitle>
            <DialogDescription>A group is a wall of chosen cameras, in your order. Every browser sees it; a viewer sees only the cameras it may watch.</DialogDescription>
          </DialogHeader>

          <div className="grid gap-4 sm:grid-cols-2">
            <Field label="Name" error={errors.name}>
              {(fieldId, describedBy) => (
                <Input
                  id={fieldId}
                  name="group-name"
                  autoFocus
                  autoComplete="off"
                  placeholder="Lobby"
                  value={name}
                  aria-invalid={Boolean(errors.name)}
                  aria-describedby={describedBy}
                  onChange={(e) => {
                    setName(e.target.value);
                    if (!idTouched) setId(slugify(e.target.value));
                    clear("name");
                  }}
                />
              )}
            </Field>
            <Field label="Id" hint={editing ? "Used in its link; cannot change" : "Used in its link: #/groups/id"} error={errors.id}>
              {(fieldId, describedBy) => (
                <Input
                  id={fieldId}
                  name="group-id"
                  autoComplete="off"
                  spellCheck={false}
                  className="font-mono"
                  placeholder="lobby"
                  value={id}
                  disabled={editing}
                  aria-invalid={Boolean(errors.id)}
                  aria-describedby={describedBy}
                  onChange={(e) => {
                    setIdTouched(true);
                    setId(e.target.value);
                    clear("id");
                  }}
                />
              )}
            </Field>
          </div>

          <fieldset className="grid min-w-0 gap-1.5" aria-describedby={errors.streams ? streamsMessage : undefined} data-invalid={errors.streams ? "true" : undefined}>
            <legend id={listLabel} className={cn("mb-1.5 text-sm font-medium", errors.streams && "text-destructive")}>
              Cameras, in order
            </legend>
            <ul className="max-h-[min(40dvh,20rem)] divide-y overflow-y-auto rounded-md border" data-testid="group-cameras">
              {items.length === 0 && <li className="px-3 py-2 text-sm text-muted-foreground">No cameras to choose from.</li>}
              {items.map((item, index) => (
                <li key={item.id} className="flex min-h-11 items-center gap-2 pr-1 pl-3" data-testid="group-camera" data-stream-id={item.id}>
                  <label className="flex min-h-11 min-w-0 flex-1 items-center gap-3 text-sm">
                    <input
                      type="checkbox"
                      className="size-4 shrink-0 accent-primary"
                      checked={item.checked}
                      onChange={(e) => {
                        const checked = e.target.checked;
                        setItems((all) => all.map((i) => (i.id === item.id ? { ...i, checked } : i)));
                        clear("streams");
                      }}
                    />
                    <span className="min-w-0 truncate">
                      {item.name} <span className="font-mono text-xs text-muted-foreground">{item.id}</span>
                    </span>
                  </label>
                  <Button
                    type="button"
                    variant="ghost"
                    size="icon-sm"
                    disabled={index === 0}
                    aria-label={`Move ${item.name} up`}
                    onClick={() => setItems((all) => move(all, index, -1))}
                  >
                    <ArrowUp />
                  </Button>
                  <Button
                    type="button"
                    variant="ghost"
                    size="icon-sm"
                    disabled={index === items.length - 1}
                    aria-label={`Move ${item.name} down`}
                    onClick={() => setItems((all) => move(all, index, 1))}
                  >
                    <ArrowDown />
                  </Button>
                </li>
              ))}
            </ul>
            {errors.streams && (
              <p id={streamsMessage} className="text-xs text-destructive" data-testid="field-error" data-field="streams">
                {errors.streams}
              </p>
            )}
          </fieldset>

          {errors.form && (
            <p role="alert" className="rounded-md border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm text-destructive" data-testid="form-error">
              {errors.form}
            </p>
          )}

          {editing && confirmDelete && (
            <div role="alert" className="flex flex-wrap items-center gap-2 rounded-md border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm" data-testid="confirm-delete-group-box">
              <span className="flex-1">Delete the group “{group.name}”? The cameras stay.</span>
              <Button type="button" variant="outline" size="sm" disabled={busy} onClick={() => setConfirmDelete(false)}>
                Keep it
              </Button>
              <Button type="button" variant="destructive" size="sm" disabled={busy} onClick={() => void remove()} data-testid="confirm-delete-group">
                Delete group
              </Button>
            </div>
          )}

          <DialogFooter className="gap-2">
            {editing && !confirmDelete && (
              <Button type="button" variant="ghost" className="text-destructive sm:mr-auto" disabled={busy} onClick={() => setConfirmDelete(true)} data-testid="delete-group">
                <Trash2 /> Delete…
              </Button>
            )}
            <Button type="button" variant="outline" disabled={busy} onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" disabled={busy} data-testid="save-group">
              {busy && <Loader2 className="animate-spin" />}
              {editing ? "Save group" : "Create group"}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
