import type { CheckedFirewall } from './check.ts';
import { FAMILIES, quote, rule } from './render-rule.ts';

/**
 * Traffic through the VM. Policy accept: other tables (a container runtime,
 * say) keep deciding about traffic that is not ours; everything to or from
 * the tunnel is decided here.
 */
export function forwardRules(c: CheckedFirewall): string[] {
  const t = quote(c.tunnel);
  const w = quote(c.wan);
  return [
    // Clamping on the way into the tunnel: rt mtu is then the tunnel's MTU.
    rule(`oifname ${t} tcp flags & (syn | rst) == syn`, 'tcp option maxseg size set rt mtu', 'clamp TCP MSS to the tunnel path MTU'),
    ...FAMILIES.map((f) =>
      rule(`iifname ${t} counter name ${f.ip} saddr map @sent${f.n}`, '', `what each named subject sends through the VM (${f.label})`),
    ),
    rule('ct state invalid', 'drop', 'conntrack places these in no connection'),
    // The side that started a connection is judged on every packet, not only the first: a policy made
    // stricter (internet blocked, isolated, LAN access or a publish taken away) cuts what is already open.
    rule('ct direction reply', 'accept', 'answers pass: their connection was allowed when it started'),
    rule('ct state related', 'accept', 'ICMP errors about connections that passed'),
    rule(`iifname ${t}`, 'goto from-tunnel', 'peers and homes: by policy, open connections too'),
    ...c.publishes.map((p) => {
      const dst = `${p.family === 4 ? 'ip' : 'ip6'} daddr ${p.toAddress}`;
      return rule(`iifname ${w} ct status dnat ${dst} ${p.proto} dport ${p.toPort}`, 'accept', `published ${p.name}: the internet may reach ${p.toAddress} ${p.proto} ${p.toPort}`);
    }),
    rule(`oifname ${t}`, 'drop', 'nothing else from outside reaches into the tunnel'),
    rule(`iifname ${w} oifname ${w}`, 'drop', 'the VM is nobody\'s router on its own network: nothing goes back out where it came in'),
  ];
}

/** What peers and homes start (every packet of it); the source is an overlay or home address (prerouting made sure). */
export function fromTunnelRules(c: CheckedFirewall): string[] {
  const w = quote(c.wan);
  return [
    ...FAMILIES.flatMap((f) => [
      rule(`${f.ip} saddr @isolated${f.n}`, 'goto refused', `isolated ${f.label} subjects start nothing through the VM`),
      rule(`oifname ${w} ${f.ip} saddr @blocked${f.n}`, 'goto refused', `${f.label} subjects whose internet is blocked`),
    ]),
    rule(`oifname ${w}`, 'accept', 'peers, gateways and homes may reach the internet'),
    ...FAMILIES.flatMap((f) => [
      rule(`${f.ip} saddr @owners${f.n} ${f.ip} daddr @homes${f.n}`, 'accept', `owners reach every home (${f.label})`),
      rule(`${f.ip} saddr @lan_members${f.n} ${f.ip} daddr @homes${f.n}`, 'accept', `members with LAN access reach the homes (${f.label})`),
      rule(`${f.ip} saddr @owners${f.n} ${f.ip} daddr @overlay${f.n}`, 'accept', `owners reach the other peers (${f.label})`),
    ]),
    rule('', 'goto refused', 'no other peer, home or network is reached from the tunnel'),
  ];
}

/** Policy drops, counted per subject by source address first. */
export function refusedRules(): string[] {
  return [
    ...FAMILIES.map((f) => rule(`counter name ${f.ip} saddr map @dropped${f.n}`, '', `counted for the ${f.label} subject it came from`)),
    rule('', 'drop', 'refused by the firewall policy'),
  ];
}
