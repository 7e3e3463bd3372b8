import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6, createServer, type Server, type Socket } from 'node:net';
import { normalizeRemoteAddress } from '../../shared/cidr.ts';
import type { Resolver } from './resolver.ts';

// UDP and TCP listeners for the resolver. TCP follows RFC 7766: 2-byte length
// prefixes, several queries per connection answered as they complete (out of
// order is allowed, §6.2.1.1), idle connections closed, bounded work per
// connection. Nothing about a query is ever logged.

export interface DnsServer {
  close(): Promise<void>;
  addresses(): { address: string; port: number }[];
}

export interface DnsServerOptions {
  addresses: string[];
  /** 0: a free port per address (UDP and TCP share it). */
  port: number;
  log?: (line: string) => void;
  /** A TCP connection with nothing outstanding is closed after this long (default 10 s). */
  tcpIdleMs?: number;
  /** Open TCP connections at most (default 256). */
  maxTcpConnections?: number;
  /** Queries of one TCP connection being answered at once; reading pauses beyond (default 32). */
  maxTcpPipeline?: number;
}

interface Listener {
  udp: UdpSocket;
  tcp: Server;
  address: string;
  port: number;
}

const BIND_ATTEMPTS = 20;
// Room for bursts of queries while the event loop is busy; the kernel may cap it lower.
const UDP_BUFFER = 4 * 1024 * 1024;

export async function serveDns(resolver: Resolver, opts: DnsServerOptions): Promise<DnsServer> {
  const log = opts.log ?? (() => {});
  const idleMs = opts.tcpIdleMs ?? 10_000;
  const maxPipeline = opts.maxTcpPipeline ?? 32;
  const connections = new Set<Socket>();
  const listeners: Listener[] = [];
  // Errors are reported once per kind: a flood must not flood the log.
  const reported = new Set<string>();
  const report = (what: string, err: unknown) => {
    const code = (err as NodeJS.ErrnoException)?.code ?? (err instanceof Error ? err.name : 'error');
    if (reported.has(`${what} ${code}`)) return;
    if (reported.size > 100) reported.clear();
    reported.add(`${what} ${code}`);
    log(`DNS: ${what}: ${err instanceof Error ? err.message : String(err)}`);
  };

  const ctx: ServeContext = { resolver, report, connections, idleMs, maxPipeline };
  try {
    for (const address of opts.addresses) listeners.push(await listen(ctx, address, opts.port, opts.maxTcpConnections ?? 256));
  } catch (e) {
    await Promise.all(listeners.map(closeListener));
    throw e;
  }

  let closing: Promise<void> | null = null;
  return {
    addresses: () => listeners.map((l) => ({ address: l.address, port: l.port })),
    close: () =>
      (closing ??= (async () => {
        for (const c of connections) c.destroy();
        connections.clear();
        await Promise.all(listeners.map(closeListener));
      })()),
  };
}

interface ServeContext {
  resolver: Resolver;
  report: (what: string, err: unknown) => void;
  connections: Set<Socket>;
  idleMs: number;
  maxPipeline: number;
}

async function listen(ctx: ServeContext, address: string, port: number, maxConnections: number): Promise<Listener> {
  for (let attempt = 1; ; attempt++) {
    const udp = await bindUdp(ctx, address, port);
    const bound = udp.address().port;
    const tcp = createServer({ noDelay: true }, (s) => serveTcp(ctx, s));
    tcp.maxConnections = maxConnections;
    tcp.on('error', (e) => ctx.report(`TCP listener ${address}`, e));
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port: bound, ipv6Only: isIPv6(address) }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      return { udp, tcp, address, port: bound };
    } catch (e) {
      udp.close();
      // Port 0 gave a UDP port whose TCP twin is taken: pick again.
      if (port !== 0 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= BIND_ATTEMPTS) {
        throw new Error(`DNS: cannot listen on TCP ${address} port ${bound}: ${(e as Error).message}`);
      }
    }
  }
}

function bindUdp(ctx: ServeContext, address: string, port: number): Promise<UdpSocket> {
  const v6 = isIPv6(address);
  const family = v6 ? 6 : 4;
  const udp = createSocket({
    type: v6 ? 'udp6' : 'udp4',
    ipv6Only: v6,
    // Replies go to the literal address a query came from: skip dns.lookup (and its tick) per send.
    lookup: (host, _o, cb) => cb(null, host, family),
  });
  return new Promise((resolve, reject) => {
    udp.once('error', (e) => {
      try {
        udp.close();
      } catch {
        // never bound: nothing to close
      }
      reject(new Error(`DNS: cannot listen on UDP ${address} port ${port}: ${e.message}`));
    });
    udp.bind({ address, port, exclusive: true }, () => {
      udp.removeAllListeners('error');
      udp.on('error', (e) => ctx.report(`UDP ${address}`, e));
      for (const set of [(n: number) => udp.setRecvBufferSize(n), (n: number) => udp.setSendBufferSize(n)]) {
        try {
          set(UDP_BUFFER);
        } catch {
          // the kernel's limit stands
        }
      }
      serveUdp(ctx, udp);
      resolve(udp);
    });
  });
}

