// The ubus client: calls, lookups, events, subscriptions and our own objects
// over ubusd's unix socket, reconnecting (and re-registering) when ubusd
// restarts. Protocol facts come from ubusmsg.h and the recorded traffic in the
// ubus vectors README.
import { existsSync } from 'node:fs';
import { ARG_TYPE_CODE, decodeNodes, decodeTable, encodeTable, type BlobmsgNode } from './blobmsg.ts';
import { openConnection, type Connection, type Reply } from './connection.ts';
import { UbusError, UBUS_STATUS } from './error.ts';
import { answerInvoke, type LocalObject } from './local-object.ts';
import { MSG, type UbusMessage } from './message.ts';
import {
  addObjectRequest, invokeRequest, listenRequest, lookupRequest, notifyRequest,
  removeObjectRequest, sendRequest, subscribeRequest,
} from './requests.ts';
import type { UbusClient, UbusMethod, UbusObjectInfo, UbusRegistered, UbusTable } from './types.ts';

export interface ConnectUbusOptions {
  /** Default: /var/run/ubus/ubus.sock, then /var/run/ubus.sock (older OpenWrt). */
  socket?: string;
  /**
   * Default true: reconnect after ubusd goes away (back-off 0.1 s doubling to
   * 5 s), re-adding objects (under new ids), listeners and subscriptions.
   * Meanwhile requests fail at once with CONNECTION_FAILED; they do not wait.
   */
  reconnect?: boolean;
  log?: (m: string) => void;
  /** Default per-request timeout, 15 s. */
  timeoutMs?: number;
}

export const DEFAULT_SOCKETS = ['/var/run/ubus/ubus.sock', '/var/run/ubus.sock'];
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
const RESUBSCRIBE_MAX_MS = 30_000;

export async function connectUbus(opts: ConnectUbusOptions = {}): Promise<UbusClient> {
  const client = new Client(opts);
  await client.start();
  return client;
}

function statusError(status: number, what: string): UbusError {
  const e = new UbusError(status, '');
  e.message = `${what}: ${e.statusName}`;
  return e;
}

function check(r: Reply, what: string): Reply {
  if (r.status !== UBUS_STATUS.OK) throw statusError(r.status, what);
  return r;
}

function nodeTable(nodes: BlobmsgNode[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const m of nodes) {
    const args: Record<string, number> = {};
    if (Array.isArray(m.value)) for (const a of m.value) if (typeof a.value === 'number') args[a.name] = a.value;
    out[m.name] = args;
  }
  return out;
}

/** Puts b's members into a without going through a's setters (a key may be "__proto__"). */
function merge(a: UbusTable, b: UbusTable): void {
  for (const [k, v] of Object.entries(b)) Object.defineProperty(a, k, { value: v, enumerable: true, writable: true, configurable: true });
}

class Client implements UbusClient {
  private readonly sockets: string[];
  private readonly reconnect: boolean;
  private readonly log: (m: string) => void;
  private readonly timeoutMs: number;
  private conn: Connection | null = null;
  /** Our objects by their current id on this connection. */
  private readonly byId = new Map<number, LocalObject>();
  /** Every live local object, re-added after a reconnect. */
  private readonly registry = new Set<LocalObject>();
  private closing = false;
  private reconnectTimer: NodeJS.Timeout | null = null;

  constructor(opts: ConnectUbusOptions) {
    this.sockets = opts.socket ? [opts.socket] : DEFAULT_SOCKETS;
    this.reconnect = opts.reconnect ?? true;
    this.log = opts.log ?? (() => {});
    this.timeoutMs = opts.timeoutMs ?? 15_000;
  }

  async start(): Promise<void> {
    this.conn = await this.open();
  }

