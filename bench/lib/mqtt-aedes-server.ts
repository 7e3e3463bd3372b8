// Bare aedes for the MQTT benchmark: Aedes.createBroker() with its default
// in-memory persistence on a plain net server, nothing else.
//   node mqtt-aedes-server.ts HOST
// Prints "ready PORT"; SIGUSR2 runs a full GC; SIGTERM closes it.
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Aedes } from 'aedes';
import { collectGarbage } from '../../cloud/node-flags.ts';

const host = process.argv[2] ?? '127.0.0.1';
const aedes = await Aedes.createBroker();
const server = createServer(aedes.handle);
server.listen({ host, port: 0 });
await once(server, 'listening');
process.on('SIGUSR2', collectGarbage);
process.once('SIGTERM', () => {
  server.close();
  aedes.close(() => process.exit(0));
});
process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
