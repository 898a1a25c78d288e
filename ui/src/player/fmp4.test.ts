// The fMP4 muxer's output, box by box and byte by byte (ISO/IEC 14496-12 layouts). Whether
// a real MSE accepts it is checked in Chromium by ui/e2e/passthrough.mjs.
import { describe, expect, it } from "vitest";
import {
  Fmp4Error,
  MOOF_SIZE,
  SAMPLE_FLAGS_DELTA,
  SAMPLE_FLAGS_KEY,
  TIMESCALE,
  initSegment,
  mediaFragment,
  mp4MimeType,
  sampleEntryFor,
} from "./fmp4";

interface ParsedBox {
  type: string;
  start: number;
  size: number;
  /** The bytes after the 8-byte header. */
  body: Uint8Array;
}

/** Splits `bytes` into boxes; fails the test if sizes do not tile the buffer exactly. */
function boxes(bytes: Uint8Array, base = 0): ParsedBox[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ParsedBox[] = [];
  let at = 0;
  while (at < bytes.length) {
    expect(bytes.length - at).toBeGreaterThanOrEqual(8);
    const size = view.getUint32(at);
    expect(size).toBeGreaterThanOrEqual(8);
    expect(at + size).toBeLessThanOrEqual(bytes.length);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    out.push({ type, start: base + at, size, body: bytes.subarray(at + 8, at + size) });
    at += size;
  }
  expect(at).toBe(bytes.length);
  return out;
}

function only(list: ParsedBox[], type: string): ParsedBox {
  const found = list.filter((b) => b.type === type);
  expect(found.map((b) => b.type)).toEqual([type]);
  return found[0] as ParsedBox;
}

const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at);
const u16 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(at);
const ascii = (b: Uint8Array, at: number, n: number) => String.fromCharCode(...b.subarray(at, at + n));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// A real avcC (constrained baseline 320x180 from x264): version 1, profile 66, level 31.
const AVCC = Uint8Array.from([
  0x01, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0x00, 0x09, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x05, 0x07, 0xe8, 0x40, 0x01, 0x00, 0x04, 0x68,
  0xce, 0x3c, 0x80,
]);

describe("sampleEntryFor", () => {
  it("maps codec strings to their sample entry and configuration box", () => {
    expect(sampleEntryFor("avc1.64001f")).toEqual({ entry: "avc1", configBox: "avcC" });
    expect(sampleEntryFor("avc3.42e01e")).toEqual({ entry: "avc3", configBox: "avcC" });
    expect(sampleEntryFor("hvc1.1.6.L93.B0")).toEqual({ entry: "hvc1", configBox: "hvcC" });
    expect(sampleEntryFor("hev1.1.6.L93.B0")).toEqual({ entry: "hev1", configBox: "hvcC" });
    expect(() => sampleEntryFor("vp09.00.10.08")).toThrow(Fmp4Error);
    expect(() => sampleEntryFor("avc1x")).toThrow(Fmp4Error);
    expect(mp4MimeType("avc1.64001f")).toBe('video/mp4; codecs="avc1.64001f"');
  });
});