  private async open(): Promise<Connection> {
    const handlers = {
      onMessage: (c: Connection, m: UbusMessage) => this.onMessage(c, m),
      onClose: (c: Connection) => this.onClose(c),
      log: this.log,
    };
    const errors: string[] = [];
    // Sockets that exist first (the fallback is for older OpenWrt); if none does, each error is reported.
    const present = this.sockets.filter((p) => existsSync(p));
    const paths = present.length ? present : this.sockets;
    for (const path of paths) {
      try {
        return await openConnection(path, this.timeoutMs, handlers);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    throw new UbusError(UBUS_STATUS.CONNECTION_FAILED, `cannot connect to ubusd: ${errors.join('; ')}`);
  }

  private live(): Connection {
    if (!this.conn || this.conn.closed) throw new UbusError(UBUS_STATUS.CONNECTION_FAILED, this.closing ? 'ubus client closed' : 'not connected to ubusd');
    return this.conn;
  }

  // ---- requests ---------------------------------------------------------------

  async lookup(pattern?: string): Promise<UbusObjectInfo[]> {
    return this.lookupOn(this.live(), pattern, this.timeoutMs);
  }

  private async lookupOn(conn: Connection, pattern: string | undefined, timeoutMs: number): Promise<UbusObjectInfo[]> {
    const r = await conn.request(lookupRequest(pattern), timeoutMs);
    // ubusd answers NOT_FOUND when a path or prefix matches nothing.
    if (r.status === UBUS_STATUS.NOT_FOUND) return [];
    check(r, `ubus lookup ${pattern ?? '*'}`);
    return r.data.map((d) => ({
      path: d.objpath ?? '',
      id: d.objid ?? 0,
      typeId: d.objtype ?? 0,
      signature: d.signature ? nodeTable(decodeNodes(d.signature, true)) : {},
    }));
  }

  private async resolvePath(conn: Connection, path: string, timeoutMs: number): Promise<number> {
    if (typeof path !== 'string' || path === '' || path.includes('*')) {
      throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `ubus object path: expected a name, got ${JSON.stringify(path)}`);
    }
    const found = (await this.lookupOn(conn, path, timeoutMs)).find((o) => o.path === path);
    if (!found) throw new UbusError(UBUS_STATUS.NOT_FOUND, `ubus object ${path}: not found`);
    return found.id;
  }

  async call(path: string, method: string, args: UbusTable = {}, opts: { timeoutMs?: number } = {}): Promise<UbusTable> {
    const data = encodeTable(args); // bad arguments fail before any traffic
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const what = `ubus call ${path} ${method}`;
    try {
      const conn = this.live();
      const id = await this.resolvePath(conn, path, timeoutMs);
      const r = await conn.request(invokeRequest(id, method, data), Math.max(1, deadline - Date.now()));
      check(r, what);
      const out: UbusTable = {};
      for (const d of r.data) if (d.data) merge(out, decodeTable(d.data));
      return out;
    } catch (e) {
      if (e instanceof UbusError && !e.message.startsWith(what)) e.message = `${what}: ${e.message}`;
      throw e;
    }
  }

  async send(event: string, data: UbusTable = {}): Promise<void> {
    check(await this.live().request(sendRequest(event, data), this.timeoutMs), `ubus send ${event}`);
  }

  // ---- local objects ------------------------------------------------------------

  async listen(pattern: string, handler: (event: string, data: UbusTable) => void): Promise<() => Promise<void>> {
    const obj: LocalObject = { kind: 'listener', id: 0, pattern, handler };
    await this.attach(this.live(), obj);
    return () => this.detach(obj);
  }

  async subscribe(path: string, handler: (type: string, data: UbusTable) => void): Promise<() => Promise<void>> {
    const obj: LocalObject = { kind: 'subscriber', id: 0, path, handler };
    await this.attach(this.live(), obj);
    return () => this.detach(obj);
  }

  async register(name: string, methods: Record<string, UbusMethod>): Promise<UbusRegistered> {
    if (typeof name !== 'string' || name === '') throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, 'ubus object name: expected a non-empty string');
    const signature: Record<string, Record<string, number>> = {};
    for (const [m, def] of Object.entries(methods)) {
      signature[m] = {};
      for (const [arg, type] of Object.entries(def.args ?? {})) {
        const code = Object.hasOwn(ARG_TYPE_CODE, type) ? ARG_TYPE_CODE[type] : undefined;
        if (code === undefined) throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `${name}.${m}.${arg}: unknown argument type ${String(type)}`);
        signature[m][arg] = code;
      }
    }
    const obj: LocalObject = { kind: 'object', id: 0, name, methods, signature };
    await this.attach(this.live(), obj);
    return {
      get id() {
        return obj.id; // changes when a reconnect re-adds the object
      },
      notify: async (type, data = {}) => {
        const payload = encodeTable(data);
        const conn = this.live();
        if (!obj.id) throw new UbusError(UBUS_STATUS.NOT_FOUND, `ubus object ${name} is not registered`);
        // ubusd answers at once with the subscriber list; their own answers are not awaited.
        const r = await conn.request(notifyRequest(obj.id, type, payload), this.timeoutMs);
        check(r, `ubus notify ${name} ${type}`);
      },
      remove: () => this.detach(obj),
    };
  }

  /**
   * Adds the object on this connection: ADD_OBJECT, then event registration
   * or SUBSCRIBE. `again` is a re-add after a reconnect: a failure keeps the
   * object for the next connection, and a missing subscription target is
   * waited for (its owner may not have re-added it yet).
   */
  private async attach(conn: Connection, obj: LocalObject, again = false): Promise<void> {
    const t = this.timeoutMs;
    const add = obj.kind === 'object' ? addObjectRequest(obj.name, obj.signature) : addObjectRequest();
    let id = 0;
    // The id is mapped as the STATUS arrives, before an INVOKE in the same read.
    const r = await conn.request(add, t, (reply) => {
      id = reply.data.find((d) => d.objid !== undefined)?.objid ?? 0;
      if (reply.status === UBUS_STATUS.OK && id) this.byId.set(id, obj);
    });
    check(r, obj.kind === 'object' ? `ubus add object ${obj.name}` : `ubus add ${obj.kind}`);
    if (!id) throw new UbusError(UBUS_STATUS.UNKNOWN_ERROR, 'ubusd added an object without telling its id');
    obj.id = id;
    this.registry.add(obj);
    try {
      if (obj.kind === 'listener') {
        check(await conn.request(listenRequest(id, obj.pattern), t), `ubus listen ${obj.pattern}`);
      } else if (obj.kind === 'subscriber') {
        await this.subscribeTarget(conn, obj, t).catch((e: unknown) => {
          if (!again || !(e instanceof UbusError) || e.status !== UBUS_STATUS.NOT_FOUND) throw e;
          this.resubscribeLater(obj);
        });
      }
    } catch (e) {
      if (!again) this.registry.delete(obj);
      await this.removeObject(conn, obj).catch(() => {});
      throw e;
    }
  }

  private async subscribeTarget(conn: Connection, obj: LocalObject & { kind: 'subscriber' }, t: number): Promise<void> {
    const target = await this.resolvePath(conn, obj.path, t);
    check(await conn.request(subscribeRequest(obj.id, target), t), `ubus subscribe ${obj.path}`);
  }

  private async removeObject(conn: Connection, obj: LocalObject): Promise<void> {
    const id = obj.id;
    obj.id = 0;
    if (!id) return;
    this.byId.delete(id);
    if (conn.closed) return;
    const r = await conn.request(removeObjectRequest(id), this.timeoutMs);
    check(r, 'ubus remove object');
  }

  /** Removes the object (unlisten, unsubscribe, unregister): REMOVE_OBJECT ends its subscriptions too. */
  private async detach(obj: LocalObject): Promise<void> {
    if (!this.registry.delete(obj)) return;
    if (obj.kind === 'subscriber' && obj.retry) clearTimeout(obj.retry);
    if (this.conn && !this.conn.closed) await this.removeObject(this.conn, obj);
    else obj.id = 0;
  }

  // ---- incoming -------------------------------------------------------------------

  private onMessage(conn: Connection, msg: UbusMessage): void {
    if (conn !== this.conn) return;
    if (msg.type === MSG.INVOKE) return answerInvoke(conn, this.byId.get(msg.attrs.objid ?? 0), msg, this.log);
    if (msg.type === MSG.UNSUBSCRIBE) {
      // The watched object went away; it may come back under a new id.
      const obj = this.byId.get(msg.attrs.objid ?? 0);
      if (obj?.kind === 'subscriber') this.resubscribeLater(obj);
    }
    // NOTIFY {ACTIVE} (our object gained or lost subscribers) and late replies need nothing.
  }

  private resubscribeLater(obj: LocalObject & { kind: 'subscriber' }): void {
    if (obj.retry || this.closing) return;
    const delay = obj.retryMs = Math.min((obj.retryMs ?? 500) * 2, RESUBSCRIBE_MAX_MS);
    obj.retry = setTimeout(() => {
      delete obj.retry;
      const conn = this.conn;
      if (!conn || conn.closed || !this.registry.has(obj) || !obj.id) return;
      this.subscribeTarget(conn, obj, this.timeoutMs).then(
        () => void delete obj.retryMs,
        () => this.resubscribeLater(obj),
      );
    }, delay);
  }

  // ---- reconnecting -------------------------------------------------------------

  private onClose(conn: Connection): void {
    if (conn !== this.conn) return;
    this.conn = null;
    this.byId.clear();
    for (const obj of this.registry) {
      obj.id = 0;
      if (obj.kind === 'subscriber' && obj.retry) {
        clearTimeout(obj.retry);
        delete obj.retry;
      }
    }
    if (this.closing) return;
    if (!this.reconnect) return this.log('ubus: connection to ubusd lost');
    this.log('ubus: connection to ubusd lost, reconnecting');
    this.scheduleReconnect(BACKOFF_MIN_MS);
  }

  private scheduleReconnect(delay: number): void {
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.open().then(
        (conn) => {
          if (this.closing) return void conn.close();
          this.conn = conn;
          this.log(`ubus: reconnected as client ${conn.clientId.toString(16)}`);
          void this.reattach(conn);
        },
        () => {
          if (!this.closing) this.scheduleReconnect(Math.min(delay * 2, BACKOFF_MAX_MS));
        },
      );
    }, delay);
  }

  /** Objects first: a subscription or a listener may concern one of them. */
  private async reattach(conn: Connection): Promise<void> {
    const order = { object: 0, listener: 1, subscriber: 2 };
    const all = [...this.registry].sort((a, b) => order[a.kind] - order[b.kind]);
    for (const obj of all) {
      if (conn.closed) return;
      if (!this.registry.has(obj)) continue;
      try {
        await this.attach(conn, obj, true);
      } catch (e) {
        const what = obj.kind === 'object' ? obj.name : obj.kind === 'listener' ? `listener ${obj.pattern}` : `subscription to ${obj.path}`;
        this.log(`ubus: could not re-add ${what} (next reconnect tries again): ${(e as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    for (const obj of this.registry) if (obj.kind === 'subscriber' && obj.retry) clearTimeout(obj.retry);
    this.registry.clear();
    const conn = this.conn;
    if (conn) await conn.close();
    this.conn = null;
  }
}
