import { describe, expect, it } from "vitest";
import { ApiError, type Stream } from "./api";
import { buildGroupInput, checklist, groupErrorField, move } from "./groupForm";

const stream = (id: string, name = id.toUpperCase()) => ({ id, name, on_demand: true, source: { plugin: "testsrc" }, state: "stopped" }) as Stream;
const streams = [stream("a"), stream("b"), stream("c")];

describe("checklist", () => {
  it("lists the group's cameras first in its order, then the others", () => {
    expect(checklist(streams, { id: "g", name: "G", streams: ["c", "a"] })).toEqual([
      { id: "c", name: "C", checked: true },
      { id: "a", name: "A", checked: true },
      { id: "b", name: "B", checked: false },
    ]);
    expect(checklist(streams, null).map((i) => i.checked)).toEqual([false, false, false]);
  });

  it("keeps an id the list does not have, named by its id", () => {
    expect(checklist([], { id: "g", name: "G", streams: ["x"] })).toEqual([{ id: "x", name: "x", checked: true }]);
  });
});

describe("move", () => {
  it("moves an item up or down, within the list", () => {
    expect(move([1, 2, 3], 2, -1)).toEqual([1, 3, 2]);
    expect(move([1, 2, 3], 0, 1)).toEqual([2, 1, 3]);
    expect(move([1, 2, 3], 0, -1)).toEqual([1, 2, 3]);
    expect(move([1, 2, 3], 2, 1)).toEqual([1, 2, 3]);
  });
});

describe("buildGroupInput", () => {
  const items = checklist(streams, { id: "g", name: "G", streams: ["b", "a"] });
  it("sends the checked cameras in the list's order", () => {
    expect(buildGroupInput(" lobby ", " Lobby ", items)).toEqual({ id: "lobby", input: { name: "Lobby", streams: ["b", "a"] }, errors: {} });
  });

  it("says what is missing, next to each field", () => {
    const { input, errors } = buildGroupInput("Bad Id", "", items.map((i) => ({ ...i, checked: false })));
    expect(input).toBeNull();
    expect(Object.keys(errors).sort()).toEqual(["id", "name", "streams"]);
    expect(buildGroupInput("x", "n".repeat(65), items).errors.name).toMatch(/64/);
    expect(buildGroupInput("lobby", "Lobby", items, ["lobby"]).errors.id).toMatch(/exists/);
  });
});

describe("groupErrorField", () => {
  it("puts an API error next to the field it names", () => {
    expect(groupErrorField(new ApiError(400, "bad", "unknown stream", "streams[1]"), false)).toBe("streams");
    expect(groupErrorField(new ApiError(400, "bad", "too long", "name"), true)).toBe("name");
    expect(groupErrorField(new ApiError(409, "conflict", "exists"), true)).toBe("id");
    expect(groupErrorField(new ApiError(400, "bad", "the name is too long"), false)).toBe("name");
    expect(groupErrorField(new ApiError(403, "forbidden", "admins only"), false)).toBe("form");
  });
});
