import { describe, expect, it } from "vitest";
import { groupHref, parseHash, streamHref } from "./useHashRoute";

describe("parseHash", () => {
  it("reads the wall, a group and a stream", () => {
    expect(parseHash("")).toEqual({ name: "grid" });
    expect(parseHash("#/")).toEqual({ name: "grid" });
    expect(parseHash("#/groups/lobby")).toEqual({ name: "group", id: "lobby" });
    expect(parseHash("#/streams/front/")).toEqual({ name: "stream", id: "front" });
  });

  it("ignores a query after the route (an unattended sign-in's token)", () => {
    expect(parseHash("#/groups/lobby?token=abc")).toEqual({ name: "group", id: "lobby" });
    expect(parseHash("#/streams/front?token=abc&x=1")).toEqual({ name: "stream", id: "front" });
    expect(parseHash("#token=abc")).toEqual({ name: "grid" });
    expect(parseHash("#/?token=abc")).toEqual({ name: "grid" });
  });

  it("round-trips the links it makes", () => {
    expect(parseHash(groupHref("a b"))).toEqual({ name: "group", id: "a b" });
    expect(parseHash(streamHref("x/y"))).toEqual({ name: "stream", id: "x/y" });
    expect(groupHref(null)).toBe("#/");
    expect(parseHash("#/groups/%E0%A4%A")).toEqual({ name: "grid" });
  });
});
