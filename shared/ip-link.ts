import { CommandError, type Runner } from './run.ts';
import { formatAddress, parseAddress } from './cidr.ts';

// One network interface as `ip -j` shows it, and making its addresses match a list.

export interface LinkState {
  mtu: number;
  up: boolean;
  /** "wireguard" for the kernel module, "tun" for wireguard-go. */
  kind: string | null;
}

interface IpLink {
  mtu?: number;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { local?: string; prefixlen?: number; scope?: string }[];
}

function parseJson(argv: string[], text: string): IpLink[] {
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value)) return value as IpLink[];
  } catch {
    // fall through
  }
  throw new CommandError(argv, 0, 'unexpected output (not a JSON list)');
}

/** The interface as the kernel sees it, or null when there is none. */
export async function readLink(run: Runner, name: string): Promise<LinkState | null> {
  const argv = ['ip', '-j', '-d', 'link', 'show', 'dev', name];
  const r = await run(argv, { allowFail: true });
  if (r.code !== 0) {
    if (/does not exist/.test(r.stderr)) return null;
    throw new CommandError(argv, r.code, r.stderr);
  }
  const link = parseJson(argv, r.stdout)[0];
  if (!link) return null;
  return { mtu: link.mtu ?? 0, up: (link.flags ?? []).includes('UP'), kind: link.linkinfo?.info_kind ?? null };
}

/** Addresses on the interface as "address/length", link-local ones left out (the kernel owns those). */
export async function readAddresses(run: Runner, name: string): Promise<string[]> {
  const argv = ['ip', '-j', 'addr', 'show', 'dev', name];
  const r = await run(argv);
  const out: string[] = [];
  for (const link of parseJson(argv, r.stdout)) {
    for (const a of link.addr_info ?? []) {
      if (a.scope === 'link' || a.local === undefined || a.prefixlen === undefined) continue;
      out.push(`${formatAddress(parseAddress(a.local))}/${a.prefixlen}`);
    }
  }
  return out;
}

/**
 * Makes the interface carry exactly `wanted` (canonical "address/length").
 * Stale addresses go first: an IPv6 address is one entry whatever its length,
 * so a changed length must be deleted before it can be added again.
 */
export async function syncAddresses(run: Runner, name: string, wanted: string[]): Promise<void> {
  let current = await readAddresses(run, name);
  const stale = current.filter((a) => !wanted.includes(a));
  for (const a of stale) await run(['ip', 'addr', 'del', a, 'dev', name]);
  // Deleting a primary IPv4 address can take its secondaries with it.
  if (stale.length) current = await readAddresses(run, name);
  for (const a of wanted) if (!current.includes(a)) await run(['ip', 'addr', 'replace', a, 'dev', name]);
}
