/**
 * A minimal fragmented-MP4 muxer for Media Source Extensions: one video track, built in the
 * browser from the passthrough protocol's messages (`config` and video frames).
 *
 * - `initSegment(track)`: `ftyp` + `moov` (one `trak` whose sample entry is `avc1`/`avc3` or
 *   `hvc1`/`hev1` carrying the `config` message's avcC/hvcC record as is, and `mvex`/`trex`
 *   so that the samples come in fragments).
 * - `mediaFragment(sample)`: `moof` + `mdat` holding ONE sample (one access unit). The
 *   protocol's AVCC/HVCC access unit ([u32 BE length][NAL unit]...) is already the MP4 sample
 *   format: it is copied once into the fragment, not rewritten.
 *
 * Invariants: the timescale is 1 000 000 (µs, the protocol's unit); every box size is exact
 * (written from the bytes, never guessed); decode time = presentation time (no B-frames in a
 * live camera stream; `trun` carries no composition offsets); durations and times never
 * exceed their fields (checked, `Fmp4Error` otherwise). Pure: no browser needed.
 */

/** The media timescale: microseconds, like the protocol's capture times. */
export const TIMESCALE = 1_000_000;

/** The one track's id. */
const TRACK_ID = 1;

/** `sample_flags` of a sync sample (depends on no other: sample_depends_on = 2). */
export const SAMPLE_FLAGS_KEY = 0x0200_0000;
/** `sample_flags` of a non-sync sample (sample_depends_on = 1, sample_is_non_sync_sample). */
export const SAMPLE_FLAGS_DELTA = 0x0101_0000;

/** The decoder configuration of the track (the `config` message). */
export interface Fmp4Track {
  /** RFC 6381 codec string; its first four letters name the sample entry (avc1, avc3, hvc1, hev1). */
  codec: string;
  width: number;
  height: number;
  /** avcC (H.264) or hvcC (H.265) record. */
  description: Uint8Array;
}

/** One access unit to put in a fragment. */
export interface Fmp4Sample {
  /** `mfhd` sequence number (1, 2, 3… per SourceBuffer; wraps at 2^32). */
  sequence: number;
  /** Decode (= presentation) time, in TIMESCALE units from the start of the timeline. */
  decodeTime: number;
  /** In TIMESCALE units (> 0). */
  duration: number;
  keyframe: boolean;
  /** The access unit in AVCC/HVCC form. */
  data: Uint8Array;
}

export class Fmp4Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Fmp4Error";
  }
}

/** The MIME type MSE is asked about and given for a codec string. */
export function mp4MimeType(codec: string): string {
  return `video/mp4; codecs="${codec}"`;
}

const SAMPLE_ENTRIES: Record<string, string> = { avc1: "avcC", avc3: "avcC", hvc1: "hvcC", hev1: "hvcC" };

/** The sample entry and configuration box of a codec string, e.g. `avc1.64001f` → avc1/avcC. */
export function sampleEntryFor(codec: string): { entry: string; configBox: string } {
  const entry = codec.slice(0, 4);
  const configBox = SAMPLE_ENTRIES[entry];
  if (!configBox || (codec.length > 4 && codec[4] !== ".")) throw new Fmp4Error(`no MP4 sample entry for codec "${codec}"`);
  return { entry, configBox };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A byte sink with big-endian writers over a buffer of known size. */
class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  get offset(): number {
    return this.at;
  }

  u8(v: number): this {
    this.view.setUint8(this.at, v);
    this.at += 1;
    return this;
  }

  u16(v: number): this {
    this.view.setUint16(this.at, v);
    this.at += 2;
    return this;
  }

  u32(v: number): this {
    this.view.setUint32(this.at, v >>> 0);
    this.at += 4;
    return this;
  }

  u64(v: number): this {
    this.u32(Math.floor(v / 0x1_0000_0000));
    return this.u32(v % 0x1_0000_0000);
  }

  fourcc(s: string): this {
    for (let i = 0; i < 4; i++) this.u8(s.charCodeAt(i));
    return this;
  }

  zeros(n: number): this {
    this.at += n; // the buffer starts zeroed
    return this;
  }

  raw(data: Uint8Array): this {
    this.bytes.set(data, this.at);
    this.at += data.length;
    return this;
  }
}