describe("initSegment", () => {
  const init = initSegment({ codec: "avc1.42c01f", width: 320, height: 180, description: AVCC });

  it("is ftyp then moov, and every size adds up", () => {
    const top = boxes(init);
    expect(top.map((b) => b.type)).toEqual(["ftyp", "moov"]);
    const ftyp = top[0] as ParsedBox;
    expect(ascii(ftyp.body, 0, 4)).toBe("isom");
    expect(u32(ftyp.body, 4)).toBe(0x200);
    expect(ascii(ftyp.body, 8, 16)).toBe("isomiso6mp41avc1");
  });

  it("has the box tree MSE needs: one video track, fragmented (mvex/trex), empty sample tables", () => {
    const moov = only(boxes(init), "moov");
    const moovKids = boxes(moov.body);
    expect(moovKids.map((b) => b.type)).toEqual(["mvhd", "trak", "mvex"]);
    const trak = boxes(only(moovKids, "trak").body);
    expect(trak.map((b) => b.type)).toEqual(["tkhd", "mdia"]);
    const mdia = boxes(only(trak, "mdia").body);
    expect(mdia.map((b) => b.type)).toEqual(["mdhd", "hdlr", "minf"]);
    const minf = boxes(only(mdia, "minf").body);
    expect(minf.map((b) => b.type)).toEqual(["vmhd", "dinf", "stbl"]);
    const stbl = boxes(only(minf, "stbl").body);
    expect(stbl.map((b) => b.type)).toEqual(["stsd", "stts", "stsc", "stsz", "stco"]);
    for (const t of ["stts", "stsc", "stco"]) expect(hex(only(stbl, t).body)).toBe("0000000000000000");
    expect(hex(only(stbl, "stsz").body)).toBe("000000000000000000000000");
    // dref: one "url " entry with flags 1 (self-contained).
    const dref = only(boxes(only(minf, "dinf").body), "dref");
    expect(hex(dref.body)).toBe("00000000" + "00000001" + "0000000c75726c2000000001");
    // vmhd: version 0, flags 1, graphics mode and colour 0.
    expect(hex(only(minf, "vmhd").body)).toBe("00000001" + "0000000000000000");
    // trex: track 1, sample description 1, no defaults.
    const trex = only(boxes(only(moovKids, "mvex").body), "trex");
    expect(hex(trex.body)).toBe("00000000" + "00000001" + "00000001" + "00000000".repeat(3));
  });

  it("says µs timescale, unknown duration, track 1 of the coded size", () => {
    const moovKids = boxes(only(boxes(init), "moov").body);
    const mvhd = only(moovKids, "mvhd").body;
    expect(mvhd.length).toBe(100);
    expect(u32(mvhd, 0)).toBe(0); // version 0, flags 0
    expect(u32(mvhd, 12)).toBe(TIMESCALE);
    expect(u32(mvhd, 16)).toBe(0); // duration: live
    expect(u32(mvhd, 20)).toBe(0x0001_0000); // rate 1.0
    expect(u16(mvhd, 24)).toBe(0x0100); // volume 1.0
    expect(u32(mvhd, 36)).toBe(0x0001_0000); // matrix a
    expect(u32(mvhd, 68)).toBe(0x4000_0000); // matrix w
    expect(u32(mvhd, 96)).toBe(2); // next_track_ID

    const trak = boxes(only(moovKids, "trak").body);
    const tkhd = only(trak, "tkhd").body;
    expect(tkhd.length).toBe(84);
    expect(u32(tkhd, 0)).toBe(0x0000_0003); // enabled, in movie
    expect(u32(tkhd, 12)).toBe(1); // track_ID
    expect(u32(tkhd, 76)).toBe(320 << 16);
    expect(u32(tkhd, 80)).toBe(180 << 16);

    const mdia = boxes(only(trak, "mdia").body);
    const mdhd = only(mdia, "mdhd").body;
    expect(u32(mdhd, 12)).toBe(TIMESCALE);
    expect(u16(mdhd, 20)).toBe(0x55c4); // "und"
    const hdlr = only(mdia, "hdlr").body;
    expect(ascii(hdlr, 8, 4)).toBe("vide");
    expect(ascii(hdlr, 24, hdlr.length - 24)).toBe("Camgate\0");
  });

  it("carries the avcC record untouched in an avc1 visual sample entry", () => {
    const moovKids = boxes(only(boxes(init), "moov").body);
    const stbl = boxes(
      only(boxes(only(boxes(only(boxes(only(moovKids, "trak").body), "mdia").body), "minf").body), "stbl").body,
    );
    const stsd = only(stbl, "stsd").body;
    expect(u32(stsd, 0)).toBe(0); // version, flags
    expect(u32(stsd, 4)).toBe(1); // entry_count
    const entry = only(boxes(stsd.subarray(8)), "avc1").body;
    expect(hex(entry.subarray(0, 8))).toBe("000000000000" + "0001"); // reserved, data_reference_index 1
    expect(hex(entry.subarray(8, 24))).toBe("00".repeat(16)); // pre_defined, reserved
    expect(u16(entry, 24)).toBe(320);
    expect(u16(entry, 26)).toBe(180);
    expect(u32(entry, 28)).toBe(0x0048_0000);
    expect(u32(entry, 32)).toBe(0x0048_0000);
    expect(u32(entry, 36)).toBe(0);
    expect(u16(entry, 40)).toBe(1); // frame_count
    expect(hex(entry.subarray(42, 74))).toBe("00".repeat(32)); // compressorname
    expect(u16(entry, 74)).toBe(0x18); // depth
    expect(u16(entry, 76)).toBe(0xffff); // pre_defined -1
    const avcC = only(boxes(entry.subarray(78)), "avcC");
    expect(hex(avcC.body)).toBe(hex(AVCC));
  });

  it("uses hvc1/hvcC for H.265", () => {
    const hvcc = Uint8Array.from([1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d]);
    const seg = initSegment({ codec: "hvc1.1.6.L93.B0", width: 1280, height: 720, description: hvcc });
    const ftyp = only(boxes(seg), "ftyp");
    expect(ascii(ftyp.body, 20, 4)).toBe("hvc1");
    let at = hex(seg).indexOf(hex(new TextEncoder().encode("hvcC")));
    expect(at).toBeGreaterThan(0);
    at /= 2;
    expect(u32(seg, at - 4)).toBe(8 + hvcc.length);
    expect(hex(seg.subarray(at + 4, at + 4 + hvcc.length))).toBe(hex(hvcc));
    expect(hex(seg).includes(hex(new TextEncoder().encode("hvc1")))).toBe(true);
  });

  it("refuses what it cannot describe", () => {
    expect(() => initSegment({ codec: "avc1.42c01f", width: 0, height: 180, description: AVCC })).toThrow(Fmp4Error);
    expect(() => initSegment({ codec: "avc1.42c01f", width: 70000, height: 180, description: AVCC })).toThrow(Fmp4Error);
    expect(() => initSegment({ codec: "avc1.42c01f", width: 320, height: 180, description: new Uint8Array() })).toThrow(Fmp4Error);
    expect(() => initSegment({ codec: "av01.0.04M.08", width: 320, height: 180, description: AVCC })).toThrow(Fmp4Error);
  });
});

