import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { UpstreamError } from './error.ts';
import { isAnswerTo, randomId, truncated, withId } from './message.ts';
import type { Transport } from './transport.ts';

/**
 * DNS over UDP (RFC 1035 §4.2.1). Each query gets a socket of its own: a fresh
 * random source port (RFC 5452 §9.2) and, as the socket is connected, the
 * kernel drops datagrams from any other address. A truncated answer (TC=1) is
 * asked again over `tcp`, the same server over TCP (RFC 7766 §5).
 */
export function createUdpTransport(address: string, port: number, tcp: Transport): Transport {
  const type = isIP(address) === 6 ? 'udp6' : 'udp4';
  /** Sockets of queries in flight, each with what ends its query. */
  const open = new Map<Socket, (err: Error) => void>();
  let closed = false;

  const once = (query: Uint8Array, qEnd: number, timeoutMs: number): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      const sent = withId(query, randomId());
      const socket = createSocket(type);
      let resend: ReturnType<typeof setTimeout> | undefined;
      const finish = (err: Error | null, answer?: Uint8Array) => {
        clearTimeout(timer);
        clearTimeout(resend);
        if (!open.delete(socket)) return;
        socket.close();
        if (err) reject(err);
        else resolve(answer!);
      };
      open.set(socket, finish);
      const timer = setTimeout(() => finish(new UpstreamError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      socket.on('message', (msg) => {
        if (isAnswerTo(sent, qEnd, msg)) finish(null, msg);
      });
      // A closed port answers with ICMP: the connected socket reports ECONNREFUSED.
      socket.on('error', (e: NodeJS.ErrnoException) => finish(new UpstreamError(e.code === 'ECONNREFUSED' ? 'connection refused' : e.message, { cause: e })));
      socket.connect(port, address, () => {
        if (!open.has(socket)) return; // ended while connecting
        const send = () => socket.send(sent, (e) => e && finish(new UpstreamError(e.message, { cause: e })));
        send();
        // One resend halfway through, with the same ID: a lost datagram need
        // not cost the whole timeout.
        resend = setTimeout(send, timeoutMs / 2);
      });
    });

  return {
    async exchange(query, qEnd, timeoutMs) {
      if (closed) throw new UpstreamError('upstream closed');
      const start = Date.now();
      const answer = await once(query, qEnd, timeoutMs);
      if (!truncated(answer)) return answer;
      return tcp.exchange(query, qEnd, Math.max(1, timeoutMs - (Date.now() - start)));
    },
    async close() {
      closed = true;
      for (const finish of [...open.values()]) finish(new UpstreamError('upstream closed'));
      await tcp.close();
    },
  };
}
