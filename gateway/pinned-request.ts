import { request, type IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { formatEndpoint, formatFingerprint } from '../shared/pairing-code.ts';

/**
 * One HTTPS request to a server whose self-signed certificate is pinned by
 * its SHA-256 fingerprint. The TLS handshake runs without CA checks (there is
 * no CA), then the certificate on the connected socket is compared with the
 * pin, and only after that does a single byte of the request go out on that
 * same socket: a wrong server learns nothing, not even the path.
 */

export interface PinnedRequest {
  host: string;
  port: number;
  /** SHA-256 of the server certificate's DER. */
  fingerprint: Uint8Array;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  /** For everything: connect, handshake, request and answer. */
  timeoutMs: number;
}

export interface PinnedReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The server is not the one the pairing code names, or could not be talked to. */
export class PinnedRequestError extends Error {
  readonly reason: 'fingerprint' | 'timeout' | 'network' | 'too-large';
  constructor(reason: PinnedRequestError['reason'], message: string) {
    super(message);
    this.name = 'PinnedRequestError';
    this.reason = reason;
  }
}

const MAX_BODY = 256 * 1024;

export async function pinnedRequest(req: PinnedRequest): Promise<PinnedReply> {
  const where = formatEndpoint(req.host, req.port);
  // Loaded here, not at start: only pairing needs TLS, and the daemon stays smaller without it.
  const { connect } = await import('node:tls');
  const { createHash, timingSafeEqual } = await import('node:crypto');
  return new Promise((resolve, reject) => {
    let settled = false;
    let socket: TLSSocket | null = null;
    const finish = (err: Error | null, reply?: PinnedReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => finish(new PinnedRequestError('timeout', `no answer from ${where} within ${Math.round(req.timeoutMs / 1000)} s`)),
      req.timeoutMs,
    );

    socket = connect({
      host: req.host,
      port: req.port,
      // SNI takes names only (RFC 6066 §3).
      ...(isIP(req.host) ? {} : { servername: req.host }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    socket.on('error', (e: NodeJS.ErrnoException) =>
      finish(new PinnedRequestError('network', `cannot reach ${where}: ${e.code ?? e.message}`)),
    );
    socket.once('secureConnect', () => {
      const raw = socket!.getPeerCertificate()?.raw;
      const seen = raw ? createHash('sha256').update(raw).digest() : null;
      if (!seen || seen.length !== req.fingerprint.length || !timingSafeEqual(seen, req.fingerprint)) {
        finish(
          new PinnedRequestError(
            'fingerprint',
            `the certificate of ${where} does not match the pairing code ` +
              `(expected SHA-256 ${formatFingerprint(req.fingerprint)}, got ${seen ? formatFingerprint(seen) : 'none'}); nothing was sent`,
          ),
        );
        return;
      }
      send(socket!);
    });

    function send(verified: TLSSocket) {
      const body = req.body ?? '';
      const r = request({
        // The verified socket carries the request; no agent, no second connection.
        createConnection: () => verified,
        host: req.host,
        port: req.port,
        method: req.method,
        path: req.path,
        headers: {
          host: where,
          accept: 'application/json',
          connection: 'close',
          ...(req.body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
        },
      });
      r.on('error', (e: NodeJS.ErrnoException) =>
        finish(new PinnedRequestError('network', `connection to ${where} failed: ${e.code ?? e.message}`)),
      );
      r.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) finish(new PinnedRequestError('too-large', `the answer from ${where} is larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('error', (e) => finish(new PinnedRequestError('network', `connection to ${where} failed: ${e.message}`)));
        res.on('end', () =>
          finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      r.end(body);
    }
  });
}
