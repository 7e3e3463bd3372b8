import { formatAddress, parseAddress, parseInterfaceAddress, type Family } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { decodeKey, publicKeyFromPrivate } from '../../shared/keys.ts';
import { formatEndpoint, parseEndpoint } from '../../shared/pairing-code.ts';
import { syncAddresses } from '../../shared/ip-link.ts';
import { createNftTable } from '../../shared/nft-table.ts';
import type { HomeV6 } from './home-v6.ts';
import { CommandError, type Runner } from '../../shared/run.ts';
import { createSerialQueue } from '../../shared/serial-queue.ts';
import { canonicalAllowedIp, parseWgDump, renderWgConf } from '../../shared/wg-conf.ts';
import { wgSyncConf } from '../../shared/wg-syncconf.ts';
import { wireguardGoArgv } from '../../shared/wireguard-go.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import { DNS_INTERCEPT_MARK } from './dns-intercept.ts';
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
import { checkResolvFilePath, syncResolvFile } from './resolv-file.ts';

/**
 * The plain-Linux adapter: `ip`, `wg` and `nft`, argv arrays through one
 * runner. Every step reads the kernel's state first and changes only what
 * differs, so a second set() with the same state runs read-only commands.
 */

export interface LinuxPlatformOptions {
  /** What set(null) removes when this process has not applied anything yet. */
  own: Ownership;
  log?: (message: string) => void;
  /** The home's IPv6 from the VM (address and announcements); without it, desired.homeV6 is not applied. */
  homeV6?: HomeV6;
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
  // The address families this host has; IPv6 may be disabled or not built in.
  let families: Family[] = FAMILIES;
  let saidNoIpv6 = false;

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

  // ---- forwarding and IPv6 ----

  /** net.ipv6.conf.all.forwarding, or null on a host without IPv6 (disabled or not built). */
  async function ipv6Forwarding(): Promise<string | null> {
    const argv = ['sysctl', '-n', 'net.ipv6.conf.all.forwarding'];
    const r = await run(argv, { allowFail: true });
    if (r.code === 0) return r.stdout.trim();
    // procps: "cannot stat /proc/sys/net/ipv6/…: No such file or directory"; busybox: "unknown key".
    if (/no such file|cannot stat|unknown key/i.test(r.stderr)) return null;
    throw new CommandError(argv, r.code, r.stderr);
  }

  /** The interfaces of the main table's IPv6 default route (the WAN). */
  async function ipv6DefaultDevices(): Promise<string[]> {
    const r = await run(['ip', '-j', '-6', 'route', 'show', 'default'], { allowFail: true });
    if (r.code !== 0) return [];
    const routes = JSON.parse(r.stdout || '[]') as { dev?: string; nexthops?: { dev?: string }[] }[];
    const devs = routes.flatMap((x) => [x.dev, ...(x.nexthops ?? []).map((n) => n.dev)]);
    return [...new Set(devs.filter((d): d is string => typeof d === 'string'))];
  }

  /**
   * Learns whether this host has IPv6 (sets `families`); returns IPv6 forwarding's value,
   * null without IPv6, undefined when it could not be told (then both families are tried).
   */
  async function detectFamilies(): Promise<string | null | undefined> {
    const v6 = await ipv6Forwarding().catch(() => undefined);
    families = v6 === null ? [4] : FAMILIES;
    if (v6 === null && !saidNoIpv6) log('this host has no IPv6: applying the IPv4 part only');
    saidNoIpv6 = v6 === null;
    return v6;
  }

