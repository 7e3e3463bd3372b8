// blobmsg (libubox blobmsg.h): extended blob attributes whose id is the value
// type. After the 4-byte header: a u16 name length, the name, a NUL, zero
// padding to 4, then the value. Tables hold named members, arrays unnamed ones.
import { BlobWriter, parseAttrs, parseError, pad4, cString, readCString } from './blob.ts';
import { UbusError, UBUS_STATUS } from './error.ts';
import type { UbusArgType, UbusTable, UbusValue } from './types.ts';

export const BLOBMSG = { UNSPEC: 0, ARRAY: 1, TABLE: 2, STRING: 3, INT64: 4, INT32: 5, INT16: 6, INT8: 7, DOUBLE: 8 } as const;

/** Signature codes, as `ubus list -v` reads them (bool is INT8). */
export const ARG_TYPE_CODE: Record<UbusArgType, number> = {
  unspec: 0, array: 1, table: 2, string: 3, int64: 4, int32: 5, int16: 6, bool: 7, double: 8,
};

/** Nesting bound, ours: deep enough for any real reply, shallow enough to stop a hostile frame or a cycle. */
export const MAX_DEPTH = 64;

/** One attribute with its wire type kept, for byte-exact round trips. */
export interface BlobmsgNode {
  type: number;
  name: string;
  /** INT8/INT16/INT32/DOUBLE: number (INT8 as 0..255), INT64: bigint, STRING: string, UNSPEC: null, ARRAY/TABLE: children. */
  value: number | bigint | string | null | BlobmsgNode[];
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const FIXED_LEN: Record<number, number> = { [BLOBMSG.INT8]: 1, [BLOBMSG.INT16]: 2, [BLOBMSG.INT32]: 4, [BLOBMSG.INT64]: 8, [BLOBMSG.DOUBLE]: 8 };
const TYPE_NAMES = ['unspec', 'array', 'table', 'string', 'int64', 'int32', 'int16', 'int8', 'double'];
const utf8 = new TextDecoder();

// ---- decoding ---------------------------------------------------------------

/** Decodes a container's payload into typed nodes; table members must be named (libubox blobmsg_check_attr). */
export function decodeNodes(buf: Uint8Array, inTable: boolean, depth = 0, path = 'data'): BlobmsgNode[] {
  if (depth > MAX_DEPTH) throw parseError(`${path}: nested deeper than ${MAX_DEPTH} levels`);
  return parseAttrs(buf, path).map((a, i) => {
    if (!a.extended) throw parseError(`${path}: attribute ${i} is not a blobmsg attribute (extended bit unset)`);
    const d = a.data;
    if (d.length < 3) throw parseError(`${path}: attribute ${i} is too short for a blobmsg name header`);
    const nameLen = (d[0]! << 8) | d[1]!;
    const hdr = pad4(2 + nameLen + 1);
    if (hdr > d.length) throw parseError(`${path}: attribute ${i} has a name of ${nameLen} bytes, past its end`);
    if (d[2 + nameLen] !== 0) throw parseError(`${path}: attribute ${i} has a name without its NUL`);
    const name = utf8.decode(d.subarray(2, 2 + nameLen));
    const where = inTable ? `${path}.${name.length > 40 ? `${name.slice(0, 40)}…` : name}` : `${path}[${i}]`;
    if (inTable && nameLen === 0) throw parseError(`${where}: table member without a name`);
    return { type: a.id, name, value: decodeValue(a.id, d.subarray(hdr), depth, where) };
  });
}

function decodeValue(type: number, v: Uint8Array, depth: number, where: string): BlobmsgNode['value'] {
  const fixed = FIXED_LEN[type];
  if (fixed !== undefined && v.length !== fixed) throw parseError(`${where}: ${TYPE_NAMES[type]} value of ${v.length} bytes, expected ${fixed}`);
  const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
  switch (type) {
    case BLOBMSG.UNSPEC: return null;
    case BLOBMSG.ARRAY: return decodeNodes(v, false, depth + 1, where);
    case BLOBMSG.TABLE: return decodeNodes(v, true, depth + 1, where);
    case BLOBMSG.STRING: return readCString(v, where);
    case BLOBMSG.INT64: return view.getBigInt64(0);
    case BLOBMSG.INT32: return view.getInt32(0);
    case BLOBMSG.INT16: return view.getInt16(0);
    case BLOBMSG.INT8: return view.getUint8(0);
    case BLOBMSG.DOUBLE: return view.getFloat64(0);
    default: throw parseError(`${where}: unknown blobmsg type ${type}`);
  }
}

/** A node as a JS value: INT8 → boolean, INT64 → number when safe else bigint. */
export function nodeToValue(n: BlobmsgNode): UbusValue {
  switch (n.type) {
    case BLOBMSG.INT8: return n.value !== 0;
    case BLOBMSG.INT64: {
      const b = n.value as bigint;
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
    }
    case BLOBMSG.ARRAY: return (n.value as BlobmsgNode[]).map(nodeToValue);
    case BLOBMSG.TABLE: return nodesToTable(n.value as BlobmsgNode[]);
    default: return n.value as UbusValue;
  }
}

function nodesToTable(nodes: BlobmsgNode[]): UbusTable {
  const out: UbusTable = {};
  // defineProperty: a member named "__proto__" must stay a plain key.
  for (const n of nodes) Object.defineProperty(out, n.name, { value: nodeToValue(n), enumerable: true, writable: true, configurable: true });
  return out;
}

/** Decodes a DATA payload (a table's members) into a plain object. */
export function decodeTable(buf: Uint8Array): UbusTable {
  return nodesToTable(decodeNodes(buf, true));
}

// ---- encoding ---------------------------------------------------------------

function badValue(where: string, what: string): UbusError {
  return new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `${where}: ${what}`);
}

