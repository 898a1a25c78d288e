/**
 * The add/edit form's model: values ↔ API body, client-side checks, and where an API error
 * belongs. Pure (unit-tested).
 */

import type { Stream, StreamInput } from "@/lib/api";
import { STREAM_ID_PATTERN } from "@/lib/format";

export interface StreamFormValues {
  name: string;
  id: string;
  plugin: string;
  url: string;
  username: string;
  password: string;
  fps: string;
  width: string;
  height: string;
  quality: string;
  alwaysOn: boolean;
  /** The idle timeout as the API showed it (not edited here; sent back so it is kept). */
  idleTimeout: string;
  /** Judge the picture's health (`health_rules.enabled`). */
  judgeHealth: boolean;
  /** The health thresholds as the API showed them (the form edits only `enabled`). */
  healthRules: Record<string, unknown> | null;
  /** Source options the form has no field for, as the API showed them (sent back). */
  extra: Record<string, unknown>;
}

export type FieldKey = "name" | "id" | "plugin" | "url" | "username" | "password" | "fps" | "width" | "height" | "quality" | "alwaysOn" | "judgeHealth";
export type FieldErrors = Partial<Record<FieldKey | "form", string>>;

/**
 * New cameras pass the camera's own H.264/H.265 through (`rtsp`): no transcoding unless a
 * viewer needs JPEGs. `ffmpeg-mjpeg` stays for what `rtsp` cannot read (RTSPS, HTTP).
 */
export const DEFAULT_PLUGIN = "rtsp";

/** Which source fields a plugin takes (unknown plugins get the camera fields). */
export function pluginFields(plugin: string): FieldKey[] {
  if (plugin === "testsrc") return ["width", "height", "fps"];
  // Passthrough: the camera decides size, rate and quality.
  if (plugin === "rtsp") return ["url", "username", "password"];
  return ["url", "username", "password", "fps", "width", "quality"];
}

export function emptyValues(plugin: string = DEFAULT_PLUGIN): StreamFormValues {
  return {
    name: "",
    id: "",
    plugin,
    url: "",
    username: "",
    password: "",
    fps: "",
    width: "",
    height: "",
    quality: "",
    alwaysOn: false,
    idleTimeout: "",
    judgeHealth: true,
    healthRules: null,
    extra: {},
  };
}

function numText(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value) ? String(value) : "";
}

/**
 * Values to edit an existing stream. The password is never prefilled. What the form has no
 * field for (the idle timeout, options such as `transport`) is kept aside and sent back as
 * shown, so an edit never drops a setting the user gave (the API keeps a value sent back
 * exactly as it showed it).
 */
export function valuesFromStream(stream: Stream): StreamFormValues {
  const s = stream.source;
  const managed = new Set<string>(["plugin", ...pluginFields(s.plugin)]);
  const extra = Object.fromEntries(Object.entries(s).filter(([key]) => !managed.has(key)));
  return {
    name: stream.name,
    id: stream.id,
    plugin: s.plugin,
    url: typeof s.url === "string" ? s.url : "",
    username: typeof s.username === "string" ? s.username : "",
    password: "",
    fps: numText(s.fps),
    width: numText(s.width),
    height: numText(s.height),
    quality: numText(s.quality),
    alwaysOn: !stream.on_demand,
    idleTimeout: typeof stream.idle_timeout === "string" ? stream.idle_timeout : "",
    judgeHealth: stream.health_rules?.enabled !== false,
    healthRules: stream.health_rules ? { ...stream.health_rules } : null,
    extra,
  };
}

const URL_SCHEMES = ["rtsp:", "rtsps:", "http:", "https:"];

function parseNumber(text: string, { min, max, integer }: { min: number; max: number; integer: boolean }): number | string {
  const n = Number(text.trim());
  if (!Number.isFinite(n)) return "must be a number";
  if (integer && !Number.isInteger(n)) return "must be a whole number";
  if (n < min || n > max) return `must be between ${min} and ${max}`;
  return n;
}

/** What the API shows instead of a URL's password. */
const MASK = "***";

