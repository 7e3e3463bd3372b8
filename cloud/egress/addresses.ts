import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { formatAddress, parseAddress } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import type { Runner } from '../../shared/run.ts';
import { createSerialQueue } from '../../shared/serial-queue.ts';

export interface EgressAddressesDesired {
  /** The WAN interface. */
  interface: string;
  /** IPv6 addresses (no length) it must carry as /128s besides its own. */
  v6: string[];
}

export interface EgressAddresses {
  /** Makes the interface carry exactly these extra addresses of ours; null removes all of ours. */
  set(desired: EgressAddressesDesired | null): Promise<void>;
}

export interface EgressAddressesOptions {
  /**
   * Where the addresses we added are remembered (JSON), so that a restarted
   * daemon removes what an earlier one left. Without it, only this process's.
   */
  stateFile?: string;
  /**
   * Which of these addresses open connections still leave by (default: the
   * kernel's connection table, conntrackReplyTargets): those stay on the
   * interface until their connections end.
   */
  inUse?: (addresses: readonly string[]) => Set<string>;
}

/**
 * The addresses among `addresses` that connections in the kernel's table
 * (/proc/net/nf_conntrack, this network namespace) are answered at: a
 * connection SNATed to a pool address has it as the destination of its reply
 * tuple. Without the table (a kernel without it), none.
 */
export function conntrackReplyTargets(addresses: readonly string[], read: () => string = () => readFileSync('/proc/net/nf_conntrack', 'utf8')): Set<string> {
  const wanted = new Set(addresses);
  const found = new Set<string>();
  if (wanted.size === 0) return found;
  let text: string;
  try {
    text = read();
  } catch {
    return found;
  }
  for (const line of text.split('\n')) {
    // "ipv6 10 tcp 6 431999 ESTABLISHED src=… dst=… sport=… dport=… src=… dst=REPLY-TARGET …": the second dst= is the reply's.
    // A TCP connection in TIME_WAIT or CLOSE has ended: it needs its address no more.
    if (!line.startsWith('ipv6') || / (TIME_WAIT|CLOSE) /.test(line)) continue;
    const dsts = [...line.matchAll(/\bdst=(\S+)/g)];
    const reply = dsts[1]?.[1];
    if (!reply) continue;
    try {
      const a = formatAddress(parseAddress(reply));
      if (wanted.has(a)) found.add(a);
    } catch {
      // not an address: skip the line
    }
  }
  return found;
}

interface Owned {
  interface: string | null;
  addresses: string[];
}

const NONE: Owned = { interface: null, addresses: [] };

/**
 * The temporary IPv6 addresses on the WAN interface. Added as /128 (no prefix
 * route) without DAD, so the provider's router finds them by neighbour
 * discovery at once, and deprecated (preferred_lft 0), so the VM's own
 * connections keep choosing its main address (RFC 6724 rule 3).
 *
 * Ownership is remembered (IPv6 addresses carry no label): only addresses this
 * adapter added are ever removed; an address someone else put there stays.
 */
export function createEgressAddresses(run: Runner, opts: EgressAddressesOptions = {}): EgressAddresses {
  const serial = createSerialQueue();
  const inUse = opts.inUse ?? ((addresses: readonly string[]) => conntrackReplyTargets(addresses));
  let memory: Owned = NONE;

  const load = (): Owned => {
    if (!opts.stateFile) return memory;
    let text: string;
    try {
      text = readFileSync(opts.stateFile, 'utf8');
    } catch {
      return NONE; // never written: nothing of ours out there
    }
    try {
      const v = JSON.parse(text) as Partial<Owned>;
      const addresses = Array.isArray(v.addresses) ? v.addresses.filter((a): a is string => typeof a === 'string') : [];
      return { interface: typeof v.interface === 'string' ? v.interface : null, addresses };
    } catch {
      return NONE;
    }
  };
  const save = (o: Owned) => {
    memory = o;
    if (!opts.stateFile) return;
    const tmp = `${opts.stateFile}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(o)}\n`, { mode: 0o600 });
    renameSync(tmp, opts.stateFile);
  };

  /** The /128 IPv6 addresses on the interface now. */
  const present = async (iface: string): Promise<Set<string>> => {
    const { stdout } = await run(['ip', '-j', '-6', 'addr', 'show', 'dev', iface]);
    const out = new Set<string>();
    const links = JSON.parse(stdout || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    for (const a of links.flatMap((l) => l.addr_info ?? [])) {
      if (a.prefixlen === 128 && typeof a.local === 'string') out.add(formatAddress(parseAddress(a.local)));
    }
    return out;
  };

  const remove = async (iface: string, addresses: readonly string[]) => {
    // Already gone (removed by hand, or the interface itself went): nothing to do.
    for (const a of addresses) await run(['ip', '-6', 'addr', 'del', `${a}/128`, 'dev', iface], { allowFail: true });
  };

  return {
    set: (desired) =>
      serial(async () => {
        const owned = load();
        if (desired === null) {
          if (owned.interface !== null) await remove(owned.interface, owned.addresses);
          save(NONE);
          return;
        }
        const iface = checkInterfaceName(desired.interface, 'interface');
        const wanted = [
          ...new Set(
            desired.v6.map((t, i) => {
              const a = parseAddress(t, `v6[${i}]`);
              if (a.family !== 6) throw new ValidationError(`v6[${i}]`, `expected an IPv6 address, got ${t}`);
              return formatAddress(a);
            }),
          ),
        ];
        // Nothing wanted and nothing of ours out there (egress off, the usual case): no command to run.
        if (wanted.length === 0 && owned.addresses.length === 0) return;
        let mine = owned.addresses;
        if (owned.interface !== null && owned.interface !== iface) {
          await remove(owned.interface, mine);
          mine = [];
        }
        const there = await present(iface);
        const missing = wanted.filter((a) => !there.has(a));
        // Remembered before they exist: a crash half-way still leaves them known as ours.
        save({ interface: iface, addresses: [...new Set([...mine, ...missing])] });
        for (const a of missing) {
          await run(['ip', '-6', 'addr', 'add', `${a}/128`, 'dev', iface, 'nodad', 'preferred_lft', '0']);
        }
        // An address no longer wanted stays while open connections still leave by it (they keep their address).
        const unwanted = mine.filter((a) => !wanted.includes(a));
        const busy = unwanted.length > 0 ? inUse(unwanted) : new Set<string>();
        await remove(iface, unwanted.filter((a) => !busy.has(a)));
        // Ours: what we added now, what we had added before and still want (present or re-added), and the busy ones.
        save({ interface: iface, addresses: [...wanted.filter((a) => missing.includes(a) || mine.includes(a)), ...unwanted.filter((a) => busy.has(a))] });
      }),
  };
}