/** A box: its type, and either its payload bytes or its children. */
type Box = { type: string; payload: Uint8Array } | { type: string; children: Box[] };

function boxSize(b: Box): number {
  return 8 + ("payload" in b ? b.payload.length : b.children.reduce((n, c) => n + boxSize(c), 0));
}

function writeBox(w: Writer, b: Box): void {
  w.u32(boxSize(b)).fourcc(b.type);
  if ("payload" in b) w.raw(b.payload);
  else for (const c of b.children) writeBox(w, c);
}

function serialize(boxes: Box[]): Uint8Array {
  const w = new Writer(boxes.reduce((n, b) => n + boxSize(b), 0));
  for (const b of boxes) writeBox(w, b);
  return w.bytes;
}

/** A leaf box whose payload `fill` writes into `size` bytes. */
function leaf(type: string, size: number, fill: (w: Writer) => void): Box {
  const w = new Writer(size);
  fill(w);
  if (w.offset !== size) throw new Fmp4Error(`${type}: wrote ${w.offset} bytes, expected ${size}`);
  return { type, payload: w.bytes };
}

/** A full box (version, flags) with `size` bytes after them (zeros unless `fill` writes them). */
function full(type: string, version: number, flags: number, size: number, fill: (w: Writer) => void = (w) => w.zeros(size)): Box {
  return leaf(type, 4 + size, (w) => {
    w.u32(((version & 0xff) << 24) | (flags & 0xff_ffff));
    fill(w);
  });
}

function container(type: string, ...children: Box[]): Box {
  return { type, children };
}

/** The unity matrix of mvhd/tkhd. */
function matrix(w: Writer): void {
  for (const v of [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]) w.u32(v);
}

function checkSize(track: Fmp4Track): void {
  for (const [name, v] of [
    ["width", track.width],
    ["height", track.height],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0 || v > 0xffff) throw new Fmp4Error(`${name} ${v} does not fit a sample entry`);
  }
  if (track.description.length === 0) throw new Fmp4Error("empty decoder configuration record");
}

/** `ftyp` + `moov` for one video track. */
export function initSegment(track: Fmp4Track): Uint8Array {
  const { entry, configBox } = sampleEntryFor(track.codec);
  checkSize(track);
  const { width, height } = track;

  const ftyp = leaf("ftyp", 4 + 4 + 4 * 4, (w) => {
    w.fourcc("isom").u32(0x200);
    for (const brand of ["isom", "iso6", "mp41", entry]) w.fourcc(brand);
  });
  const mvhd = full("mvhd", 0, 0, 96, (w) => {
    w.u32(0).u32(0).u32(TIMESCALE).u32(0); // creation, modification, timescale, duration (unknown: live)
    w.u32(0x0001_0000).u16(0x0100).zeros(2 + 8); // rate 1.0, volume 1.0, reserved
    matrix(w);
    w.zeros(24).u32(TRACK_ID + 1); // pre_defined, next_track_ID
  });
  const tkhd = full("tkhd", 0, 0x000003, 80, (w) => {
    // enabled | in movie
    w.u32(0).u32(0).u32(TRACK_ID).u32(0).u32(0); // creation, modification, track_ID, reserved, duration
    w.zeros(8).u16(0).u16(0).u16(0).u16(0); // reserved, layer, alternate_group, volume (video: 0), reserved
    matrix(w);
    w.u32(width * 0x1_0000).u32(height * 0x1_0000); // 16.16 fixed point
  });
  const mdhd = full("mdhd", 0, 0, 20, (w) => {
    w.u32(0).u32(0).u32(TIMESCALE).u32(0);
    w.u16(0x55c4).u16(0); // language "und", pre_defined
  });
  const name = "Camgate\0";
  const hdlr = full("hdlr", 0, 0, 20 + name.length, (w) => {
    w.u32(0).fourcc("vide").zeros(12);
    for (let i = 0; i < name.length; i++) w.u8(name.charCodeAt(i));
  });
  const vmhd = full("vmhd", 0, 0x000001, 8); // graphicsmode 0, opcolor 0,0,0
  // One data reference: "url " with flags 1 (the media is in this file).
  const dref: Box = { type: "dref", payload: fullPayload(0, 0, (w) => w.u32(1), 4, [full("url ", 0, 0x000001, 0)]) };
  const sampleEntry = leaf(entry, 78 + 8 + track.description.length, (w) => {
    w.zeros(6).u16(1); // reserved, data_reference_index
    w.u16(0).u16(0).zeros(12); // pre_defined, reserved, pre_defined
    w.u16(width).u16(height);
    w.u32(0x0048_0000).u32(0x0048_0000).u32(0); // 72 dpi, 72 dpi, reserved
    w.u16(1).zeros(32); // frame_count, compressorname
    w.u16(0x0018).u16(0xffff); // depth, pre_defined = -1
    w.u32(8 + track.description.length).fourcc(configBox).raw(track.description);
  });
  const stsd: Box = { type: "stsd", payload: fullPayload(0, 0, (w) => w.u32(1), 4, [sampleEntry]) };
  const stts = full("stts", 0, 0, 4, (w) => w.u32(0));
  const stsc = full("stsc", 0, 0, 4, (w) => w.u32(0));
  const stsz = full("stsz", 0, 0, 8, (w) => w.u32(0).u32(0));
  const stco = full("stco", 0, 0, 4, (w) => w.u32(0));
  const trex = full("trex", 0, 0, 20, (w) => {
    w.u32(TRACK_ID).u32(1).u32(0).u32(0).u32(0); // track_ID, sample description 1, duration, size, flags
  });

  const moov = container(
    "moov",
    mvhd,
    container(
      "trak",
      tkhd,
      container(
        "mdia",
        mdhd,
        hdlr,
        container("minf", vmhd, container("dinf", dref), container("stbl", stsd, stts, stsc, stsz, stco)),
      ),
    ),
    container("mvex", trex),
  );
  return serialize([ftyp, moov]);
}

