import { formatAddress, hostPrefix, parseAddress, parsePrefix, prefixContains, prefixesOverlap, type Prefix } from '../../shared/cidr.ts';
import { describeInput, ValidationError } from '../../shared/errors.ts';
import { DeviceName, parseWith } from '../../shared/schemas.ts';
import type { EventBus } from '../events.ts';
import type { FirewallPolicy, FirewallPublish, FirewallSubject } from '../firewall/desired.ts';
import type { DeviceRecord, DeviceRole } from '../store/devices.ts';
import type { FirewallPolicyRow, FirewallPublishRow, PolicySubjectKind } from '../store/firewall.ts';
import type { Store } from '../store/store.ts';
import type { CoreConfig } from './config.ts';
import { CoreError } from './errors.ts';
import { refuseTakenName } from './names.ts';
import { checkFields, checkHostAddress, checkPolicyPatch, checkPort, checkProto } from './firewall-checks.ts';

// The owner's firewall policy: LAN hosts (devices behind a router, named by
// address), a policy per device or host, published home services and the SSH
// port. Only checks and storage here; rendering the ruleset is cloud/firewall's.

export const DEFAULT_POLICY: Readonly<FirewallPolicy> = Object.freeze({ internet: 'allow', isolated: false, lanAccess: false });

/** On by default, so that the owner cannot lock themselves out of the VM. */
export const DEFAULT_SSH_PORT = 22;

/** What the VM serves on its tunnel addresses only (HTTP, DNS and MQTT per the IANA registry). */
export const TUNNEL_PORTS: Readonly<{ api: number; dns: number; mqtt: number }> = Object.freeze({ api: 80, dns: 53, mqtt: 1883 });

export const FIREWALL_KEYS = { sshPort: 'firewall_ssh_port' } as const;

export interface FirewallHostInfo {
  name: string;
  /** Addresses ("192.0.2.140", "2001:db8:1a::140") or prefixes ("192.0.2.144/28"): one device, one policy. */
  addresses: string[];
  /** The gateway whose home prefixes hold them. */
  gateway: string;
}

/** A device with an IPv4 and a few IPv6 addresses fits; more is a network, better named by its prefix. */
export const MAX_HOST_ADDRESSES = 8;

export interface FirewallPolicyInfo {
  name: string;
  kind: FirewallSubject['kind'];
  policy: FirewallPolicy;
}

export interface FirewallSettings {
  /** null: SSH closed from everywhere. */
  sshPort: number | null;
}

export interface FirewallCore {
  hosts: {
    list(): FirewallHostInfo[];
    /** `input`: { name, addresses } (or one `address`). */
    add(input: unknown): FirewallHostInfo;
    /** The host and its policy; CoreError 'not_found' if there is none. */
    remove(name: unknown): FirewallHostInfo;
  };
  policies: {
    /** A device's or host's policy (the defaults if none was set). */
    get(name: unknown): FirewallPolicyInfo;
    /** `input`: any of { internet, isolated, lanAccess }; fields left out keep their value. */
    set(name: unknown, input: unknown): FirewallPolicyInfo;
    /** Every device and host, by name. */
    list(): FirewallPolicyInfo[];
  };
  publishes: {
    list(): FirewallPublish[];
    /** `input`: { name, port, toAddress, toPort? (default port), proto? (default tcp) }. */
    add(input: unknown): FirewallPublish;
    remove(name: unknown): FirewallPublish;
  };
  settings: {
    get(): FirewallSettings;
    /** `input`: { sshPort: number | null }. */
    set(input: unknown): FirewallSettings;
  };
  /** Every device (with its policy, tunnel addresses and home prefixes) and every LAN host, by name. */
  subjects(): FirewallSubject[];
}

export interface FirewallCoreDeps {
  store: Store;
  config: Pick<CoreConfig, 'listenPort' | 'pairingPort'>;
  events: EventBus;
  now: () => number;
  /** The VM's tunnel-only services; default TUNNEL_PORTS. */
  tunnelPorts?: { api: number; dns: number; mqtt: number };
  /** Which program of the VM listens on proto/port where the internet reaches it, or null (cloud/firewall/listening.ts). */
  portInUse?: (proto: 'tcp' | 'udp', port: number) => string | null;
}

