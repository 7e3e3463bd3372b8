import type { Lists } from './check.ts';

/** nft's own comment limit (NFT_USERDATA_MAXLEN would allow more, but nft refuses above 128 bytes). */
export const MAX_COMMENT_BYTES = 128;

/** One rule line: the match, a counter, what it does, and a comment saying why. */
export function rule(match: string, action: string, why: string): string {
  if (Buffer.byteLength(why) > MAX_COMMENT_BYTES || why.includes('"')) {
    // Only our own fixed texts (and checked names) get here: this is a bug, not bad input.
    throw new Error(`nft comment too long or quoted: ${why}`);
  }
  return [match, 'counter', action, `comment "${why}"`].filter(Boolean).join(' ');
}

/** The two address families as nft spells them, with the element lists that belong to each. */
export const FAMILIES = [
  { ip: 'ip', label: 'IPv4', n: '4', nfproto: 'ipv4', pick: (l: Lists) => l.v4 },
  { ip: 'ip6', label: 'IPv6', n: '6', nfproto: 'ipv6', pick: (l: Lists) => l.v6 },
] as const;

export type FamilyInfo = (typeof FAMILIES)[number];

export const quote = (name: string) => `"${name}"`;