/** Chooses the wire type of a JS value (contract A): bool INT8, int32-range integer INT32, else INT64/DOUBLE. */
export function valueToNode(name: string, v: unknown, depth = 0, where = name || 'data'): BlobmsgNode {
  if (depth > MAX_DEPTH) throw badValue(where, `nested deeper than ${MAX_DEPTH} levels (a cycle?)`);
  if (v === null) return { type: BLOBMSG.UNSPEC, name, value: null };
  switch (typeof v) {
    case 'boolean': return { type: BLOBMSG.INT8, name, value: v ? 1 : 0 };
    case 'string': return { type: BLOBMSG.STRING, name, value: v };
    case 'bigint':
      if (v < INT64_MIN || v > INT64_MAX) throw badValue(where, 'bigint outside the int64 range');
      return { type: BLOBMSG.INT64, name, value: v };
    case 'number':
      if (Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX) return { type: BLOBMSG.INT32, name, value: v };
      if (Number.isSafeInteger(v)) return { type: BLOBMSG.INT64, name, value: BigInt(v) };
      return { type: BLOBMSG.DOUBLE, name, value: v };
    case 'object': {
      if (Array.isArray(v)) return { type: BLOBMSG.ARRAY, name, value: v.map((e, i) => valueToNode('', e, depth + 1, `${where}[${i}]`)) };
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw badValue(where, 'only plain objects, arrays and scalars can be sent');
      return { type: BLOBMSG.TABLE, name, value: tableToNodes(v as Record<string, unknown>, depth + 1, where) };
    }
    default: throw badValue(where, `a ${typeof v} cannot be sent over ubus`);
  }
}

function tableToNodes(t: Record<string, unknown>, depth: number, where: string): BlobmsgNode[] {
  const out: BlobmsgNode[] = [];
  for (const [k, e] of Object.entries(t)) {
    if (e === undefined) continue; // as JSON.stringify does
    if (k === '') throw badValue(where, 'a table member needs a non-empty name');
    out.push(valueToNode(k, e, depth, `${where}.${k}`));
  }
  return out;
}

export function writeNodes(w: BlobWriter, nodes: BlobmsgNode[]): void {
  for (const n of nodes) {
    const start = w.begin();
    const name = cString(n.name, 'blobmsg name');
    if (name.length - 1 > 0xffff) throw badValue(n.name.slice(0, 20), 'name longer than 65535 bytes');
    w.u16(name.length - 1);
    w.bytes(name);
    w.align(); // attributes start 4-aligned, so this pads the name header (blobmsg_hdrlen)
    writeValue(w, n);
    w.end(start, n.type, true);
  }
}

function writeValue(w: BlobWriter, n: BlobmsgNode): void {
  switch (n.type) {
    case BLOBMSG.UNSPEC: return;
    case BLOBMSG.ARRAY:
    case BLOBMSG.TABLE: return writeNodes(w, n.value as BlobmsgNode[]);
    case BLOBMSG.STRING: return w.bytes(cString(n.value as string, n.name || 'string'));
    case BLOBMSG.INT64: return w.i64(n.value as bigint);
    case BLOBMSG.INT32: return w.u32(n.value as number);
    case BLOBMSG.INT16: return w.u16((n.value as number) & 0xffff);
    case BLOBMSG.INT8: return w.u8((n.value as number) & 0xff);
    case BLOBMSG.DOUBLE: return w.f64(n.value as number);
    default: throw badValue(n.name, `unknown blobmsg type ${n.type}`);
  }
}

/** Encodes typed nodes into a container payload. */
export function encodeNodes(nodes: BlobmsgNode[]): Uint8Array {
  const w = new BlobWriter();
  writeNodes(w, nodes);
  return w.result();
}

/** Encodes a plain object as a DATA payload (a table's members). */
export function encodeTable(t: UbusTable): Uint8Array {
  if (t === null || typeof t !== 'object' || Array.isArray(t)) throw badValue('data', 'expected a table (plain object)');
  return encodeNodes(tableToNodes(t, 0, 'data'));
}

/** An object signature: method → argument → type code, each an INT32 (as libubus writes it). */
export function signatureNodes(sig: Record<string, Record<string, number>>): BlobmsgNode[] {
  return Object.entries(sig).map(([method, args]) => ({
    type: BLOBMSG.TABLE,
    name: method,
    value: Object.entries(args).map(([arg, code]) => ({ type: BLOBMSG.INT32, name: arg, value: code })),
  }));
}
