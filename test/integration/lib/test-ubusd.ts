// A small ubusd for socket-level tests, built on our own codec. It does only
// what the recorded traffic of the real ubusd shows (see the ubus vectors
// README): HELLO, PING, LOOKUP, ADD/REMOVE_OBJECT, INVOKE forwarded to the
// owner with peer rewriting, events through object 1, SUBSCRIBE/NOTIFY.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { decodeTable, encodeTable } from '../../../gateway/ubus/blobmsg.ts';
import { UBUS_STATUS } from '../../../gateway/ubus/error.ts';
import { decodeMessage, encodeMessage, FrameReader, MSG, type UbusAttrs, type UbusMessage } from '../../../gateway/ubus/message.ts';
import type { UbusTable } from '../../../gateway/ubus/types.ts';

interface Client {
  id: number;
  sock: net.Socket;
}
interface Obj {
  id: number;
  owner: Client;
  path?: string;
  typeId?: number;
  signature?: Uint8Array;
  subscribers: Set<number>;
  notifySeq: number;
}

export interface TestUbusd {
  readonly path: string;
  start(): Promise<void>;
  /** Closes every connection and forgets every object, as a ubusd restart does. */
  stop(): Promise<void>;
  /** Paths of the objects now registered. */
  paths(): string[];
  clientCount(): number;
}

