// Our ubus client against a small test ubusd (built on our codec, doing only
// what the recorded traffic shows) on a unix socket in a temp dir.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeTable, encodeTable } from '../../gateway/ubus/blobmsg.ts';
import { connectUbus, UbusError, UBUS_STATUS, type UbusClient, type UbusTable } from '../../gateway/ubus/index.ts';
import { decodeMessage, encodeMessage, FrameReader, MSG, type UbusMessage } from '../../gateway/ubus/message.ts';
import { loadVectors } from '../unit/ubus-vectors.ts';
import { connectRawPeer, type RawPeer } from './lib/ubus-raw-peer.ts';
import { createTestUbusd, type TestUbusd } from './lib/test-ubusd.ts';

interface Bus {
  ubusd: TestUbusd;
  connect(opts?: { reconnect?: boolean; timeoutMs?: number }): Promise<UbusClient>;
  raw(): Promise<RawPeer>;
  logs: string[];
}

/** A fresh test ubusd in a temp dir; every client, peer, socket and dir is cleaned up. */
async function withBus(fn: (bus: Bus) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'aerie-ubus-'));
  const ubusd = createTestUbusd(join(dir, 'ubus.sock'));
  const clients: UbusClient[] = [];
  const raws: RawPeer[] = [];
  const logs: string[] = [];
  try {
    await ubusd.start();
    await fn({
      ubusd,
      logs,
      async connect(opts = {}) {
        const c = await connectUbus({ socket: ubusd.path, timeoutMs: 2000, log: (m) => logs.push(m), ...opts });
        clients.push(c);
        return c;
      },
      async raw() {
        const r = await connectRawPeer(ubusd.path);
        raws.push(r);
        return r;
      },
    });
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    for (const r of raws) r.close();
    await ubusd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rejects(p: Promise<unknown>, status: number, message?: RegExp): Promise<UbusError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, UbusError, String(e));
    assert.is((e as UbusError).status, status, `${(e as Error).message}`);
    if (message) assert.match((e as Error).message, message);
    return e as UbusError;
  }
  return assert.unreachable(`expected a UbusError with status ${status}`) as never;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.unreachable(`timed out waiting for ${what}`);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Adds an object from a raw peer; returns its id. */
async function rawObject(r: RawPeer, path: string, seq: number): Promise<number> {
  r.send(MSG.ADD_OBJECT, seq, 0, { objpath: path, signature: encodeTable({ get: { x: 5 } }) });
  const d = await r.next((m) => m.type === MSG.DATA && m.seq === seq);
  await r.next((m) => m.type === MSG.STATUS && m.seq === seq);
  return d.attrs.objid!;
}

test('the test ubusd answers crafted frames as the real one did (file 09)', async () => {
  const recorded = loadVectors().frames.filter((f) => f.file.startsWith('09') && f.dir === 's2c' && f.type !== MSG.HELLO);
  await withBus(async ({ raw }) => {
    const r = await raw();
    const got: UbusMessage[] = [];
    const take = async (n: number) => {
      for (let i = 0; i < n; i++) got.push(await r.next(() => true));
    };
    r.send(MSG.PING, 1, 0);
    await take(2);
    r.send(MSG.INVOKE, 2, 0x12345678, { objid: 0x12345678, method: 'nomethod' });
    r.send(MSG.INVOKE, 3, 0x12345678, { objid: 0x12345678 });
    r.send(42, 4, 0);
    await take(3);
    const sig = encodeTable({ m: { a: 5, b: 3 } });
    r.send(MSG.ADD_OBJECT, 5, 0, { objpath: 'crafted', signature: sig });
    await take(2);
    const id = got.at(-2)!.attrs.objid!;
    r.send(MSG.LOOKUP, 6, 0, { objpath: 'crafted' });
    await take(2);
    r.send(MSG.REMOVE_OBJECT, 7, 0, { objid: id });
    await take(2);
    r.send(MSG.LOOKUP, 8, 0, { objpath: 'crafted' });
    r.send(MSG.INVOKE, 9, 1, { objid: 1, method: 'send', data: encodeTable({ id: 'crafted.event', data: { k: 'v' } }) });
    await take(2);
    const shape = (m: UbusMessage) => [m.type, m.seq, Object.keys(m.attrs), m.attrs.status, m.attrs.objpath, m.attrs.signature && decodeTable(m.attrs.signature)];
    assert.equal(got.map(shape), recorded.slice(0, got.length).map((f) => shape(decodeMessage(f.bytes))));
  });
});

