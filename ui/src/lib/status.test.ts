import { describe, expect, it } from "vitest";
import type { PlayerStatus } from "@/player/player";
import { countdown, displayStatus, outageReason, RETRY_SHOWN_MS, retryShown, stabilize, type DisplayStatus, type Outage } from "./status";

const base: PlayerStatus = {
  connection: "open",
  streamState: null,
  message: "",
  messageAt: 0,
  retryAt: null,
  hello: null,
  hasPicture: false,
  path: null,
  health: null,
  healthSince: "",
  cause: null,
  poster: false,
};

describe("displayStatus", () => {
  it("uses the API state before a connection exists", () => {
    expect(displayStatus("live", "", null).kind).toBe("live");
    expect(displayStatus("failed", "401 Unauthorized", null)).toEqual({ kind: "offline", label: "Offline", reason: "401 Unauthorized" });
    expect(displayStatus("retrying", "", null).kind).toBe("retrying");
  });

  it("prefers the live connection's stream state", () => {
    expect(displayStatus("live", "", { ...base, streamState: "retrying", message: "Connection refused" })).toEqual({
      kind: "retrying",
      label: "Retrying",
      reason: "Connection refused",
    });
  });

  it("shows a countdown while reconnecting", () => {
    const s = displayStatus("live", "", { ...base, connection: "reconnecting", message: "connection lost", retryAt: 10_500 }, 7_000);
    expect(s.kind).toBe("retrying");
    expect(s.reason).toBe("connection lost — retrying in 4s");
  });

  it("reports removed and unauthorized connections", () => {
    expect(displayStatus("live", "", { ...base, connection: "removed" }).kind).toBe("removed");
    expect(displayStatus("live", "", { ...base, connection: "unauthorized" }).kind).toBe("locked");
  });
});

describe("countdown", () => {
  const msg = "Connection refused; retrying in 10.9s (attempt 3)";
  it("counts the gateway's retry delay down from when the message arrived", () => {
    expect(countdown(msg, 1_000, 1_000)).toBe("Connection refused; retrying in 11s (attempt 3)");
    expect(countdown(msg, 1_000, 4_000)).toBe("Connection refused; retrying in 8s (attempt 3)");
    expect(countdown(msg, 1_000, 11_500)).toBe("Connection refused; retrying in 1s (attempt 3)");
    expect(countdown(msg, 1_000, 12_000)).toBe("Connection refused; retrying now (attempt 3)");
  });

  it("leaves other messages alone", () => {
    expect(countdown("lost the camera", 0, 5_000)).toBe("lost the camera");
  });

  it("counts down in displayStatus while the source retries", () => {
    const player = { ...base, streamState: "retrying" as const, message: msg, messageAt: 1_000 };
    expect(displayStatus("live", "", player, 6_000).reason).toBe("Connection refused; retrying in 6s (attempt 3)");
  });
});

describe("outageReason", () => {
  it("drops the schedule from a reason", () => {
    expect(outageReason("Connection refused; retrying in 10.9s (attempt 3)")).toBe("Connection refused");
    expect(outageReason("connection lost — retrying in 4s")).toBe("connection lost");
    expect(outageReason("connection lost — retrying now")).toBe("connection lost");
    expect(outageReason("lost the camera")).toBe("lost the camera");
  });
});

