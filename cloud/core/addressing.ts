import { familyBits, formatAddress, formatPrefix, nthAddress, prefixSize, type Prefix } from '../../shared/cidr.ts';
import type { DeviceRecord } from '../store/devices.ts';

/** The VM's two overlay prefixes. */
export interface Overlay {
  v4: Prefix;
  v6: Prefix;
}

/** The VM is host 1 of each prefix; devices start at 2. */
export const VM_INDEX = 1;
export const FIRST_DEVICE_INDEX = 2;

/** The highest host index usable in both prefixes (IPv4 keeps its broadcast address free). */
export function maxHostIndex(overlay: Overlay): number {
  const v4 = prefixSize(overlay.v4) - 2n;
  const v6 = prefixSize(overlay.v6) - 1n;
  const max = v4 < v6 ? v4 : v6;
  return max > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(max);
}

/** The lowest free index ≥ 2 and ≤ max, or null when the overlay is full. */
export function allocateIndex(used: Iterable<number>, max: number): number | null {
  const taken = new Set(used);
  for (let i = FIRST_DEVICE_INDEX; i <= max; i++) if (!taken.has(i)) return i;
  return null;
}

/** Host `index` in both families, as plain addresses ("100.64.0.2", "fd…::2"). */
export function addressesAt(overlay: Overlay, index: number): { v4: string; v6: string } {
  return { v4: formatAddress(nthAddress(overlay.v4, index)), v6: formatAddress(nthAddress(overlay.v6, index)) };
}

/** The same, with the overlay's prefix length: the addresses of a tunnel interface. */
export function interfaceAddressesAt(overlay: Overlay, index: number): string[] {
  const a = addressesAt(overlay, index);
  return [`${a.v4}/${overlay.v4.length}`, `${a.v6}/${overlay.v6.length}`];
}

/** The VM's own overlay addresses (where the API and later DNS listen). */
export function vmAddresses(overlay: Overlay): string[] {
  const a = addressesAt(overlay, VM_INDEX);
  return [a.v4, a.v6];
}

/**
 * The IPv6 /64 the VM gives router `index`'s home. From `routed` (a prefix the
 * provider routes to the VM, handed out without NAT) the index-th /64; else
 * beside the overlay: its /64 with the 16-bit subnet ID (bits 48–63) moved on
 * by the index, so it shares the overlay's /48 (a ULA /48 by default, RFC 4193
 * §3.1) and never equals the overlay itself. Null when there is no such /64.
 */
export function homeV6At(overlay: Overlay, index: number, routed: Prefix | null = null): string | null {
  if (index < 1 || index > 0xffff) return null;
  if (routed) {
    if (routed.length > 64 || BigInt(index) >= 1n << BigInt(64 - routed.length)) return null;
    return formatPrefix({ family: 6, network: routed.network | (BigInt(index) << 64n), length: 64 });
  }
  if (overlay.v6.length !== 64) return null;
  const subnetShift = 64n;
  const subnet = (overlay.v6.network >> subnetShift) & 0xffffn;
  const moved = (subnet + BigInt(index)) & 0xffffn;
  const network = (overlay.v6.network & ~(0xffffn << subnetShift)) | (moved << subnetShift);
  return formatPrefix({ family: 6, network, length: 64 });
}

/** Where homeV6At takes the homes' /64s from: the routed prefix, or the /48 around the overlay's /64. */
export function homeV6Space(overlay: Overlay, routed: Prefix | null = null): Prefix {
  if (routed) return routed;
  return { family: 6, network: overlay.v6.network & ~((1n << 80n) - 1n), length: 48 };
}

export function overlayPrefixes(overlay: Overlay): string[] {
  return [formatPrefix(overlay.v4), formatPrefix(overlay.v6)];
}

/** A peer's WireGuard AllowedIPs on the hub: its two host routes plus, for a gateway, its home prefixes. */
export function peerAllowedIps(d: Pick<DeviceRecord, 'addressV4' | 'addressV6' | 'lanPrefixes'>): string[] {
  return [`${d.addressV4}/${familyBits(4)}`, `${d.addressV6}/${familyBits(6)}`, ...d.lanPrefixes];
}

/** Every home prefix of every gateway (routed to the hub interface, NATed out). */
export function homePrefixes(devices: readonly Pick<DeviceRecord, 'lanPrefixes'>[]): string[] {
  return devices.flatMap((d) => d.lanPrefixes);
}
