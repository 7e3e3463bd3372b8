import { describeInput, ValidationError } from '../../shared/errors.ts';
import { checkTopicFilter, checkTopicName, filterContains, topicMatches, type TopicLimits } from './mqtt-topics.ts';

// The one rule set for MQTT topics, used by the broker (every PUBLISH and
// SUBSCRIBE) and by the API (which shows and edits grants). Pure: callers
// pass the grants they loaded.
//
// Who may do what ("read" = SUBSCRIBE to a filter that lies within one of
// these; "write" = PUBLISH to a name that matches one of these):
//
//   caller                          | read                      | write
//   --------------------------------+---------------------------+------------------------------------
//   gateway G (the router)          | aerie/gw/G/#              | aerie/gw/G/# except aerie/gw/G/cmd/#,
//                                   |                           | homeassistant/+/aerie_G/# (discovery)
//   owner (phones, laptops)         | #, $SYS/#                 | # except aerie/#
//   member (a limited tunnel peer)  | home/M/#                  | home/M/#
//   MQTT user U (behind the router) | its prefix (home/U/#)     | its prefix
//   the VM's administrator (local)  | #, $SYS/#                 | nothing (`aerie-cloud mqtt sub`)
//   any of them, by the owner       | + read grants             | + write grants, except aerie/#
//
// and for everyone:
// - nobody publishes to a topic starting with "$": those belong to the broker
//   (MQTT v3.1.1 §4.7.2); owners may read $SYS/#, nobody else any "$" topic,
//   and "#" never reaches them (MQTT-4.7.2-1);
// - only the router publishes under its aerie/gw/G/ (its state and last will),
//   and only the VM itself (in process, not through this check) publishes the
//   commands aerie/gw/G/cmd/<name>: so the router can trust a command as the
//   VM's. Owners send commands through the API, which checks them first;
// - a grant never opens aerie/ for writing, nor any "$" topic.
//
// A gateway gets nothing under home/ by default: the router's daemon has no
// use for it, and the owner can grant it. A member is "limited": only its own
// subtree, named like a user's, plus grants. Device and user names never
// clash (mqtt-users.ts), so home/<name>/# belongs to one subject.

export type MqttAction = 'publish' | 'subscribe';
export type GrantAction = 'read' | 'write';
export type PeerRole = 'gateway' | 'owner' | 'member';

export interface MqttGrant {
  action: GrantAction;
  filter: string;
}

/**
 * Who is connected: a tunnel peer known by its address, a user known by its
 * password, or the VM's administrator on the broker's local socket (root only).
 */
export type MqttCaller =
  | { kind: 'peer'; role: PeerRole; name: string }
  | { kind: 'user'; name: string; prefix: string }
  | { kind: 'local'; name: string };

export interface AccessDecision {
  allowed: boolean;
  /** Why, for logs and for the API; never holds a secret. */
  reason: string;
}

const RESERVED_ROOT = 'aerie';

export const defaultPrefix = (name: string): string => `home/${name}/#`;

const gatewayRoot = (name: string) => `aerie/gw/${name}/#`;
const gatewayCommands = (name: string) => `aerie/gw/${name}/cmd/#`;
// Home Assistant's MQTT discovery: <prefix>/<component>/<node_id>/<object_id>/config,
// the router's node_id being aerie_<name>.
export const haDiscoveryFilter = (name: string) => `homeassistant/+/aerie_${name}/#`;

/** The filters a caller may read and write without any grant (the table above, minus the exceptions). */
function builtIn(caller: MqttCaller): { read: string[]; write: string[] } {
  if (caller.kind === 'user') return { read: [caller.prefix], write: [caller.prefix] };
  if (caller.kind === 'local') return { read: ['#', '$SYS/#'], write: [] };
  switch (caller.role) {
    case 'gateway':
      return { read: [gatewayRoot(caller.name)], write: [gatewayRoot(caller.name), haDiscoveryFilter(caller.name)] };
    case 'owner':
      return { read: ['#', '$SYS/#'], write: ['#'] };
    case 'member':
      return { read: [defaultPrefix(caller.name)], write: [defaultPrefix(caller.name)] };
  }
}

