// Answers every UDP datagram and every TCP connection on the given addresses
// and port with one line, "TAG": a stand-in for any service, to tell which
// machine a packet really reached (the one it was addressed to, or the one a
// redirect took it to). Exits on SIGTERM/SIGINT and when its parent goes away.
//
//   tag-server TAG PORT ADDRESS... [--udp-only | --tcp-only]
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';

const args = process.argv.slice(2);
const udpOnly = args.includes('--udp-only');
const tcpOnly = args.includes('--tcp-only');
const [tag, portText, ...addresses] = args.filter((a) => !a.startsWith('--'));
const port = Number(portText);
if (!tag || !Number.isInteger(port) || port < 1 || port > 65535 || addresses.length === 0) {
  console.error('usage: tag-server TAG PORT ADDRESS... [--udp-only | --tcp-only]');
  process.exit(2);
}

const sockets: Socket[] = [];
const servers: Server[] = [];
const fail = (what: string, e: Error) => {
  console.error(`${what}: ${e.message}`);
  process.exit(1);
};

for (const address of addresses) {
  if (!tcpOnly) {
    const udp = address.includes(':') ? createSocket({ type: 'udp6', ipv6Only: true }) : createSocket('udp4');
    udp.on('message', (_msg, from) => udp.send(`${tag}\n`, from.port, from.address));
    udp.on('error', (e) => fail(`udp [${address}]:${port}`, e));
    udp.bind(port, address, () => console.log(`udp [${address}]:${port}`));
    sockets.push(udp);
  }
  if (!udpOnly) {
    const tcp = createServer((c) => c.end(`${tag}\n`));
    tcp.on('error', (e) => fail(`tcp [${address}]:${port}`, e));
    tcp.listen({ host: address, port, ipv6Only: true }, () => console.log(`tcp [${address}]:${port}`));
    servers.push(tcp);
  }
}

const stop = () => {
  for (const s of sockets) s.close();
  for (const s of servers) s.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 500).unref();
