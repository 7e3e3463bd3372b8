// A bare ubus connection on our codec, for tests that need frames no client
// API sends (several DATA replies to one INVOKE, late replies, PING).
import net from 'node:net';
import { decodeMessage, encodeMessage, FrameReader, type UbusAttrs, type UbusMessage } from '../../../gateway/ubus/message.ts';

export interface RawPeer {
  /** Our client id, from ubusd's HELLO. */
  id: number;
  send(type: number, seq: number, peer: number, attrs?: UbusAttrs): void;
  /** The next received frame that satisfies `match`, within timeoutMs. */
  next(match: (m: UbusMessage) => boolean, timeoutMs?: number): Promise<UbusMessage>;
  close(): void;
}

export function connectRawPeer(path: string): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ path });
    const reader = new FrameReader();
    const inbox: UbusMessage[] = [];
    let wake: (() => void) | null = null;
    sock.on('error', reject);
    sock.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) inbox.push(decodeMessage(f));
      if (!peer && inbox[0]) {
        peer = { id: inbox.shift()!.peer, send, next, close: () => sock.destroy() };
        resolve(peer);
      }
      wake?.();
    });
    let peer: RawPeer | null = null;
    const send = (type: number, seq: number, p: number, attrs: UbusAttrs = {}) => void sock.write(encodeMessage({ type, seq, peer: p }, attrs));
    async function next(match: (m: UbusMessage) => boolean, timeoutMs = 2000): Promise<UbusMessage> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = inbox.findIndex(match);
        if (i >= 0) return inbox.splice(i, 1)[0]!;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('raw ubus peer: no matching frame in time');
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
    }
  });
}
