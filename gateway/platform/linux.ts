import { formatAddress, parseInterfaceAddress, type Family } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { decodeKey, publicKeyFromPrivate } from '../../shared/keys.ts';
import { formatEndpoint, parseEndpoint } from '../../shared/pairing-code.ts';
import { syncAddresses } from '../../shared/ip-link.ts';
import { createNftTable } from '../../shared/nft-table.ts';
import { CommandError, type Runner } from '../../shared/run.ts';
import { createSerialQueue } from '../../shared/serial-queue.ts';
import { canonicalAllowedIp, parseWgDump, renderWgConf } from '../../shared/wg-conf.ts';
import { wgSyncConf } from '../../shared/wg-setconf.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import { KILL_SWITCH_MARK, KILL_SWITCH_TABLE, renderKillSwitch } from './kill-switch.ts';
import type { GatewayDesired, Ownership, Platform, TunnelState } from './platform.ts';
import {
  parseRoutes,
  parseRules,
  planRouting,
  routeArgv,
  routeKey,
  ruleArgv,
  ruleKey,
  type RouteSpec,
  type RuleSpec,
} from './policy-routing.ts';

/**
 * The plain-Linux adapter: `ip`, `wg` and `nft`, argv arrays through one
 * runner. Every step reads the kernel's state first and changes only what
 * differs, so a second set() with the same state runs read-only commands.
 */

export interface LinuxPlatformOptions {
  /** What set(null) removes when this process has not applied anything yet. */
  own: Ownership;
  log?: (message: string) => void;
}

interface Link {
  name: string;
  up: boolean;
  mtu: number;
}

const FAMILIES: Family[] = [4, 6];