/** The gateway whose home prefix holds all of `p`, or undefined. */
function gatewayOf(p: Prefix, devices: readonly DeviceRecord[]): DeviceRecord | undefined {
  return devices.find(
    (d) =>
      d.role === 'gateway' &&
      d.lanPrefixes.some((text) => {
        const home = parsePrefix(text);
        return home.length <= p.length && prefixContains(home, { family: p.family, value: p.network });
      }),
  );
}

const allHomePrefixes = (devices: readonly DeviceRecord[]) => devices.filter((d) => d.role === 'gateway').flatMap((d) => d.lanPrefixes);

function notInsideHome(field: string, text: string, devices: readonly DeviceRecord[]): ValidationError {
  const homes = allHomePrefixes(devices);
  const where = homes.length === 0 ? 'no router is paired yet' : `the home prefixes are ${homes.join(', ')}`;
  return new ValidationError(field, `${text} is not inside any gateway's home prefix (${where})`);
}

const toPublish = (r: FirewallPublishRow): FirewallPublish => ({
  name: r.name,
  proto: r.proto,
  port: r.port,
  toAddress: r.toAddress,
  toPort: r.toPort,
});

export function createFirewallCore(deps: FirewallCoreDeps): FirewallCore {
  const { store, config, events, now } = deps;
  const tunnelPorts = deps.tunnelPorts ?? TUNNEL_PORTS;
  const changed = (reason: string) => events.emit('firewall-changed', { reason });

  const readSettings = (): FirewallSettings => {
    const text = store.settings.get(FIREWALL_KEYS.sshPort);
    return { sshPort: text === undefined ? DEFAULT_SSH_PORT : text === 'off' ? null : Number(text) };
  };

  /** What the VM itself listens on from the internet: a publish there would take it away. */
  const ownPort = (proto: 'tcp' | 'udp', port: number): string | undefined => {
    if (proto === 'udp' && port === config.listenPort) return "the VM's WireGuard port";
    if (proto === 'tcp' && port === config.pairingPort) return "the VM's pairing port";
    if (proto === 'tcp' && port === readSettings().sshPort) return "the VM's SSH port";
    return undefined;
  };

  const subjectOf = (name: string): { kind: PolicySubjectKind; role: DeviceRole | 'host' } => {
    const device = store.devices.get(name);
    if (device) return { kind: 'device', role: device.role };
    if (store.firewall.host(name)) return { kind: 'host', role: 'host' };
    throw new CoreError('not_found', `there is no device or LAN host named "${name}"`);
  };
  const policyOf = (name: string, kind: PolicySubjectKind): FirewallPolicy => {
    const row = store.firewall.policy(name, kind);
    return row ? { internet: row.internet, isolated: row.isolated, lanAccess: row.lanAccess } : { ...DEFAULT_POLICY };
  };

  const hostInfo = (name: string, addresses: string[], devices: readonly DeviceRecord[]): FirewallHostInfo => ({
    name,
    addresses,
    gateway: gatewayOf(checkHostAddress(addresses[0]).prefix, devices)?.name ?? '',
  });

  /** The addresses of an add: `address` (one) or `addresses` (1 to MAX_HOST_ADDRESSES), checked, canonical. */
  const hostAddresses = (body: Record<string, unknown>): { field: string; text: string; prefix: Prefix }[] => {
    if (body.address !== undefined && body.addresses !== undefined) throw new ValidationError('addresses', 'give addresses or address, not both');
    if (body.addresses === undefined) return [{ field: 'address', ...checkHostAddress(body.address) }];
    const list = body.addresses;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_HOST_ADDRESSES) {
      throw new ValidationError('addresses', `expected 1 to ${MAX_HOST_ADDRESSES} addresses or prefixes of one device, got ${describeInput(list)}`);
    }
    const out = list.map((a, i) => ({ field: `addresses[${i}]`, ...checkHostAddress(a, `addresses[${i}]`) }));
    out.forEach((a, i) => {
      const before = out.slice(0, i).find((b) => prefixesOverlap(b.prefix, a.prefix));
      if (before) throw new ValidationError(a.field, `${a.text} overlaps ${before.text}, given before it`);
    });
    return out;
  };

  // A removed device takes its policy along, and a removed gateway the hosts
  // and publishes inside its home: a later device of the same name or prefix
  // must not inherit them.
  events.on('devices-changed', (e) => {
    if (e.reason !== 'removed') return;
    const gone = store.transaction(() => {
      let n = store.firewall.removePolicy(e.name, 'device') ? 1 : 0;
      const devices = store.devices.list();
      for (const h of store.firewall.hosts()) {
        if (gatewayOf(checkHostAddress(h.addresses[0]).prefix, devices)) continue;
        store.firewall.removeHost(h.name);
        store.firewall.removePolicy(h.name, 'host');
        n++;
      }
      for (const p of store.firewall.publishes()) {
        if (gatewayOf(hostPrefix(parseAddress(p.toAddress)), devices)) continue;
        store.firewall.removePublish(p.name);
        n++;
      }
      return n;
    });
    if (gone > 0) changed('device-removed');
  });

  const hosts: FirewallCore['hosts'] = {
    list() {
      const devices = store.devices.list();
      return store.firewall.hosts().map((h) => hostInfo(h.name, h.addresses, devices));
    },
    add(input) {
      const body = checkFields(input, ['name', 'address', 'addresses']);
      const name = parseWith(DeviceName, body.name, 'name');
      const addresses = hostAddresses(body);
      const info = store.transaction(() => {
        refuseTakenName(store, name, 'LAN host');
        const devices = store.devices.list();
        const gateway = gatewayOf(addresses[0]!.prefix, devices);
        if (!gateway) throw notInsideHome(addresses[0]!.field, addresses[0]!.text, devices);
        for (const a of addresses.slice(1)) {
          const other = gatewayOf(a.prefix, devices);
          if (!other) throw notInsideHome(a.field, a.text, devices);
          if (other.name !== gateway.name) {
            throw new ValidationError(a.field, `${a.text} is in the home of "${other.name}", ${addresses[0]!.text} in that of "${gateway.name}": one device is behind one router`);
          }
        }
        const taken = store.firewall.hosts().flatMap((h) => h.addresses.map((t) => ({ host: h.name, text: t, prefix: checkHostAddress(t).prefix })));
        for (const a of addresses) {
          const other = taken.find((t) => prefixesOverlap(t.prefix, a.prefix));
          if (other) {
            throw new CoreError('conflict', `${a.field}: ${a.text} overlaps LAN host "${other.host}" (${other.text}); a device behind the router has one policy`);
          }
        }
        const texts = addresses.map((a) => a.text);
        store.firewall.insertHost({ name, addresses: texts, createdAt: now() });
        return { name, addresses: texts, gateway: gateway.name };
      });
      changed('host-added');
      return info;
    },
    remove(nameInput) {
      const name = parseWith(DeviceName, nameInput, 'name');
      const info = store.transaction(() => {
        const h = store.firewall.host(name);
        if (!h || !store.firewall.removeHost(name)) throw new CoreError('not_found', `there is no LAN host named "${name}"`);
        store.firewall.removePolicy(name, 'host');
        return hostInfo(h.name, h.addresses, store.devices.list());
      });
      changed('host-removed');
      return info;
    },
  };

  const policies: FirewallCore['policies'] = {
    get(nameInput) {
      const name = parseWith(DeviceName, nameInput, 'name');
      const { kind, role } = subjectOf(name);
      return { name, kind: role, policy: policyOf(name, kind) };
    },
    set(nameInput, input) {
      const name = parseWith(DeviceName, nameInput, 'name');
      const patch = checkPolicyPatch(input);
      const info = store.transaction(() => {
        const { kind, role } = subjectOf(name);
        const policy = { ...policyOf(name, kind), ...patch };
        if (policy.lanAccess && role !== 'member') {
          const why = role === 'owner' ? 'an owner reaches the home prefixes anyway' : 'it is a switch for members';
          throw new ValidationError('lanAccess', `only members have this switch; "${name}" is ${role === 'host' ? 'a LAN host' : role === 'owner' ? 'an owner' : `a ${role}`} (${why})`);
        }
        if (policy.isolated && role === 'gateway') {
          // The router must reach the VM's API for its settings; fence in the devices behind it instead.
          throw new ValidationError('isolated', `"${name}" is a gateway, which needs the VM's API; isolate LAN hosts behind it instead`);
        }
        const row: FirewallPolicyRow = { subject: name, subjectKind: kind, ...policy };
        store.firewall.setPolicy(row);
        return { name, kind: role, policy };
      });
      changed('policy-set');
      return info;
    },
    list() {
      const devices: FirewallPolicyInfo[] = store.devices.list().map((d) => ({ name: d.name, kind: d.role, policy: policyOf(d.name, 'device') }));
      const lan: FirewallPolicyInfo[] = store.firewall.hosts().map((h) => ({ name: h.name, kind: 'host', policy: policyOf(h.name, 'host') }));
      return [...devices, ...lan].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
  };

  const publishes: FirewallCore['publishes'] = {
    list: () => store.firewall.publishes().map(toPublish),
    add(input) {
      const body = checkFields(input, ['name', 'proto', 'port', 'toAddress', 'toPort']);
      const name = parseWith(DeviceName, body.name, 'name');
      const proto = body.proto === undefined ? 'tcp' : checkProto(body.proto);
      const port = checkPort(body.port, 'port');
      const toPort = body.toPort === undefined ? port : checkPort(body.toPort, 'toPort');
      let to;
      try {
        to = parseAddress(body.toAddress as string, 'toAddress');
      } catch {
        throw new ValidationError('toAddress', `expected the IP address of a device behind the router, got ${describeInput(body.toAddress)}`);
      }
      const toAddress = formatAddress(to);
      const own = ownPort(proto, port);
      if (own) throw new ValidationError('port', `${port}/${proto} is ${own}; publish the service on another public port`);
      // A publish would take the port from it without a word.
      const busy = deps.portInUse?.(proto, port);
      if (busy) throw new ValidationError('port', `${port}/${proto} is in use: ${busy}; publish the service on another public port or stop that program`);
      const row: FirewallPublishRow = { name, proto, port, toAddress, toPort, createdAt: now() };
      store.transaction(() => {
        if (store.firewall.publish(name)) throw new CoreError('conflict', `a publish named "${name}" already exists; unpublish it first or pick another name`);
        const same = store.firewall.publishes().find((p) => p.proto === proto && p.port === port);
        if (same) {
          throw new CoreError('conflict', `port: ${port}/${proto} is already published as "${same.name}" (to ${same.toAddress}:${same.toPort})`);
        }
        const devices = store.devices.list();
        if (!gatewayOf(hostPrefix(to), devices)) throw notInsideHome('toAddress', toAddress, devices);
        store.firewall.insertPublish(row);
      });
      changed('publish-added');
      return toPublish(row);
    },
    remove(nameInput) {
      const name = parseWith(DeviceName, nameInput, 'name');
      const row = store.transaction(() => {
        const p = store.firewall.publish(name);
        if (!p || !store.firewall.removePublish(name)) throw new CoreError('not_found', `there is no publish named "${name}"`);
        return p;
      });
      changed('publish-removed');
      return toPublish(row);
    },
  };

  const settings: FirewallCore['settings'] = {
    get: readSettings,
    set(input) {
      const body = checkFields(input, ['sshPort']);
      if (body.sshPort === undefined) throw new ValidationError('sshPort', 'expected a port number from 1 to 65535, or null to close SSH');
      const sshPort = body.sshPort === null ? null : checkPort(body.sshPort, 'sshPort');
      if (sshPort !== null) {
        if (sshPort === config.pairingPort) throw new ValidationError('sshPort', `${sshPort} is the VM's pairing port`);
        const tunnel = Object.entries(tunnelPorts).find(([, p]) => p === sshPort);
        // Open from everywhere, SSH there would open that service to the internet too.
        if (tunnel) throw new ValidationError('sshPort', `${sshPort} is the port of the VM's ${tunnel[0].toUpperCase()} service on the tunnel`);
      }
      store.transaction(() => {
        const clash = sshPort === null ? undefined : store.firewall.publishes().find((p) => p.proto === 'tcp' && p.port === sshPort);
        if (clash) throw new CoreError('conflict', `sshPort: ${sshPort}/tcp is published as "${clash.name}"; unpublish it first or pick another port`);
        store.settings.set(FIREWALL_KEYS.sshPort, sshPort === null ? 'off' : String(sshPort));
      });
      changed('settings-changed');
      return { sshPort };
    },
  };

  return {
    hosts,
    policies,
    publishes,
    settings,
    subjects() {
      const devices = store.devices.list();
      const subjects: FirewallSubject[] = devices.map((d) => ({
        name: d.name,
        kind: d.role,
        addresses: [d.addressV4, d.addressV6],
        homePrefixes: d.role === 'gateway' ? [...d.lanPrefixes] : [],
        policy: policyOf(d.name, 'device'),
      }));
      for (const h of store.firewall.hosts()) {
        subjects.push({ name: h.name, kind: 'host', addresses: [...h.addresses], homePrefixes: [], policy: policyOf(h.name, 'host') });
      }
      return subjects.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
  };
}
