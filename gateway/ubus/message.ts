// ubus frames (ubusmsg.h): the 8-byte struct ubus_msghdr (version u8, type u8,
// seq u16, peer u32, all big-endian), then one blob whose children are the
// UBUS_ATTR_* attributes. A frame is 8 + the blob's length bytes.
import { BlobWriter, parseAttrs, parseError, cString, readCString, readU32, readU8, BLOB_HDR } from './blob.ts';
import { UbusError, UBUS_STATUS } from './error.ts';

export const MSG = {
  HELLO: 0, STATUS: 1, DATA: 2, PING: 3, LOOKUP: 4, INVOKE: 5, ADD_OBJECT: 6,
  REMOVE_OBJECT: 7, SUBSCRIBE: 8, UNSUBSCRIBE: 9, NOTIFY: 10, MONITOR: 11,
} as const;

/** enum ubus_msg_attr (ubusmsg.h). */
export const ATTR = {
  STATUS: 1, OBJPATH: 2, OBJID: 3, METHOD: 4, OBJTYPE: 5, SIGNATURE: 6, DATA: 7,
  TARGET: 8, ACTIVE: 9, NO_REPLY: 10, SUBSCRIBERS: 11, USER: 12, GROUP: 13,
} as const;

/** enum ubus_monitor_attr (ubusmsg.h): MONITOR frames number their attributes differently. */
export const MONITOR_ATTR = { CLIENT: 0, PEER: 1, SEND: 2, SEQ: 3, TYPE: 4, DATA: 5 } as const;

export const HEADER_LEN = 12;
/** UBUS_MAX_MSGLEN (ubusmsg.h): larger frames are refused. */
export const MAX_FRAME = 1 << 20;

/**
 * The attributes of a message. They are written in the object's key order and
 * decoded in wire order, so decode → encode gives back the same bytes.
 * SIGNATURE and DATA are raw payloads (blobmsg, see blobmsg.ts): a few peers
 * put other things in DATA (`ubus monitor`'s add/remove).
 */
export interface UbusAttrs {
  status?: number;
  objpath?: string;
  objid?: number;
  method?: string;
  objtype?: number;
  signature?: Uint8Array;
  data?: Uint8Array;
  target?: number;
  active?: boolean;
  noReply?: boolean;
  subscribers?: number[];
  user?: string;
  group?: string;
}

export interface MonitorAttrs {
  client?: number;
  peer?: number;
  send?: boolean;
  seq?: number;
  type?: number;
  /** The monitored message's attributes (a ubus attribute blob). */
  data?: Uint8Array;
}

export interface UbusHeader {
  version?: number;
  type: number;
  seq: number;
  peer: number;
}

export interface UbusMessage {
  version: number;
  type: number;
  seq: number;
  peer: number;
  attrs: UbusAttrs;
  /** Only for MONITOR frames, whose attributes are numbered differently. */
  monitor?: MonitorAttrs;
}

type Kind = 'u32' | 'string' | 'raw' | 'bool' | 'u32list';
const UBUS_FIELDS: Record<string, [number, Kind]> = {
  status: [ATTR.STATUS, 'u32'], objpath: [ATTR.OBJPATH, 'string'], objid: [ATTR.OBJID, 'u32'],
  method: [ATTR.METHOD, 'string'], objtype: [ATTR.OBJTYPE, 'u32'], signature: [ATTR.SIGNATURE, 'raw'],
  data: [ATTR.DATA, 'raw'], target: [ATTR.TARGET, 'u32'], active: [ATTR.ACTIVE, 'bool'],
  noReply: [ATTR.NO_REPLY, 'bool'], subscribers: [ATTR.SUBSCRIBERS, 'u32list'], user: [ATTR.USER, 'string'],
  group: [ATTR.GROUP, 'string'],
};
const MONITOR_FIELDS: Record<string, [number, Kind]> = {
  client: [MONITOR_ATTR.CLIENT, 'u32'], peer: [MONITOR_ATTR.PEER, 'u32'], send: [MONITOR_ATTR.SEND, 'bool'],
  seq: [MONITOR_ATTR.SEQ, 'u32'], type: [MONITOR_ATTR.TYPE, 'u32'], data: [MONITOR_ATTR.DATA, 'raw'],
};
const byId = (fields: Record<string, [number, Kind]>) => new Map(Object.entries(fields).map(([k, [id, kind]]) => [id, [k, kind] as const]));
const UBUS_BY_ID = byId(UBUS_FIELDS);
const MONITOR_BY_ID = byId(MONITOR_FIELDS);

// ---- encoding ---------------------------------------------------------------