export function createLinuxPlatform(run: Runner, options: LinuxPlatformOptions): Platform {
  const log = options.log ?? (() => {});
  let owned: Ownership = { ...options.own };
  const nft = createNftTable(run, KILL_SWITCH_TABLE);
  // The peer generation last applied; undefined in a fresh process, where nothing is reset.
  let generation: number | undefined;
  const serial = createSerialQueue();

  // ---- reading ----

  async function links(): Promise<Map<string, Link>> {
    const r = await run(['ip', '-j', 'link', 'show']);
    const list = JSON.parse(r.stdout || '[]') as { ifname: string; flags?: string[]; mtu: number }[];
    return new Map(list.map((l) => [l.ifname, { name: l.ifname, up: (l.flags ?? []).includes('UP'), mtu: l.mtu }]));
  }

  async function tableRoutes(family: Family, table: number): Promise<RouteSpec[]> {
    const argv = ['ip', '-j', `-${family}`, 'route', 'show', 'table', String(table)];
    const r = await run(argv, { allowFail: true });
    // An empty table does not exist for the kernel, and ip says so.
    if (r.code !== 0) {
      if (/table does not exist/i.test(r.stderr)) return [];
      throw new CommandError(argv, r.code, r.stderr);
    }
    return parseRoutes(r.stdout, family, table);
  }

  async function tableRules(family: Family, table: number): Promise<RuleSpec[]> {
    const r = await run(['ip', '-j', `-${family}`, 'rule', 'show']);
    return parseRules(r.stdout, family, table);
  }

  async function wgDump(iface: string): Promise<string | null> {
    const r = await run(['wg', 'show', iface, 'dump'], { allowFail: true });
    return r.code === 0 ? r.stdout : null;
  }

  // ---- forwarding ----

  /** A gateway forwards; switched on when off, never switched off (it is not ours alone). */
  async function ensureForwarding(): Promise<void> {
    const keys = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'];
    const r = await run(['sysctl', '-n', ...keys]);
    const values = r.stdout.trim().split(/\s+/);
    const off = keys.filter((_, i) => values[i] !== '1');
    if (off.length === 0) return;
    log(`enabling ${off.join(' and ')}: LAN traffic is forwarded into the tunnel`);
    await run(['sysctl', '-qw', ...off.map((k) => `${k}=1`)]);
  }

  // ---- the WireGuard interface ----

  async function ensureLink(name: string, all: Map<string, Link>): Promise<Link> {
    const have = all.get(name);
    if (have) return have;
    const kernel = await run(['ip', 'link', 'add', name, 'type', 'wireguard'], { allowFail: true });
    if (kernel.code !== 0) {
      // No WireGuard in this kernel: the userspace implementation makes a TUN device and daemonizes.
      log(`kernel WireGuard unavailable (${kernel.stderr.trim() || `exit ${kernel.code}`}); starting wireguard-go ${name}`);
      await run(['wireguard-go', name]);
    }
    const link = (await links()).get(name);
    if (!link) throw new Error(`interface ${name} did not appear after creating it`);
    return link;
  }

  async function applyWg(d: GatewayDesired): Promise<void> {
    const dump = await wgDump(d.interface);
    const ownPublic = publicKeyFromPrivate(d.privateKey);
    const peerWanted = {
      publicKey: d.peer.publicKey,
      allowedIps: d.peer.allowedIps,
      keepalive: d.peer.keepalive,
      ...(d.peer.endpoint ? { endpoint: d.peer.endpoint } : {}),
    };
    const conf = renderWgConf({ privateKey: d.privateKey, peers: [peerWanted] });
    const reset = generation !== undefined && generation !== d.peer.generation;
    const current = dump === null ? null : { iface: dump.split('\n')[0]!.split('\t'), peers: parseWgDump(dump) };
    const peer = current?.peers.find((p) => p.publicKey === d.peer.publicKey);
    if (reset && peer) {
      // Removing the peer drops its session; syncconf adds it back and, with a keepalive, it handshakes at once.
      await run(['wg', 'set', d.interface, 'peer', d.peer.publicKey, 'remove']);
    } else if (
      current &&
      current.iface[1] === ownPublic &&
      current.peers.length === 1 &&
      peer &&
      sameSet(peer.allowedIps.map((p) => canonicalAllowedIp(p)), d.peer.allowedIps.map((p) => canonicalAllowedIp(p))) &&
      peer.keepalive === d.peer.keepalive &&
      (d.peer.endpoint === null || sameEndpoint(peer.endpoint, d.peer.endpoint))
    ) {
      generation = d.peer.generation;
      return;
    }
    // syncconf changes only what differs and keeps an unchanged peer's session.
    await wgSyncConf(run, d.interface, conf);
    // A config without PersistentKeepalive leaves the old value in place, so "off" takes wg set.
    if (d.peer.keepalive === 0 && peer && peer.keepalive !== 0) {
      await run(['wg', 'set', d.interface, 'peer', d.peer.publicKey, 'persistent-keepalive', 'off']);
    }
    generation = d.peer.generation;
  }

  async function applyAddresses(d: GatewayDesired, link: Link): Promise<void> {
    if (link.mtu !== d.mtu) await run(['ip', 'link', 'set', 'dev', d.interface, 'mtu', String(d.mtu)]);
    if (!link.up) await run(['ip', 'link', 'set', 'dev', d.interface, 'up']);
    await syncAddresses(run, d.interface, [...new Set(d.addresses.map(canonicalInterfaceAddress))]);
  }

  // ---- policy routing ----

  /** Makes our table match; returns false when a route had to wait for its interface. */
  async function applyRoutes(table: number, want: RouteSpec[], usable: (r: RouteSpec) => boolean): Promise<boolean> {
    let complete = true;
    for (const family of FAMILIES) {
      const { stale, missing } = diffByKey(await tableRoutes(family, table), want.filter((r) => r.family === family), routeKey);
      for (const r of stale) await run(routeArgv('del', r));
      for (const r of missing) {
        // A route through a missing or down interface cannot be added; a later pass adds it.
        if (usable(r)) await run(routeArgv('replace', r));
        else complete = false;
      }
    }
    return complete;
  }

  async function applyRules(table: number, want: RuleSpec[]): Promise<void> {
    for (const family of FAMILIES) {
      const { stale, missing } = diffByKey(await tableRules(family, table), want.filter((r) => r.family === family), ruleKey);
      for (const r of stale) await run(ruleArgv('del', r));
      for (const r of missing) await run(ruleArgv('add', r));
    }
  }

  async function applyOverlayRoutes(iface: string, want: RouteSpec[]): Promise<void> {
    for (const family of FAMILIES) {
      if (!want.some((r) => r.family === family)) continue;
      const r = await run(['ip', '-j', `-${family}`, 'route', 'show', 'table', 'main', 'dev', iface], { allowFail: true });
      const have = new Set(r.code === 0 ? parseRoutes(r.stdout, family, 254).map((x) => x.dst) : []);
      for (const route of want) {
        if (route.family === family && !have.has(route.dst)) await run(routeArgv('replace', route));
      }
    }
  }

  // ---- set / remove ----

  async function apply(d: GatewayDesired): Promise<void> {
    validate(d);
    if (owned.interface !== d.interface || owned.table !== d.table) {
      await remove(owned);
    }
    owned = { interface: d.interface, table: d.table };
    const plan = planRouting(d);
    const killSwitch = renderKillSwitch({
      tunnel: d.interface,
      lanInterfaces: d.lan.map((l) => l.interface),
      killSwitch: d.killSwitch,
      mtu: d.mtu,
    });
    const errors: Error[] = [];
    const step = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (e) {
        errors.push(new Error(`${what}: ${(e as Error).message}`));
      }
    };
    // The kill switch first and the rest in an order that never opens a path to the WAN:
    // LAN routes and the unreachable fallback exist before the rules that send LAN traffic to them.
    await step('kill switch', () => nft.set(killSwitch));
    await step('forwarding', ensureForwarding);
    let all = await links();
    const usable = (r: RouteSpec) => r.dev === undefined || all.get(r.dev)?.up === true;
    let routesComplete = false;
    await step('routing table', async () => {
      routesComplete = await applyRoutes(d.table, plan.routes, usable);
    });
    await step('ip rules', () => applyRules(d.table, plan.rules));
    await step('tunnel', async () => {
      const link = await ensureLink(d.interface, all);
      await applyWg(d);
      await applyAddresses(d, link);
      // The tunnel's own routes, when its interface was only now created or brought up.
      if (!routesComplete) {
        all = await links();
        await applyRoutes(d.table, plan.routes, usable);
      }
      await applyOverlayRoutes(d.interface, plan.overlayRoutes);
    });
    if (errors.length === 1) throw errors[0]!;
    if (errors.length > 1) throw new Error(errors.map((e) => e.message).join('; '));
  }

  async function remove(own: Ownership): Promise<void> {
    for (const family of FAMILIES) {
      for (const r of await tableRules(family, own.table)) await run(ruleArgv('del', r));
      for (const r of await tableRoutes(family, own.table)) await run(routeArgv('del', r));
    }
    await nft.set(null);
    // Deleting the link also ends a wireguard-go serving it.
    if ((await links()).has(own.interface)) await run(['ip', 'link', 'del', 'dev', own.interface]);
    generation = undefined;
  }

  return {
    name: 'linux',
    set(desired) {
      return serial(() => (desired === null ? remove(owned) : apply(desired)));
    },
    async show(iface) {
      checkInterfaceName(iface, 'interface');
      const killSwitch = ((await nft.list().catch(() => null)) ?? '').includes(KILL_SWITCH_MARK);
      const link = (await links()).get(iface);
      if (!link) return { present: false, up: false, peers: [], killSwitch } satisfies TunnelState;
      const dump = await wgDump(iface);
      const peers = dump === null ? [] : parseWgDump(dump);
      return {
        present: true,
        up: link.up,
        killSwitch,
        peers: peers.map(({ publicKey, endpoint, latestHandshake, rxBytes, txBytes }) => ({
          publicKey,
          endpoint,
          latestHandshake,
          rxBytes,
          txBytes,
        })),
      };
    },
  };
}

