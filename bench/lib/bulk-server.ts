// For the firewall benchmark's throughput: an HTTP server that answers every
// request with zeros, as fast as the connection takes them, until the client
// goes away. Exits on SIGTERM and when its parent is gone.
//
//   node bulk-server.ts ADDRESS PORT
import { createServer } from 'node:http';

const [address, portText] = process.argv.slice(2);
if (!address || !portText) {
  console.error('usage: bulk-server ADDRESS PORT');
  process.exit(2);
}
const chunk = Buffer.alloc(64 * 1024);
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  const pump = () => {
    while (res.write(chunk)) {
      if (res.destroyed) return;
    }
    res.once('drain', pump);
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
});
server.listen(Number(portText), address, () => console.log(`ready ${address}:${portText}`));
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {
  if (process.ppid === 1) process.exit(0);
}, 1000).unref();
