// `aerie-cloud firewall …`, `publish`, `unpublish`, `publishes`: the owner's
// firewall policy through the same API the daemon serves.
import { ValidationError } from '../../shared/errors.ts';
import { ControlError, type ControlClient } from '../control/client.ts';
import type { FirewallHostInfo, FirewallPolicyInfo, FirewallSettings } from '../core/firewall.ts';
import type { FirewallCounters, FirewallPublish } from '../firewall/desired.ts';
import { DnsUsageError } from './dns.ts';
import { bytes, table } from './output.ts';

export const FIREWALL_USAGE = `  aerie-cloud firewall print                the nft ruleset the daemon would apply
  aerie-cloud firewall apply                render and apply it now
  aerie-cloud firewall stats [--json]       packets and bytes per device and per rule
  aerie-cloud firewall hosts [--json]       devices behind the router named by address
  aerie-cloud firewall host add NAME ADDRESS...
                                            name a device behind the router (an address or prefix of a home)
  aerie-cloud firewall host remove NAME     the host and its policy
  aerie-cloud firewall policies [--json]    the policy of every device and host
  aerie-cloud firewall policy NAME [--internet allow|block] [--isolated on|off] [--lan-access on|off]
                                            show or change one; isolated: only the VM's DNS and MQTT;
                                            lan-access: a member may reach the home
  aerie-cloud firewall ssh [PORT|off]       show or set the SSH port open from anywhere (default 22)
  aerie-cloud publish NAME --port PUBLIC --to ADDRESS[:PORT] [--proto tcp|udp]
                                            make a home service reachable on the VM's public address
  aerie-cloud unpublish NAME                make it unreachable again
  aerie-cloud publishes [--json]            what is published`;

/** main reports every DnsUsageError as a usage error (message, then a pointer to --help). */
export class FirewallUsageError extends DnsUsageError {}

export interface FirewallCliContext {
  api: ControlClient;
  /** Whether the daemon answers (print, stats and apply need it). */
  daemon: boolean;
  json: boolean;
  out: (text: string) => void;
}

export interface PolicyFlags {
  internet?: string;
  isolated?: string;
  lanAccess?: string;
}

export interface PublishFlags {
  port?: string;
  to?: string;
  proto?: string;
}

const enc = encodeURIComponent;

/** "on"/"off" from the command line (yes/no and true/false too). */
export function onOff(text: string, field: string): boolean {
  if (['on', 'yes', 'true'].includes(text)) return true;
  if (['off', 'no', 'false'].includes(text)) return false;
  throw new ValidationError(field, `expected on or off, got ${JSON.stringify(text)}`);
}

/** Digits become a number; anything else is passed on as typed, for the API to name it. */
const portValue = (text: string): number | string => (/^[0-9]{1,5}$/.test(text) ? Number(text) : text);

/** "192.0.2.140:8080", "[2001:db8:1a::140]:8080" or a bare address (the public port then). */
export function splitTarget(text: string): { toAddress: string; toPort?: number | string } {
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracket) return { toAddress: bracket[1]!, ...(bracket[2] !== undefined && { toPort: portValue(bracket[2]) }) };
  const colons = text.split(':').length - 1;
  if (colons === 1) {
    const i = text.indexOf(':');
    return { toAddress: text.slice(0, i), toPort: portValue(text.slice(i + 1)) };
  }
  return { toAddress: text };
}

function policyLine(p: FirewallPolicyInfo): string {
  const parts = [`internet ${p.policy.internet}`, `isolated ${p.policy.isolated ? 'on' : 'off'}`];
  if (p.kind === 'member') parts.push(`lan-access ${p.policy.lanAccess ? 'on' : 'off'}`);
  return `${p.name} (${p.kind === 'host' ? 'LAN host' : p.kind}): ${parts.join(', ')}`;
}

function policiesTable(list: FirewallPolicyInfo[]): string {
  if (list.length === 0) return 'No devices or LAN hosts yet.';
  return table([
    ['NAME', 'KIND', 'INTERNET', 'ISOLATED', 'LAN ACCESS'],
    ...list.map((p) => [p.name, p.kind, p.policy.internet, p.policy.isolated ? 'on' : 'off', p.kind === 'member' ? (p.policy.lanAccess ? 'on' : 'off') : '-']),
  ]);
}