describe("stabilize", () => {
  const retrying: DisplayStatus = { kind: "retrying", label: "Retrying", reason: "Connection refused; retrying in 1s (attempt 1)" };
  const connecting: DisplayStatus = { kind: "connecting", label: "Connecting", reason: "" };
  const live: DisplayStatus = { kind: "live", label: "Live", reason: "" };

  /** Feeds states through stabilize as a tile would, returning what was shown. */
  const run = (states: DisplayStatus[]) => {
    let outage: Outage | null = null;
    return states.map((s) => {
      const r = stabilize(outage, s);
      outage = r.outage;
      return r.shown;
    });
  };

  it("keeps one retrying state through every attempt of an outage", () => {
    const shown = run([connecting, retrying, connecting, retrying, connecting, retrying]);
    expect(shown.map((s) => s.kind)).toEqual(["connecting", "retrying", "retrying", "retrying", "retrying", "retrying"]);
    expect(shown[2]).toEqual({ kind: "retrying", label: "Retrying", reason: "Connection refused — trying again now" });
  });

  it("ends the outage when the stream is live (a later connect is a new start)", () => {
    const shown = run([retrying, connecting, live, connecting]);
    expect(shown.map((s) => s.kind)).toEqual(["retrying", "retrying", "live", "connecting"]);
  });

  it("ends the outage on any other state", () => {
    const offline: DisplayStatus = { kind: "offline", label: "Offline", reason: "failed" };
    expect(run([retrying, offline, connecting]).map((s) => s.kind)).toEqual(["retrying", "offline", "connecting"]);
  });

  it("keeps a lost gateway connection's label", () => {
    const reconnecting: DisplayStatus = { kind: "retrying", label: "Reconnecting", reason: "connection lost — retrying in 2s" };
    expect(run([reconnecting, connecting])[1]).toEqual({ kind: "retrying", label: "Reconnecting", reason: "connection lost — trying again now" });
  });
});

describe("outage cause", () => {
  it("headlines a source's outage with its cause, from the socket or else the API", () => {
    const player = { ...base, streamState: "retrying" as const, message: "401 Unauthorized; retrying in 2s", cause: "auth_failed" as const };
    expect(displayStatus("live", "", player).headline).toBe("Camera refused the sign-in");
    expect(displayStatus("failed", "404", null, 0, "not_found")).toMatchObject({ kind: "offline", headline: "Stream not found on the camera" });
    expect(displayStatus("retrying", "", null, 0, "unreachable").headline).toBe("Camera unreachable");
    expect(displayStatus("retrying", "", null, 0, "stalled").headline).toBe("Camera stopped sending");
    expect(displayStatus("retrying", "", null, 0, "error").headline).toBe("Camera error");
    // Live: no headline, whatever the API said a moment ago.
    expect(displayStatus("live", "", null, 0, "unreachable").headline).toBeUndefined();
    // The socket's state wins over the API's cause.
    expect(displayStatus("retrying", "", { ...base, streamState: "retrying" }, 0, "unreachable").headline).toBeUndefined();
  });

  it("keeps the headline through the attempts of one outage", () => {
    let outage: Outage | null = null;
    const feed = (s: DisplayStatus) => {
      const r = stabilize(outage, s);
      outage = r.outage;
      return r.shown;
    };
    feed({ kind: "retrying", label: "Retrying", reason: "401; retrying in 2s", headline: "Camera refused the sign-in" });
    expect(feed({ kind: "connecting", label: "Connecting", reason: "" })).toMatchObject({ kind: "retrying", headline: "Camera refused the sign-in" });
    expect(feed({ kind: "retrying", label: "Retrying", reason: "401; retrying in 4s" }).headline).toBe("Camera refused the sign-in");
    expect(feed({ kind: "live", label: "Live", reason: "" }).headline).toBeUndefined();
  });
});

describe("retryShown", () => {
  const retrying: DisplayStatus = { kind: "retrying", label: "Retrying", reason: "refused", headline: "Camera unreachable" };
  it("shows the new attempt while the state still reads as the outage, for a few seconds", () => {
    expect(retryShown(retrying, 1_000, 1_500)).toEqual({ kind: "connecting", label: "Connecting", reason: "retrying now" });
    expect(retryShown({ kind: "offline", label: "Offline", reason: "" }, 1_000, 1_500)?.kind).toBe("connecting");
    expect(retryShown(retrying, 1_000, 1_000 + RETRY_SHOWN_MS)).toBeNull();
  });
  it("lets the real state through once it moved on, and leaves a lost gateway connection alone", () => {
    expect(retryShown({ kind: "connecting", label: "Connecting", reason: "" }, 1_000, 1_500)).toBeNull();
    expect(retryShown({ kind: "live", label: "Live", reason: "" }, 1_000, 1_500)).toBeNull();
    expect(retryShown({ kind: "retrying", label: "Reconnecting", reason: "" }, 1_000, 1_500)).toBeNull();
    expect(retryShown(retrying, null, 1_500)).toBeNull();
  });
});
