// Conformance with the recorded traffic of a real ubusd: every frame decodes
// to the recorded values (the hex is the truth, the recorder's `attrs` and the
// CLI's output are cross-checks), and every client frame of a kind our client
// sends is rebuilt byte for byte by the client's own request builders.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BLOBMSG, decodeNodes, decodeTable, encodeNodes, encodeTable, type BlobmsgNode } from '../../gateway/ubus/blobmsg.ts';
import { decodeAttrs, decodeMessage, encodeMessage, MSG, type MonitorAttrs, type UbusAttrs } from '../../gateway/ubus/message.ts';
import {
  addObjectRequest, invokeRequest, listenRequest, lookupRequest, notifyRequest, removeObjectRequest,
  replyMessages, sendRequest, subscribeRequest, type Outgoing,
} from '../../gateway/ubus/requests.ts';
import type { UbusTable } from '../../gateway/ubus/types.ts';
import { loadVectors, vectorFiles, type FrameRecord, type RecordedAttr, type RecordedNode } from './ubus-vectors.ts';

const { frames, connects } = loadVectors();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const where = (f: FrameRecord) => `${f.file} conn ${f.conn} ${f.dir} #${f.n} ${f.type_name}`;

const TYPE_NAMES = ['unspec', 'array', 'table', 'string', 'int64', 'int32', 'int16', 'int8', 'double'];
const UBUS_NAMES: Record<string, string> = {
  status: 'STATUS', objpath: 'OBJPATH', objid: 'OBJID', method: 'METHOD', objtype: 'OBJTYPE', signature: 'SIGNATURE',
  data: 'DATA', target: 'TARGET', active: 'ACTIVE', noReply: 'NO_REPLY', subscribers: 'SUBSCRIBERS', user: 'USER', group: 'GROUP',
};
const MONITOR_NAMES: Record<string, string> = { client: 'CLIENT', peer: 'PEER', send: 'SEND', seq: 'SEQ', type: 'TYPE', data: 'DATA' };

/** Our typed nodes in the recorder's form (int64 as a plain number: all recorded ones are safe). */
function nodeForm(n: BlobmsgNode): RecordedNode {
  const value = Array.isArray(n.value) ? n.value.map(nodeForm) : typeof n.value === 'bigint' ? Number(n.value) : n.value;
  return { type: TYPE_NAMES[n.type] ?? String(n.type), name: n.name, value };
}

/** A nested payload: blobmsg when it parses as such, else ubus attributes (what `ubus monitor` puts in DATA). */
function nestedForm(b: Uint8Array, attrsOnly: boolean): { blobmsg: RecordedNode[] } | { attrs: unknown[] } {
  if (attrsOnly) return { attrs: attrsForm(decodeAttrs(b), UBUS_NAMES) };
  try {
    return { blobmsg: decodeNodes(b, true).map(nodeForm) };
  } catch {
    return { attrs: attrsForm(decodeAttrs(b), UBUS_NAMES) };
  }
}

/** Our decoded attributes as [NAME, value] pairs in wire order. */
function attrsForm(a: UbusAttrs | MonitorAttrs, names: Record<string, string>): unknown[] {
  return Object.entries(a).map(([k, v]) => {
    // A MONITOR's DATA holds the monitored message's ubus attributes.
    if (v instanceof Uint8Array) return [names[k], nestedForm(v, names === MONITOR_NAMES)];
    if (typeof v === 'boolean') return [names[k], v ? 1 : 0];
    return [names[k], v];
  });
}

/** The recorder's attributes in the same form. */
function recordedForm(attrs: RecordedAttr[]): unknown[] {
  return attrs.map((a) => {
    if (a.blobmsg) return [a.attr, { blobmsg: a.blobmsg }];
    if (a.not_blobmsg || (a.attr === 'DATA' && Array.isArray(a.value))) return [a.attr, { attrs: recordedForm(a.value as RecordedAttr[]) }];
    if (a.attr === 'SUBSCRIBERS') return [a.attr, (a.value as { value: number }[]).map((s) => s.value)];
    return [a.attr, a.value];
  });
}

test('the vectors are all there', () => {
  assert.equal(vectorFiles().length, 9);
  assert.is(frames.length, 430, 'the README counts 430 frames');
});

