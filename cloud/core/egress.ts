import { parseAddress, parsePrefix, prefixContains } from '../../shared/cidr.ts';
import { describeInput, ValidationError } from '../../shared/errors.ts';
import { DeviceName, parseWith } from '../../shared/schemas.ts';
import { checkException, type EgressException } from '../egress/exceptions.ts';
import { nextV4, pickV6 } from '../egress/pick.ts';
import { checkEgressPool, type EgressPool, type WanView } from '../egress/pool.ts';
import { formatSchedule, parseSchedule } from '../egress/schedule.ts';
import type { EventBus } from '../events.ts';
import type { FirewallEgress } from '../firewall/desired.ts';
import type { Store } from '../store/store.ts';
import { CoreError } from './errors.ts';
import { checkFields } from './firewall-checks.ts';

// The temporary egress address: the pool, who uses it, rotation and the
// destinations that keep the VM's main address. Only checks and storage here;
// the daemon renders the SNAT rules (cloud/firewall) and puts the IPv6
// addresses on the WAN (cloud/egress/addresses.ts).

/**
 * IPv6 picks kept on the WAN after a rotation (the current one included), so
 * that connections opened before it still get their answers: the provider's
 * router finds an address only while the VM answers neighbour discovery for it.
 */
export const KEEP_V6_ON_WAN = 4;

export type EgressMode = 'off' | 'global' | 'devices';

export interface EgressInfo {
  /** global: every device and LAN host; devices: the ones listed; off: the main address for all. */
  mode: EgressMode;
  /** Devices and LAN hosts that use it when it is not global. */
  devices: string[];
  pool: EgressPool;
  /** The addresses new connections get now (set as soon as there is a pool). */
  current: { v4: string | null; v6: string | null };
  /** ISO time of the last pick, or null. */
  rotatedAt: string | null;
  /** "1h", "1d", … or "off". */
  schedule: string;
  /** ISO time of the next scheduled rotation, or null. */
  nextRotationAt: string | null;
  exceptions: { domains: string[]; prefixes: string[] };
}

export interface EgressRotation {
  v4: string | null;
  v6: string | null;
  rotatedAt: string;
}

export interface EgressCore {
  get(): EgressInfo;
  /** `input`: { v6Prefix?: string | null, v4?: string[] }; both left out or empty clears the pool (refused while on). */
  setPool(input: unknown): EgressInfo;
  /** `input`: {} (everyone) or { device: NAME } (a device or LAN host). */
  enable(input?: unknown): EgressInfo;
  /** `input`: {} (off for everyone, the device list too) or { device: NAME }. */
  disable(input?: unknown): EgressInfo;
  /** New current addresses: IPv6 a fresh random one, IPv4 the next in the pool. */
  rotate(): EgressRotation;
  /** `input`: { every: "30m" | "1h" | "1d" | "off" }. */
  setSchedule(input: unknown): EgressInfo;
  exceptions: {
    list(): EgressInfo['exceptions'];
    /** `input`: { value: domain or prefix }. */
    add(input: unknown): EgressException;
    /** A domain or prefix as listed (any spelling of it). */
    remove(value: unknown): EgressException;
  };
  /** For the daemon: FirewallDesired.egress, or undefined when nobody uses the temporary address. */
  firewall(): FirewallEgress | undefined;
  /** For the daemon: the IPv6 addresses the WAN must carry (createEgressAddresses), [] when off. */
  wanV6(): string[];
  /** For the daemon's resolver: the excepted domains (each covers its subdomains). */
  exceptDomains(): string[];
  /** For the daemon's timer: rotates if the schedule says it is time; true if it did. */
  rotateIfDue(): boolean;
}