const allow = (reason: string): AccessDecision => ({ allowed: true, reason });
const deny = (reason: string): AccessDecision => ({ allowed: false, reason });
const rootOf = (topic: string) => topic.split('/', 1)[0]!;

/**
 * May `caller` publish to the topic name `topic` or subscribe to the filter
 * `topic`? Malformed topics are denied (with the reason), never thrown.
 */
export function decideAccess(
  caller: MqttCaller,
  grants: readonly MqttGrant[],
  action: MqttAction,
  topic: unknown,
  limits: TopicLimits = {},
): AccessDecision {
  let checked: string;
  try {
    checked = action === 'publish' ? checkTopicName(topic, 'topic', limits) : checkTopicFilter(topic, 'filter', limits);
  } catch (err) {
    return deny((err as Error).message);
  }
  const rules = builtIn(caller);
  // Grants may only be stored through checkGrantFilter, but skip "$" ones anyway: the rule holds whatever is passed.
  const granted = (a: GrantAction) => grants.filter((g) => g.action === a && !g.filter.startsWith('$')).map((g) => g.filter);

  if (action === 'publish') {
    if (checked.startsWith('$')) return deny('topics starting with "$" are the broker\'s (MQTT v3.1.1 §4.7.2)');
    if (rootOf(checked) === RESERVED_ROOT) {
      if (caller.kind === 'peer' && caller.role === 'gateway' && topicMatches(gatewayRoot(caller.name), checked)) {
        if (topicMatches(gatewayCommands(caller.name), checked)) return deny('only the VM publishes commands to a router');
        return allow(`router's own topics ${gatewayRoot(caller.name)}`);
      }
      return deny('aerie/ topics are written only by their router and the VM');
    }
    const own = rules.write.find((f) => topicMatches(f, checked));
    if (own) return allow(`may write ${own}`);
    const grant = granted('write').find((f) => topicMatches(f, checked));
    if (grant) return allow(`granted write ${grant}`);
    return deny(`may not write ${describeInput(checked)}: outside ${describe(rules.write, granted('write'))}`);
  }

  const own = rules.read.find((f) => filterContains(f, checked));
  if (own) return allow(`may read ${own}`);
  const grant = granted('read').find((f) => filterContains(f, checked));
  if (grant) return allow(`granted read ${grant}`);
  return deny(`may not read ${describeInput(checked)}: outside ${describe(rules.read, granted('read'))}`);
}

const describe = (own: string[], grants: string[]) => [...own, ...grants].join(', ');

/**
 * A user's topic prefix: literal levels, optionally ending in "/#" (added when
 * missing: a prefix is a subtree). Not under aerie/ and not a "$" topic.
 */
export function checkUserPrefix(input: unknown, field = 'prefix'): string {
  if (typeof input !== 'string') {
    throw new ValidationError(field, `expected a topic prefix like "home/kitchen", got ${describeInput(input)}`);
  }
  const base = input.endsWith('/#') ? input.slice(0, -2) : input;
  const levels = base.split('/');
  if (levels.some((l) => l === '' || l.includes('#') || l.includes('+'))) {
    const got = describeInput(input);
    throw new ValidationError(field, `expected levels of plain text between single slashes, like "home/kitchen", got ${got}`);
  }
  if (levels[0]!.startsWith('$')) throw new ValidationError(field, 'a prefix must not start with "$": those topics are the broker\'s');
  if (levels[0] === RESERVED_ROOT) throw new ValidationError(field, 'aerie/ is reserved for the routers and the VM');
  return checkTopicFilter(`${base}/#`, field);
}

/** A filter the owner may grant: any valid filter, except "$" topics, and aerie/ for writing. */
export function checkGrantFilter(action: GrantAction, input: unknown, field = 'filter'): string {
  const filter = checkTopicFilter(input, field);
  if (filter.startsWith('$')) throw new ValidationError(field, '"$" topics cannot be granted ($SYS is for owners only)');
  if (action === 'write' && rootOf(filter) === RESERVED_ROOT) {
    throw new ValidationError(field, 'aerie/ topics are written only by their router and the VM; grant "read" instead');
  }
  return filter;
}

export function checkGrantAction(input: unknown, field = 'action'): GrantAction {
  if (input === 'read' || input === 'write') return input;
  throw new ValidationError(field, `expected "read" or "write", got ${describeInput(input)}`);
}