test('every recorded frame decodes to the recorded header and attribute values', () => {
  for (const f of frames) {
    const m = decodeMessage(f.bytes);
    const at = where(f);
    assert.is(f.bytes.length, f.frame_len, at);
    assert.is(f.frame_len % 4, 0, at);
    assert.equal([m.version, m.type, m.seq, m.peer], [f.version, f.type, f.seq, f.peer], at);
    const ours = m.type === MSG.MONITOR ? attrsForm(m.monitor!, MONITOR_NAMES) : attrsForm(m.attrs, UBUS_NAMES);
    assert.equal(ours, recordedForm(f.attrs), at);
    // The plain JSON view, too, where the recorder gave one.
    for (const a of f.attrs) {
      if (!a.blobmsg || a.attr !== 'DATA') continue;
      assert.equal(decodeTable(m.attrs.data!), a.json as UbusTable, `${at} json`);
    }
  }
});

test('decode → encode gives back every recorded frame exactly', () => {
  for (const f of frames) {
    const m = decodeMessage(f.bytes);
    assert.is(hex(encodeMessage(m, m.monitor ?? m.attrs)), hex(f.bytes), where(f));
  }
});

test('frames that came with a file descriptor decode like any other', () => {
  const withFd = frames.filter((f) => f.fds);
  assert.ok(withFd.length >= 4, 'the hello replies in 05 and 07, both directions');
  for (const f of withFd) {
    const m = decodeMessage(f.bytes);
    assert.is(m.type, MSG.STATUS, where(f));
    assert.is(m.attrs.status, 0);
  }
});

test('crafted frames: version byte 1 and unknown type 42 still decode (the client drops them later)', () => {
  const v1 = frames.filter((f) => f.version === 1);
  assert.is(v1.length, 2);
  for (const f of v1) assert.is(decodeMessage(f.bytes).version, 1);
  assert.is(decodeMessage(frames.find((f) => f.type === 42)!.bytes).type, 42);
});

// ---- the CLI's output ---------------------------------------------------------

const connFrames = (file: string, conn: number, dir: 'c2s' | 's2c') => frames.filter((f) => f.file === file && f.conn === conn && f.dir === dir);
/** The ubus CLI's `-v` type names (cli.c). */
const CLI_TYPES: Record<number, string> = { 1: 'Array', 2: 'Table', 3: 'String', 5: 'Integer', 7: 'Boolean' };

test('`ubus call` output equals the merged DATA replies we decode', () => {
  let checked = 0;
  for (const c of connects.filter((c) => / call /.test(c.cmd) && c.exit_code === 0 && c.stdout)) {
    const merged: UbusTable = {};
    for (const f of connFrames(c.file, c.conn, 's2c')) {
      const m = decodeMessage(f.bytes);
      if (m.type === MSG.DATA && m.attrs.data) Object.assign(merged, decodeTable(m.attrs.data));
    }
    assert.equal(merged, JSON.parse(c.stdout!), `${c.file} ${c.cmd}`);
    checked++;
  }
  assert.is(checked, 13);
});

test('`ubus call` failures: the final STATUS is the status the CLI reported', () => {
  const texts: Record<string, number> = { 'Not found': 4, 'Method not found': 3, 'Invalid argument': 2, 'Permission denied': 6 };
  let checked = 0;
  for (const c of connects.filter((c) => c.stderr?.startsWith('Command failed'))) {
    const text = /\(([^)]+)\)\n/.exec(c.stderr!)?.[1] ?? /: (.+)\n/.exec(c.stderr!)![1]!;
    const last = connFrames(c.file, c.conn, 's2c').at(-1)!;
    assert.is(decodeMessage(last.bytes).attrs.status, texts[text], `${c.file} ${c.cmd}`);
    checked++;
  }
  assert.is(checked, 6);
});

test('`ubus list` and `list -v` output equals our lookup decoding (names, ids, signatures)', () => {
  for (const c of connects.filter((c) => / list( |$)/.test(c.cmd))) {
    const objs = connFrames(c.file, c.conn, 's2c').map((f) => decodeMessage(f.bytes)).filter((m) => m.type === MSG.DATA);
    const verbose = c.cmd.includes('-v');
    const expected: string[] = [];
    for (const m of objs) {
      if (!verbose) {
        expected.push(m.attrs.objpath!);
        continue;
      }
      expected.push(`'${m.attrs.objpath}' @${m.attrs.objid!.toString(16).padStart(8, '0')}`);
      for (const method of decodeNodes(m.attrs.signature!, true)) {
        const args = (method.value as BlobmsgNode[]).map((a) => `"${a.name}":"${CLI_TYPES[a.value as number]}"`);
        expected.push(`\t"${method.name}":{${args.join(',')}}`);
      }
    }
    assert.equal(c.stdout!.trimEnd().split('\n'), expected, c.cmd);
  }
});