export interface EgressCoreDeps {
  store: Store;
  events: EventBus;
  now: () => number;
  /** The VM's WAN addresses and prefixes; without it the pool cannot be checked (setPool answers 'unavailable'). */
  wan?: () => WanView;
  /** 16 random bytes per call (tests drive it). */
  random?: () => Uint8Array;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function createEgressCore(deps: EgressCoreDeps): EgressCore {
  const { store, events, now } = deps;
  const changed = (reason: string) => events.emit('egress-changed', { reason });
  const table = store.egress;

  const isSubject = (name: string) => store.devices.get(name) !== undefined || store.firewall.host(name) !== undefined;
  const poolOf = (): EgressPool => {
    const r = table.get();
    return { v6Prefix: r.v6Prefix, v4: r.v4 };
  };
  const emptyPool = (p: EgressPool) => p.v6Prefix === null && p.v4.length === 0;
  const modeOf = (): EgressMode => (table.get().global ? 'global' : table.subjects().length > 0 ? 'devices' : 'off');

  const noPool = () =>
    new CoreError('conflict', 'there is no egress pool yet: set one first (aerie-cloud egress pool --v6-prefix PREFIX and/or --v4 ADDRESS)');

  /** Picks new current addresses and remembers the IPv6 one; inside a transaction. */
  const pick = (pool: EgressPool): EgressRotation => {
    const r = table.get();
    let v6: string | null = null;
    if (pool.v6Prefix !== null) {
      const own = deps.wan?.().addresses ?? [];
      v6 = pickV6(pool.v6Prefix, [...own, ...table.recentV6(), ...(r.currentV6 ? [r.currentV6] : [])], deps.random);
      table.pushRecentV6(v6, now());
    }
    const v4 = nextV4(pool.v4, r.currentV4);
    const at = now();
    table.setCurrent(v4, v6, at);
    return { v4, v6, rotatedAt: new Date(at).toISOString() };
  };

  const exceptionsList = (): EgressInfo['exceptions'] => {
    const rows = table.exceptions();
    return { domains: rows.filter((r) => r.kind === 'domain').map((r) => r.value), prefixes: rows.filter((r) => r.kind === 'prefix').map((r) => r.value) };
  };

  const get = (): EgressInfo => {
    const r = table.get();
    const mode = modeOf();
    // A last rotation "in the future" (the clock was set back since) counts as now, or rotation would wait for the clock.
    const last = Math.min(r.rotatedAt ?? now(), now());
    const next = r.scheduleSeconds !== null && mode !== 'off' && !emptyPool({ v6Prefix: r.v6Prefix, v4: r.v4 }) ? last + r.scheduleSeconds * 1000 : null;
    return {
      mode,
      devices: table.subjects(),
      pool: { v6Prefix: r.v6Prefix, v4: r.v4 },
      current: { v4: r.currentV4, v6: r.currentV6 },
      rotatedAt: iso(r.rotatedAt),
      schedule: formatSchedule(r.scheduleSeconds),
      nextRotationAt: iso(next),
      exceptions: exceptionsList(),
    };
  };

  const deviceOf = (input: unknown): string | undefined => {
    const body = checkFields(input ?? {}, ['device']);
    return body.device === undefined ? undefined : parseWith(DeviceName, body.device, 'device');
  };

  // A removed device or LAN host no longer uses the temporary address: a later one of the same name must not inherit it.
  const prune = () => {
    const gone = store.transaction(() => table.subjects().filter((n) => !isSubject(n) && table.removeSubject(n)));
    if (gone.length > 0) changed('subject-removed');
  };
  events.on('devices-changed', (e) => {
    if (e.reason === 'removed') prune();
  });
  events.on('firewall-changed', (e) => {
    if (e.reason === 'host-removed' || e.reason === 'device-removed') prune();
  });

  const rotate = (): EgressRotation => {
    const r = store.transaction(() => {
      const pool = poolOf();
      if (emptyPool(pool)) throw noPool();
      return pick(pool);
    });
    changed('rotated');
    return r;
  };

  return {
    get,
    setPool(input) {
      const body = checkFields(input, ['v6Prefix', 'v4']);
      if (!deps.wan) throw new CoreError('unavailable', "checking the pool needs the VM's WAN addresses, which this process could not read");
      const pool = checkEgressPool(body, deps.wan());
      store.transaction(() => {
        if (emptyPool(pool) && modeOf() !== 'off') {
          throw new CoreError('conflict', 'the temporary address is on: turn it off (aerie-cloud egress off) before clearing the pool');
        }
        table.setPool(pool.v6Prefix, pool.v4);
        const r = table.get();
        // Current addresses outside the new pool are replaced at once; ones still in it stay.
        const v6Ok = pool.v6Prefix === null ? r.currentV6 === null : r.currentV6 !== null && prefixContains(parsePrefix(pool.v6Prefix), parseAddress(r.currentV6));
        const v4Ok = pool.v4.length === 0 ? r.currentV4 === null : r.currentV4 !== null && pool.v4.includes(r.currentV4);
        if (emptyPool(pool)) table.setCurrent(null, null, r.rotatedAt);
        else if (!v6Ok || !v4Ok) pick(pool);
      });
      changed('pool-set');
      return get();
    },
    enable(input) {
      const device = deviceOf(input);
      store.transaction(() => {
        const pool = poolOf();
        if (emptyPool(pool)) throw noPool();
        if (device === undefined) table.setGlobal(true);
        else {
          if (!isSubject(device)) throw new CoreError('not_found', `there is no device or LAN host named "${device}"`);
          table.addSubject(device, now());
        }
        const r = table.get();
        if (r.currentV4 === null && r.currentV6 === null) pick(pool);
      });
      changed('enabled');
      return get();
    },
    disable(input) {
      const device = deviceOf(input);
      store.transaction(() => {
        if (device === undefined) {
          table.setGlobal(false);
          table.clearSubjects();
          return;
        }
        if (table.removeSubject(device)) return;
        if (table.get().global) {
          throw new CoreError('conflict', `the temporary address is on for everyone; turn it off for all (egress off), then on for the devices that should keep it`);
        }
        throw new CoreError('not_found', `"${device}" does not use the temporary address`);
      });
      changed('disabled');
      return get();
    },
    rotate,
    setSchedule(input) {
      const body = checkFields(input, ['every']);
      if (body.every === undefined) throw new ValidationError('every', 'expected "off" or a period such as 30m, 1h or 1d');
      const seconds = parseSchedule(body.every, 'every');
      table.setSchedule(seconds);
      changed('schedule-set');
      return get();
    },
    exceptions: {
      list: exceptionsList,
      add(input) {
        const body = checkFields(input, ['value']);
        const e = checkException(body.value, 'value');
        if (!table.addException({ ...e, addedAt: now() })) throw new CoreError('conflict', `${e.value} is already an exception`);
        changed('exception-added');
        return e;
      },
      remove(value) {
        if (typeof value !== 'string') throw new ValidationError('value', `expected a domain or prefix, got ${describeInput(value)}`);
        const e = checkException(value, 'value');
        const row = table.removeException(e.value);
        if (!row) throw new CoreError('not_found', `${e.value} is not an exception`);
        changed('exception-removed');
        return { kind: row.kind, value: row.value };
      },
    },
    firewall() {
      const r = table.get();
      if (r.currentV4 === null && r.currentV6 === null) return undefined;
      let sources: FirewallEgress['sources'];
      if (r.global) sources = 'all';
      else {
        sources = table.subjects().filter(isSubject);
        if (sources.length === 0) return undefined;
      }
      return { v4: r.currentV4, v6: r.currentV6, sources, exceptPrefixes: exceptionsList().prefixes };
    },
    wanV6() {
      const r = table.get();
      if (modeOf() === 'off' || r.v6Prefix === null || r.currentV6 === null) return [];
      const prefix = parsePrefix(r.v6Prefix);
      const keep = [r.currentV6, ...table.recentV6()].filter((a) => prefixContains(prefix, parseAddress(a)));
      return [...new Set(keep)].slice(0, KEEP_V6_ON_WAN);
    },
    exceptDomains: () => exceptionsList().domains,
    rotateIfDue() {
      const info = get();
      if (info.nextRotationAt === null || Date.parse(info.nextRotationAt) > now()) return false;
      rotate();
      return true;
    },
  };
}