test('lookup: exact, prefix* and all; signatures as `ubus list -v` shows them', async () => {
  await withBus(async ({ connect }) => {
    const a = await connect();
    const b = await connect();
    const one = await a.register('svc.one', { echo: { args: { msg: 'string', n: 'int32', on: 'bool' }, handler: () => {} } });
    await a.register('svc.two', { x: { handler: () => {} } });
    await a.register('other', {});
    const [found, ...rest] = await b.lookup('svc.one');
    assert.is(rest.length, 0);
    assert.is(found!.path, 'svc.one');
    assert.is(found!.id, one.id);
    assert.ok(found!.typeId > 0);
    assert.equal(found!.signature, { echo: { msg: 3, n: 5, on: 7 } });
    assert.equal((await b.lookup('svc.*')).map((o) => o.path).sort(), ['svc.one', 'svc.two']);
    assert.equal((await b.lookup()).map((o) => o.path).sort(), ['other', 'svc.one', 'svc.two']);
    assert.equal(await b.lookup('nope'), []);
    assert.equal(await b.lookup('nope*'), []);
  });
});

test('call: arguments arrive as sent, several DATA replies are merged into one table', async () => {
  await withBus(async ({ connect, raw }) => {
    const owner = await raw();
    const id = await rawObject(owner, 'multi', 1);
    const b = await connect();
    const result = b.call('multi', 'get', { x: 1, big: 8589934592, list: ['a', true, null], t: { d: 2.5 } });
    const inv = await owner.next((m) => m.type === MSG.INVOKE);
    assert.is(inv.attrs.method, 'get');
    assert.is(inv.attrs.objid, id);
    assert.equal(decodeTable(inv.attrs.data!), { x: 1, big: 8589934592, list: ['a', true, null], t: { d: 2.5 } });
    // The owner answers with the INVOKE's seq and peer (the caller's client id).
    owner.send(MSG.DATA, inv.seq, inv.peer, { objid: id, data: encodeTable({ a: 1 }) });
    owner.send(MSG.DATA, inv.seq, inv.peer, { objid: id, data: encodeTable({ b: [2, 'x'], a: 3 }) });
    owner.send(MSG.STATUS, inv.seq, inv.peer, { status: 0, objid: id });
    assert.equal(await result, { a: 3, b: [2, 'x'] });
    // No DATA at all is an empty table.
    const empty = b.call('multi', 'get');
    const inv2 = await owner.next((m) => m.type === MSG.INVOKE);
    assert.equal(decodeTable(inv2.attrs.data!), {}, 'DATA is always sent, {} by default');
    owner.send(MSG.STATUS, inv2.seq, inv2.peer, { status: 0, objid: id });
    assert.equal(await empty, {});
  });
});

test('call: a timeout is UbusError TIMEOUT; the late reply does not disturb the next call', async () => {
  await withBus(async ({ connect, raw }) => {
    const owner = await raw();
    const id = await rawObject(owner, 'slow', 1);
    const b = await connect();
    const started = Date.now();
    await rejects(b.call('slow', 'get', {}, { timeoutMs: 200 }), UBUS_STATUS.TIMEOUT, /ubus call slow get: .*timed out/);
    assert.ok(Date.now() - started < 1500);
    const late = await owner.next((m) => m.type === MSG.INVOKE);
    const next = b.call('slow', 'get', { n: 2 });
    const inv = await owner.next((m) => m.type === MSG.INVOKE);
    owner.send(MSG.DATA, late.seq, late.peer, { objid: id, data: encodeTable({ late: true }) });
    owner.send(MSG.STATUS, late.seq, late.peer, { status: 0, objid: id });
    owner.send(MSG.DATA, inv.seq, inv.peer, { objid: id, data: encodeTable({ n: 2 }) });
    owner.send(MSG.STATUS, inv.seq, inv.peer, { status: 0, objid: id });
    assert.equal(await next, { n: 2 });
  });
});

