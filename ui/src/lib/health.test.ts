import { describe, expect, it } from "vitest";
import { displayHealth, sinceText } from "./health";

describe("displayHealth", () => {
  it("shows a badge only for frozen, dark and late", () => {
    expect(displayHealth("frozen", "2026-11-30T14:26:36Z", null)).toMatchObject({ health: "frozen", label: "Frozen", since: "2026-11-30T14:26:36Z" });
    expect(displayHealth("dark", null, null)).toMatchObject({ health: "dark", label: "Dark", since: "" });
    expect(displayHealth("late", undefined, null)).toMatchObject({ health: "late", label: "Late" });
    for (const quiet of ["ok", "unknown", null, undefined, "purple", "toString"]) {
      expect(displayHealth(quiet, "2026-11-30T14:26:36Z", null)).toBeNull();
    }
  });

  it("prefers the live connection's verdict over the polled API's, and tolerates its absence", () => {
    expect(displayHealth("ok", "", { health: "frozen", healthSince: "2026-11-30T14:00:00Z" })).toMatchObject({
      health: "frozen",
      since: "2026-11-30T14:00:00Z",
    });
    // The connection says ok: the API's older frozen is not shown.
    expect(displayHealth("frozen", "", { health: "ok", healthSince: "" })).toBeNull();
    // The connection has said nothing yet: the API's verdict.
    expect(displayHealth("dark", "2026-11-30T14:00:00Z", { health: null, healthSince: "" })).toMatchObject({ health: "dark", since: "2026-11-30T14:00:00Z" });
    expect(displayHealth(undefined, undefined, { health: null, healthSince: "" })).toBeNull();
  });

  it("every badge has a description for its accessible name", () => {
    for (const health of ["frozen", "dark", "late"]) {
      const info = displayHealth(health, "", null);
      expect(info?.description.length).toBeGreaterThan(info?.label.length ?? 0);
    }
  });
});

describe("sinceText", () => {
  it("formats a valid RFC 3339 time and nothing else", () => {
    expect(sinceText("2026-11-30T14:26:36.123Z", (d) => d.toISOString())).toBe("since 2026-11-30T14:26:36.123Z");
    expect(sinceText("", (d) => d.toISOString())).toBe("");
    expect(sinceText("yesterday", (d) => d.toISOString())).toBe("");
  });
});
