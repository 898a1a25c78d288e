import { describe, expect, it } from "vitest";
import type { PlayerStatus } from "@/player/player";
import { displayStatus } from "./status";

const base: PlayerStatus = {
  connection: "open",
  streamState: null,
  message: "",
  retryAt: null,
  hello: null,
  hasPicture: false,
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