test('a registered object is called by a second client: results, deferred replies, error statuses', async () => {
  await withBus(async ({ connect, logs }) => {
    const a = await connect();
    const b = await connect();
    const seen: unknown[] = [];
    await a.register('svc', {
      echo: { args: { msg: 'string' }, handler: (args, caller) => (seen.push(caller), { got: args }) },
      later: { args: { ms: 'int32' }, handler: async (args) => (await sleep(args.ms as number), { waited: args.ms as number }) },
      none: { handler: () => undefined },
      bad: { handler: () => { throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, 'msg: expected a string'); } },
      denied: { handler: async () => { throw new UbusError(UBUS_STATUS.PERMISSION_DENIED, 'no'); } },
      crash: { handler: () => { throw new Error('boom'); } },
      unsendable: { handler: () => ({ f: (() => 1) as never }) },
      huge: { handler: () => ({ s: 'x'.repeat(1 << 20) }) },
    });
    assert.equal(await b.call('svc', 'echo', { msg: 'hi', n: -1 }), { got: { msg: 'hi', n: -1 } });
    assert.equal(seen, [{ user: 'root', group: 'root' }], 'USER and GROUP from ubusd reach the handler');
    // Deferred replies answer in their own time, each to its own call.
    const slow = b.call('svc', 'later', { ms: 150 });
    const fast = b.call('svc', 'later', { ms: 10 });
    assert.equal(await fast, { waited: 10 });
    assert.equal(await slow, { waited: 150 });
    assert.equal(await b.call('svc', 'none'), {});
    await rejects(b.call('svc', 'bad'), UBUS_STATUS.INVALID_ARGUMENT, /ubus call svc bad: INVALID_ARGUMENT/);
    await rejects(b.call('svc', 'denied'), UBUS_STATUS.PERMISSION_DENIED);
    await rejects(b.call('svc', 'crash'), UBUS_STATUS.UNKNOWN_ERROR);
    await rejects(b.call('svc', 'unsendable'), UBUS_STATUS.UNKNOWN_ERROR);
    await rejects(b.call('svc', 'huge'), UBUS_STATUS.UNKNOWN_ERROR, /UNKNOWN_ERROR/);
    assert.ok(logs.some((l) => l.includes('over the 1 MiB ubus limit')), 'a reply over 1 MiB is not sent');
    await rejects(b.call('svc', 'nosuchmethod'), UBUS_STATUS.METHOD_NOT_FOUND);
    await rejects(b.call('svc', 'toString'), UBUS_STATUS.METHOD_NOT_FOUND, /toString/);
    await rejects(b.call('nosuchobject', 'foo'), UBUS_STATUS.NOT_FOUND, /nosuchobject/);
    assert.ok(logs.some((l) => l.includes('boom')), 'a crashing handler is logged');
    await rejects(a.register('odd', { m: { args: { x: 'float' as never }, handler: () => {} } }), UBUS_STATUS.INVALID_ARGUMENT, /odd\.m\.x: unknown argument type float/);
    // Bad arguments are refused before anything is sent.
    await rejects(b.call('svc', 'echo', { s: 'a\0b' }), UBUS_STATUS.INVALID_ARGUMENT, /NUL/);
  });
});

test('removing an object: callers get NOT_FOUND afterwards', async () => {
  await withBus(async ({ connect, ubusd }) => {
    const a = await connect();
    const b = await connect();
    const reg = await a.register('gone', { m: { handler: () => ({ ok: true }) } });
    assert.equal(await b.call('gone', 'm'), { ok: true });
    await reg.remove();
    assert.equal(ubusd.paths(), []);
    await rejects(b.call('gone', 'm'), UBUS_STATUS.NOT_FOUND);
  });
});

test('events: listeners get what matches their pattern, and stop after unlisten', async () => {
  await withBus(async ({ connect }) => {
    const a = await connect();
    const b = await connect();
    const got: [string, string, UbusTable][] = [];
    const offNet = await a.listen('net.*', (e, d) => got.push(['net.*', e, d]));
    await a.listen('exact', (e, d) => got.push(['exact', e, d]));
    await b.send('net.up', { a: 1, b: [true, 'x'], c: { d: 2.5 } });
    await b.send('exact', {});
    await b.send('exactly', { no: 1 });
    await b.send('other');
    await waitFor('two events', () => got.length >= 2);
    await sleep(50);
    assert.equal(got, [['net.*', 'net.up', { a: 1, b: [true, 'x'], c: { d: 2.5 } }], ['exact', 'exact', {}]]);
    await offNet();
    await b.send('net.down', {});
    await b.send('exact', { again: true });
    await waitFor('the exact event', () => got.length >= 3);
    await sleep(50);
    assert.equal(got.slice(2), [['exact', 'exact', { again: true }]]);
  });
});

test('subscribe and notify: the subscriber gets the owner\'s notifications until it unsubscribes', async () => {
  await withBus(async ({ connect }) => {
    const a = await connect();
    const b = await connect();
    const reg = await a.register('watched', { m: { handler: () => {} } });
    const got: [string, UbusTable][] = [];
    const off = await b.subscribe('watched', (type, data) => got.push([type, data]));
    await reg.notify('changed', { v: 1 });
    await reg.notify('ping');
    await waitFor('two notifications', () => got.length >= 2);
    assert.equal(got, [['changed', { v: 1 }], ['ping', {}]]);
    await off();
    await reg.notify('after', { v: 2 });
    await sleep(100);
    assert.is(got.length, 2, 'nothing after unsubscribing');
    await rejects(b.subscribe('nothing-here', () => {}), UBUS_STATUS.NOT_FOUND);
  });
});

test('a subscription follows its object when the object goes away and comes back (UNSUBSCRIBE)', async () => {
  await withBus(async ({ connect }) => {
    const a = await connect();
    const b = await connect();
    const notes: string[] = [];
    const first = await a.register('flappy', {});
    await b.subscribe('flappy', (type) => notes.push(type));
    await first.remove();
    const second = await a.register('flappy', {});
    await waitFor('the subscription on the new object', async () => {
      await second.notify('hello');
      await sleep(50);
      return notes.includes('hello');
    }, 8000);
  });
});

