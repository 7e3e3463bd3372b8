import type { CheckedFirewall } from './check.ts';
import { notTemporary } from './render-egress.ts';
import { FAMILIES, quote, rule } from './render-rule.ts';

/** Published home services: DNAT of the VM's own addresses on the WAN to a LAN address. */
export function publishRules(c: CheckedFirewall): string[] {
  const w = quote(c.wan);
  return c.publishes.map((p) => {
    const f = FAMILIES[p.family === 4 ? 0 : 1];
    const to = p.family === 4 ? `${p.toAddress}:${p.toPort}` : `[${p.toAddress}]:${p.toPort}`;
    // fib daddr type local: only packets for the VM itself, not ones it routes.
    return rule(
      `iifname ${w} meta nfproto ${f.nfproto} fib daddr type local${notTemporary(c, f.ip, f.n)} ${p.proto} dport ${p.port}`,
      `dnat ${f.ip} to ${to}`,
      `published ${p.name}: ${p.proto} ${p.port} on the VM goes to ${p.toAddress} port ${p.toPort}`,
    );
  });
}

/** Egress: overlay and home sources leave with the VM's address, but for homes the provider routes to the VM. */
export function masqueradeRules(c: CheckedFirewall): string[] {
  const w = quote(c.wan);
  return FAMILIES.map((f) => {
    const routed = f.n === '4' ? c.routed.v4 : c.routed.v6;
    const except = routed.length ? ` ${f.ip} saddr != { ${routed.join(', ')} }` : '';
    const why = `${f.n === '4' ? 'NAT' : 'NAT66'} of overlay and home ${f.label} to the VM's address${routed.length ? '; routed homes as they are' : ''}`;
    return rule(`oifname ${w} ${f.ip} saddr @inside${f.n}${except}`, 'masquerade', why);
  });
}

/** Anti-spoofing, before conntrack and routing see the packet. */
export function prerouteRules(c: CheckedFirewall): string[] {
  const t = quote(c.tunnel);
  return FAMILIES.flatMap((f) => [
    rule(`iifname ${t} ${f.ip} saddr != @inside${f.n}`, 'drop', `anti-spoofing: from the tunnel only overlay and home ${f.label} sources`),
    rule(`iifname ${t} ${f.ip} saddr @vm${f.n}`, 'drop', `anti-spoofing: no peer sends as the VM's own ${f.label} tunnel address`),
    rule(`iifname != { "lo", ${t} } ${f.ip} saddr @inside${f.n}`, 'drop', `overlay and home ${f.label} sources are genuine only from the tunnel: the API trusts them`),
  ]);
}
