// How a packet becomes a row and back: the payload goes to a BLOB column, every
// other field to `meta`, a JSON object whose values are tagged so a packet
// comes back with exactly the fields it went in with (aedes and the abstract
// suite compare whole packets): Buffers (MQTT 5 correlation data), keys whose
// value is undefined (a queued packet's unassigned messageId) and nested
// objects (MQTT 5 properties) all survive. A plain JSON.stringify would drop
// the undefined keys and turn Buffers into {type,data} objects.
//
//   null | boolean | number | string   as themselves
//   undefined                          {"u":1}
//   Buffer / Uint8Array                {"b":"<base64>"}
//   array                              {"a":[...]}
//   object                             {"o":{...}}
//   the top-level payload              {"p":"b"} (bytes) or {"p":"s"} (a string, kept as UTF-8)

export type Packet = Record<string, unknown>;

export interface EncodedPacket {
  meta: string;
  payload: Uint8Array | null;
  /** What the row counts against the store's size cap. */
  bytes: number;
}

export class PacketCodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PacketCodecError';
  }
}

const MAX_DEPTH = 16; // MQTT packets are shallow; deeper means something odd was passed in

function encodeValue(value: unknown, path: string, depth: number): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new PacketCodecError(`cannot store ${path}: ${value} is not a finite number`);
    return value;
  }
  if (value === undefined) return { u: 1 };
  if (depth >= MAX_DEPTH) throw new PacketCodecError(`cannot store ${path}: nested deeper than ${MAX_DEPTH} levels`);
  if (value instanceof Uint8Array) return { b: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return { a: value.map((v, i) => encodeValue(v, `${path}[${i}]`, depth + 1)) };
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = encodeValue(v, `${path}.${k}`, depth + 1);
    return { o: out };
  }
  throw new PacketCodecError(`cannot store ${path}: a ${typeof value} is not packet data`);
}

/** Own-property assignment that cannot reach a prototype, whatever the key. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function decodeValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const tagged = value as Record<string, unknown>;
  if ('u' in tagged) return undefined;
  if (typeof tagged['b'] === 'string') return Buffer.from(tagged['b'], 'base64');
  if (Array.isArray(tagged['a'])) return tagged['a'].map(decodeValue);
  if (tagged['o'] !== null && typeof tagged['o'] === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(tagged['o'] as Record<string, unknown>)) setOwn(out, k, decodeValue(v));
    return out;
  }
  throw new PacketCodecError(`corrupt stored packet field: ${JSON.stringify(value)}`);
}

/**
 * Encodes every own enumerable field of `packet` but those in `omit` (kept in
 * their own columns by the caller).
 */
export function encodePacket(packet: unknown, omit: readonly string[] = []): EncodedPacket {
  if (packet === null || typeof packet !== 'object' || Array.isArray(packet)) {
    throw new PacketCodecError(`cannot store a packet that is ${packet === null ? 'null' : typeof packet}`);
  }
  const fields: Record<string, unknown> = {};
  let payload: Uint8Array | null = null;
  for (const [key, value] of Object.entries(packet)) {
    if (omit.includes(key)) {
      fields[key] = { u: 1 }; // the key's presence is kept; its value lives in a column
    } else if (key === 'payload' && value instanceof Uint8Array) {
      payload = value;
      fields[key] = { p: 'b' };
    } else if (key === 'payload' && typeof value === 'string') {
      payload = Buffer.from(value, 'utf8');
      fields[key] = { p: 's' };
    } else {
      fields[key] = encodeValue(value, key, 0);
    }
  }
  const meta = JSON.stringify(fields);
  return { meta, payload, bytes: Buffer.byteLength(meta, 'utf8') + (payload?.byteLength ?? 0) };
}

export function decodePacket(meta: string, payload: Uint8Array | null): Packet {
  let fields: unknown;
  try {
    fields = JSON.parse(meta);
  } catch {
    throw new PacketCodecError('corrupt stored packet: its fields are not JSON');
  }
  if (fields === null || typeof fields !== 'object') throw new PacketCodecError('corrupt stored packet: its fields are not an object');
  const packet: Packet = {};
  for (const [key, value] of Object.entries(fields as Record<string, unknown>)) {
    const p = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)['p'] : undefined;
    if (key === 'payload' && (p === 'b' || p === 's')) {
      const bytes = Buffer.from(payload ?? new Uint8Array(0));
      setOwn(packet, key, p === 's' ? bytes.toString('utf8') : bytes);
    } else {
      setOwn(packet, key, decodeValue(value));
    }
  }
  return packet;
}
