import { parseAddress, parsePrefix, prefixContains, type Address } from '../../shared/cidr.ts';
import type { DeviceRecord, DeviceRole } from '../store/devices.ts';

/** Who is calling, as far as the tunnel can tell. */
export interface Identity {
  name: string;
  /** 'lan': a device behind a gateway, known only as "at home". */
  role: DeviceRole | 'lan';
  address: string;
  /** For 'lan': the gateway whose home prefix holds the address. */
  gateway?: string;
}

/**
 * Maps a (normalized) source address to a device. WireGuard only accepts a
 * packet from a peer if its source is in that peer's AllowedIPs, so on the
 * tunnel side the address is the identity. Exact overlay addresses win over
 * home prefixes; anything else is unknown (null).
 */
export function identifyAddress(devices: readonly DeviceRecord[], address: string): Identity | null {
  let a: Address;
  try {
    a = parseAddress(address);
  } catch {
    return null;
  }
  for (const d of devices) {
    const own = a.family === 4 ? d.addressV4 : d.addressV6;
    if (parseAddress(own).value === a.value) return { name: d.name, role: d.role, address };
  }
  for (const d of devices) {
    if (d.role !== 'gateway') continue;
    if (d.lanPrefixes.some((p) => prefixContains(parsePrefix(p), a))) {
      return { name: d.name, role: 'lan', address, gateway: d.name };
    }
  }
  return null;
}
