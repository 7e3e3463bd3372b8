// Holds ONE TCP connection to a web server and asks `GET /` on it every
// 250 ms, printing "ok <body>" for each answer and "closed <reason>" when the
// connection ends. It never reconnects: the lab uses it to see what happens
// to a flow that was open before the tunnel fell.
import { connect } from 'node:net';

const [host, portText] = process.argv.slice(2);
if (!host || !portText) {
  console.error('usage: hold-connection HOST PORT');
  process.exit(2);
}

const socket = connect({ host, port: Number(portText) });
let buffer = '';
socket.setEncoding('utf8');
socket.on('connect', () => {
  console.log('connected');
  const ask = () => socket.write(`GET / HTTP/1.1\r\nHost: ${host.includes(':') ? `[${host}]` : host}\r\n\r\n`);
  ask();
  const timer = setInterval(ask, 250);
  socket.on('close', () => clearInterval(timer));
});
socket.on('data', (chunk: string) => {
  buffer += chunk;
  // Responses carry Content-Length; take each complete one off the front.
  for (;;) {
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const length = Number(/content-length:\s*(\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
    if (buffer.length < end + 4 + length) return;
    console.log(`ok ${buffer.slice(end + 4, end + 4 + length)}`);
    buffer = buffer.slice(end + 4 + length);
  }
});
socket.on('error', (e) => console.log(`closed ${e.message}`));
socket.on('end', () => console.log('closed by the server'));
socket.on('close', () => process.exit(0));
process.on('SIGTERM', () => socket.destroy());
// Exit with the test if it dies without stopping us.
setInterval(() => {
  if (process.ppid === 1) socket.destroy();
}, 1000).unref();