function serveUdp(ctx: ServeContext, udp: UdpSocket): void {
  const { resolver, report } = ctx;
  // One object reused for every query: the resolver reads it during the call only.
  const from: { address: string; transport: 'udp' | 'tcp' } = { address: '', transport: 'udp' };
  udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    from.address = clientAddress(rinfo.address);
    let reply: Uint8Array | null | Promise<Uint8Array | null>;
    try {
      reply = resolver.answer(msg, from);
    } catch (e) {
      report('resolver failed on a query', e);
      return;
    }
    if (reply === null) return;
    if (reply instanceof Uint8Array) {
      udp.send(reply, rinfo.port, rinfo.address);
      return;
    }
    const { port, address } = rinfo;
    reply.then(
      (r) => {
        if (r) udp.send(r, port, address);
      },
      (e) => report('resolver failed on a query', e),
    );
  });
}

function serveTcp(ctx: ServeContext, sock: Socket): void {
  const { resolver, report, connections } = ctx;
  connections.add(sock);
  const from: { address: string; transport: 'udp' | 'tcp' } = { address: clientAddress(sock.remoteAddress ?? ''), transport: 'tcp' };
  let buffered: Buffer | null = null;
  let outstanding = 0;
  let closed = false;
  let waitingDrain = false;

  const send = (reply: Uint8Array) => {
    if (closed) return;
    const framed = Buffer.allocUnsafe(reply.length + 2);
    framed.writeUInt16BE(reply.length, 0);
    framed.set(reply, 2);
    if (!sock.write(framed) && !waitingDrain) {
      // The client does not read: stop reading its queries until it does.
      waitingDrain = true;
      sock.pause();
      sock.once('drain', () => {
        waitingDrain = false;
        resume();
      });
    }
  };
  const resume = () => {
    if (closed || waitingDrain || outstanding >= ctx.maxPipeline) return;
    sock.resume();
    drain();
  };
  // Answers every complete message in the buffer, unless paused.
  const drain = () => {
    while (!closed && buffered && buffered.length >= 2 && !sock.isPaused()) {
      const len = buffered.readUInt16BE(0);
      if (buffered.length < len + 2) break;
      const msg = buffered.subarray(2, len + 2);
      buffered = buffered.length === len + 2 ? null : buffered.subarray(len + 2);
      let reply: Uint8Array | null | Promise<Uint8Array | null>;
      try {
        reply = resolver.answer(msg, from);
      } catch (e) {
        report('resolver failed on a query', e);
        reply = null;
      }
      if (reply === null) {
        // Not ours, or not a query: nothing more to say on this connection.
        sock.destroy();
        return;
      }
      if (reply instanceof Uint8Array) {
        send(reply);
        continue;
      }
      outstanding++;
      if (outstanding >= ctx.maxPipeline) sock.pause();
      reply.then(
        (r) => {
          outstanding--;
          if (r) send(r);
          if (sock.isPaused()) resume();
        },
        (e) => {
          outstanding--;
          report('resolver failed on a query', e);
          if (sock.isPaused()) resume();
        },
      );
    }
  };

  sock.setNoDelay(true);
  sock.setTimeout(ctx.idleMs, () => {
    // Idle means nothing outstanding (RFC 7766 §6.2.3); an answer still coming re-arms the timer when written.
    if (outstanding === 0) sock.destroy();
  });
  sock.on('data', (chunk: Buffer) => {
    buffered = buffered ? Buffer.concat([buffered, chunk]) : chunk;
    drain();
  });
  sock.on('error', () => {}); // resets and the like: the connection just ends
  sock.on('close', () => {
    closed = true;
    buffered = null;
    connections.delete(sock);
  });
}

/** The address a resolver sees: "::ffff:192.0.2.1" → "192.0.2.1", no %zone. */
function clientAddress(raw: string): string {
  if (raw.charCodeAt(0) === 0x3a /* : */ || raw.includes('%')) return normalizeRemoteAddress(raw);
  return raw;
}

function closeListener(l: Listener): Promise<void> {
  return new Promise<void>((resolve) => {
    l.udp.close(() => l.tcp.close(() => resolve()));
  });
}
