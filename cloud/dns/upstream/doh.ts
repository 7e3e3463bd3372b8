import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { rootCertificates } from 'node:tls';
import { UpstreamError } from './error.ts';
import { isAnswerTo, withId } from './message.ts';
import type { TlsTrust, Transport } from './transport.ts';

// DNS over HTTPS (RFC 8484): each query a POST of application/dns-message on
// one HTTP/2 session, reused while it lasts. The certificate is checked
// against the URL's host. The ID on the wire is 0 (RFC 8484 §4.1: friendlier
// to HTTP caches; TLS already rules out spoofed answers).

const IDLE_MS = 30_000;
const MAX_ANSWER = 0xffff;
const MEDIA_TYPE = 'application/dns-message';

export function createDohTransport(url: string, trust: TlsTrust): Transport {
  const target = new URL(url);
  const path = `${target.pathname}${target.search}`;
  const ca = trust.ca ? [...rootCertificates, trust.ca] : undefined;
  let session: ClientHttp2Session | null = null;
  let sessionError: Error | null = null;
  let closed = false;
  /** What ends each request in flight. */
  const inFlight = new Set<(err: Error) => void>();

  const current = (): ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = connect(target.origin, { ...(ca && { ca }) });
    sessionError = null;
    // Each request reports the failure itself; keep the cause for its message.
    s.on('error', (e) => (sessionError = e));
    s.on('goaway', () => session === s && (session = null));
    s.on('close', () => session === s && (session = null));
    s.setTimeout(IDLE_MS, () => s.close());
    session = s;
    return s;
  };

  return {
    exchange(query, qEnd, timeoutMs) {
      if (closed) return Promise.reject(new UpstreamError('upstream closed'));
      const sent = withId(query, 0);
      return new Promise((resolve, reject) => {
        const s = current();
        s.ref();
        const req = s.request({
          ':method': 'POST',
          ':path': path,
          'content-type': MEDIA_TYPE,
          accept: MEDIA_TYPE,
          'content-length': sent.length,
        });
        const finish = (err: Error | null, answer?: Uint8Array) => {
          if (!inFlight.delete(finish)) return;
          clearTimeout(timer);
          if (inFlight.size === 0) s.unref();
          if (!req.closed) req.close(constants.NGHTTP2_CANCEL);
          if (err) reject(err);
          else resolve(answer!);
        };
        inFlight.add(finish);
        const timer = setTimeout(() => finish(new UpstreamError(`no answer within ${timeoutMs} ms`)), timeoutMs);
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('response', (headers) => {
          const status = headers[':status'];
          const type = String(headers['content-type'] ?? '');
          if (status !== 200) finish(new UpstreamError(`HTTP status ${status}`));
          else if (type.split(';')[0]!.trim().toLowerCase() !== MEDIA_TYPE) finish(new UpstreamError(`answer of type "${type}", expected ${MEDIA_TYPE}`));
        });
        req.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER) finish(new UpstreamError('answer longer than a DNS message can be'));
          else chunks.push(chunk);
        });
        req.on('end', () => {
          const answer = Buffer.concat(chunks);
          // Nothing else can arrive on this stream, so a mismatch fails now.
          if (isAnswerTo(sent, qEnd, answer)) finish(null, answer);
          else finish(new UpstreamError('answer does not match the query'));
        });
        req.on('error', (e) => finish(new UpstreamError(sessionError?.message ?? e.message, { cause: sessionError ?? e })));
        req.on('close', () => finish(new UpstreamError(sessionError?.message ?? 'stream closed before the answer')));
        req.end(sent);
      });
    },
    async close() {
      closed = true;
      for (const finish of [...inFlight]) finish(new UpstreamError('upstream closed'));
      const s = session;
      session = null;
      if (!s || s.destroyed) return;
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    },
  };
}
