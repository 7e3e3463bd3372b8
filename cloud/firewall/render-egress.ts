import type { CheckedFirewall } from './check.ts';
import { FAMILIES, quote, rule } from './render-rule.ts';

/** Named sets the egress rules use: [name, flags, comment, elements]; none without egress. */
export function egressSets(c: CheckedFirewall): [string, string, string, string[]][] {
  const e = c.egress;
  if (!e) return [];
  return FAMILIES.flatMap((f) => {
    // timeout: the daemon adds the addresses its resolver returns for excepted domains, each for the answer's TTL.
    const sets: [string, string, string, string[]][] = [
      [`egress_except${f.n}`, 'interval, timeout', 'destinations that keep the main address; resolver-fed elements expire', f.pick(e.except)],
    ];
    if (e.sources !== 'all') sets.push([`egress_sources${f.n}`, 'interval', 'subjects that leave with the temporary address', f.pick(e.sources)]);
    sets.push([`egress_temporary${f.n}`, 'interval', "the VM's temporary addresses: nothing from outside reaches it at one", f.pick(e.temporary)]);
    return sets;
  });
}

/** Input: a temporary address answers nothing it did not start (a probe would find the VM behind it). */
export function temporaryInputRules(c: CheckedFirewall): string[] {
  if (!c.egress) return [];
  const w = quote(c.wan);
  return FAMILIES.map((f) =>
    rule(`iifname ${w} ${f.ip} daddr @egress_temporary${f.n}`, 'drop', `nothing from outside reaches the VM at a temporary ${f.label} address`),
  );
}

/** The publish DNAT's extra match: not at a temporary address (nothing there may lead to the home). */
export function notTemporary(c: CheckedFirewall, ip: string, n: string): string {
  return c.egress ? ` ${ip} daddr != @egress_temporary${n}` : '';
}

/** SNAT of new connections to the current pool address; before the masquerade rules, so it wins. */
export function egressRules(c: CheckedFirewall): string[] {
  const e = c.egress;
  if (!e) return [];
  const w = quote(c.wan);
  return FAMILIES.flatMap((f) => {
    const to = f.n === '4' ? e.v4 : e.v6;
    if (to === null) return [];
    const from = e.sources === 'all' ? `@inside${f.n}` : `@egress_sources${f.n}`;
    // Only a connection's first packet reaches a nat chain: open connections keep their address when it rotates.
    return [
      rule(
        `oifname ${w} ${f.ip} saddr ${from} ${f.ip} daddr != @egress_except${f.n}`,
        `snat ${f.ip} to ${to}`,
        `temporary ${f.label} address for new connections; excepted destinations keep the main address`,
      ),
    ];
  });
}
