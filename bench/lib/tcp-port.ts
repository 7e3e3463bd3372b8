import { createServer, type AddressInfo } from 'node:net';

/** A TCP port free right now on `address` (the kernel picks it; a race with another program is possible but unlikely). */
export function freeTcpPort(address: string): Promise<number> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port: 0 }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
