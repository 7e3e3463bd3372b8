import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { formatAddress, parseAddress, parsePrefix, prefixContains, unmapAddress, type Address, type Prefix } from '../../shared/cidr.ts';

/**
 * The VM's own listening sockets, from the kernel's socket tables
 * (/proc/net/{tcp,tcp6,udp,udp6}, proc(5)), for the network namespace of
 * this process. A publish DNATs every packet the WAN sends to the VM's
 * own addresses on its port, so a service of the VM listening there
 * (a web server on 443, sshd on 22 after the SSH port moved) would vanish
 * from the internet without a word: such a publish is refused instead.
 */

export interface ListeningSocket {
  proto: 'tcp' | 'udp';
  address: string;
  port: number;
}

/** proc(5): TCP state 0A is LISTEN; an unconnected UDP socket (no remote address) receives from anyone. */
const TCP_LISTEN = '0A';

/** One address as proc prints it: 32-bit words in the host's byte order, in hex. */
function procAddress(hex: string): Address | null {
  if (!/^[0-9A-F]{8}$|^[0-9A-F]{32}$/i.test(hex)) return null;
  const words = hex.match(/.{8}/g)!;
  const bytes = words.flatMap((w) => {
    const b = w.match(/../g)!.map((x) => parseInt(x, 16));
    return endianness() === 'LE' ? b.reverse() : b;
  });
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family: bytes.length === 4 ? 4 : 6, value };
}

/** The receiving sockets of one table's text. Lines that do not read are skipped. */
export function parseProcNet(text: string, proto: 'tcp' | 'udp'): ListeningSocket[] {
  return text.split('\n').slice(1).flatMap((line) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) return [];
    const [local, remote, state] = [f[1]!, f[2]!, f[3]!];
    const [addrHex, portHex] = local.split(':');
    const address = addrHex === undefined ? null : procAddress(addrHex);
    const port = portHex === undefined ? NaN : parseInt(portHex, 16);
    if (!address || !Number.isInteger(port) || port === 0) return [];
    const receiving = proto === 'tcp' ? state.toUpperCase() === TCP_LISTEN : /^0+:0+$/.test(remote);
    return receiving ? [{ proto, address: formatAddress(address), port }] : [];
  });
}

/** Every receiving socket of this network namespace; a table that cannot be read counts as empty. */
export function readListening(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ListeningSocket[] {
  return (['tcp', 'tcp6', 'udp', 'udp6'] as const).flatMap((table) => {
    try {
      return parseProcNet(read(`/proc/net/${table}`), table.startsWith('tcp') ? 'tcp' : 'udp');
    } catch {
      return [];
    }
  });
}

const LOOPBACK: Prefix[] = [parsePrefix('127.0.0.0/8'), parsePrefix('::1/128')];

/**
 * A check for publishes: which socket of the VM listens on proto/port where
 * the internet can reach it (any address but loopback and `tunnelOnly`, the
 * overlay, whose services a publish leaves alone), or null.
 */
export function portInUseCheck(tunnelOnly: { v4: Prefix; v6: Prefix }, list: () => ListeningSocket[] = () => readListening()) {
  const inside = [...LOOPBACK, tunnelOnly.v4, tunnelOnly.v6];
  return (proto: 'tcp' | 'udp', port: number): string | null => {
    const hit = list().find((s) => {
      if (s.proto !== proto || s.port !== port) return false;
      // A v4-mapped address (::ffff:203.0.113.129) is the IPv4 one for this purpose.
      const a = unmapAddress(parseAddress(s.address));
      return !inside.some((p) => p.family === a.family && prefixContains(p, a));
    });
    if (!hit) return null;
    const wildcard = hit.address === '0.0.0.0' || hit.address === '::';
    return `a program on the VM listens on ${wildcard ? 'every address' : hit.address} port ${port}/${proto}`;
  };
}
