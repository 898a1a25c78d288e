import { describe, expect, it } from "vitest";
import { takeTokenFromHash } from "./useSession";

describe("takeTokenFromHash", () => {
  it("takes a bare #token=", () => {
    expect(takeTokenFromHash("#token=abc123")).toEqual({ token: "abc123", hash: "" });
  });

  it("takes it after a route, keeping the route and the other parameters", () => {
    expect(takeTokenFromHash("#/groups/lobby?token=abc")).toEqual({ token: "abc", hash: "#/groups/lobby" });
    expect(takeTokenFromHash("#/groups/lobby?layout=3x3&token=abc")).toEqual({ token: "abc", hash: "#/groups/lobby?layout=3x3" });
    expect(takeTokenFromHash("#/streams/front?token=abc&x=1")).toEqual({ token: "abc", hash: "#/streams/front?x=1" });
    expect(takeTokenFromHash("#a=1&token=abc")).toEqual({ token: "abc", hash: "#a=1" });
  });

  it("decodes a percent-encoded token and keeps a + as it is", () => {
    expect(takeTokenFromHash("#token=a%2Fb+c")).toEqual({ token: "a/b+c", hash: "" });
  });

  it("leaves a fragment without a token alone", () => {
    expect(takeTokenFromHash("#/streams/front")).toEqual({ token: null, hash: "#/streams/front" });
    expect(takeTokenFromHash("")).toEqual({ token: null, hash: "" });
    expect(takeTokenFromHash("#/streams/tokenizer")).toEqual({ token: null, hash: "#/streams/tokenizer" });
    expect(takeTokenFromHash("#/x?mytoken=1")).toEqual({ token: null, hash: "#/x?mytoken=1" });
  });
});
