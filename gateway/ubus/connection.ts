// One connection to ubusd: the socket, the frame reader, and requests matched
// to their replies. ubusd answers a request with zero or more DATA frames and
// one STATUS, all carrying the request's seq and peer (ubusd rewrites peer to
// the object id when it relays an object owner's reply, which is also the
// peer we sent the INVOKE to).
//
// File descriptors: ubusd may pass fds with SCM_RIGHTS (a method's STATUS can
// carry one). Node's net sockets cannot receive them; the kernel discards and
// closes fds sent to a reader that provides no ancillary buffer (unix(7)), so
// nothing leaks, and the frame's bytes decode as usual. Our methods never use fds.
import net from 'node:net';
import { UbusError, UBUS_STATUS } from './error.ts';
import { decodeMessage, encodeMessage, FrameReader, MSG, type UbusAttrs, type UbusMessage } from './message.ts';
import type { Outgoing } from './requests.ts';

export interface Reply {
  status: number;
  /** The attributes of every DATA frame, in order. */
  data: UbusAttrs[];
}

interface Pending {
  peer: number;
  data: UbusAttrs[];
  timer: NodeJS.Timeout;
  resolve(r: Reply): void;
  reject(e: Error): void;
  /** Runs synchronously on STATUS, before frames that follow in the same read are handled. */
  onStatus?: (r: Reply) => void;
}

export interface ConnectionHandlers {
  /** Frames that are not replies to our requests: INVOKE, NOTIFY, UNSUBSCRIBE, late replies. */
  onMessage(conn: Connection, msg: UbusMessage): void;
  onClose(conn: Connection): void;
  log(m: string): void;
}

const closedError = () => new UbusError(UBUS_STATUS.CONNECTION_FAILED, 'ubus connection closed');

export class Connection {
  readonly clientId: number;
  private readonly socket: net.Socket;
  private readonly handlers: ConnectionHandlers;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  closed = false;

  constructor(socket: net.Socket, clientId: number, handlers: ConnectionHandlers) {
    this.socket = socket;
    this.clientId = clientId;
    this.handlers = handlers;
  }

  send(frame: Uint8Array): void {
    if (!this.closed) this.socket.write(frame);
  }

  /** Sends a request and waits for its STATUS; DATA frames before it are collected. */
  request(out: Outgoing, timeoutMs: number, onStatus?: (r: Reply) => void): Promise<Reply> {
    if (this.closed) return Promise.reject(closedError());
    const { type, peer, attrs } = out;
    const seq = this.nextSeq();
    const frame = encodeMessage({ type, seq, peer }, attrs);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new UbusError(UBUS_STATUS.TIMEOUT, `ubus request timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const p: Pending = { peer, data: [], timer, resolve, reject };
      if (onStatus) p.onStatus = onStatus;
      this.pending.set(seq, p);
      this.send(frame);
    });
  }

  /** seq is a u16 counting from 1 (libubus); skip numbers still waiting for a reply. */
  private nextSeq(): number {
    for (let i = 0; i < 0xffff; i++) {
      this.seq = (this.seq % 0xffff) + 1;
      if (!this.pending.has(this.seq)) return this.seq;
    }
    throw new UbusError(UBUS_STATUS.NO_MEMORY, 'too many ubus requests in flight');
  }

  /** Handles one received frame. */
  dispatch(msg: UbusMessage): void {
    const p = msg.type === MSG.STATUS || msg.type === MSG.DATA ? this.pending.get(msg.seq) : undefined;
    // A reply carries the request's peer; a notify's relayed subscriber STATUS
    // carries the subscriber's id instead and is not ours to wait for.
    if (!p || p.peer !== msg.peer) return this.handlers.onMessage(this, msg);
    if (msg.type === MSG.DATA) {
      p.data.push(msg.attrs);
      return;
    }
    this.pending.delete(msg.seq);
    clearTimeout(p.timer);
    const reply = { status: msg.attrs.status ?? UBUS_STATUS.INVALID_COMMAND, data: p.data };
    try {
      p.onStatus?.(reply);
    } catch (e) {
      return p.reject(e as Error);
    }
    p.resolve(reply);
  }

  /** A reply that could not be decoded fails its request at once rather than by timeout. */
  failReply(frame: Uint8Array, e: Error): boolean {
    const type = frame[1];
    if (type !== MSG.STATUS && type !== MSG.DATA) return false;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const seq = view.getUint16(2);
    const p = this.pending.get(seq);
    if (!p || p.peer !== view.getUint32(4)) return false;
    this.pending.delete(seq);
    clearTimeout(p.timer);
    p.reject(e);
    return true;
  }

  /** Ends the connection; every pending request fails with CONNECTION_FAILED. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        this.shutdown();
        return resolve();
      }
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(closedError());
    }
    this.pending.clear();
    this.handlers.onClose(this);
  }
}

/** Connects to one socket path and waits for ubusd's HELLO, which carries our client id. */
export function openConnection(path: string, timeoutMs: number, handlers: ConnectionHandlers): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const reader = new FrameReader();
    let conn: Connection | null = null;
    const fail = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e instanceof UbusError ? e : new UbusError(UBUS_STATUS.CONNECTION_FAILED, `ubus socket ${path}: ${e.message}`));
    };
    const timer = setTimeout(() => fail(new Error(`no HELLO from ubusd within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (e) => {
      if (!conn) fail(e);
      else handlers.log(`ubus socket error: ${e.message}`);
    });
    socket.on('close', () => {
      if (!conn) return fail(new Error('closed before HELLO'));
      conn.shutdown();
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        // The stream cannot be resynchronised: drop it (and reconnect).
        handlers.log(`ubus: ${(e as Error).message}; closing the connection`);
        socket.destroy();
        return;
      }
      for (const f of frames) {
        let msg: UbusMessage;
        try {
          msg = decodeMessage(f);
        } catch (e) {
          if (!conn?.failReply(f, e as Error)) handlers.log(`ubus: skipped a frame: ${(e as Error).message}`);
          continue;
        }
        // libubus drops frames of another protocol version.
        if (msg.version !== 0) {
          handlers.log(`ubus: skipped a frame with version ${msg.version}`);
          continue;
        }
        if (conn) conn.dispatch(msg);
        else if (msg.type === MSG.HELLO) {
          clearTimeout(timer);
          conn = new Connection(socket, msg.peer, handlers);
          resolve(conn);
        } else handlers.log(`ubus: frame type ${msg.type} before HELLO ignored`);
      }
    });
  });
}