/**
 * Checks the values and builds the API body. Only the plugin knows its options for sure:
 * these checks catch the obvious, the API answers the rest (shown next to the field too).
 *
 * `initial` are the values the edit form was pre-filled with (`null` when creating). The
 * API shows a URL's password as `***`; such a URL left as it was pre-filled is therefore NOT
 * sent (the API keeps the stored one), so the mask never travels back as a password. Any
 * other unchanged URL is sent as it is (an omitted one would be removed).
 */
export function buildInput(values: StreamFormValues, initial: StreamFormValues | null = null): { input: StreamInput | null; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const name = values.name.trim();
  const id = values.id.trim();
  if (!name) errors.name = "Give the camera a name";
  if (!id) errors.id = "Required";
  else if (!STREAM_ID_PATTERN.test(id)) errors.id = "Use lowercase letters, digits, - and _";
  if (!values.plugin) errors.plugin = "Choose a source plugin";

  const fields = pluginFields(values.plugin);
  // Options without a field go back as they were shown (only to the same plugin).
  const kept = initial !== null && initial.plugin === values.plugin ? initial.extra : {};
  const source: StreamInput["source"] = { ...kept, plugin: values.plugin };
  if (fields.includes("url")) {
    const url = values.url.trim();
    // Only a URL shown with a masked password is left out: the API keeps an omitted option
    // only when it was shown masked, and drops any other (an update replaces the options).
    const shownMasked = initial !== null && initial.url.includes(`:${MASK}@`);
    const unchanged = shownMasked && initial.plugin === values.plugin && url === initial.url.trim();
    if (unchanged) {
      // Kept by the API as stored (with its real password).
    } else if (!url) errors.url = "Paste the camera's RTSP URL";
    else {
      let parsed: URL | null = null;
      try {
        parsed = new URL(url);
      } catch {
        errors.url = "Not a valid URL (e.g. rtsp://192.168.1.20:554/stream1)";
      }
      if (parsed && !URL_SCHEMES.includes(parsed.protocol)) errors.url = "Use an rtsp://, rtsps://, http:// or https:// URL";
      else if (parsed && parsed.password === MASK) errors.url = "The password is hidden as ***: type it again, or put it in the password field";
      else if (parsed) source.url = url;
    }
    const username = values.username.trim();
    if (username) source.username = username;
    // Empty password: on create, none; on edit, keep the stored one (the field is omitted).
    if (values.password) source.password = values.password;
  }
  const numeric: [FieldKey & ("fps" | "width" | "height" | "quality"), { min: number; max: number; integer: boolean }][] = [
    ["fps", { min: 0.1, max: 120, integer: false }],
    ["width", { min: 16, max: 7680, integer: true }],
    ["height", { min: 16, max: 4320, integer: true }],
    ["quality", { min: 2, max: 31, integer: true }],
  ];
  for (const [key, range] of numeric) {
    if (!fields.includes(key)) continue;
    const text = values[key].trim();
    if (!text) continue;
    const n = parseNumber(text, range);
    if (typeof n === "string") errors[key] = n;
    else source[key] = n;
  }
  if (Object.keys(errors).length > 0) return { input: null, errors };
  const input: StreamInput = { id, name, on_demand: !values.alwaysOn, source };
  if (values.idleTimeout) input.idle_timeout = values.idleTimeout;
  // Health thresholds: sent only when the switch changed (omitted, the API keeps what it
  // stored), and then with every other threshold as shown, so none is lost.
  if (initial === null) {
    if (!values.judgeHealth) input.health_rules = { enabled: false };
  } else if (values.judgeHealth !== initial.judgeHealth) {
    input.health_rules = { ...(initial.healthRules ?? {}), enabled: values.judgeHealth };
  }
  return { input, errors };
}

/** Maps an API error's `field` (`source.url`, `id`, ...) to a form field. */
export function fieldForApiError(field: string | null | undefined): FieldKey | "form" {
  if (!field) return "form";
  const key = field.replace(/^source\./, "").replace(/^streams\[\d+\]\./, "");
  switch (key) {
    case "name":
    case "id":
    case "url":
    case "username":
    case "password":
    case "fps":
    case "width":
    case "height":
    case "quality":
      return key;
    case "plugin":
    case "source":
      return "plugin";
    case "on_demand":
      return "alwaysOn";
    case "health_rules":
    case "health_rules.enabled":
      return "judgeHealth";
    default:
      return "form";
  }
}