describe("mediaFragment", () => {
  const au = Uint8Array.from([0, 0, 0, 3, 0x65, 0x88, 0x84]); // one IDR NAL unit, AVCC-framed

  it("is exactly moof(mfhd, traf(tfhd, tfdt v1, trun)) then mdat with the access unit", () => {
    const frag = mediaFragment({ sequence: 7, decodeTime: 0x1_2345_6789, duration: 40_000, keyframe: true, data: au });
    expect(MOOF_SIZE).toBe(100);
    expect(hex(frag)).toBe(
      [
        "00000064", "6d6f6f66", // moof, 100 bytes
        "00000010", "6d666864", "00000000", "00000007", // mfhd: sequence 7
        "0000004c", "74726166", // traf
        "00000010", "74666864", "00020000", "00000001", // tfhd: default-base-is-moof, track 1
        "00000014", "74666474", "01000000", "00000001", "23456789", // tfdt v1: 64-bit decode time
        "00000020", "7472756e", "00000701", "00000001", // trun: offset, duration, size, flags; 1 sample
        "0000006c", // data_offset = 100 + 8
        "00009c40", "00000007", "02000000", // 40 ms, 7 bytes, sync sample
        "0000000f", "6d646174", "00000003658884", // mdat
      ].join(""),
    );
  });

  it("marks delta frames non-sync, and its data offset lands on the sample", () => {
    const data = new Uint8Array(1000).map((_, i) => i & 0xff);
    const frag = mediaFragment({ sequence: 8, decodeTime: 40_000, duration: 33_333, keyframe: false, data });
    const [moof, mdat] = boxes(frag);
    expect(moof?.type).toBe("moof");
    expect(mdat?.type).toBe("mdat");
    const trun = only(boxes(only(boxes(moof?.body ?? new Uint8Array()), "traf").body), "trun").body;
    expect(u32(trun, 20)).toBe(SAMPLE_FLAGS_DELTA);
    expect(SAMPLE_FLAGS_KEY).toBe(0x0200_0000);
    const offset = u32(trun, 8);
    expect(hex(frag.subarray(offset, offset + data.length))).toBe(hex(data));
    expect(offset + data.length).toBe(frag.length);
  });

  it("refuses bad times and durations", () => {
    expect(() => mediaFragment({ sequence: 1, decodeTime: -1, duration: 1, keyframe: true, data: au })).toThrow(Fmp4Error);
    expect(() => mediaFragment({ sequence: 1, decodeTime: 0, duration: 0, keyframe: true, data: au })).toThrow(Fmp4Error);
    expect(() => mediaFragment({ sequence: 1, decodeTime: 0.5, duration: 1, keyframe: true, data: au })).toThrow(Fmp4Error);
    expect(() => mediaFragment({ sequence: 1, decodeTime: 0, duration: 2 ** 32, keyframe: true, data: au })).toThrow(Fmp4Error);
  });
});