function validate(d: GatewayDesired): void {
  checkInterfaceName(d.interface, 'interface');
  decodeKey(d.privateKey, 'privateKey');
  decodeKey(d.peer.publicKey, 'peer.publicKey');
  if (!Number.isInteger(d.table) || d.table < 1 || d.table > 0xffffffff || (d.table >= 253 && d.table <= 255)) {
    throw new ValidationError('table', `expected a routing table number other than 253-255, got ${String(d.table)}`);
  }
  if (!Number.isInteger(d.rulePriority) || d.rulePriority < 1 || d.rulePriority > 32765) {
    throw new ValidationError('rulePriority', `expected an integer 1-32765, got ${String(d.rulePriority)}`);
  }
  if (d.peer.endpoint !== null) parseEndpoint(d.peer.endpoint, undefined, 'peer.endpoint');
  d.addresses.forEach((a, i) => parseInterfaceAddress(a, `addresses[${i}]`));
}

/** What `have` holds that is not wanted, and what is wanted that it lacks, matched by key. */
function diffByKey<T>(have: T[], want: T[], key: (x: T) => string): { stale: T[]; missing: T[] } {
  const wantKeys = new Set(want.map(key));
  const haveKeys = new Set(have.map(key));
  return { stale: have.filter((x) => !wantKeys.has(key(x))), missing: want.filter((x) => !haveKeys.has(key(x))) };
}

function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

function sameEndpoint(have: string | null, want: string): boolean {
  if (have === null) return false;
  try {
    const h = parseEndpoint(have, undefined, 'endpoint');
    const w = parseEndpoint(want, undefined, 'endpoint');
    return formatEndpoint(h.host, h.port) === formatEndpoint(w.host, w.port);
  } catch {
    return false;
  }
}

function canonicalInterfaceAddress(text: string): string {
  const { address, prefix } = parseInterfaceAddress(text, 'addresses');
  return `${formatAddress(address)}/${prefix.length}`;
}
