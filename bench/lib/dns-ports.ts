import { createSocket } from 'node:dgram';

/** A UDP port free right now on `address` (the kernel picks it; a race with another program is possible but unlikely). */
export function freeUdpPort(address: string): Promise<number> {
  const sock = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, address, () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}
