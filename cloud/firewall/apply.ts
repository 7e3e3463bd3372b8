import { formatAddress, parseAddress } from '../../shared/cidr.ts';
import { createNftTable } from '../../shared/nft-table.ts';
import { CommandError, type Runner } from '../../shared/run.ts';
import { createSerialQueue } from '../../shared/serial-queue.ts';
import { parseCounters } from './counters.ts';
import type { FirewallCounters, FirewallDesired } from './desired.ts';
import { FIREWALL_FAMILY, FIREWALL_TABLE, renderFirewall } from './render.ts';

export interface Firewall {
  /** Makes `table inet aerie` match d (validated first; nothing applied on bad input); null deletes it. */
  set(d: FirewallDesired | null): Promise<void>;
  /** The counters now in the kernel; all empty when the table does not exist. */
  counters(): Promise<FirewallCounters>;
  /**
   * Adds addresses to the egress exception sets at once, expiring after `timeoutSeconds`,
   * between two renders (the resolver's answers for excepted names). Fails when egress is off
   * (the sets exist only then).
   */
  addEgressExceptions(addresses: string[], timeoutSeconds: number): Promise<void>;
  /** The single addresses in the egress exception sets now (none when the sets do not exist). */
  egressExceptions(): Promise<string[]>;
}

const MISSING = /No such file or directory|does not exist/i;

/** The VM's firewall: the rendered table, applied whole in one `nft -f` transaction (see nft-table.ts). */
export function createFirewall(run: Runner): Firewall {
  // Every rule counts, so only a listing without counter values can match what was applied.
  const table = createNftTable(run, `${FIREWALL_FAMILY} ${FIREWALL_TABLE}`, { stateless: true });
  // One change at a time, in the order asked.
  const serial = createSerialQueue();
  // The last rendering without counts, and what went to nft for it (with the counts of that moment).
  let rendered: string | null = null;
  let applied = '';

  const firewall: Firewall = {
    set: (d) =>
      serial(async () => {
        if (d === null) {
          rendered = null;
          return table.set(null);
        }
        const text = renderFirewall(d); // validates: nothing runs on bad input
        if (text !== rendered) {
          // A new table starts its counters from zero; per-subject totals should not.
          const counts = await firewall.counters().then((c) => c.subjects, () => ({}));
          applied = renderFirewall(d, counts);
          rendered = text;
        }
        // Same string as last time when nothing changed, so the table only compares.
        await table.set(applied);
      }),
    addEgressExceptions: (addresses, timeoutSeconds) =>
      serial(async () => {
        const parsed = addresses.map((a, i) => parseAddress(a, `addresses[${i}]`));
        const seconds = Math.max(1, Math.round(timeoutSeconds));
        // One transaction per family: a family nft refuses does not keep the other out.
        const errors: Error[] = [];
        for (const family of [4, 6] as const) {
          const items = parsed.filter((a) => a.family === family).map((a) => `${formatAddress(a)} timeout ${seconds}s`);
          if (items.length === 0) continue;
          const line = `add element ${FIREWALL_FAMILY} ${FIREWALL_TABLE} egress_except${family} { ${items.join(', ')} }\n`;
          await run(['nft', '-f', '/dev/stdin'], { input: line }).catch((e: Error) => errors.push(e));
        }
        if (errors.length) throw errors[0];
      }),
    async egressExceptions() {
      const out: string[] = [];
      for (const family of [4, 6] as const) {
        const r = await run(['nft', '-j', 'list', 'set', FIREWALL_FAMILY, FIREWALL_TABLE, `egress_except${family}`], { allowFail: true });
        if (r.code === 0) out.push(...singleAddresses(r.stdout));
      }
      return out;
    },
    async counters() {
      const argv = ['nft', '-j', 'list', 'table', FIREWALL_FAMILY, FIREWALL_TABLE];
      const r = await run(argv, { allowFail: true });
      if (r.code !== 0) {
        if (MISSING.test(r.stderr)) return { rules: [], subjects: {} };
        throw new CommandError(argv, r.code, r.stderr);
      }
      return parseCounters(r.stdout);
    },
  };
  return firewall;
}

/** The plain addresses among a set's elements in `nft -j` output ("a", or {elem: {val: "a", …}}); prefixes and ranges are left out. */
function singleAddresses(json: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return [];
  }
  const items = (doc as { nftables?: { set?: { elem?: unknown[] } }[] }).nftables ?? [];
  const elems = items.flatMap((i) => i.set?.elem ?? []);
  return elems.flatMap((e) => {
    const value = typeof e === 'object' && e !== null && 'elem' in e ? (e as { elem: { val?: unknown } }).elem.val : e;
    if (typeof value !== 'string') return [];
    try {
      return [formatAddress(parseAddress(value))];
    } catch {
      return [];
    }
  });
}
