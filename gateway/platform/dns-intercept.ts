import { formatPrefix, parsePrefix, type Family } from '../../shared/cidr.ts';

/**
 * DNS enforcement on the router, as parts of our one nft table: the LAN's
 * DNS goes to this router's resolver (which forwards to the VM through the
 * tunnel) whatever address a client asks, encrypted DNS that would pass it by
 * is refused, and the router's own packets for the overlay (its resolver's
 * queries to the VM among them) never leave by the WAN.
 */

/** Marks the redirect rule; `show` looks for it in nft's listing. */
export const DNS_INTERCEPT_MARK = 'dns intercept:';

/**
 * The nat chain that sends port 53 from the LAN to this router. `redirect`
 * rewrites the destination to the address of the interface the packet came in
 * on (the first one, global before link-local for IPv6), so the resolver must
 * listen on the LAN addresses; conntrack puts the original address back on
 * the replies, so the client sees the server it asked.
 */
export function dnsRedirectChain(lanSet: string): string[] {
  return [
    `\tchain dns_redirect {`,
    // Before the usual dstnat priority (-100): the first nat mapping of a flow wins, so ours comes first.
    `\t\ttype nat hook prerouting priority dstnat - 10; policy accept;`,
    `\t\tiifname ${lanSet} meta l4proto { tcp, udp } th dport 53 redirect to :53 comment "${DNS_INTERCEPT_MARK} DNS from the LAN to any address is answered by this router's resolver (IPv4 and IPv6)"`,
    `\t}`,
  ];
}

/**
 * Forward-chain rules, before the accept into the tunnel. A reject is final
 * like a drop. TCP gets a reset and UDP a port unreachable, so that a client
 * gives up on encrypted DNS at once and falls back to plain DNS (which the
 * redirect catches) instead of waiting for a timeout.
 */
export function dnsForwardRules(lanSet: string): string[] {
  return [
    `iifname ${lanSet} meta l4proto { tcp, udp } th dport 53 reject comment "DNS from the LAN that the redirect did not catch (a flow older than it) is refused, never forwarded"`,
    `iifname ${lanSet} tcp dport 853 reject with tcp reset comment "DNS over TLS from the LAN is refused with a reset, so clients fall back to plain DNS at once"`,
    `iifname ${lanSet} udp dport 853 reject with icmpx port-unreachable comment "DNS over QUIC from the LAN is refused (port unreachable), so clients fall back to plain DNS at once"`,
  ];
}

/**
 * The output chain: the router's own packets to the overlay leave only by
 * the tunnel (or stay on the router: its own overlay address is local). When
 * the tunnel interface is gone its routes go with it, and without this the
 * main table's default route would carry the resolver's queries for the VM,
 * and the probes, out of the WAN. A drop in the output hook fails the
 * sender's send() at once, so nothing waits for a timeout.
 */
export function overlayGuardChain(tunnel: string, overlay: string[]): string[] {
  const prefixes = overlay.map((p, i) => parsePrefix(p, `overlay[${i}]`));
  const rule = (family: Family) => {
    const list = [...new Set(prefixes.filter((p) => p.family === family).map(formatPrefix))];
    if (list.length === 0) return [];
    const match = `${family === 4 ? 'ip' : 'ip6'} daddr { ${list.join(', ')} }`;
    return [
      `\t\t${match} oifname != { "lo", "${tunnel}" } drop comment "the router's own IPv${family} packets to the overlay leave only through the tunnel, never by the WAN"`,
    ];
  };
  const rules = [...rule(4), ...rule(6)];
  if (rules.length === 0) return [];
  return [`\tchain output {`, `\t\ttype filter hook output priority filter - 10; policy accept;`, ...rules, `\t}`];
}
