import { describe, expect, it } from "vitest";
import { TAG_END, buildTaggedJpeg, parseFrameTag } from "./app11";

describe("parseFrameTag", () => {
  const tag = { seq: 42, captureUs: 1_700_000_000_123_456, publishUs: 1_700_000_000_125_000 };

  it("reads seq, capture and publish time from a tagged JPEG", () => {
    const jpeg = buildTaggedJpeg(tag, new Uint8Array([0xff, 0xdb, 0x00, 0x02, 0xff, 0xd9]));
    expect(parseFrameTag(jpeg)).toEqual(tag);
    expect(parseFrameTag(jpeg.buffer)).toEqual(tag);
  });

  it("matches the gateway's byte layout exactly", () => {
    // Bytes as the gateway's tagged_copy writes them (gateway/src/hub/tag.rs).
    const bytes = [
      0xff, 0xd8, 0xff, 0xeb, 0x00, 0x1f, 0x43, 0x41, 0x4d, 0x47, 0x00,
      0, 0, 0, 0, 0, 0, 0, 7, // seq 7
      0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x40, 0x00, // 1_700_000_000_000_000
      0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x41, 0xf4, // +500
      0xff, 0xd9,
    ];
    expect(parseFrameTag(new Uint8Array(bytes))).toEqual({
      seq: 7,
      captureUs: 1_700_000_000_000_000,
      publishUs: 1_700_000_000_000_500,
    });
  });

  it("handles large sequence numbers above 2^32", () => {
    const big = { seq: 2 ** 40 + 3, captureUs: 2 ** 52, publishUs: 2 ** 52 + 1 };
    expect(parseFrameTag(buildTaggedJpeg(big))).toEqual(big);
  });

  it("reads from a view into a larger buffer without copying", () => {
    const jpeg = buildTaggedJpeg(tag);
    const outer = new Uint8Array(jpeg.length + 10);
    outer.set(jpeg, 5);
    expect(parseFrameTag(outer.subarray(5, 5 + jpeg.length))).toEqual(tag);
  });

  it("returns null for an untagged JPEG", () => {
    const plain = new Uint8Array(64);
    plain.set([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]);
    expect(parseFrameTag(plain)).toBeNull();
  });

  it("returns null for another APP11 segment", () => {
    const jpeg = buildTaggedJpeg(tag);
    jpeg[6] = 0x58; // "XAMG"
    expect(parseFrameTag(jpeg)).toBeNull();
  });

  it("returns null for a truncated tag", () => {
    const jpeg = buildTaggedJpeg(tag);
    for (const length of [0, 1, 2, 4, 11, TAG_END - 1]) {
      expect(parseFrameTag(jpeg.slice(0, length))).toBeNull();
    }
    expect(parseFrameTag(jpeg.slice(0, TAG_END))).toEqual(tag);
  });

  it("returns null for a declared segment length too short to hold the tag", () => {
    const jpeg = buildTaggedJpeg(tag);
    jpeg[5] = 10;
    expect(parseFrameTag(jpeg)).toBeNull();
  });

  it("returns null for data that is not a JPEG", () => {
    expect(parseFrameTag(new TextEncoder().encode("not a jpeg at all, definitely not one"))).toBeNull();
  });
});
