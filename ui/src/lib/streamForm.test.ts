import { describe, expect, it } from "vitest";
import type { Stream } from "@/lib/api";
import { buildInput, emptyValues, fieldForApiError, valuesFromStream } from "./streamForm";

describe("stream form", () => {
  it("builds a camera body with only the fields that were filled", () => {
    const v = { ...emptyValues(), name: "Front door", id: "front-door", url: "rtsp://10.0.0.5/s1", fps: "10" };
    expect(buildInput(v)).toEqual({
      input: { id: "front-door", name: "Front door", on_demand: true, source: { plugin: "ffmpeg-mjpeg", url: "rtsp://10.0.0.5/s1", fps: 10 } },
      errors: {},
    });
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
    const v = { ...emptyValues(), name: "", id: "Bad Id", url: "file:///etc/passwd", width: "12.5", fps: "abc" };
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

  it("maps API error fields to form fields", () => {
    expect(fieldForApiError("source.url")).toBe("url");
    expect(fieldForApiError("id")).toBe("id");
    expect(fieldForApiError("source.fps")).toBe("fps");
    expect(fieldForApiError("source.plugin")).toBe("plugin");
    expect(fieldForApiError("on_demand")).toBe("alwaysOn");
    expect(fieldForApiError("source.transport")).toBe("form");
    expect(fieldForApiError(null)).toBe("form");
  });
});
