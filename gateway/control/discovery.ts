import { AVAILABLE, discoveryNodeId, NOT_AVAILABLE, type GatewayTopics } from './topics.ts';

/**
 * Home Assistant MQTT discovery for the router: retained config messages at
 * <prefix>/<component>/<node id>/<object id>/config make the router appear in
 * Home Assistant with no setup; an empty retained message at the same topic
 * removes the entity (Home Assistant's MQTT discovery documentation). The
 * entities read the state JSON that the router publishes anyway, through a
 * value template, and go unavailable with the router's last will.
 */

export interface DiscoveryMessage {
  topic: string;
  /** The config as JSON text. */
  payload: string;
}

export interface DiscoveryOptions {
  name: string;
  topics: GatewayTopics;
  prefix: string;
  /** The daemon's version, shown on the device page. */
  version?: string;
}

interface Entity {
  component: 'binary_sensor' | 'sensor';
  objectId: string;
  config: Record<string, unknown>;
}

// The fields they read are ControlState's (channel.ts).
const ENTITIES: Entity[] = [
  {
    component: 'binary_sensor',
    objectId: 'tunnel',
    config: { name: 'Tunnel', device_class: 'connectivity', value_template: "{{ 'ON' if value_json.tunnel == 'up' else 'OFF' }}" },
  },
  {
    component: 'binary_sensor',
    objectId: 'kill_switch',
    config: { name: 'Kill switch', icon: 'mdi:shield-lock', value_template: "{{ 'ON' if value_json.killSwitch else 'OFF' }}" },
  },
  {
    component: 'binary_sensor',
    objectId: 'blocking',
    config: { name: 'Ad blocking', icon: 'mdi:shield-check', value_template: "{{ 'ON' if value_json.blocking else 'OFF' }}" },
  },
  {
    component: 'sensor',
    objectId: 'blocked',
    config: {
      name: 'Blocked queries',
      icon: 'mdi:shield-off-outline',
      state_class: 'total_increasing',
      unit_of_measurement: 'queries',
      value_template: '{{ value_json.counters.blockedQueries }}',
    },
  },
];

const topicOf = (prefix: string, node: string, e: Entity) => `${prefix}/${e.component}/${node}/${e.objectId}/config`;

/** The config messages, one per entity. */
export function discoveryMessages(opts: DiscoveryOptions): DiscoveryMessage[] {
  const node = discoveryNodeId(opts.name);
  const sw = opts.version ? { sw_version: opts.version } : {};
  const device = { identifiers: [node], name: `Aerie ${opts.name}`, manufacturer: 'Aerie', model: 'Aerie router', ...sw };
  return ENTITIES.map((e) => ({
    topic: topicOf(opts.prefix, node, e),
    payload: JSON.stringify({
      ...e.config,
      unique_id: `${node}_${e.objectId}`,
      state_topic: opts.topics.state,
      availability_topic: opts.topics.availability,
      payload_available: AVAILABLE,
      payload_not_available: NOT_AVAILABLE,
      device,
      origin: { name: 'Aerie', ...sw },
    }),
  }));
}

/** The topics to clear (empty retained payload) when discovery is switched off. */
export function discoveryTopics(opts: Pick<DiscoveryOptions, 'name' | 'prefix'>): string[] {
  const node = discoveryNodeId(opts.name);
  return ENTITIES.map((e) => topicOf(opts.prefix, node, e));
}
