import { formatPrefix, parseAddress, parsePrefix, prefixContains, prefixesOverlap, type Address } from '../../shared/cidr.ts';
import type { Overlay } from './addressing.ts';
import { CoreError } from './errors.ts';

// The shape of each prefix (canonical, not reserved, not too broad, no overlap
// within one request) is checked by shared/schemas.ts PairRequest. What needs
// the VM's state is checked here.

export interface LanPrefixContext {
  overlay: Overlay;
  /** Existing gateways and their prefixes. */
  gateways: readonly { name: string; lanPrefixes: readonly string[] }[];
  /** The VM's public host; a prefix containing it would route the VM's own uplink into a tunnel. */
  publicHost?: string;
  /**
   * Networks the VM itself is on outside the tunnel (e.g. 10.0.0.0/24 behind a
   * cloud's 1:1 NAT): routing one of them into the tunnel would cut the VM off.
   */
  localPrefixes?: readonly string[];
}

/** Throws CoreError 'conflict' when a prefix clashes with the overlay, the VM's networks or another gateway. */
export function checkLanPrefixes(prefixes: readonly string[], ctx: LanPrefixContext): void {
  let publicAddress: Address | null = null;
  try {
    if (ctx.publicHost !== undefined) publicAddress = parseAddress(ctx.publicHost);
  } catch {
    publicAddress = null; // a DNS name: nothing to compare
  }
  prefixes.forEach((text, i) => {
    const field = `lanPrefixes[${i}]`;
    const p = parsePrefix(text, field);
    for (const o of [ctx.overlay.v4, ctx.overlay.v6]) {
      if (prefixesOverlap(p, o)) {
        throw new CoreError('conflict', `${field}: ${text} overlaps the overlay network ${formatPrefix(o)}`);
      }
    }
    if (publicAddress && prefixContains(p, publicAddress)) {
      throw new CoreError('conflict', `${field}: ${text} contains the VM's public address ${ctx.publicHost}`);
    }
    for (const local of ctx.localPrefixes ?? []) {
      if (prefixesOverlap(p, parsePrefix(local))) {
        throw new CoreError(
          'conflict',
          `${field}: ${text} overlaps the VM's own network ${local}; routing it into the tunnel would cut the VM off from it. ` +
            'Renumber the home network or run the VM on another network',
        );
      }
    }
    for (const g of ctx.gateways) {
      const clash = g.lanPrefixes.find((other) => prefixesOverlap(p, parsePrefix(other)));
      if (clash) {
        throw new CoreError('conflict', `${field}: ${text} overlaps ${clash}, a home prefix of gateway "${g.name}"`);
      }
    }
  });
}