test('`ubus listen` output equals the events we decode from the deliveries', () => {
  for (const c of connects.filter((c) => / listen/.test(c.cmd))) {
    const lines = c.stdout!.trim().split('\n').map((l) => JSON.parse(l) as UbusTable);
    const events = connFrames(c.file, c.conn, 's2c')
      .map((f) => decodeMessage(f.bytes))
      .filter((m) => m.type === MSG.INVOKE)
      .map((m) => ({ [m.attrs.method!]: decodeTable(m.attrs.data!) }));
    assert.equal(events, lines, c.cmd);
  }
});

// ---- rebuilding what our client sends ------------------------------------------

/** The request our client would build for this recorded client frame, or null for frames it never sends. */
function rebuild(m: ReturnType<typeof decodeMessage>, typed: boolean): Outgoing | null {
  const a = m.attrs;
  // JS values, as our callers and method handlers give them; or, for a frame whose
  // sender chose other wire types (rpcd writes some small numbers as INT64), typed nodes.
  const data = (b: Uint8Array): UbusTable | Uint8Array => (typed ? encodeNodes(decodeNodes(b, true)) : decodeTable(b));
  const reply = (status: number, b?: Uint8Array) => {
    const payload = b ? (typed ? encodeNodes(decodeNodes(b, true)) : encodeTable(decodeTable(b))) : undefined;
    const out = replyMessages(m.seq, m.peer, a.objid!, status, payload);
    return m.type === MSG.DATA ? out[0]! : out.at(-1)!;
  };
  switch (m.type) {
    case MSG.LOOKUP: return lookupRequest(a.objpath);
    case MSG.ADD_OBJECT: {
      if (!a.objpath) return addObjectRequest();
      const sig: Record<string, Record<string, number>> = {};
      for (const meth of decodeNodes(a.signature!, true)) {
        sig[meth.name] = Object.fromEntries((meth.value as BlobmsgNode[]).map((x) => [x.name, x.value as number]));
      }
      return addObjectRequest(a.objpath, sig);
    }
    case MSG.REMOVE_OBJECT: return removeObjectRequest(a.objid!);
    case MSG.SUBSCRIBE: return subscribeRequest(a.objid!, a.target!);
    case MSG.NOTIFY: return notifyRequest(a.objid!, a.method!, data(a.data!));
    case MSG.INVOKE: {
      if (a.objid === 3 || !a.data || !a.method) return null; // monitor control (DATA not blobmsg), crafted frames
      const args = decodeTable(a.data);
      if (a.objid === 1 && a.method === 'register') return listenRequest((args.object as number) >>> 0, args.pattern as string);
      if (a.objid === 1 && a.method === 'send') return sendRequest(args.id as string, args.data as UbusTable);
      return invokeRequest(a.objid!, a.method, data(a.data));
    }
    case MSG.DATA: return reply(0, a.data);
    case MSG.STATUS: return reply(a.status!);
    default: return null; // PING and crafted type 42: our client sends neither
  }
}

/** True when the sender chose a wire type our rules would not (INT64 or INT16 for an int32-range number). */
function senderTyped(nodes: BlobmsgNode[]): boolean {
  return nodes.some((n) =>
    Array.isArray(n.value) ? senderTyped(n.value) :
    (n.type === BLOBMSG.INT64 && Number(n.value) >= -0x80000000 && Number(n.value) <= 0x7fffffff) ||
    n.type === BLOBMSG.INT16 || (n.type === BLOBMSG.DOUBLE && Number.isInteger(n.value)));
}

test('every client frame our client would send is rebuilt byte for byte (seq and peer from the recording)', () => {
  const kinds = new Map<string, number>();
  const typedFrames: string[] = [];
  for (const f of frames.filter((f) => f.dir === 'c2s')) {
    const m = decodeMessage(f.bytes);
    const typed = !!m.attrs.data && senderTyped(decodeNodesSafe(m.attrs.data));
    const o = rebuild(m, typed);
    if (!o) continue;
    // seq comes from the recording (the connection counts it); the builder sets peer itself.
    assert.is(hex(encodeMessage({ type: o.type, seq: m.seq, peer: o.peer }, o.attrs)), hex(f.bytes), where(f));
    kinds.set(f.type_name!, (kinds.get(f.type_name!) ?? 0) + 1);
    if (typed) typedFrames.push(where(f));
  }
  assert.equal([...kinds.keys()].sort(), ['ADD_OBJECT', 'DATA', 'INVOKE', 'LOOKUP', 'NOTIFY', 'REMOVE_OBJECT', 'STATUS', 'SUBSCRIBE']);
  // Only rpcd's login reply (timeout/expires as INT64) needs the sender's types kept.
  assert.equal(typedFrames, ['06-rpcd-session.jsonl conn 0 c2s #4 DATA']);
});

function decodeNodesSafe(b: Uint8Array): BlobmsgNode[] {
  try {
    return decodeNodes(b, true);
  } catch {
    return [];
  }
}

test.run();