function writeAttr(w: BlobWriter, id: number, kind: Kind, v: unknown, key: string): void {
  const start = w.begin();
  switch (kind) {
    case 'u32': w.u32(checkU32(v, key)); break;
    case 'string': w.bytes(cString(String(v), key)); break;
    case 'raw': w.bytes(v as Uint8Array); break;
    case 'bool': w.u8(v ? 1 : 0); break;
    case 'u32list':
      // Each entry is a plain u32 attribute with id 0 (ubusd's SUBSCRIBERS).
      for (const n of v as number[]) {
        const s = w.begin();
        w.u32(checkU32(n, key));
        w.end(s, 0, false);
      }
      break;
  }
  w.end(start, id, false);
}

function checkU32(v: unknown, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `${key}: expected an unsigned 32-bit integer`);
  }
  return v;
}

/** Builds a frame; refuses one over MAX_FRAME. */
export function encodeMessage(h: UbusHeader, attrs: UbusAttrs | MonitorAttrs = {}): Uint8Array {
  const fields = h.type === MSG.MONITOR ? MONITOR_FIELDS : UBUS_FIELDS;
  const w = new BlobWriter();
  w.u8(h.version ?? 0);
  w.u8(h.type);
  w.u16(h.seq & 0xffff);
  w.u32(h.peer);
  const start = w.begin();
  for (const [key, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    const f = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (!f) throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `unknown ubus attribute ${key}`);
    writeAttr(w, f[0], f[1], v, key);
  }
  w.end(start, 0, false);
  if (w.len > MAX_FRAME) throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `message of ${w.len} bytes is over the 1 MiB ubus limit`);
  return w.result();
}

// ---- decoding ---------------------------------------------------------------

function readAttr(kind: Kind, d: Uint8Array, key: string): unknown {
  switch (kind) {
    case 'u32': return readU32(d, key);
    case 'string': return readCString(d, key);
    case 'raw': return d.slice();
    case 'bool': return readU8(d, key) !== 0;
    case 'u32list': return parseAttrs(d, key).map((a) => readU32(a.data, key));
  }
}

/** Decodes a blob of ubus attributes (or, for MONITOR, monitor attributes). */
export function decodeAttrs(buf: Uint8Array): UbusAttrs;
export function decodeAttrs(buf: Uint8Array, monitor: true): MonitorAttrs;
export function decodeAttrs(buf: Uint8Array, monitor = false): UbusAttrs | MonitorAttrs {
  const table = monitor ? MONITOR_BY_ID : UBUS_BY_ID;
  const out: Record<string, unknown> = {};
  for (const a of parseAttrs(buf, 'message')) {
    const f = table.get(a.id);
    if (f) out[f[0]] = readAttr(f[1], a.data, f[0]);
  }
  return out;
}

/** Length of the frame that starts with this header (8 + the blob length, ubus_msghdr). */
export function frameLength(hdr: Uint8Array): number {
  const blobLen = new DataView(hdr.buffer, hdr.byteOffset, HEADER_LEN).getUint32(8) & 0x00ffffff;
  if (blobLen < BLOB_HDR) throw parseError(`frame blob length ${blobLen} is below its 4-byte header`);
  return 8 + blobLen;
}

/** Decodes exactly one frame; unknown attribute ids are skipped, as libubus does. */
export function decodeMessage(frame: Uint8Array): UbusMessage {
  if (frame.length < HEADER_LEN) throw parseError(`frame of ${frame.length} bytes is shorter than the 12-byte header`);
  const len = frameLength(frame);
  if (len > MAX_FRAME) throw parseError(`frame of ${len} bytes is over the 1 MiB ubus limit`);
  if (len !== frame.length) throw parseError(`frame header says ${len} bytes, got ${frame.length}`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const msg: UbusMessage = { version: frame[0]!, type: frame[1]!, seq: view.getUint16(2), peer: view.getUint32(4), attrs: {} };
  if (msg.type === MSG.MONITOR) msg.monitor = decodeAttrs(frame.subarray(HEADER_LEN), true);
  else msg.attrs = decodeAttrs(frame.subarray(HEADER_LEN));
  return msg;
}

/**
 * Cuts a byte stream into frames: partial reads are kept until the frame is
 * complete, several frames in one read are all returned. A header announcing
 * more than MAX_FRAME throws before anything is buffered: the stream cannot be
 * resynchronised, so the caller drops the connection.
 */
export class FrameReader {
  private pending = new Uint8Array(0);

  push(chunk: Uint8Array): Uint8Array[] {
    // A plain view: Buffer#slice would share memory, Uint8Array#slice copies.
    let buf = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.pending.length) {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending);
      buf.set(chunk, this.pending.length);
    }
    const frames: Uint8Array[] = [];
    let off = 0;
    while (buf.length - off >= HEADER_LEN) {
      const len = frameLength(buf.subarray(off, off + HEADER_LEN));
      if (len > MAX_FRAME) throw parseError(`frame of ${len} bytes is over the 1 MiB ubus limit`);
      if (buf.length - off < len) break;
      frames.push(buf.slice(off, off + len));
      off += len;
    }
    this.pending = buf.slice(off);
    return frames;
  }

  /** Bytes of an incomplete frame held back. */
  get buffered(): number {
    return this.pending.length;
  }
}
