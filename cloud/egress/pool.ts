import { describeInput, ValidationError } from '../../shared/errors.ts';
import { formatAddress, formatPrefix, hostPrefix, parseAddress, parsePrefix, prefixesOverlap, type Address, type Prefix } from '../../shared/cidr.ts';

/** Where temporary addresses come from. */
export interface EgressPool {
  /** A routed IPv6 prefix of the VM (canonical), or null. */
  v6Prefix: string | null;
  /** Extra IPv4 addresses of the VM's WAN interface, in round-robin order. */
  v4: string[];
}

/** What the VM's WAN interface has: its addresses and the prefixes on it or routed to it. */
export interface WanView {
  addresses: string[];
  prefixes: string[];
}

/** Longest accepted pool prefix: fewer than 65,536 addresses would repeat recent picks too soon. */
export const MAX_V6_PREFIX_LENGTH = 112;
/** Shortest: a provider gives a VM a /64, at most a /48; anything larger is not the VM's. */
export const MIN_V6_PREFIX_LENGTH = 48;
export const MAX_V4_POOL = 64;

function quietAddress(text: string): Address | null {
  try {
    return parseAddress(text);
  } catch {
    return null;
  }
}

function quietPrefix(text: string): Prefix | null {
  try {
    return parsePrefix(text);
  } catch {
    return null;
  }
}

const inside = (inner: Prefix, outer: Prefix) => outer.length <= inner.length && prefixesOverlap(inner, outer);

/**
 * The pool, canonical, if it is the VM's: the IPv6 prefix must hold an address
 * of the WAN interface or lie inside a prefix on it or routed to it (else the
 * provider's router would not send the answers here), and every IPv4 address
 * must be one of the WAN interface's. ValidationError naming the field otherwise.
 */
export function checkEgressPool(input: { v6Prefix?: unknown; v4?: unknown }, wan: WanView): EgressPool {
  const wanAddresses = wan.addresses.map(quietAddress).filter((a): a is Address => a !== null);
  const wanPrefixes = wan.prefixes.map(quietPrefix).filter((p): p is Prefix => p !== null);

  let v6Prefix: string | null = null;
  if (input.v6Prefix !== undefined && input.v6Prefix !== null) {
    if (typeof input.v6Prefix !== 'string') throw new ValidationError('v6Prefix', `expected an IPv6 prefix such as 2001:db8:203::/64, got ${describeInput(input.v6Prefix)}`);
    const p = parsePrefix(input.v6Prefix, 'v6Prefix');
    if (p.family !== 6) throw new ValidationError('v6Prefix', `expected an IPv6 prefix such as 2001:db8:203::/64, got the IPv4 ${input.v6Prefix} (IPv4 pool addresses go in v4)`);
    if (p.length < MIN_V6_PREFIX_LENGTH) {
      throw new ValidationError('v6Prefix', `${input.v6Prefix} is too large to be the VM's: expected /${MIN_V6_PREFIX_LENGTH} to /${MAX_V6_PREFIX_LENGTH}, such as the /64 of its WAN`);
    }
    if (p.length > MAX_V6_PREFIX_LENGTH) {
      throw new ValidationError('v6Prefix', `${input.v6Prefix} is too small: expected /${MAX_V6_PREFIX_LENGTH} or shorter, so that random picks do not repeat`);
    }
    const holds = wanAddresses.some((a) => a.family === 6 && inside(hostPrefix(a), p));
    const routed = wanPrefixes.some((w) => w.family === 6 && inside(p, w));
    if (!holds && !routed) {
      const have = wanPrefixes.filter((w) => w.family === 6).map(formatPrefix);
      throw new ValidationError(
        'v6Prefix',
        `${formatPrefix(p)} is not the VM's: no WAN address is inside it and it is not routed to the WAN (${have.length > 0 ? `the WAN has ${have.join(', ')}` : 'the WAN has no IPv6 prefix'})`,
      );
    }
    v6Prefix = formatPrefix(p);
  }

  const v4: string[] = [];
  if (input.v4 !== undefined && input.v4 !== null) {
    if (!Array.isArray(input.v4)) throw new ValidationError('v4', `expected a list of IPv4 addresses, got ${describeInput(input.v4)}`);
    if (input.v4.length > MAX_V4_POOL) throw new ValidationError('v4', `expected at most ${MAX_V4_POOL} addresses, got ${input.v4.length}`);
    input.v4.forEach((x, i) => {
      const field = `v4[${i}]`;
      const a = parseAddress(x as string, field);
      if (a.family !== 4) throw new ValidationError(field, `expected an IPv4 address, got ${describeInput(x)} (an IPv6 pool is a prefix: v6Prefix)`);
      const text = formatAddress(a);
      if (!wanAddresses.some((w) => w.family === 4 && w.value === a.value)) {
        const have = wanAddresses.filter((w) => w.family === 4).map(formatAddress);
        throw new ValidationError(field, `${text} is not an address of the VM's WAN interface (${have.length > 0 ? `it has ${have.join(', ')}` : 'it has no IPv4 address'})`);
      }
      if (v4.includes(text)) throw new ValidationError(field, `${text} is already v4[${v4.indexOf(text)}]`);
      v4.push(text);
    });
  }
  return { v6Prefix, v4 };
}
