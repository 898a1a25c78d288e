import { describe, expect, it } from "vitest";
import type { Stream } from "@/lib/api";
import { buildInput, emptyValues, fieldForApiError, valuesFromStream } from "./streamForm";

describe("stream form", () => {
  it("builds a camera body with only the fields that were filled", () => {
    const v = { ...emptyValues("ffmpeg-mjpeg"), name: "Front door", id: "front-door", url: "rtsp://10.0.0.5/s1", fps: "10" };
    expect(buildInput(v)).toEqual({
      input: { id: "front-door", name: "Front door", on_demand: true, source: { plugin: "ffmpeg-mjpeg", url: "rtsp://10.0.0.5/s1", fps: 10 } },
      errors: {},
    });
  });

  it("adds a passthrough camera by default, without the transcoding fields", () => {
    const v = { ...emptyValues(), name: "Gate", id: "gate", url: "rtsp://10.0.0.6/s1", fps: "10", width: "640" };
    expect(buildInput(v).input).toEqual({ id: "gate", name: "Gate", on_demand: true, source: { plugin: "rtsp", url: "rtsp://10.0.0.6/s1" } });
  });

  it("builds a testsrc body without camera fields", () => {
    const v = { ...emptyValues("testsrc"), name: "P", id: "p", url: "ignored", width: "320", height: "180", fps: "10", alwaysOn: true };
    expect(buildInput(v).input).toEqual({
      id: "p",
      name: "P",
      on_demand: false,
      source: { plugin: "testsrc", width: 320, height: 180, fps: 10 },
    });
  });

  it("reports bad values next to their fields", () => {
    const v = { ...emptyValues("ffmpeg-mjpeg"), name: "", id: "Bad Id", url: "file:///etc/passwd", width: "12.5", fps: "abc" };
    const { input, errors } = buildInput(v);
    expect(input).toBeNull();
    expect(Object.keys(errors).sort()).toEqual(["fps", "id", "name", "url", "width"]);
  });

  it("never prefills a password and omits an empty one on edit", () => {
    const stream: Stream = {
      id: "cam",
      name: "Cam",
      on_demand: false,
      state: "live",
      source: { plugin: "ffmpeg-mjpeg", url: "rtsp://cam/s", username: "admin", fps: 5 },
    };
    const v = valuesFromStream(stream);
    expect(v.password).toBe("");
    expect(v.alwaysOn).toBe(true);
    const { input } = buildInput(v);
    expect(input?.source).toEqual({ plugin: "ffmpeg-mjpeg", url: "rtsp://cam/s", username: "admin", fps: 5 });
  });

  it("does not send back a pre-filled (masked) URL on edit, and refuses a mask typed into a new one", () => {
    const stream: Stream = {
      id: "cam",
      name: "Cam",
      on_demand: true,
      state: "stopped",
      source: { plugin: "ffmpeg-mjpeg", url: "rtsp://admin:***@10.0.0.5/s1" },
    };
    const initial = valuesFromStream(stream);
    // Renamed only: no url in the body, the API keeps the stored one with its password.
    const renamed = buildInput({ ...initial, name: "Front door" }, initial);
    expect(renamed.errors).toEqual({});
    expect(renamed.input?.source).toEqual({ plugin: "ffmpeg-mjpeg" });
    expect(renamed.input?.name).toBe("Front door");
    // A changed URL is sent; one that still carries the mask as its password is refused.
    const moved = buildInput({ ...initial, url: "rtsp://admin:***@10.0.0.6/s1" }, initial);
    expect(moved.input).toBeNull();
    expect(moved.errors.url).toMatch(/password/);
    const retyped = buildInput({ ...initial, url: "rtsp://admin:n3w@10.0.0.6/s1" }, initial);
    expect(retyped.input?.source.url).toBe("rtsp://admin:n3w@10.0.0.6/s1");
    // Creating: the URL is always sent (and a mask is refused there too).
    expect(buildInput({ ...initial, url: "rtsp://admin:***@10.0.0.5/s1" }).input).toBeNull();
  });

  it("sends back an unchanged URL that shows no masked password (the API would drop an omitted one)", () => {
    // Created by this form: the password lives in its own field, the URL has none.
    const stream: Stream = {
      id: "cam",
      name: "Cam",
      on_demand: true,
      state: "stopped",
      source: { plugin: "ffmpeg-mjpeg", url: "rtsp://10.0.0.5:554/s1", username: "admin" },
    };
    const initial = valuesFromStream(stream);
    const renamed = buildInput({ ...initial, name: "Front door" }, initial);
    expect(renamed.errors).toEqual({});
    expect(renamed.input?.source).toEqual({ plugin: "ffmpeg-mjpeg", url: "rtsp://10.0.0.5:554/s1", username: "admin" });
  });

  it("maps API error fields to form fields", () => {
    expect(fieldForApiError("source.url")).toBe("url");
    expect(fieldForApiError("id")).toBe("id");
    expect(fieldForApiError("source.fps")).toBe("fps");
    expect(fieldForApiError("source.plugin")).toBe("plugin");
    expect(fieldForApiError("on_demand")).toBe("alwaysOn");
    expect(fieldForApiError("source.transport")).toBe("form");
    expect(fieldForApiError(null)).toBe("form");
  });

  it("sends back what the form has no field for, so an edit keeps it", () => {
    const stream: Stream = {
      id: "cam",
      name: "Cam",
      on_demand: true,
      idle_timeout: "1m 30s",
      state: "live",
      source: { plugin: "ffmpeg-mjpeg", url: "rtsp://cam/s", transport: "udp", height: 240, passthrough: "never", fps: 5 },
    };
    const initial = valuesFromStream(stream);
    const { input } = buildInput({ ...initial, name: "Renamed" }, initial);
    expect(input).toEqual({
      id: "cam",
      name: "Renamed",
      on_demand: true,
      idle_timeout: "1m 30s",
      source: { plugin: "ffmpeg-mjpeg", url: "rtsp://cam/s", transport: "udp", height: 240, passthrough: "never", fps: 5 },
    });
    // Another plugin keeps the filled-in fields it has, not the first one's other options.
    const other = buildInput({ ...initial, plugin: "testsrc" }, initial).input;
    expect(other?.source).toEqual({ plugin: "testsrc", fps: 5, height: 240 });
  });
});

