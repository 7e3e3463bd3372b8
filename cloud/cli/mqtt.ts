// `aerie-cloud mqtt …`: the broker's users (devices behind the router, by
// password) and the owner's topic grants, through the same API the daemon serves.
import type { MqttBrokerAddress } from '../api/mqtt.ts';
import type { ControlClient } from '../control/client.ts';
import type { MqttGrantInfo, MqttUserInfo } from '../core/mqtt-users.ts';
import { DnsUsageError } from './dns.ts';
import { table } from './output.ts';

export const MQTT_USAGE = `  aerie-cloud mqtt users [--json]           MQTT users (devices behind the router) and their topics
  aerie-cloud mqtt add-user NAME [--prefix TOPIC] [--json]
                                            a user owning TOPIC/# (default home/NAME); prints its password once
  aerie-cloud mqtt remove-user NAME         the user and its grants
  aerie-cloud mqtt grant NAME read|write FILTER
  aerie-cloud mqtt revoke NAME read|write FILTER
                                            topics beyond its own for a user or a tunnel device
  aerie-cloud mqtt grants [NAME] [--json]   every grant, or those of one user or device
  aerie-cloud mqtt clients [--json]         who is connected to the broker now
  aerie-cloud mqtt sub FILTER [--count N] [--json]
                                            print the messages on FILTER (retained ones first) until Ctrl-C`;

/** main reports every DnsUsageError as a usage error (message, then a pointer to --help). */
export class MqttUsageError extends DnsUsageError {}

export interface MqttCliContext {
  api: ControlClient;
  json: boolean;
  out: (text: string) => void;
}

const enc = encodeURIComponent;

function usersTable(users: MqttUserInfo[]): string {
  if (users.length === 0) return 'No MQTT users. Add one with `aerie-cloud mqtt add-user NAME`.';
  return table([['NAME', 'TOPICS', 'ADDED'], ...users.map((u) => [u.name, u.prefix, u.createdAt])]);
}

interface ConnectedClient {
  id: string;
  caller: string;
  address: string;
  since: string;
}

function clientsTable(clients: ConnectedClient[], stats: Record<string, number>): string {
  const counts = `${stats['deniedPublishes'] ?? 0} publish(es) and ${stats['deniedSubscriptions'] ?? 0} subscription(s) denied, ${stats['refusedConnections'] ?? 0} connection(s) refused since the daemon started`;
  if (clients.length === 0) return `No client is connected.\n${counts}`;
  return `${table([['CLIENT ID', 'WHO', 'FROM', 'SINCE'], ...clients.map((c) => [c.id, c.caller, c.address, c.since])])}\n${counts}`;
}

function grantsTable(grants: MqttGrantInfo[], name: string | undefined): string {
  if (grants.length === 0) return name ? `${name} has no grants beyond its own topics.` : 'No grants.';
  return table([['NAME', 'KIND', 'ACTION', 'FILTER'], ...grants.map((g) => [g.name, g.kind, g.action, g.filter])]);
}

/** How a device is pointed at the broker; IPv6 hosts are listed plain, as device settings want them. */
function howToConnect(name: string, broker: MqttBrokerAddress | undefined): string {
  const where = broker ? `host ${broker.hosts.join(' or ')}, port ${broker.port}` : 'the VM\'s tunnel address, port 1883';
  return `Set the device's MQTT broker to ${where} (through the tunnel), user name ${name}, and this password.`;
}

function grantArgs(args: string[], sub: string): { name: string; action: string; filter: string } {
  if (args.length !== 3 || !args[0] || !args[1] || !args[2]) throw new MqttUsageError(`expected: mqtt ${sub} NAME read|write FILTER`);
  return { name: args[0], action: args[1], filter: args[2] };
}

function one(args: string[], what: string): string {
  if (args.length !== 1 || !args[0]) throw new MqttUsageError(`expected ${what}`);
  return args[0];
}

function none(args: string[], sub: string): void {
  if (args.length > 0) throw new MqttUsageError(`mqtt ${sub} takes no argument, got ${args[0]}`);
}

export async function runMqtt(ctx: MqttCliContext, sub: string | undefined, args: string[], flags: { prefix?: string }): Promise<void> {
  const { api, out } = ctx;
  const show = (value: unknown, text: () => string) => out(ctx.json ? JSON.stringify(value, null, 2) : text());
  if (flags.prefix !== undefined && sub !== 'add-user') throw new MqttUsageError('--prefix goes with mqtt add-user only');
  switch (sub) {
    case 'clients': {
      none(args, sub);
      const r = await api.request<{ clients: ConnectedClient[]; stats: Record<string, number> }>('GET', '/v1/mqtt/clients');
      return show(r, () => clientsTable(r.clients, r.stats));
    }
    case 'users': {
      none(args, sub);
      const { users } = await api.request<{ users: MqttUserInfo[] }>('GET', '/v1/mqtt/users');
      return show(users, () => usersTable(users));
    }
    case 'add-user': {
      const name = one(args, 'a user name, e.g. mqtt add-user plug');
      const reply = await api.request<{ user: MqttUserInfo; password: string; broker?: MqttBrokerAddress }>('POST', '/v1/mqtt/users', {
        name,
        ...(flags.prefix !== undefined && { prefix: flags.prefix }),
      });
      if (ctx.json) return out(JSON.stringify(reply, null, 2));
      const { user, password, broker } = reply;
      return out(
        [
          `Added MQTT user ${user.name}; it may publish and subscribe under ${user.prefix}.`,
          `password: ${password}`,
          'This is the only time the password is shown: Aerie keeps only a hash of it. If it is lost, remove the user and add it again.',
          howToConnect(user.name, broker),
        ].join('\n'),
      );
    }
    case 'remove-user': {
      const { user } = await api.request<{ user: MqttUserInfo }>('DELETE', `/v1/mqtt/users/${enc(one(args, 'a user name'))}`);
      return out(`Removed MQTT user ${user.name} and its grants; its password no longer works.`);
    }
    case 'grant': {
      const { grant } = await api.request<{ grant: MqttGrantInfo }>('POST', '/v1/mqtt/grants', grantArgs(args, sub));
      const verb = grant.action === 'read' ? 'subscribe to' : 'publish to';
      return out(`${grant.name} (${grant.kind}) may ${verb} ${grant.filter}.`);
    }
    case 'revoke': {
      const { grant } = await api.request<{ grant: MqttGrantInfo }>('DELETE', '/v1/mqtt/grants', grantArgs(args, sub));
      return out(`Revoked the ${grant.action} grant of ${grant.name} (${grant.kind}) for ${grant.filter}.`);
    }
    case 'grants': {
      if (args.length > 1) throw new MqttUsageError('expected at most one user or device name');
      const name = args[0];
      const { grants } = await api.request<{ grants: MqttGrantInfo[] }>('GET', `/v1/mqtt/grants${name === undefined ? '' : `?name=${enc(name)}`}`);
      return show(grants, () => grantsTable(grants, name));
    }
    case undefined:
      throw new MqttUsageError('mqtt needs one of: users, add-user, remove-user, grant, revoke, grants, clients, sub');
    default:
      throw new MqttUsageError(`unknown mqtt command: ${sub}`);
  }
}
