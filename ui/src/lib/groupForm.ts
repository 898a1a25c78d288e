/**
 * The group dialog's logic (pure, unit-tested): the checklist's order, local validation with
 * the gateway's rules (id like a stream id, name 1..64 characters, at least one camera), and
 * where an API error is shown.
 */
import type { ApiError, Group, GroupInput, Stream } from "@/lib/api";
import { STREAM_ID_PATTERN } from "@/lib/format";

export type GroupField = "id" | "name" | "streams" | "form";
export type GroupErrors = Partial<Record<GroupField, string>>;

export interface CheckItem {
  id: string;
  name: string;
  checked: boolean;
}

/**
 * The checklist: the group's cameras first, in its order, then every other camera in the
 * list's order (unchecked). Ids the list does not have (yet) are kept, named by their id.
 */
export function checklist(streams: Stream[], group: Group | null): CheckItem[] {
  const byId = new Map(streams.map((s) => [s.id, s]));
  const inGroup = new Set(group?.streams ?? []);
  return [
    ...(group?.streams ?? []).map((id) => ({ id, name: byId.get(id)?.name ?? id, checked: true })),
    ...streams.filter((s) => !inGroup.has(s.id)).map((s) => ({ id: s.id, name: s.name, checked: false })),
  ];
}

/** The item at `index` moved by `delta` places (kept inside the list). */
export function move<T>(items: readonly T[], index: number, delta: number): T[] {
  const to = Math.min(Math.max(0, index + delta), items.length - 1);
  if (to === index || index < 0 || index >= items.length) return [...items];
  const next = [...items];
  const [item] = next.splice(index, 1);
  next.splice(to, 0, item as T);
  return next;
}

/**
 * The body to send, or the errors that keep it from being sent. `taken`: ids of the groups
 * that exist, when creating one (a PUT would silently replace an existing group).
 */
export function buildGroupInput(id: string, name: string, items: readonly CheckItem[], taken: readonly string[] = []): { id: string; input: GroupInput | null; errors: GroupErrors } {
  const errors: GroupErrors = {};
  const trimmedId = id.trim();
  const trimmedName = name.trim();
  if (!trimmedName) errors.name = "Give the group a name.";
  else if (Array.from(trimmedName).length > 64) errors.name = "At most 64 characters.";
  if (!trimmedId) errors.id = "Give the group an id (used in its link).";
  else if (!STREAM_ID_PATTERN.test(trimmedId)) errors.id = "Lowercase letters, digits, - and _ only.";
  else if (taken.includes(trimmedId)) errors.id = `A group “${trimmedId}” exists already.`;
  const streams = items.filter((i) => i.checked).map((i) => i.id);
  if (streams.length === 0) errors.streams = "Choose at least one camera.";
  if (Object.keys(errors).length > 0) return { id: trimmedId, input: null, errors };
  return { id: trimmedId, input: { name: trimmedName, streams }, errors };
}

/** Where an error from the API goes: next to the field it names, else above the buttons. */
export function groupErrorField(err: ApiError, creating: boolean): GroupField {
  const field = err.field?.split(/[.[]/)[0] ?? null;
  if (field === "name" || field === "streams" || field === "id") return field;
  if (creating && err.status === 409) return "id";
  if (/\bname\b/i.test(err.message) && err.status === 400) return "name";
  if (/\bstreams?\b/i.test(err.message) && err.status === 400) return "streams";
  return "form";
}
