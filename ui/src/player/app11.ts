/**
 * The Camgate APP11 tag: right after SOI (`FF D8`) every JPEG from the gateway carries
 * `FF EB`, a big-endian u16 length (31), the ASCII identifier `CAMG\0`, then three u64
 * big-endian values: sequence number, capture time and publish time (µs since the Unix epoch).
 *
 * Parsing reads the 35 header bytes in place through a DataView: no copy of the frame.
 */

export interface FrameTag {
  /** The hub's sequence number (monotonic per stream, per gateway run). */
  seq: number;
  /** When the source captured the picture, µs since the Unix epoch. */
  captureUs: number;
  /** When the gateway published it, µs since the Unix epoch. */
  publishUs: number;
}

const IDENT = [0x43, 0x41, 0x4d, 0x47, 0x00]; // "CAMG\0"
/** Bytes from the start of the JPEG to the end of the tag's payload. */
export const TAG_END = 2 + 2 + 2 + IDENT.length + 24; // 35
const SEGMENT_LENGTH = 2 + IDENT.length + 24; // 31

/** Reads a u64 BE as a Number (exact below 2^53, which µs timestamps are for ~285 years). */
function u64(view: DataView, offset: number): number {
  return view.getUint32(offset) * 0x1_0000_0000 + view.getUint32(offset + 4);
}

/**
 * Reads the tag of one JPEG message. Returns null when the message has no (complete) tag:
 * an untagged JPEG, a truncated buffer, or something that is not a JPEG at all.
 */
export function parseFrameTag(data: ArrayBuffer | ArrayBufferView): FrameTag | null {
  const view = ArrayBuffer.isView(data)
    ? new DataView(data.buffer, data.byteOffset, data.byteLength)
    : new DataView(data);
  if (view.byteLength < TAG_END) return null;
  if (view.getUint8(0) !== 0xff || view.getUint8(1) !== 0xd8) return null;
  if (view.getUint8(2) !== 0xff || view.getUint8(3) !== 0xeb) return null;
  if (view.getUint16(4) < SEGMENT_LENGTH) return null;
  for (let i = 0; i < IDENT.length; i++) {
    if (view.getUint8(6 + i) !== IDENT[i]) return null;
  }
  return {
    seq: u64(view, 11),
    captureUs: u64(view, 19),
    publishUs: u64(view, 27),
  };
}

/** Builds a tagged JPEG-looking buffer (tests and tools). */
export function buildTaggedJpeg(tag: FrameTag, body: Uint8Array = new Uint8Array([0xff, 0xd9])): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(TAG_END + body.length);
  const view = new DataView(out.buffer);
  out.set([0xff, 0xd8, 0xff, 0xeb], 0);
  view.setUint16(4, SEGMENT_LENGTH);
  out.set(IDENT, 6);
  const put = (offset: number, value: number) => {
    view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
    view.setUint32(offset + 4, value % 0x1_0000_0000);
  };
  put(11, tag.seq);
  put(19, tag.captureUs);
  put(27, tag.publishUs);
  out.set(body, TAG_END);
  return out;
}
