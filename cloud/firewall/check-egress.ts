import { describeInput, ValidationError } from '../../shared/errors.ts';
import { formatAddress, hostPrefix, parseAddress, parsePrefix, type Prefix } from '../../shared/cidr.ts';
import type { Lists } from './check.ts';

/** FirewallDesired.egress checked: canonical addresses, sources and exceptions as set elements. */
export interface CheckedEgress {
  v4: string | null;
  v6: string | null;
  /** 'all': the inside sets; else the named subjects' addresses (and a gateway's homes). */
  sources: 'all' | Lists;
  except: Lists;
  temporary: Lists;
}

function fail(field: string, message: string): never {
  throw new ValidationError(field, message);
}

function address(x: unknown, family: 4 | 6, field: string): string | null {
  if (x === null) return null;
  const a = parseAddress(x as string, field);
  if (a.family !== family) fail(field, `expected an IPv${family} address or null, got ${describeInput(x)}`);
  return formatAddress(a);
}

/**
 * `prefixesOf`: every subject's name → its addresses (and, for a gateway, its
 * home prefixes), already checked. `lists` turns prefixes into set elements.
 */
export function checkEgress(x: unknown, prefixesOf: ReadonlyMap<string, Prefix[]>, lists: (p: Prefix[]) => Lists): CheckedEgress {
  if (typeof x !== 'object' || x === null) fail('egress', 'expected an object { v4, v6, sources, exceptPrefixes }');
  const e = x as Record<string, unknown>;
  const v4 = address(e.v4, 4, 'egress.v4');
  const v6 = address(e.v6, 6, 'egress.v6');
  let sources: CheckedEgress['sources'];
  if (e.sources === 'all') sources = 'all';
  else if (Array.isArray(e.sources)) {
    const picked = e.sources.flatMap((n, i) => {
      const found = typeof n === 'string' ? prefixesOf.get(n) : undefined;
      if (!found) fail(`egress.sources[${i}]`, `no device or LAN host named ${describeInput(n)}`);
      return found;
    });
    sources = lists(picked);
  } else fail('egress.sources', `expected "all" or a list of device and LAN host names, got ${describeInput(e.sources)}`);
  if (!Array.isArray(e.exceptPrefixes)) fail('egress.exceptPrefixes', `expected an array of IP prefixes, got ${describeInput(e.exceptPrefixes)}`);
  const except = e.exceptPrefixes.map((t, i) => {
    const f = `egress.exceptPrefixes[${i}]`;
    return typeof t === 'string' && t.includes('/') ? parsePrefix(t, f) : hostPrefix(parseAddress(t as string, f));
  });
  if (e.temporary !== undefined && !Array.isArray(e.temporary)) fail('egress.temporary', `expected an array of IP addresses, got ${describeInput(e.temporary)}`);
  const temporary = (e.temporary ?? []).map((t, i) => hostPrefix(parseAddress(t as string, `egress.temporary[${i}]`)));
  return { v4, v6, sources, except: lists(except), temporary: lists(temporary) };
}