/** The payload of a full box made of a fixed part (`head`, `headSize` bytes) then child boxes. */
function fullPayload(version: number, flags: number, head: (w: Writer) => void, headSize: number, children: Box[]): Uint8Array {
  const childBytes = serialize(children);
  const w = new Writer(4 + headSize + childBytes.length);
  w.u32(((version & 0xff) << 24) | (flags & 0xff_ffff));
  head(w);
  w.raw(childBytes);
  return w.bytes;
}

/** Bytes of a fragment's `moof` (fixed: one track, one sample). */
export const MOOF_SIZE = 8 + 16 + 8 + 16 + 20 + 32;

/**
 * `moof` + `mdat` holding one sample. Written in one pass into one buffer (the access unit
 * is copied once: MSE wants one contiguous buffer anyway).
 */
export function mediaFragment(sample: Fmp4Sample): Uint8Array {
  const { decodeTime, duration, data } = sample;
  if (!Number.isSafeInteger(decodeTime) || decodeTime < 0) throw new Fmp4Error(`bad decode time ${decodeTime}`);
  if (!Number.isInteger(duration) || duration <= 0 || duration > 0xffff_ffff) throw new Fmp4Error(`bad sample duration ${duration}`);
  const mdatSize = 8 + data.length;
  if (MOOF_SIZE + mdatSize > 0xffff_ffff) throw new Fmp4Error("sample too large");
  const w = new Writer(MOOF_SIZE + mdatSize);
  w.u32(MOOF_SIZE).fourcc("moof");
  w.u32(16).fourcc("mfhd").u32(0).u32(sample.sequence);
  w.u32(8 + 16 + 20 + 32).fourcc("traf");
  w.u32(16).fourcc("tfhd").u32(0x02_0000).u32(TRACK_ID); // default-base-is-moof
  w.u32(20).fourcc("tfdt").u32(0x0100_0000).u64(decodeTime); // version 1: 64-bit time
  // data-offset, sample-duration, sample-size, sample-flags present; one sample.
  w.u32(32).fourcc("trun").u32(0x00_0701).u32(1);
  w.u32(MOOF_SIZE + 8); // data_offset: from the moof's first byte to the sample
  w.u32(duration).u32(data.length).u32(sample.keyframe ? SAMPLE_FLAGS_KEY : SAMPLE_FLAGS_DELTA);
  w.u32(mdatSize).fourcc("mdat").raw(data);
  return w.bytes;
}