  /** A gateway forwards; switched on when off, never switched off (it is not ours alone). */
  async function ensureForwarding(known: string | null | undefined): Promise<void> {
    const v6 = known === undefined ? await ipv6Forwarding() : known;
    const v4 = (await run(['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim();
    if (v4 !== '1') {
      log('enabling net.ipv4.ip_forward: LAN traffic is forwarded into the tunnel');
      await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    }
    if (v6 === null || v6 === '1') return;
    // A forwarding host ignores router advertisements unless accept_ra is 2 (kernel
    // ip-sysctl.rst), and a WAN default route learnt from them would expire.
    for (const dev of await ipv6DefaultDevices()) {
      // sysctl(8) spelling: dots in an interface name become slashes.
      const key = `net.ipv6.conf.${dev.replaceAll('.', '/')}.accept_ra`;
      const ra = await run(['sysctl', '-n', key], { allowFail: true });
      if (ra.code === 0 && ra.stdout.trim() === '1') {
        log(`setting ${key}=2 so that ${dev} keeps its IPv6 default route once forwarding is on`);
        await run(['sysctl', '-qw', `${key}=2`]);
      }
    }
    log('enabling net.ipv6.conf.all.forwarding: LAN traffic is forwarded into the tunnel');
    await run(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  }

  // ---- the WireGuard interface ----

  async function ensureLink(name: string, all: Map<string, Link>): Promise<Link> {
    const have = all.get(name);
    if (have) return have;
    const kernel = await run(['ip', 'link', 'add', name, 'type', 'wireguard'], { allowFail: true });
    if (kernel.code !== 0) {
      // No WireGuard in this kernel: the userspace implementation makes a TUN device and daemonizes.
      log(`kernel WireGuard unavailable (${kernel.stderr.trim() || `exit ${kernel.code}`}); starting wireguard-go ${name}`);
      await run(wireguardGoArgv(name));
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
    const usable = d.addresses.filter((a) => families.includes(parseInterfaceAddress(a, 'addresses').address.family));
    await syncAddresses(run, d.interface, [...new Set(usable.map(canonicalInterfaceAddress))]);
  }

  // ---- policy routing ----

  /** Makes our table match; returns false when a route had to wait for its interface. */
  async function applyRoutes(table: number, want: RouteSpec[], usable: (r: RouteSpec) => boolean): Promise<boolean> {
    let complete = true;
    for (const family of families) {
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
    for (const family of families) {
      const { stale, missing } = diffByKey(await tableRules(family, table), want.filter((r) => r.family === family), ruleKey);
      for (const r of stale) await run(ruleArgv('del', r));
      for (const r of missing) await run(ruleArgv('add', r));
    }
  }

  async function applyOverlayRoutes(iface: string, want: RouteSpec[]): Promise<void> {
    for (const family of families) {
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
    const previous = owned;
    const v6 = await detectFamilies();
    const plan = planRouting(d);
    const killSwitch = renderKillSwitch({
      tunnel: d.interface,
      lanInterfaces: d.lan.map((l) => l.interface),
      lanPrefixes: d.lan.flatMap((l) => l.prefixes),
      killSwitch: d.killSwitch,
      mtu: d.mtu,
      dnsIntercept: d.dns.intercept,
      overlay: d.overlay,
      isolated: d.isolated ?? [],
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
    if (previous.interface !== d.interface || previous.table !== d.table) {
      // Moved to another interface or table: the new kill switch (above, one atomic replace) is in
      // force, so dropping the old pieces opens nothing. The new ones are ours from now on either
      // way; what of the old cannot be removed is left and said, not retried at every pass.
      owned = { interface: d.interface, table: d.table };
      await removeMoved(previous, d).catch((e: Error) =>
        log(`could not remove the old tunnel ${previous.interface} or table ${previous.table}: ${e.message}`),
      );
    }
    // After the table, whose output chain keeps the resolver's queries for the VM off the WAN.
    const resolvFile = d.dns.resolvFile;
    if (resolvFile !== null) {
      await step('resolv file', async () => {
        if (await syncResolvFile(resolvFile, d.dns.servers)) log(`wrote the VM's resolver addresses to ${resolvFile}`);
      });
    }
    await step('forwarding', () => ensureForwarding(v6));
    let all = await links();
    const usable = (r: RouteSpec) => r.dev === undefined || all.get(r.dev)?.up === true;
    let routesComplete = false;
    await step('routing table', async () => {
      routesComplete = await applyRoutes(d.table, plan.routes, usable);
    });
    await step('ip rules', () => applyRules(d.table, plan.rules));
    // Devices get addresses of the home's /64 only once their traffic has a way: rules and routes above.
    const homeV6 = options.homeV6;
    if (homeV6) await step('home IPv6', () => homeV6.set(v6 ? (d.homeV6 ?? null) : null));
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

  /** The old link, rules and routes after a move; never the nft table, which is already the new one. */
  async function removeMoved(old: Ownership, d: GatewayDesired): Promise<void> {
    if (old.table !== d.table) {
      for (const family of families) {
        for (const r of await tableRules(family, old.table)) await run(ruleArgv('del', r));
        for (const r of await tableRoutes(family, old.table)) await run(routeArgv('del', r));
      }
    }
    if (old.interface !== d.interface) {
      generation = undefined; // the new interface starts with a fresh peer anyway
      if ((await links()).has(old.interface)) await run(['ip', 'link', 'del', 'dev', old.interface]);
    }
  }

  async function remove(own: Ownership): Promise<void> {
    await detectFamilies();
    for (const family of families) {
      for (const r of await tableRules(family, own.table)) await run(ruleArgv('del', r));
      for (const r of await tableRoutes(family, own.table)) await run(routeArgv('del', r));
    }
    await nft.set(null);
    await options.homeV6?.set(null);
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
      const listing = (await nft.list().catch(() => null)) ?? '';
      const killSwitch = listing.includes(KILL_SWITCH_MARK);
      const dnsIntercept = listing.includes(DNS_INTERCEPT_MARK);
      const link = (await links()).get(iface);
      if (!link) return { present: false, up: false, peers: [], killSwitch, dnsIntercept } satisfies TunnelState;
      const dump = await wgDump(iface);
      const peers = dump === null ? [] : parseWgDump(dump);
      return {
        present: true,
        up: link.up,
        killSwitch,
        dnsIntercept,
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
  if (typeof d.dns?.intercept !== 'boolean') throw new ValidationError('dns.intercept', 'expected true or false');
  if (!Array.isArray(d.dns.servers)) throw new ValidationError('dns.servers', 'expected a list of addresses');
  d.dns.servers.forEach((a, i) => parseAddress(a, `dns.servers[${i}]`));
  if (d.dns.resolvFile !== null) checkResolvFilePath(d.dns.resolvFile, 'dns.resolvFile');
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
