import { familyBits, formatAddress, formatPrefix, hostPrefix, parseAddress, parsePrefix, prefixContains } from '../../shared/cidr.ts';
import { describeInput, ValidationError } from '../../shared/errors.ts';
import { normalizeDomain } from '../dns/lists/names.ts';

/** A destination that keeps the VM's stable address: a domain (and its subdomains) or an address prefix. */
export interface EgressException {
  kind: 'domain' | 'prefix';
  /** Canonical: lowercase ASCII domain, or a prefix (a single address written plain). */
  value: string;
}

/** "example-bank.com", "198.51.100.0/24", "2001:db8:5::/48" or a single address; ValidationError naming `field` otherwise. */
export function checkException(input: unknown, field = 'value'): EgressException {
  if (typeof input !== 'string' || input.trim() === '') {
    throw new ValidationError(field, `expected a domain such as example-bank.com or a prefix such as 198.51.100.0/24, got ${describeInput(input)}`);
  }
  const text = input.trim();
  if (text.includes('/')) {
    const p = parsePrefix(text, field);
    const single = p.length === familyBits(p.family);
    return { kind: 'prefix', value: single ? formatAddress({ family: p.family, value: p.network }) : formatPrefix(p) };
  }
  if (text.includes(':') || /^[0-9.]+$/.test(text)) return { kind: 'prefix', value: formatAddress(parseAddress(text, field)) };
  return { kind: 'domain', value: normalizeDomain(text, field) };
}

/**
 * A matcher for the addresses an excepted prefix holds already (the daemon
 * adds only the others to the exception set: nft refuses an overlap).
 */
export function coveredBy(prefixes: readonly string[]): (address: string) => boolean {
  const parsed = prefixes.map((t) => (t.includes('/') ? parsePrefix(t) : hostPrefix(parseAddress(t))));
  return (text) => {
    const a = parseAddress(text);
    return parsed.some((p) => p.family === a.family && prefixContains(p, a));
  };
}