test('reconnect: pending calls fail, then objects, listeners and subscriptions come back', async () => {
  await withBus(async ({ connect, ubusd, logs }) => {
    const a = await connect();
    const b = await connect();
    const reg = await a.register('svc', {
      echo: { handler: (args) => ({ got: args }) },
      hang: { handler: () => new Promise<UbusTable>(() => {}) },
    });
    const firstId = reg.id;
    const events: string[] = [];
    await a.listen('ev.*', (e) => events.push(e));
    const notes: string[] = [];
    await b.subscribe('svc', (type) => notes.push(type));
    const pending = b.call('svc', 'hang', {}, { timeoutMs: 10_000 });
    await sleep(50);
    await ubusd.stop();
    await rejects(pending, UBUS_STATUS.CONNECTION_FAILED);
    await rejects(b.call('svc', 'echo'), UBUS_STATUS.CONNECTION_FAILED, /not connected/);
    await sleep(300); // a few failed attempts while ubusd is down
    await ubusd.start();
    await waitFor('the object back', async () => {
      try {
        return (await b.call('svc', 'echo', { n: 1 })).got !== undefined;
      } catch {
        return false;
      }
    });
    assert.is.not(reg.id, firstId, 'the object has a new id');
    assert.ok(reg.id > 0);
    assert.equal(await b.call('svc', 'echo', { n: 2 }), { got: { n: 2 } });
    await waitFor('the listener back', async () => {
      await b.send('ev.x');
      await sleep(30);
      return events.includes('ev.x');
    });
    // The subscriber may have come back before the object it watches; it keeps trying.
    await waitFor('the subscription back', async () => {
      await reg.notify('again');
      await sleep(30);
      return notes.includes('again');
    }, 8000);
    assert.ok(logs.some((l) => l.includes('reconnected')));
  });
});

test('without reconnect, and after close: calls fail with CONNECTION_FAILED', async () => {
  await withBus(async ({ connect, ubusd }) => {
    const once = await connect({ reconnect: false });
    const b = await connect();
    await once.register('x', { hang: { handler: () => new Promise<UbusTable>(() => {}) } });
    const pending = b.call('x', 'hang');
    await sleep(50);
    await b.close();
    await rejects(pending, UBUS_STATUS.CONNECTION_FAILED);
    await rejects(b.call('x', 'hang'), UBUS_STATUS.CONNECTION_FAILED, /closed/);
    await ubusd.stop();
    await ubusd.start();
    await sleep(300);
    await rejects(once.lookup(), UBUS_STATUS.CONNECTION_FAILED);
    assert.is(ubusd.clientCount(), 0, 'no reconnect attempt');
  });
});

test('a hostile server: a bad reply fails its request at once; a frame over 1 MiB drops the connection', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aerie-ubus-'));
  const path = join(dir, 'ubus.sock');
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.write(encodeMessage({ type: MSG.HELLO, seq: 0, peer: 0x1000 + sockets.length }));
    const reader = new FrameReader();
    s.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        const m = decodeMessage(f);
        if (m.type !== MSG.LOOKUP) continue;
        if (m.attrs.objpath === 'big') {
          const hdr = new Uint8Array(12);
          hdr[1] = MSG.DATA;
          new DataView(hdr.buffer).setUint32(8, 2 << 20);
          s.write(hdr);
        } else {
          // A STATUS whose OBJID has 3 bytes.
          const bad = Buffer.from('00010000000000000000000c0300000700000000', 'hex');
          bad.writeUInt16BE(m.seq, 2);
          s.write(bad);
        }
      }
    });
  });
  const logs: string[] = [];
  let client: UbusClient | null = null;
  try {
    await new Promise<void>((r) => server.listen(path, r));
    client = await connectUbus({ socket: path, timeoutMs: 3000, log: (m) => logs.push(m) });
    const started = Date.now();
    await rejects(client.lookup('x'), UBUS_STATUS.PARSE_ERROR, /objid: expected 4 bytes, got 3/);
    assert.ok(Date.now() - started < 1000, 'not by timeout');
    await rejects(client.lookup('big'), UBUS_STATUS.CONNECTION_FAILED);
    assert.ok(logs.some((l) => l.includes('over the 1 MiB ubus limit')), logs.join('\n'));
    await waitFor('a new connection', () => sockets.length >= 2);
  } finally {
    await client?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('connecting to a missing socket fails with CONNECTION_FAILED naming the path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aerie-ubus-'));
  try {
    await rejects(connectUbus({ socket: join(dir, 'none.sock'), timeoutMs: 500 }), UBUS_STATUS.CONNECTION_FAILED, /none\.sock/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
