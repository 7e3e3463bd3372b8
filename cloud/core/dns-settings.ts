import { ValidationError } from '../../shared/errors.ts';
import type { SettingsTable } from '../store/settings.ts';

/** How the VM's resolver answers for a blocked name. */
export type BlockMode = 'null' | 'nxdomain';

export interface DnsSettings {
  /** Devices are NAME.<zone>. `.internal` is reserved for private use (ICANN, 2024), so it never leaks to a real zone. */
  zone: string;
  blockMode: BlockMode;
  /** Upstream specs in order of preference ("udp:127.0.0.1", "dot:dns.example@192.0.2.1", …). */
  upstreams: string[];
}

/**
 * The recommended upstream is a recursive resolver on the VM itself (Debian's
 * unbound listens on 127.0.0.1:53 out of the box): no third party sees the
 * owner's queries.
 */
export const DNS_DEFAULTS: Readonly<DnsSettings> = Object.freeze({
  zone: 'aerie.internal',
  blockMode: 'null',
  upstreams: Object.freeze(['udp:127.0.0.1']) as unknown as string[],
});

export const DNS_KEYS = {
  zone: 'dns_zone',
  blockMode: 'dns_block_mode',
  upstreams: 'dns_upstreams',
  /** Set once the default blocklists were offered, so that removing them sticks. */
  listsSeeded: 'dns_lists_seeded',
} as const;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A zone such as "aerie.internal": lowercase letters, digits and hyphens, two labels or more. */
export function checkZone(text: unknown, field = 'zone'): string {
  const zone = typeof text === 'string' ? text.trim().toLowerCase().replace(/\.$/, '') : '';
  const labels = zone.split('.');
  if (zone.length > 200 || labels.length < 2 || !labels.every((l) => LABEL.test(l))) {
    throw new ValidationError(field, `expected a domain of two labels or more, such as aerie.internal, got ${JSON.stringify(text)}`);
  }
  return zone;
}

export function checkBlockMode(text: unknown, field = 'blockMode'): BlockMode {
  if (text === 'null' || text === 'nxdomain') return text;
  throw new ValidationError(field, `expected "null" (answer 0.0.0.0 and ::) or "nxdomain", got ${JSON.stringify(text)}`);
}

export function readDnsSettings(settings: SettingsTable): DnsSettings {
  const upstreams = settings.get(DNS_KEYS.upstreams);
  return {
    zone: settings.get(DNS_KEYS.zone) ?? DNS_DEFAULTS.zone,
    blockMode: (settings.get(DNS_KEYS.blockMode) as BlockMode | undefined) ?? DNS_DEFAULTS.blockMode,
    upstreams: upstreams ? (JSON.parse(upstreams) as string[]) : [...DNS_DEFAULTS.upstreams],
  };
}
