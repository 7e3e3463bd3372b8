import { randomBytes } from 'node:crypto';
import { familyBits, formatAddress, parseAddress, parsePrefix, prefixContains } from '../../shared/cidr.ts';

/** Enough tries that a working random source cannot fail them in a prefix of /112 or shorter. */
const MAX_TRIES = 64;

/**
 * RFC 2526 reserves the top 128 interface identifiers of a subnet for anycast,
 * and RFC 4291 §2.6.1 the all-zero one for the subnet-router anycast address:
 * neither is a host address a website should see.
 */
const RESERVED_TOP = 128n;

/**
 * Nor the first 256 of a prefix: where providers and admins put their routers
 * and static hosts (::1, ::2, ::53). Taking one would answer neighbour
 * discovery for the provider's gateway and cut the VM off.
 */
const LOW_HOSTS = 256n;

/**
 * A random address inside the IPv6 `prefix` that is none of `avoid` (the VM's
 * own addresses, the recent picks). `random` gives at least 16 bytes; it is a
 * parameter so that tests can drive it.
 */
export function pickV6(prefix: string, avoid: readonly string[], random: () => Uint8Array = () => randomBytes(16)): string {
  const p = parsePrefix(prefix, 'v6Prefix');
  if (p.family !== 6) throw new RangeError(`pickV6 needs an IPv6 prefix, got ${prefix}`);
  const hostBits = BigInt(familyBits(6) - p.length);
  const span = 1n << hostBits;
  const taken = new Set<bigint>();
  for (const a of avoid) {
    try {
      const parsed = parseAddress(a);
      if (parsed.family === 6 && prefixContains(p, parsed)) taken.add(parsed.value);
    } catch {
      // not an address: nothing to avoid
    }
  }
  for (let i = 0; i < MAX_TRIES; i++) {
    const bytes = random();
    if (bytes.length < 16) throw new RangeError('the random source must give 16 bytes');
    let n = 0n;
    for (const b of bytes.subarray(0, 16)) n = (n << 8n) | BigInt(b);
    const host = n & (span - 1n);
    if (host < LOW_HOSTS || (span > RESERVED_TOP * 2n && host >= span - RESERVED_TOP)) continue;
    const value = p.network | host;
    if (!taken.has(value)) return formatAddress({ family: 6, value });
  }
  throw new RangeError(`no free address found in ${prefix} after ${MAX_TRIES} tries`);
}

/** Round robin through the IPv4 pool: the one after `current` (the first if current is not in it); null for an empty pool. */
export function nextV4(pool: readonly string[], current: string | null): string | null {
  if (pool.length === 0) return null;
  const i = current === null ? -1 : pool.indexOf(current);
  return pool[(i + 1) % pool.length]!;
}
