import { describeInput, ValidationError } from '../../shared/errors.ts';
import { familyBits, formatAddress, formatPrefix, hostPrefix, parseAddress, parsePrefix, prefixesOverlap, type Prefix } from '../../shared/cidr.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import { checkEgress, type CheckedEgress } from './check-egress.ts';
import { DisjointPrefixes, outermostPrefixes } from './prefix-index.ts';
import type { FirewallDesired, FirewallPolicy, FirewallSubject } from './desired.ts';

/** nft set elements of one kind, split by family, sorted, canonical text. */
export interface Lists {
  v4: string[];
  v6: string[];
}

export interface CheckedSubject {
  name: string;
  kind: FirewallSubject['kind'];
  addresses: Lists;
  policy: FirewallPolicy;
}

export interface CheckedPublish {
  name: string;
  proto: 'tcp' | 'udp';
  port: number;
  family: 4 | 6;
  toAddress: string;
  toPort: number;
}

/** FirewallDesired checked and reduced to what the renderer writes, every list in a fixed order. */
export interface CheckedFirewall {
  wan: string;
  tunnel: string;
  overlay: Lists;
  homes: Lists;
  /** Overlay and home prefixes together: the sources that live behind the tunnel. */
  inside: Lists;
  vm: Lists;
  ports: FirewallDesired['ports'];
  /** Addresses of the subjects each policy rule is about. */
  groups: { owners: Lists; lanMembers: Lists; blocked: Lists; isolated: Lists };
  /** Sorted by name. */
  subjects: CheckedSubject[];
  /** Sorted by name. */
  publishes: CheckedPublish[];
  /** The temporary egress address; null: the main address for all. */
  egress: CheckedEgress | null;
  /** Home prefixes that are not NATed (routed to the VM by the provider). */
  routed: Lists;
}

// Same rule as the DeviceName schema: the name goes into nft object names and comments.
const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const KINDS = ['gateway', 'owner', 'member', 'host'] as const;

function fail(field: string, message: string): never {
  throw new ValidationError(field, message);
}

function array(x: unknown, field: string, what: string): unknown[] {
  if (!Array.isArray(x)) fail(field, `expected an array of ${what}, got ${describeInput(x)}`);
  return x;
}

function port(x: unknown, field: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > 65535) {
    fail(field, `expected a port number 1-65535, got ${typeof x === 'number' ? x : describeInput(x)}`);
  }
  return x;
}

function name(x: unknown, field: string): string {
  if (typeof x !== 'string' || x.length > 32 || !NAME.test(x)) {
    fail(field, `expected a name of 1-32 lowercase letters, digits and inner '-', got ${describeInput(x)}`);
  }
  return x;
}

/** Drops prefixes inside others (nft refuses overlapping intervals in one set) and sorts. */
function lists(prefixes: Prefix[]): Lists {
  const kept = outermostPrefixes(prefixes);
  // A single address is written without /32 or /128, as nft lists it.
  const text = (p: Prefix) => (p.length === familyBits(p.family) ? formatAddress({ family: p.family, value: p.network }) : formatPrefix(p));
  return { v4: kept.filter((p) => p.family === 4).map(text), v6: kept.filter((p) => p.family === 6).map(text) };
}

const within = (p: Prefix, outer: Prefix[]) => outer.some((o) => o.length <= p.length && prefixesOverlap(o, p));

function checkPolicy(x: unknown, kind: FirewallSubject['kind'], field: string): FirewallPolicy {
  if (typeof x !== 'object' || x === null) fail(field, 'expected an object { internet, isolated, lanAccess }');
  const p = x as Record<string, unknown>;
  if (p.internet !== 'allow' && p.internet !== 'block') fail(`${field}.internet`, `expected "allow" or "block", got ${describeInput(p.internet)}`);
  if (typeof p.isolated !== 'boolean') fail(`${field}.isolated`, `expected true or false, got ${describeInput(p.isolated)}`);
  if (typeof p.lanAccess !== 'boolean') fail(`${field}.lanAccess`, `expected true or false, got ${describeInput(p.lanAccess)}`);
  if (p.lanAccess && kind !== 'member') fail(`${field}.lanAccess`, `applies to members only, not to a ${kind}`);
  return { internet: p.internet, isolated: p.isolated, lanAccess: p.lanAccess };
}

