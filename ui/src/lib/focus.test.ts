import { describe, expect, it } from "vitest";
import { neighbours, snapshotFileName, snapshotUrl, streamLink } from "./focus";

describe("neighbours", () => {
  const order = [{ id: "a" }, { id: "b" }, { id: "c" }];
  it("goes through the grid's order, wrapping around", () => {
    expect(neighbours(order, "b")).toEqual({ previous: { id: "a" }, next: { id: "c" } });
    expect(neighbours(order, "a")).toEqual({ previous: { id: "c" }, next: { id: "b" } });
    expect(neighbours(order, "c")).toEqual({ previous: { id: "b" }, next: { id: "a" } });
  });
  it("has none for a single camera, or one not in the grid", () => {
    expect(neighbours([{ id: "a" }], "a")).toEqual({ previous: null, next: null });
    expect(neighbours(order, "zz")).toEqual({ previous: null, next: null });
  });
});

describe("links", () => {
  it("the snapshot URL and file name", () => {
    expect(snapshotUrl("front door")).toBe("/api/streams/front%20door/snapshot.jpg");
    expect(snapshotFileName("front/door", new Date(2026, 10, 30, 17, 4, 5))).toBe("front_door-2026-11-30T17-04-05.jpg");
  });
  it("the link is absolute and carries nothing of the page's query or fragment", () => {
    expect(streamLink({ origin: "https://gw:8443", pathname: "/" }, "front")).toBe("https://gw:8443/#/streams/front");
  });
});