describe("picture health switch", () => {
  const stream: Stream = {
    id: "dock",
    name: "Dock",
    on_demand: true,
    state: "live",
    source: { plugin: "rtsp", url: "rtsp://cam/s" },
    health_rules: { enabled: true, frozen_after: "30s", dark_after: "10s", dark_luma: 12, late_after: "3s", min_fps_ratio: 0.5 },
  };

  it("sends nothing about health when the switch is untouched, so stored thresholds stay", () => {
    const initial = valuesFromStream(stream);
    expect(initial.judgeHealth).toBe(true);
    const { input } = buildInput({ ...initial, name: "Loading dock" }, initial);
    expect(input).not.toHaveProperty("health_rules");
  });

  it("turning it off keeps every other threshold as shown", () => {
    const initial = valuesFromStream(stream);
    const { input } = buildInput({ ...initial, judgeHealth: false }, initial);
    expect(input?.health_rules).toEqual({ enabled: false, frozen_after: "30s", dark_after: "10s", dark_luma: 12, late_after: "3s", min_fps_ratio: 0.5 });
  });

  it("a new camera sends health only when it is switched off", () => {
    const v = { ...emptyValues("rtsp"), name: "Cellar", id: "cellar", url: "rtsp://10.0.0.7/s1" };
    expect(buildInput(v).input).not.toHaveProperty("health_rules");
    expect(buildInput({ ...v, judgeHealth: false }).input?.health_rules).toEqual({ enabled: false });
    expect(fieldForApiError("health_rules.enabled")).toBe("judgeHealth");
  });

  it("a gateway that shows no thresholds gets the switch on, and off sends just that", () => {
    const older = { ...stream, health_rules: undefined };
    const initial = valuesFromStream(older);
    expect(initial.judgeHealth).toBe(true);
    expect(buildInput({ ...initial, judgeHealth: false }, initial).input?.health_rules).toEqual({ enabled: false });
  });
});
