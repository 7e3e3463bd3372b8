import { randomBytes } from 'node:crypto';

/**
 * The VM's side of the control channel (../shared/DESIGN.md §5): when an
 * owner changes a VM-side setting or the devices change, every router gets a
 * command on aerie/gw/<router>/cmd/<command> and fetches what changed over
 * HTTP. QoS 1 and not retained: a router with a persistent session gets it
 * when it is back, and a router that missed it re-syncs on reconnect anyway.
 * The payloads are what gateway/control/commands.ts reads.
 */

export interface RouterCommandDeps {
  publish: (topic: string, payload: string, opts: { qos: 1; retain: false }) => Promise<void>;
  /** The routers' device names (role gateway). */
  routers: () => string[];
  log: (message: string) => void;
}

export interface RouterCommands {
  settingsChanged(keys: string[]): void;
  devicesChanged(names: string[]): void;
}

// The router takes at most 64 names per list and ids of at most 64 characters.
const MAX_NAMES = 64;
const newId = () => randomBytes(9).toString('base64url');

export function createRouterCommands(deps: RouterCommandDeps): RouterCommands {
  const send = (command: string, body: Record<string, unknown>) => {
    const payload = JSON.stringify({ id: newId(), ...body });
    for (const router of deps.routers()) {
      deps
        .publish(`aerie/gw/${router}/cmd/${command}`, payload, { qos: 1, retain: false })
        .catch((err: Error) => deps.log(`mqtt: could not tell router ${router} (${command}): ${err.message}`));
    }
  };
  // An over-long list is dropped: the router then fetches everything, which is what it means.
  const names = (list: string[]) => (list.length <= MAX_NAMES ? [...new Set(list)] : []);
  return {
    settingsChanged: (keys) => send('settings-changed', { keys: names(keys) }),
    devicesChanged: (devices) => send('devices-changed', { devices: names(devices) }),
  };
}
