import type { CheckedFirewall } from './check.ts';
import { temporaryInputRules } from './render-egress.ts';
import { FAMILIES, quote, rule } from './render-rule.ts';

/**
 * The VM itself: policy drop; the tunnel services only from the tunnel, to the
 * VM's tunnel addresses; what must stay reachable (WireGuard, pairing, SSH)
 * from anywhere; the ICMP that PMTU discovery and neighbour discovery need.
 */
export function inputRules(c: CheckedFirewall): string[] {
  const t = quote(c.tunnel);
  const { wireguard, pairing, api, dns, mqtt, ssh } = c.ports;
  const tunnel = FAMILIES.flatMap((f) => [
    rule(`iifname ${t} ${f.ip} daddr @vm${f.n} meta l4proto { tcp, udp } th dport ${dns}`, 'accept', `DNS on the VM's ${f.label} tunnel addresses, for every peer and home`),
    rule(`iifname ${t} ${f.ip} daddr @vm${f.n} tcp dport ${mqtt}`, 'accept', `MQTT on the VM's ${f.label} tunnel addresses, for every peer and home`),
    rule(`iifname ${t} ${f.ip} daddr @vm${f.n} tcp dport ${api}`, 'accept', `the API on the VM's ${f.label} tunnel addresses; it tells callers apart by address`),
  ]);
  // Before the established accept: what an isolated subject sends the VM is judged on every packet,
  // so one isolated while connected keeps only DNS and MQTT.
  const isolated = FAMILIES.flatMap((f) => {
    const from = `iifname ${t} ${f.ip} saddr @isolated${f.n} ct direction original`;
    return [
      rule(`${from} tcp dport != { ${dns}, ${mqtt} }`, 'goto refused', `isolated ${f.label} subjects reach only DNS and MQTT on the VM (TCP)`),
      rule(`${from} udp dport != ${dns}`, 'goto refused', `isolated ${f.label} subjects reach only DNS on the VM (UDP)`),
      rule(`${from} meta l4proto != { tcp, udp }`, 'goto refused', `isolated ${f.label} subjects send the VM nothing else, not even a ping`),
    ];
  });
  return [
    rule('iifname "lo"', 'accept', 'the VM talks to itself'),
    ...isolated,
    rule('ct state established,related', 'accept', 'replies to what the VM started, and their ICMP errors'),
    rule('ct state invalid', 'drop', 'conntrack places these in no connection'),
    rule('icmp type echo-request limit rate 10/second burst 20 packets', 'accept', 'ping, rate-limited'),
    rule('icmp type { destination-unreachable, time-exceeded, parameter-problem }', 'accept', 'ICMP errors; frag-needed is how IPv4 finds the path MTU (RFC 1191)'),
    rule('icmpv6 type echo-request limit rate 10/second burst 20 packets', 'accept', 'ping over IPv6, rate-limited'),
    rule('icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem }', 'accept', 'ICMPv6 errors; packet-too-big is how IPv6 finds the path MTU (RFC 8201)'),
    rule('icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255', 'accept', 'neighbour discovery; hop limit 255 proves it is from the link (RFC 4861)'),
    rule('icmpv6 type { mld-listener-query, mld-listener-report, mld2-listener-report } ip6 saddr fe80::/10', 'accept', 'multicast listener discovery from link-local sources (RFC 3810)'),
    // Its request goes to a multicast group, so conntrack cannot match the reply to it.
    rule('ip6 saddr fe80::/10 udp sport 547 udp dport 546', 'accept', "DHCPv6 replies to the VM's own client, from link-local servers (RFC 8415)"),
    // After neighbour discovery (the provider's router must still find the address), before every service.
    ...temporaryInputRules(c),
    ...tunnel,
    rule(`udp dport ${wireguard}`, 'accept', 'WireGuard from anywhere: peers roam between networks'),
    rule(`tcp dport ${pairing}`, 'accept', 'the pairing listener: new devices reach it before they have a tunnel'),
    ...(ssh === null ? [] : [rule(`tcp dport ${ssh}`, 'accept', 'SSH from anywhere, so the owner cannot lock themselves out')]),
    rule(`iifname ${t}`, 'goto refused', 'anything else from the tunnel: counted for its subject, then dropped'),
    rule('', 'drop', 'nothing else reaches the VM'),
  ];
}
