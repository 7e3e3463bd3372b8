import { DROPPED_PREFIX, SENT_PREFIX } from './render.ts';
import type { FirewallCounters } from './desired.ts';

type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);
const count = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : 0);

/**
 * Counters from `nft -j list table inet aerie` (the parsed JSON, or its text):
 * every rule's anonymous counter by chain and comment, and each subject's
 * named sent-/dropped- counters. Anything else in the listing is ignored.
 */
export function parseCounters(nftJson: unknown): FirewallCounters {
  const doc = typeof nftJson === 'string' ? (JSON.parse(nftJson) as unknown) : nftJson;
  if (!isObject(doc) || !Array.isArray(doc.nftables)) {
    throw new Error('nft JSON: expected an object with an "nftables" array');
  }
  const out: FirewallCounters = { rules: [], subjects: {} };
  const subject = (name: string) =>
    (out.subjects[name] ??= { outPackets: 0, outBytes: 0, droppedPackets: 0, droppedBytes: 0 });

  for (const item of doc.nftables as unknown[]) {
    if (!isObject(item)) continue;
    if (isObject(item.rule)) {
      const r = item.rule;
      // The anonymous counter is the one with numbers; `counter name … map` references have none.
      const c = Array.isArray(r.expr)
        ? (r.expr as unknown[]).map((e) => (isObject(e) && isObject(e.counter) ? e.counter : null)).find((e) => e !== null && 'packets' in e)
        : undefined;
      if (c && typeof r.chain === 'string') {
        out.rules.push({ chain: r.chain, comment: typeof r.comment === 'string' ? r.comment : '', packets: count(c.packets), bytes: count(c.bytes) });
      }
    } else if (isObject(item.counter) && typeof item.counter.name === 'string') {
      const { name, packets, bytes } = item.counter;
      if (name.startsWith(SENT_PREFIX)) {
        const s = subject(name.slice(SENT_PREFIX.length));
        s.outPackets = count(packets);
        s.outBytes = count(bytes);
      } else if (name.startsWith(DROPPED_PREFIX)) {
        const s = subject(name.slice(DROPPED_PREFIX.length));
        s.droppedPackets = count(packets);
        s.droppedBytes = count(bytes);
      }
    }
  }
  // Same listing, same object: subjects in name order.
  out.subjects = Object.fromEntries(Object.entries(out.subjects).sort(([a], [b]) => (a < b ? -1 : 1)));
  return out;
}
