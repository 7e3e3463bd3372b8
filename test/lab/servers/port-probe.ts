// One attempt to reach HOST:PORT over TCP or UDP, and what came of it, as one
// JSON line: { result, data, ms }. result is "answer" (data is what the other
// end said), "reset" (TCP RST after connecting, or while connecting),
// "refused" (TCP RST to the SYN, or ICMP port unreachable for UDP), "denied"
// (this host's firewall dropped it on the way out: EPERM),
// "unreachable", "connected" (TCP: open, but nothing said before the
// timeout), "timeout", or "error". For UDP one datagram is sent on a
// connected socket, so an ICMP error comes back as ECONNREFUSED.
//
//   port-probe tcp|udp HOST PORT [TIMEOUT_MS [SOURCE-ADDRESS]]
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

const [proto, host, portText, timeoutText, source] = process.argv.slice(2);
const port = Number(portText);
const timeoutMs = Number(timeoutText ?? 3000);
if ((proto !== 'tcp' && proto !== 'udp') || !host || !Number.isInteger(port)) {
  console.error('usage: port-probe tcp|udp HOST PORT [TIMEOUT_MS]');
  process.exit(2);
}

const t0 = performance.now();
let done = false;
function finish(result: string, data = ''): void {
  if (done) return;
  done = true;
  console.log(JSON.stringify({ result, data: data.trim(), ms: Math.round(performance.now() - t0) }));
  process.exit(0);
}
function fromError(e: NodeJS.ErrnoException): void {
  const byCode: Record<string, string> = {
    ECONNREFUSED: 'refused',
    ECONNRESET: 'reset',
    // A drop in this host's own output hook fails the send at once.
    EPERM: 'denied',
    EHOSTUNREACH: 'unreachable',
    ENETUNREACH: 'unreachable',
  };
  finish(byCode[e.code ?? ''] ?? 'error', e.code ?? e.message);
}
let connected = false;
setTimeout(() => finish(connected ? 'connected' : 'timeout'), timeoutMs);

if (proto === 'tcp') {
  let data = '';
  const socket = connect({ host, port, ...(source && { localAddress: source }) });
  socket.setEncoding('utf8');
  socket.on('connect', () => (connected = true));
  socket.on('data', (d: string) => (data += d));
  socket.on('end', () => finish('answer', data));
  socket.on('error', fromError);
} else {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', (msg) => finish('answer', msg.toString('utf8')));
  socket.on('error', fromError);
  // Without a callback a failed send is not reported at all.
  const go = () => socket.connect(port, host, () => socket.send('probe\n', (e) => e && fromError(e)));
  if (source) socket.bind(0, source, go);
  else go();
}
