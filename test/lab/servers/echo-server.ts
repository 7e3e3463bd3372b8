import { createServer, type Server } from 'node:http';

export interface EchoOptions {
  /** Addresses to listen on (one socket each, so IPv4 clients are seen as plain IPv4). */
  addresses: readonly string[];
  port: number;
  /** Put before the address in the answer: "laptop 192.0.2.10". Empty for none. */
  label: string;
}

/** The client address as the server sees it, without the IPv4-mapped or zone decoration. */
function clientAddress(raw: string | undefined): string {
  const addr = raw ?? 'unknown';
  return (addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr).replace(/%.*$/, '');
}

/**
 * A tiny web server for the lab: `GET /` answers, as text/plain and with no
 * trailing newline, the client address it sees (after the label, if any).
 * It exits on SIGTERM/SIGINT and when its parent (the test) goes away, so a
 * crashed test never leaves it behind.
 */
export function serveEcho(opts: EchoOptions): void {
  const servers: Server[] = [];
  const stop = (code: number) => {
    for (const s of servers) s.close();
    for (const s of servers) s.closeAllConnections();
    process.exit(code);
  };

  for (const address of opts.addresses) {
    const server = createServer((req, res) => {
      const who = clientAddress(req.socket.remoteAddress);
      if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const body = opts.label ? `${opts.label} ${who}` : who;
      // An explicit length (not chunked) keeps the lab's raw connection holder simple.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    // Long keep-alive so a test can hold one connection open across a tunnel failure.
    server.keepAliveTimeout = 120_000;
    server.on('error', (e) => {
      console.error(`echo server on [${address}]:${opts.port}: ${e.message}`);
      stop(1);
    });
    server.listen({ host: address, port: opts.port, ipv6Only: true }, () => {
      console.log(`listening on [${address}]:${opts.port}`);
    });
    servers.push(server);
  }

  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // When the parent dies we are re-parented; that is the signal to go.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop(0);
  }, 500);
}