function hostsTable(hosts: FirewallHostInfo[]): string {
  if (hosts.length === 0) return 'No LAN hosts. Name one with `aerie-cloud firewall host add NAME ADDRESS...`.';
  return table([['NAME', 'ADDRESSES', 'GATEWAY'], ...hosts.map((h) => [h.name, h.addresses.join(', '), h.gateway])]);
}

const target = (p: FirewallPublish) => (p.toAddress.includes(':') ? `[${p.toAddress}]:${p.toPort}` : `${p.toAddress}:${p.toPort}`);

function publishesTable(list: FirewallPublish[]): string {
  if (list.length === 0) return 'Nothing is published: no device at home is reachable from the internet.';
  return table([['NAME', 'PROTO', 'PORT', 'TO'], ...list.map((p) => [p.name, p.proto, String(p.port), target(p)])]);
}

function sshLine(s: FirewallSettings): string {
  return s.sshPort === null
    ? 'SSH is closed: the VM answers on no SSH port. Keep another way in (the provider\'s console).'
    : `SSH is open on TCP port ${s.sshPort} from anywhere.`;
}

function statsText(c: FirewallCounters): string {
  const names = Object.keys(c.subjects).sort();
  const subjects =
    names.length === 0
      ? 'No per-device counters.'
      : table([
          ['NAME', 'SENT', 'BYTES', 'DROPPED', 'BYTES'],
          ...names.map((n) => {
            const s = c.subjects[n]!;
            return [n, String(s.outPackets), bytes(s.outBytes), String(s.droppedPackets), bytes(s.droppedBytes)];
          }),
        ]);
  const rules = table([['CHAIN', 'PACKETS', 'BYTES', 'RULE'], ...c.rules.map((r) => [r.chain, String(r.packets), bytes(r.bytes), r.comment])]);
  return `${subjects}\n\n${rules}`;
}

function none(args: string[], what: string): void {
  if (args.length > 0) throw new FirewallUsageError(`${what} takes no argument, got ${args[0]}`);
}

export async function runFirewall(ctx: FirewallCliContext, sub: string | undefined, args: string[], flags: PolicyFlags): Promise<void> {
  const { api, out } = ctx;
  const show = (value: unknown, text: () => string) => out(ctx.json ? JSON.stringify(value, null, 2) : text());
  const policyFlags = flags.internet !== undefined || flags.isolated !== undefined || flags.lanAccess !== undefined;
  if (policyFlags && sub !== 'policy') throw new FirewallUsageError('--internet, --isolated and --lan-access go with firewall policy only');
  const needDaemon = () => {
    // Checked here: asked in-process, the API would log its 503 as well.
    if (!ctx.daemon) throw new ControlError(503, 'unavailable', `firewall ${sub} needs the running daemon (start it with \`aerie-cloud serve\`)`);
  };
  switch (sub) {
    case 'print': {
      none(args, 'firewall print');
      needDaemon();
      const { rules } = await api.request<{ rules: string }>('GET', '/v1/firewall/rules');
      return out(ctx.json ? JSON.stringify({ rules }, null, 2) : rules.replace(/\n$/, ''));
    }
    case 'apply': {
      none(args, 'firewall apply');
      needDaemon();
      await api.request('POST', '/v1/firewall/apply');
      return out('Applied the firewall ruleset.');
    }
    case 'stats': {
      none(args, 'firewall stats');
      needDaemon();
      const counters = await api.request<FirewallCounters>('GET', '/v1/firewall/stats');
      return show(counters, () => statsText(counters));
    }
    case 'hosts': {
      none(args, 'firewall hosts');
      const { hosts } = await api.request<{ hosts: FirewallHostInfo[] }>('GET', '/v1/firewall');
      return show(hosts, () => hostsTable(hosts));
    }
    case 'host': {
      const [verb, ...rest] = args;
      if (verb === 'add') {
        if (rest.length < 2 || rest.some((a) => !a)) throw new FirewallUsageError('expected: firewall host add NAME ADDRESS... (its IPv4 and IPv6 addresses, or a prefix)');
        const { host } = await api.request<{ host: FirewallHostInfo }>('POST', '/v1/firewall/hosts', { name: rest[0], addresses: rest.slice(1) });
        if (ctx.json) return out(JSON.stringify(host, null, 2));
        return out(`Added LAN host ${host.name} (${host.addresses.join(', ')}, behind ${host.gateway}). Fence it in with \`aerie-cloud firewall policy ${host.name} --isolated on\`.`);
      }
      if (verb === 'remove') {
        if (rest.length !== 1 || !rest[0]) throw new FirewallUsageError('expected: firewall host remove NAME');
        const { host } = await api.request<{ host: FirewallHostInfo }>('DELETE', `/v1/firewall/hosts/${enc(rest[0])}`);
        return out(`Removed LAN host ${host.name} (${host.addresses.join(', ')}) and its policy.`);
      }
      throw new FirewallUsageError('firewall host needs add or remove');
    }
    case 'policies': {
      none(args, 'firewall policies');
      const { policies } = await api.request<{ policies: FirewallPolicyInfo[] }>('GET', '/v1/firewall');
      return show(policies, () => policiesTable(policies));
    }
    case 'policy': {
      if (args.length !== 1 || !args[0]) throw new FirewallUsageError('expected: firewall policy NAME [--internet allow|block] [--isolated on|off] [--lan-access on|off]');
      const path = `/v1/firewall/policies/${enc(args[0])}`;
      if (!policyFlags) {
        const info = await api.request<FirewallPolicyInfo>('GET', path);
        return show(info, () => policyLine(info));
      }
      const change = {
        ...(flags.internet !== undefined && { internet: flags.internet }),
        ...(flags.isolated !== undefined && { isolated: onOff(flags.isolated, 'isolated') }),
        ...(flags.lanAccess !== undefined && { lanAccess: onOff(flags.lanAccess, 'lan-access') }),
      };
      const info = await api.request<FirewallPolicyInfo>('PUT', path, change);
      return show(info, () => policyLine(info));
    }
    case 'ssh': {
      if (args.length > 1) throw new FirewallUsageError('expected: firewall ssh [PORT|off]');
      if (args[0] === undefined) {
        const { settings } = await api.request<{ settings: FirewallSettings }>('GET', '/v1/firewall');
        return show(settings, () => sshLine(settings));
      }
      const sshPort = args[0] === 'off' ? null : portValue(args[0]);
      const { settings } = await api.request<{ settings: FirewallSettings }>('PATCH', '/v1/firewall/settings', { sshPort });
      return show(settings, () => sshLine(settings));
    }
    case undefined:
      throw new FirewallUsageError('firewall needs one of: print, apply, stats, hosts, host, policies, policy, ssh');
    default:
      throw new FirewallUsageError(`unknown firewall command: ${sub}`);
  }
}

