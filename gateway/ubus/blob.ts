// Plain blob attributes (libubox blob.h): a 4-byte big-endian `id_len` header
// (bit 31 "extended", bits 30..24 id, bits 23..0 length counting the header
// but not the padding), the payload, then zero padding to a multiple of 4.
// A nested attribute's length counts its children's padding, so containers
// always end on a 4-byte boundary.
import { UbusError, UBUS_STATUS } from './error.ts';

export const BLOB_HDR = 4;
const EXTENDED = 0x80000000;
const ID_SHIFT = 24;
const ID_MASK = 0x7f;
const LEN_MASK = 0x00ffffff;

export const pad4 = (n: number): number => (n + 3) & ~3;

export function parseError(message: string): UbusError {
  return new UbusError(UBUS_STATUS.PARSE_ERROR, `malformed ubus message: ${message}`);
}

export interface BlobAttr {
  id: number;
  extended: boolean;
  /** The payload (raw length minus the header), a view into the frame. */
  data: Uint8Array;
}

/**
 * Splits a container's payload into its attributes. Every attribute and its
 * padding must lie inside the container: libubox would silently drop one that
 * does not, we refuse the message instead.
 */
export function parseAttrs(buf: Uint8Array, what: string): BlobAttr[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: BlobAttr[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < BLOB_HDR) throw parseError(`${what}: truncated attribute header at byte ${off}`);
    const idLen = view.getUint32(off);
    const raw = idLen & LEN_MASK;
    if (raw < BLOB_HDR) throw parseError(`${what}: attribute at byte ${off} has length ${raw}, below its 4-byte header`);
    if (off + raw > buf.length) {
      throw parseError(`${what}: attribute at byte ${off} has length ${raw}, past the end of its container (${buf.length - off} bytes left)`);
    }
    if (off + pad4(raw) > buf.length) throw parseError(`${what}: padding of the attribute at byte ${off} runs past its container`);
    out.push({ id: (idLen >>> ID_SHIFT) & ID_MASK, extended: (idLen & EXTENDED) !== 0, data: buf.subarray(off + BLOB_HDR, off + raw) });
    off += pad4(raw);
  }
  return out;
}

/** An append-only big-endian buffer for building attributes (libubox blob_buf). */
export class BlobWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Writes a placeholder header; `end` fills it in once the payload is written. */
  begin(): number {
    this.ensure(BLOB_HDR);
    const start = this.len;
    this.len += BLOB_HDR;
    return start;
  }

  /** Sets the header (length without padding), then pads with zeros. */
  end(start: number, id: number, extended: boolean): void {
    const raw = this.len - start;
    if (raw > LEN_MASK) throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `attribute of ${raw} bytes is too large for a blob`);
    this.view.setUint32(start, ((extended ? EXTENDED : 0) | (id << ID_SHIFT) | raw) >>> 0);
    this.align();
  }

  /** Zero padding up to the next multiple of 4. */
  align(): void {
    const padded = pad4(this.len);
    this.ensure(padded - this.len);
    this.buf.fill(0, this.len, padded);
    this.len = padded;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  u8(v: number): void {
    this.ensure(1);
    this.view.setUint8(this.len, v);
    this.len += 1;
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.len, v >>> 0);
    this.len += 4;
  }
  i64(v: bigint): void {
    this.ensure(8);
    this.view.setBigInt64(this.len, v);
    this.len += 8;
  }
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.len, v);
    this.len += 8;
  }

  /** A copy of what was written. */
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A C string: the UTF-8 bytes and a NUL. An embedded NUL would cut it short on the C side. */
export function cString(s: string, what: string): Uint8Array {
  if (s.includes('\0')) throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `${what}: a string may not contain NUL`);
  const b = utf8.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** Reads a NUL-terminated string payload (libubox blob_check_type: the last byte must be 0). */
export function readCString(data: Uint8Array, what: string): string {
  if (data.length < 1 || data[data.length - 1] !== 0) throw parseError(`${what}: string is not NUL-terminated`);
  const nul = data.indexOf(0); // a C peer reads up to the first NUL, and so do we
  return utf8Decoder.decode(data.subarray(0, nul));
}

export function readU32(data: Uint8Array, what: string): number {
  if (data.length !== 4) throw parseError(`${what}: expected 4 bytes, got ${data.length}`);
  return new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
}

export function readU8(data: Uint8Array, what: string): number {
  if (data.length !== 1) throw parseError(`${what}: expected 1 byte, got ${data.length}`);
  return data[0]!;
}