export function createTestUbusd(path: string, who = { user: 'root', group: 'root' }): TestUbusd {
  let server: net.Server | null = null;
  const clients = new Map<number, Client>();
  const objects = new Map<number, Obj>();
  let listeners: { objid: number; pattern: string }[] = [];
  let eventSeq = 0;
  let unsubscribeSeq = 0;

  // ubusd draws ids from /dev/urandom and keeps the low ones for its own objects.
  const newId = (taken: (id: number) => boolean) => {
    for (let i = 0; i < 1000; i++) {
      const id = randomBytes(4).readUInt32BE();
      if (id >= 1024 && !taken(id)) return id;
    }
    throw new Error('test ubusd: no free id');
  };
  const send = (c: Client, type: number, seq: number, peer: number, attrs: UbusAttrs = {}) => {
    if (!c.sock.destroyed) c.sock.write(encodeMessage({ type, seq, peer }, attrs));
  };
  const status = (c: Client, m: UbusMessage, code: number) => send(c, MSG.STATUS, m.seq, m.peer, { status: code });
  // Event patterns: exact, or a prefix ending in '*' ("*" is every event).
  const matches = (pattern: string, event: string) => (pattern.endsWith('*') ? event.startsWith(pattern.slice(0, -1)) : pattern === event);

  function emit(event: string, data: UbusTable): void {
    for (const l of listeners) {
      const obj = objects.get(l.objid);
      if (!obj || !matches(l.pattern, event)) continue;
      // Delivery: INVOKE with peer 0 and a global event seq (README, item 6).
      send(obj.owner, MSG.INVOKE, ++eventSeq & 0xffff, 0, { objid: obj.id, method: event, data: encodeTable(data) });
    }
  }

  function removeObject(obj: Obj): void {
    objects.delete(obj.id);
    listeners = listeners.filter((l) => l.objid !== obj.id);
    for (const s of obj.subscribers) {
      const sub = objects.get(s);
      if (sub) send(sub.owner, MSG.UNSUBSCRIBE, ++unsubscribeSeq, 0, { objid: s, target: obj.id });
    }
    for (const target of objects.values()) {
      if (target.subscribers.delete(obj.id) && target.subscribers.size === 0) {
        send(target.owner, MSG.NOTIFY, ++target.notifySeq, 0, { objid: target.id, active: false });
      }
    }
  }

  function invokeEvents(c: Client, m: UbusMessage): void {
    const args = m.attrs.data ? decodeTable(m.attrs.data) : {};
    if (m.attrs.method === 'register') {
      const objid = (args.object as number) >>> 0; // an INT32 on the wire (README, item 7)
      if (objects.get(objid)?.owner !== c || typeof args.pattern !== 'string') return status(c, m, UBUS_STATUS.INVALID_ARGUMENT);
      listeners.push({ objid, pattern: args.pattern });
      return status(c, m, UBUS_STATUS.OK);
    }
    if (m.attrs.method === 'send' && typeof args.id === 'string') {
      emit(args.id, (args.data ?? {}) as UbusTable);
      return status(c, m, UBUS_STATUS.OK);
    }
    status(c, m, UBUS_STATUS.INVALID_ARGUMENT);
  }

  function handle(c: Client, frame: Uint8Array, m: UbusMessage): void {
    const a = m.attrs;
    switch (m.type) {
      case MSG.PING: {
        // Echoed as DATA (same version, seq, peer, payload), then STATUS 0 (file 09).
        const pong = frame.slice();
        pong[1] = MSG.DATA;
        c.sock.write(pong);
        return status(c, m, UBUS_STATUS.OK);
      }
      case MSG.LOOKUP: {
        const p = a.objpath;
        const found = [...objects.values()].filter((o) => o.path !== undefined && (!p || (p.endsWith('*') ? o.path.startsWith(p.slice(0, -1)) : o.path === p)));
        if (p && !found.length) return status(c, m, UBUS_STATUS.NOT_FOUND);
        for (const o of found) send(c, MSG.DATA, m.seq, m.peer, { objpath: o.path, objid: o.id, objtype: o.typeId ?? 0, signature: o.signature ?? new Uint8Array(0) });
        return status(c, m, UBUS_STATUS.OK);
      }
      case MSG.ADD_OBJECT: {
        const obj: Obj = { id: newId((id) => objects.has(id)), owner: c, subscribers: new Set(), notifySeq: 0 };
        if (a.objpath) obj.path = a.objpath;
        if (a.signature) {
          obj.signature = a.signature;
          obj.typeId = newId(() => false);
        }
        objects.set(obj.id, obj);
        send(c, MSG.DATA, m.seq, m.peer, obj.typeId === undefined ? { objid: obj.id } : { objid: obj.id, objtype: obj.typeId });
        status(c, m, UBUS_STATUS.OK);
        if (obj.path) emit('ubus.object.add', { id: obj.id | 0, path: obj.path });
        return;
      }
      case MSG.REMOVE_OBJECT: {
        const obj = objects.get(a.objid ?? 0);
        if (!obj || obj.owner !== c) return status(c, m, UBUS_STATUS.NOT_FOUND);
        send(c, MSG.DATA, m.seq, m.peer, obj.typeId === undefined ? { objid: obj.id } : { objid: obj.id, objtype: obj.typeId });
        removeObject(obj);
        return status(c, m, UBUS_STATUS.OK);
      }
      case MSG.INVOKE: {
        // No METHOD is INVALID_ARGUMENT even for a missing object (file 09).
        if (!a.method) return status(c, m, UBUS_STATUS.INVALID_ARGUMENT);
        if (a.objid === 1) return invokeEvents(c, m);
        const obj = objects.get(a.objid ?? 0);
        if (!obj) return status(c, m, UBUS_STATUS.NOT_FOUND);
        // Forwarded with the caller's seq and peer = the caller's client id, plus USER and GROUP.
        const fwd: UbusAttrs = { objid: obj.id, method: a.method, user: who.user, group: who.group };
        if (a.data) fwd.data = a.data;
        return send(obj.owner, MSG.INVOKE, m.seq, c.id, fwd);
      }
      case MSG.DATA:
      case MSG.STATUS: {
        // An owner's reply: peer is the caller's client id; relayed with peer = OBJID.
        const to = clients.get(m.peer);
        if (!to || a.objid === undefined) return; // a listener's STATUS (peer 0) is dropped
        const relay = frame.slice();
        new DataView(relay.buffer).setUint32(4, a.objid);
        to.sock.write(relay);
        return;
      }
      case MSG.SUBSCRIBE: {
        const target = objects.get(a.target ?? 0);
        if (!target || objects.get(a.objid ?? 0)?.owner !== c) return status(c, m, UBUS_STATUS.NOT_FOUND);
        target.subscribers.add(a.objid!);
        if (target.subscribers.size === 1) send(target.owner, MSG.NOTIFY, ++target.notifySeq, 0, { objid: target.id, active: true });
        return status(c, m, UBUS_STATUS.OK);
      }
      case MSG.NOTIFY: {
        const obj = objects.get(a.objid ?? 0);
        if (!obj || obj.owner !== c) return status(c, m, UBUS_STATUS.NOT_FOUND);
        const subs = [...obj.subscribers];
        // At once: STATUS with the subscriber list; then each subscriber's answer is relayed.
        send(c, MSG.STATUS, m.seq, m.peer, { objid: obj.id, subscribers: subs, status: UBUS_STATUS.OK });
        for (const s of subs) {
          const sub = objects.get(s);
          const fwd: UbusAttrs = { objid: s, method: a.method ?? '', user: who.user, group: who.group };
          if (a.data) fwd.data = a.data;
          if (sub) send(sub.owner, MSG.INVOKE, m.seq, c.id, fwd);
        }
        return;
      }
      default:
        return status(c, m, UBUS_STATUS.INVALID_COMMAND);
    }
  }

  function accept(sock: net.Socket): void {
    const c: Client = { id: newId((id) => clients.has(id)), sock };
    clients.set(c.id, c);
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      try {
        for (const f of reader.push(chunk)) handle(c, f, decodeMessage(f));
      } catch {
        sock.destroy(); // a malformed frame ends the connection
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      clients.delete(c.id);
      for (const o of [...objects.values()]) if (o.owner === c) removeObject(o);
    });
    send(c, MSG.HELLO, 0, c.id);
  }

  return {
    path,
    start() {
      rmSync(path, { force: true });
      return new Promise((resolve, reject) => {
        const s = net.createServer(accept);
        s.once('error', reject);
        s.listen(path, () => {
          server = s;
          resolve();
        });
      });
    },
    async stop() {
      const s = server;
      server = null;
      for (const c of clients.values()) c.sock.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
      clients.clear();
      objects.clear();
      listeners = [];
      rmSync(path, { force: true });
    },
    paths: () => [...objects.values()].flatMap((o) => (o.path ? [o.path] : [])),
    clientCount: () => clients.size,
  };
}