/** `publish`, `unpublish` and `publishes`. */
export async function runPublish(ctx: FirewallCliContext, cmd: 'publish' | 'unpublish' | 'publishes', args: string[], flags: PublishFlags): Promise<void> {
  const { api, out } = ctx;
  const given = flags.port !== undefined || flags.to !== undefined || flags.proto !== undefined;
  if (given && cmd !== 'publish') throw new FirewallUsageError('--port, --to and --proto go with publish only');
  if (cmd === 'publishes') {
    none(args, 'publishes');
    const { publishes } = await api.request<{ publishes: FirewallPublish[] }>('GET', '/v1/firewall');
    return out(ctx.json ? JSON.stringify(publishes, null, 2) : publishesTable(publishes));
  }
  if (args.length !== 1 || !args[0]) {
    throw new FirewallUsageError(cmd === 'publish' ? 'expected: publish NAME --port PUBLIC --to ADDRESS[:PORT] [--proto tcp|udp]' : 'expected: unpublish NAME');
  }
  const name = args[0];
  if (cmd === 'unpublish') {
    const { publish } = await api.request<{ publish: FirewallPublish }>('DELETE', `/v1/firewall/publishes/${enc(name)}`);
    return out(`Unpublished ${publish.name}: ${publish.proto} port ${publish.port} no longer reaches ${target(publish)}.`);
  }
  if (flags.port === undefined || flags.to === undefined) throw new FirewallUsageError('publish needs --port PUBLIC and --to ADDRESS[:PORT]');
  const { publish } = await api.request<{ publish: FirewallPublish }>('POST', '/v1/firewall/publishes', {
    name,
    port: portValue(flags.port),
    ...splitTarget(flags.to),
    ...(flags.proto !== undefined && { proto: flags.proto }),
  });
  if (ctx.json) return out(JSON.stringify(publish, null, 2));
  return out(`Published ${publish.name}: ${publish.proto} port ${publish.port} on the VM's public address reaches ${target(publish)} from the whole internet.`);
}
