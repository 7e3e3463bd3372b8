import { formatAddress, parseAddress, parsePrefix, prefixContains, type Prefix } from '../../shared/cidr.ts';
import type { DeviceRecord } from '../store/devices.ts';
import type { DnsClient } from './resolver.ts';

/** Who may ask the resolver, and whether ads are blocked for them. */
export interface DnsClients {
  /** Normalized source address → client, or null: not a tunnel peer, home device or the VM itself. */
  identify(address: string): DnsClient | null;
}

/** Counted under this name: queries the VM itself sends (a `dig` by the owner on the VM). */
export const VM_CLIENT = 'vm';

// Home devices are judged by prefix, which costs a parse; remember the answers (bounded).
const MEMO_LIMIT = 4096;

/**
 * Exact tunnel addresses first (a peer is its address: WireGuard checks it
 * against the peer's key), then the home prefixes of gateways; queries from
 * a home device count for its gateway and follow its switch.
 */
export function createDnsClients(devices: readonly DeviceRecord[], vmAddresses: readonly string[]): DnsClients {
  const exact = new Map<string, DnsClient>();
  const vm: DnsClient = { key: VM_CLIENT, blocking: true };
  for (const a of vmAddresses) exact.set(canonical(a) ?? a, vm);
  const homes: { prefix: Prefix; client: DnsClient }[] = [];
  for (const d of devices) {
    const client: DnsClient = { key: d.name, blocking: d.dnsBlocking };
    exact.set(canonical(d.addressV4) ?? d.addressV4, client);
    exact.set(canonical(d.addressV6) ?? d.addressV6, client);
    if (d.role === 'gateway') for (const p of d.lanPrefixes) homes.push({ prefix: parsePrefix(p), client });
  }
  const memo = new Map<string, DnsClient | null>();

  const slow = (address: string): DnsClient | null => {
    const text = canonical(address);
    if (text === null) return null;
    const known = exact.get(text);
    if (known) return known;
    const a = parseAddress(text);
    return homes.find((h) => prefixContains(h.prefix, a))?.client ?? null;
  };

  return {
    identify(address) {
      const hit = exact.get(address);
      if (hit) return hit;
      let client = memo.get(address);
      if (client === undefined) {
        client = slow(address);
        if (memo.size >= MEMO_LIMIT) memo.clear();
        memo.set(address, client);
      }
      return client;
    },
  };
}

function canonical(text: string): string | null {
  try {
    return formatAddress(parseAddress(text));
  } catch {
    return null;
  }
}
