import { useState } from "react";
import { Loader2 } from "lucide-react";
import { CheckboxField, Field } from "@/components/FormField";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "@/components/ui/select";
import { ApiError, api, type Plugin, type Stream } from "@/lib/api";
import { slugify } from "@/lib/format";
import {
  DEFAULT_PLUGIN,
  buildInput,
  emptyValues,
  fieldForApiError,
  pluginFields,
  valuesFromStream,
  type FieldErrors,
  type StreamFormValues,
} from "@/lib/streamForm";

export interface StreamFormDialogProps {
  open: boolean;
  /** The stream being edited, or null to add one. */
  stream: Stream | null;
  plugins: Plugin[];
  onOpenChange: (open: boolean) => void;
  onSaved: (stream: Stream | null) => void;
  onUnauthorized: () => void;
}

export function StreamFormDialog({ open, stream, plugins, onOpenChange, onSaved, onUnauthorized }: StreamFormDialogProps) {
  const editing = stream !== null;
  const defaultPlugin = plugins.some((p) => p.name === DEFAULT_PLUGIN) ? DEFAULT_PLUGIN : (plugins[0]?.name ?? DEFAULT_PLUGIN);
  const [values, setValues] = useState<StreamFormValues>(() => (stream ? valuesFromStream(stream) : emptyValues(defaultPlugin)));
  // What the edit form was pre-filled with: an unchanged (masked) URL is not sent back.
  const [initial] = useState<StreamFormValues | null>(() => (stream ? valuesFromStream(stream) : null));
  const [idTouched, setIdTouched] = useState(editing);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [saving, setSaving] = useState(false);

  const set = <K extends keyof StreamFormValues>(key: K, value: StreamFormValues[K]) => {
    setValues((v) => {
      const next = { ...v, [key]: value };
      if (key === "name" && !idTouched && typeof value === "string") next.id = slugify(value);
      return next;
    });
    setErrors((e) => {
      if (!(key in e) && !e.form) return e;
      return Object.fromEntries(Object.entries(e).filter(([k]) => k !== key && k !== "form"));
    });
  };

  const submit = async () => {
    const { input, errors: local } = buildInput(values, initial);
    if (!input) {
      setErrors(local);
      return;
    }
    setSaving(true);
    try {
      const saved = editing ? await api.updateStream(stream.id, input) : await api.createStream(input);
      onSaved(saved);
      onOpenChange(false);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, "unknown", String(e));
      if (err.status === 401) onUnauthorized();
      // A duplicate id (409) names no field, but it belongs next to the id.
      const where = err.status === 409 && !err.field && /\bid\b/.test(err.message) && !editing ? "id" : fieldForApiError(err.field);
      let message = err.message;
      if (err.status === 404 && !editing) message = `The gateway does not accept new streams (${err.message}).`;
      if (err.status === 405) message = `The gateway does not support this yet (${err.message}).`;
      if (err.status === 403) message = `Only administrators can change streams (${err.message}).`;
      setErrors(where === "form" ? { form: message } : { [where]: message });
    } finally {
      setSaving(false);
    }
  };

  const fields = pluginFields(values.plugin);
  const pluginList = plugins.length > 0 ? plugins : [{ name: values.plugin }];

  return (
    <Dialog open={open} onOpenChange={(o) => !saving && onOpenChange(o)}>
      <DialogContent className="sm:max-w-xl" data-testid="stream-form">
        <form onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }} noValidate className="grid gap-5">
          <DialogHeader>
            <DialogTitle>{editing ? `Edit ${stream.name}` : "Add camera"}</DialogTitle>
            <DialogDescription>
              {editing
                ? "Changes restart the source; people watching stay connected."
                : "Paste the camera's RTSP URL. Credentials can go in their own fields instead of the URL."}
            </DialogDescription>
          </DialogHeader>

          <div className="grid gap-4 sm:grid-cols-2">
            <Field label="Name" error={errors.name} className="sm:col-span-1">
              {(id, describedBy) => (
                <Input
                  id={id}
                  name="name"
                  autoFocus
                  autoComplete="off"
                  placeholder="Front door"
                  value={values.name}
                  aria-invalid={Boolean(errors.name)}
                  aria-describedby={describedBy}
                  onChange={(e) => set("name", e.target.value)}
                />
              )}
            </Field>
            <Field label="Id" hint={editing ? "Used in URLs; cannot change" : "Used in URLs"} error={errors.id}>
              {(id, describedBy) => (
                <Input
                  id={id}
                  name="id"
                  autoComplete="off"
                  spellCheck={false}
                  className="font-mono"
                  placeholder="front-door"
                  value={values.id}
                  disabled={editing}
                  aria-invalid={Boolean(errors.id)}
                  aria-describedby={describedBy}
                  onChange={(e) => {
                    setIdTouched(true);
                    set("id", e.target.value);
                  }}
                />
              )}
            </Field>

            <Field label="Source" error={errors.plugin} className="sm:col-span-2">
              {(id, describedBy) => (
                <Select value={values.plugin} onValueChange={(v) => set("plugin", v)}>
                  <SelectTrigger id={id} aria-describedby={describedBy} aria-invalid={Boolean(errors.plugin)} data-testid="plugin-select">
                    <SelectValue placeholder="Choose a plugin" />
                  </SelectTrigger>
                  <SelectContent className="max-w-[min(32rem,calc(100vw-2rem))]">
                    {pluginList.map((p) => (
                      <SelectItem
                        key={p.name}
                        value={p.name}
                        description={"description" in p ? p.description : undefined}
                        data-testid={`plugin-option-${p.name}`}
                      >
                        {p.name}
                      </SelectItem>
                    ))}
                  </SelectContent>
                </Select>
              )}
            </Field>

            {fields.includes("url") && (
              <Field label="Camera URL" error={errors.url} className="sm:col-span-2">
                {(id, describedBy) => (
                  <Input
                    id={id}
                    name="url"
                    type="url"
                    inputMode="url"
                    autoComplete="off"
                    spellCheck={false}
                    className="font-mono"
                    placeholder="rtsp://192.168.1.20:554/stream1"
                    value={values.url}
                    aria-invalid={Boolean(errors.url)}
                    aria-describedby={describedBy}
                    onChange={(e) => set("url", e.target.value)}
                  />
                )}
              </Field>
            )}
            {fields.includes("username") && (
              <Field label="Username" hint="Optional" error={errors.username}>
                {(id, describedBy) => (
                  <Input
                    id={id}
                    name="username"
                    autoComplete="off"
                    value={values.username}
                    aria-invalid={Boolean(errors.username)}
                    aria-describedby={describedBy}
                    onChange={(e) => set("username", e.target.value)}
                  />
                )}
              </Field>
            )}
            {fields.includes("password") && (
              <Field label="Password" hint={editing ? "Leave empty to keep the stored one" : "Optional"} error={errors.password}>
                {(id, describedBy) => (
                  <Input
                    id={id}
                    name="password"
                    type="password"
                    autoComplete="new-password"
                    placeholder={editing ? "unchanged" : ""}
                    value={values.password}
                    aria-invalid={Boolean(errors.password)}
                    aria-describedby={describedBy}
                    onChange={(e) => set("password", e.target.value)}
                  />
                )}
              </Field>
            )}
            {fields
              .filter((k): k is NumberField => k in NUMBER_LABELS)
              .map((key) => (
                <Field key={key} label={NUMBER_LABELS[key].label} hint={NUMBER_LABELS[key].hint(values.plugin)} error={errors[key]}>
                  {(id, describedBy) => (
                    <Input
                      id={id}
                      name={key}
                      inputMode="decimal"
                      autoComplete="off"
                      placeholder={NUMBER_LABELS[key].placeholder(values.plugin)}
                      value={values[key]}
                      aria-invalid={Boolean(errors[key])}
                      aria-describedby={describedBy}
                      onChange={(e) => set(key, e.target.value)}
                    />
                  )}
                </Field>
              ))}

            <CheckboxField
              name="alwaysOn"
              label="Always on"
              description="Keep the source running without viewers (first frame at once, costs CPU). Otherwise it starts with the first viewer."
              checked={values.alwaysOn}
              onChange={(checked) => set("alwaysOn", checked)}
            />
            <CheckboxField
              name="judgeHealth"
              label="Report picture problems"
              description="Mark the camera when its picture is frozen, dark or late. Turn off for a camera meant to look at a dark or still scene."
              checked={values.judgeHealth}
              onChange={(checked) => set("judgeHealth", checked)}
            />
          </div>

          {errors.form && (
            <p role="alert" className="rounded-md border border-destructive/40 bg-destructive/10 px-3 py-2 text-sm text-destructive" data-testid="form-error">
              {errors.form}
            </p>
          )}

          <DialogFooter>
            <Button type="button" variant="outline" disabled={saving} onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" disabled={saving} data-testid="save-stream">
              {saving && <Loader2 className="animate-spin" />}
              {editing ? "Save changes" : "Add camera"}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

type NumberField = "fps" | "width" | "height" | "quality";

const NUMBER_LABELS: Record<NumberField, { label: string; hint: (plugin: string) => string; placeholder: (plugin: string) => string }> = {
  fps: { label: "Frame rate", hint: () => "Frames per second", placeholder: (p: string) => (p === "testsrc" ? "10" : "10 (camera's rate)") },
  width: { label: "Width", hint: (p: string) => (p === "testsrc" ? "Pixels" : "Pixels; keeps aspect ratio"), placeholder: (p: string) => (p === "testsrc" ? "640" : "original") },
  height: { label: "Height", hint: () => "Pixels", placeholder: () => "360" },
  quality: { label: "JPEG quality", hint: () => "2 best … 31 smallest", placeholder: () => "5" },
};
