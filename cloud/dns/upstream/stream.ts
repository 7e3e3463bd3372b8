import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, rootCertificates } from 'node:tls';
import { UpstreamError } from './error.ts';
import { isAnswerTo, messageId, randomId, withId } from './message.ts';
import type { TlsTrust, Transport } from './transport.ts';

// DNS over TCP (RFC 7766) and over TLS (RFC 7858): each message behind a
// two-byte length. One connection per upstream, reused and pipelined: answers
// may come in any order and are matched by ID and question. Closed by the
// server (idle timeout, restart) → the next query opens a new one.

/** Queries in flight on one connection at most (IDs must stay unique on it). */
const MAX_IN_FLIGHT = 4096;
/** We close a connection nobody used for this long; servers drop idle ones anyway. */
const IDLE_MS = 20_000;

interface Pending {
  sent: Buffer; // the query with our ID, without the length prefix
  qEnd: number;
  resolve(answer: Uint8Array): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
  /** The connection it was last sent on. */
  conn: Connection | null;
  /** Already sent again after a connection closed under it. */
  retried: boolean;
}

interface Connection {
  socket: Socket;
  pending: Map<number, Pending>;
  /** The connection was up (TCP connected, TLS handshake done and verified). */
  up: boolean;
  error: Error | null;
}

export function createTcpTransport(address: string, port: number): Transport {
  return createStreamTransport(() => tcpConnect({ host: address, port }), 'connect');
}

/** TLS to `address`, with SNI and the certificate checked against `host` (RFC 7858 §4.1 / RFC 8310 strict profile). */
export function createDotTransport(host: string, address: string, port: number, trust: TlsTrust): Transport {
  const ca = trust.ca ? [...rootCertificates, trust.ca] : undefined;
  return createStreamTransport(
    () =>
      tlsConnect({
        host: address,
        port,
        // RFC 6066 §3: SNI carries names only, never an IP address.
        ...(isIP(host) === 0 && { servername: host }),
        ...(ca && { ca }),
        checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
      }),
    'secureConnect',
  );
}

function createStreamTransport(open: () => Socket, readyEvent: 'connect' | 'secureConnect'): Transport {
  let conn: Connection | null = null;
  let closed = false;

  const connection = (): Connection => {
    if (conn && !conn.socket.destroyed) return conn;
    const socket = open();
    const c: Connection = { socket, pending: new Map(), up: false, error: null };
    conn = c;
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_MS, () => {
      if (c.pending.size === 0) socket.destroy();
    });
    socket.once(readyEvent, () => (c.up = true));
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) break;
        const msg = Buffer.from(buffered.subarray(2, 2 + len)); // a copy: the answer outlives the chunk
        buffered = buffered.subarray(2 + len);
        const p = c.pending.get(messageId(msg));
        if (p && isAnswerTo(p.sent, p.qEnd, msg)) settle(p, null, msg);
      }
    });
    socket.on('error', (e) => (c.error = e));
    socket.on('close', () => {
      if (conn === c) conn = null;
      for (const p of [...c.pending.values()]) {
        // Closed after it was up: most likely the server's idle timeout racing
        // our query. Worth one more try on a fresh connection.
        if (c.up && !p.retried && !closed) {
          c.pending.delete(messageId(p.sent));
          p.retried = true;
          send(p);
        } else {
          settle(p, connectionError(c));
        }
      }
    });
    return c;
  };

  /** Ends a query: off its connection's list (the connection may then idle), timer cleared. */
  const settle = (p: Pending, err: Error | null, answer?: Uint8Array) => {
    clearTimeout(p.timer);
    const c = p.conn;
    p.conn = null;
    if (c && c.pending.get(messageId(p.sent)) === p) {
      c.pending.delete(messageId(p.sent));
      if (c.pending.size === 0) c.socket.unref();
    }
    if (err) p.reject(err);
    else p.resolve(answer!);
  };

  const send = (p: Pending) => {
    const c = connection();
    let id = messageId(p.sent);
    for (let tries = 0; c.pending.has(id) && tries < 16; tries++) id = randomId();
    if (c.pending.has(id) || c.pending.size >= MAX_IN_FLIGHT) {
      settle(p, new UpstreamError('too many queries in flight'));
      return;
    }
    p.sent[0] = id >> 8;
    p.sent[1] = id & 0xff;
    p.conn = c;
    c.pending.set(id, p);
    c.socket.ref();
    const frame = Buffer.allocUnsafe(2 + p.sent.length);
    frame.writeUInt16BE(p.sent.length, 0);
    p.sent.copy(frame, 2);
    c.socket.write(frame);
  };

  return {
    exchange(query, qEnd, timeoutMs) {
      if (closed) return Promise.reject(new UpstreamError('upstream closed'));
      if (query.length > 0xffff) return Promise.reject(new UpstreamError('query too long for a TCP frame'));
      return new Promise((resolve, reject) => {
        const p: Pending = {
          sent: withId(query, randomId()),
          qEnd,
          resolve,
          reject,
          retried: false,
          conn: null,
          timer: setTimeout(() => {
            const c = p.conn;
            settle(p, c && !c.up && c.error ? connectionError(c) : new UpstreamError(`no answer within ${timeoutMs} ms`));
          }, timeoutMs),
        };
        send(p);
      });
    },
    async close() {
      closed = true;
      const c = conn;
      if (!c) return;
      conn = null;
      if (c.socket.closed) return;
      await new Promise<void>((resolve) => {
        c.socket.once('close', () => resolve());
        c.socket.destroy();
      });
    },
  };
}

function connectionError(c: Connection): UpstreamError {
  const e = c.error as NodeJS.ErrnoException | null;
  if (!e) return new UpstreamError('connection closed before the answer');
  const what = e.code === 'ECONNREFUSED' ? 'connection refused' : e.message;
  return new UpstreamError(c.up ? what : `cannot connect: ${what}`, { cause: e });
}
