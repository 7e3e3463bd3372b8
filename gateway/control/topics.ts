/**
 * The router's topics on the VM's broker (../shared/DESIGN.md §5). The broker
 * lets gateway G write under aerie/gw/G/ except aerie/gw/G/cmd/, which only
 * the VM writes (cloud/core/mqtt-access.ts).
 */

export interface GatewayTopics {
  /** The router's state as JSON, retained. */
  state: string;
  /** "online" or "offline", retained; "offline" is also the last will. */
  availability: string;
  /** Commands from the VM: subscribe to this filter. */
  commands: string;
  /** What precedes the command's name in a command topic. */
  commandPrefix: string;
}

export function gatewayTopics(name: string): GatewayTopics {
  const root = `aerie/gw/${name}`;
  return { state: `${root}/state`, availability: `${root}/availability`, commands: `${root}/cmd/#`, commandPrefix: `${root}/cmd/` };
}

export const AVAILABLE = 'online';
export const NOT_AVAILABLE = 'offline';

/** Home Assistant's default discovery prefix. */
export const DISCOVERY_PREFIX = 'homeassistant';

/** Home Assistant's node id for this router: [a-zA-Z0-9_-] only; device names already are. */
export const discoveryNodeId = (name: string): string => `aerie_${name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