/** Validates everything the renderer uses; the error names the field. Nothing is rendered from bad input. */
export function checkFirewallDesired(d: FirewallDesired): CheckedFirewall {
  if (typeof d !== 'object' || d === null) fail('firewall', 'expected an object');
  const wan = checkInterfaceName(d.wanInterface, 'wanInterface');
  const tunnel = checkInterfaceName(d.tunnelInterface, 'tunnelInterface');
  if (wan === tunnel) fail('tunnelInterface', `must differ from wanInterface (both are ${JSON.stringify(wan)})`);

  const overlay = array(d.overlay, 'overlay', 'IP prefixes').map((t, i) => parsePrefix(t as string, `overlay[${i}]`));
  if (overlay.length === 0) fail('overlay', 'expected at least one overlay prefix');
  const vm = array(d.vmAddresses, 'vmAddresses', 'IP addresses').map((t, i) => {
    const p = hostPrefix(parseAddress(t as string, `vmAddresses[${i}]`));
    if (!within(p, overlay)) fail(`vmAddresses[${i}]`, `${t} is not inside the overlay`);
    return p;
  });

  if (typeof d.ports !== 'object' || d.ports === null) fail('ports', 'expected an object of port numbers');
  const ports = {
    wireguard: port(d.ports.wireguard, 'ports.wireguard'),
    pairing: port(d.ports.pairing, 'ports.pairing'),
    api: port(d.ports.api, 'ports.api'),
    dns: port(d.ports.dns, 'ports.dns'),
    mqtt: port(d.ports.mqtt, 'ports.mqtt'),
    ssh: d.ports.ssh === null ? null : port(d.ports.ssh, 'ports.ssh'),
  };
  // TCP services of the VM each need their own port; DNS also listens on UDP next to WireGuard.
  const tcp = (['pairing', 'api', 'dns', 'mqtt', 'ssh'] as const).filter((k) => ports[k] !== null);
  for (const [i, k] of tcp.entries()) {
    const other = tcp.slice(0, i).find((o) => ports[o] === ports[k]);
    if (other) fail(`ports.${k}`, `${ports[k]} is already ports.${other}`);
  }
  if (ports.dns === ports.wireguard) fail('ports.dns', `${ports.dns} is already ports.wireguard (both UDP)`);

  const rawSubjects = array(d.subjects, 'subjects', 'subjects');
  const homes: { prefix: Prefix; owner: string }[] = [];
  const seen = new Map<string, number>();
  const parsed = rawSubjects.map((x, i) => {
    const f = `subjects[${i}]`;
    if (typeof x !== 'object' || x === null) fail(f, 'expected an object');
    const s = x as FirewallSubject;
    const n = name(s.name, `${f}.name`);
    if (seen.has(n)) fail(`${f}.name`, `${n} is already subjects[${seen.get(n)}].name`);
    seen.set(n, i);
    if (!KINDS.includes(s.kind)) fail(`${f}.kind`, `expected one of ${KINDS.join(', ')}, got ${describeInput(s.kind)}`);
    array(s.homePrefixes, `${f}.homePrefixes`, 'IP prefixes').forEach((t, j) => {
      const hf = `${f}.homePrefixes[${j}]`;
      const p = parsePrefix(t as string, hf);
      if (s.kind !== 'gateway') fail(hf, `only gateways have home prefixes, not a ${s.kind}`);
      if (overlay.some((o) => prefixesOverlap(o, p))) fail(hf, `${t} overlaps the overlay`);
      const clash = homes.find((h) => h.owner !== n && prefixesOverlap(h.prefix, p));
      if (clash) fail(hf, `${t} overlaps a home prefix of ${clash.owner}`);
      homes.push({ prefix: p, owner: n });
    });
    const addresses = array(s.addresses, `${f}.addresses`, 'IP addresses');
    return { s, f, n, addresses, policy: checkPolicy(s.policy, s.kind, `${f}.policy`) };
  });

  const homePrefixes = homes.map((h) => h.prefix);
  // The VM's own addresses first: nobody else may have them. (Checked against the overlay, they never overlap each other.)
  const taken = new DisjointPrefixes<string>();
  for (const prefix of vm) if (taken.find(prefix) === undefined) taken.add(prefix, 'the VM');
  const prefixesOf = new Map<string, Prefix[]>();
  const groups = { owners: [] as Prefix[], lanMembers: [] as Prefix[], blocked: [] as Prefix[], isolated: [] as Prefix[] };
  const subjects: CheckedSubject[] = parsed.map(({ s, f, n, addresses, policy }) => {
    const prefixes = addresses.map((t, j) => {
      const af = `${f}.addresses[${j}]`;
      let p: Prefix;
      if (s.kind === 'host') {
        p = typeof t === 'string' && t.includes('/') ? parsePrefix(t, af) : hostPrefix(parseAddress(t as string, af));
        if (!within(p, homePrefixes)) fail(af, `${t} is not inside any gateway's home prefixes`);
      } else {
        p = hostPrefix(parseAddress(t as string, af));
        if (!within(p, overlay)) fail(af, `${t} is not inside the overlay`);
      }
      const clash = taken.find(p);
      if (clash !== undefined) fail(af, `${t} overlaps an address of ${clash}`);
      taken.add(p, n);
      return p;
    });
    if (s.kind === 'owner') groups.owners.push(...prefixes);
    if (s.kind === 'member' && policy.lanAccess) groups.lanMembers.push(...prefixes);
    if (policy.internet === 'block') groups.blocked.push(...prefixes);
    if (policy.isolated) groups.isolated.push(...prefixes);
    prefixesOf.set(n, [...prefixes, ...homes.filter((h) => h.owner === n).map((h) => h.prefix)]);
    return { name: n, kind: s.kind, addresses: lists(prefixes), policy };
  });
  subjects.sort((a, b) => (a.name < b.name ? -1 : 1));

  const used: Record<string, string> = { [`udp ${ports.wireguard}`]: 'ports.wireguard', [`tcp ${ports.pairing}`]: 'ports.pairing' };
  if (ports.ssh !== null) used[`tcp ${ports.ssh}`] = 'ports.ssh';
  const names = new Map<string, number>();
  const publishes = array(d.publishes, 'publishes', 'publishes').map((x, i): CheckedPublish => {
    const f = `publishes[${i}]`;
    if (typeof x !== 'object' || x === null) fail(f, 'expected an object');
    const p = x as Record<string, unknown>;
    const n = name(p.name, `${f}.name`);
    if (names.has(n)) fail(`${f}.name`, `${n} is already publishes[${names.get(n)}].name`);
    names.set(n, i);
    if (p.proto !== 'tcp' && p.proto !== 'udp') fail(`${f}.proto`, `expected "tcp" or "udp", got ${describeInput(p.proto)}`);
    const key = `${p.proto} ${port(p.port, `${f}.port`)}`;
    if (used[key]) fail(`${f}.port`, `${p.proto.toUpperCase()} ${p.port} is already taken by ${used[key]}`);
    used[key] = `${f}.port`;
    const to = parseAddress(p.toAddress as string, `${f}.toAddress`);
    if (!within(hostPrefix(to), homePrefixes)) fail(`${f}.toAddress`, `${p.toAddress} is not inside any gateway's home prefixes`);
    return { name: n, proto: p.proto, port: p.port as number, family: to.family, toAddress: formatAddress(to), toPort: port(p.toPort, `${f}.toPort`) };
  });
  publishes.sort((a, b) => (a.name < b.name ? -1 : 1));

  return {
    wan,
    tunnel,
    overlay: lists(overlay),
    homes: lists(homePrefixes),
    inside: lists([...overlay, ...homePrefixes]),
    vm: lists(vm),
    ports,
    groups: {
      owners: lists(groups.owners),
      lanMembers: lists(groups.lanMembers),
      blocked: lists(groups.blocked),
      isolated: lists(groups.isolated),
    },
    subjects,
    publishes,
    egress: d.egress === undefined ? null : checkEgress(d.egress, prefixesOf, lists),
    routed: lists(checkRouted(d.routed, homePrefixes)),
  };
}

/** Routed home prefixes: each inside a gateway's home prefixes. */
function checkRouted(routed: unknown, homePrefixes: Prefix[]): Prefix[] {
  if (routed === undefined) return [];
  return array(routed, 'routed', 'IP prefixes').map((t, i) => {
    const p = parsePrefix(t as string, `routed[${i}]`);
    if (!within(p, homePrefixes)) fail(`routed[${i}]`, `${formatPrefix(p)} is not inside any gateway's home prefixes`);
    return p;
  });
}
