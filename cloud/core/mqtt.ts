import type { EventBus } from '../events.ts';
import type { Store } from '../store/store.ts';
import { identifyAddress } from './identity.ts';
import { decideAccess, type AccessDecision, type MqttAction, type MqttCaller } from './mqtt-access.ts';
import type { TopicLimits } from './mqtt-topics.ts';
import { createMqttGrants, createMqttUsers, type MqttGrants, type MqttUsers, type ScryptParams } from './mqtt-users.ts';
import { rateLimitKey, type RateLimiter } from './rate-limit.ts';

/**
 * Why a CONNECT is refused, with the CONNACK return code of MQTT v3.1.1
 * §3.2.2.3 (4: bad user name or password, 5: not authorized; MQTT v5 §3.2.2.2
 * has 0x86, 0x87 and 0x9F "connection rate exceeded" for the three cases).
 */
export type MqttAuthFailure =
  | { ok: false; failure: 'bad_credentials'; returnCode: 4; reason: string }
  | { ok: false; failure: 'not_authorized'; returnCode: 5; reason: string }
  | { ok: false; failure: 'rate_limited'; returnCode: 5; reason: string; retryAfterSeconds: number };

export type MqttAuthResult = { ok: true; caller: MqttCaller } | MqttAuthFailure;

/** The "address" of a connection on the broker's local socket (a file only root can open). */
export const LOCAL_MQTT_ADDRESS = 'local';

export interface MqttConnect {
  /** Normalized source address of the connection (shared/cidr normalizeRemoteAddress), or LOCAL_MQTT_ADDRESS. */
  address: string;
  username?: string | null | undefined;
  password?: Uint8Array | string | null | undefined;
}

export interface Mqtt {
  readonly users: MqttUsers;
  readonly grants: MqttGrants;
  /** Failed logins per source address (or IPv6 /64). */
  readonly limiter: RateLimiter;
  /**
   * Who connects: a tunnel peer (gateway, owner, member) by its address,
   * whatever user name it sends; anyone else (a device behind the router) by
   * user name and password. Failures count against the source; the reason
   * names the user but never holds the password.
   */
  authenticate(connect: MqttConnect): Promise<MqttAuthResult>;
  /** The rules of mqtt-access.ts with the caller's current grants; a removed user or device is denied. */
  access(caller: MqttCaller, action: MqttAction, topic: unknown): AccessDecision;
}

export interface MqttDeps {
  store: Store;
  events: EventBus;
  now: () => number;
  limiter: RateLimiter;
  topicLimits?: TopicLimits;
  scryptParams?: ScryptParams;
}

export function createMqtt(deps: MqttDeps): Mqtt {
  const { store, events, limiter } = deps;
  const users = createMqttUsers(deps);
  const grants = createMqttGrants(deps);

  // Grants name devices; a device that goes away takes them along, so a new
  // device of the same name does not inherit them.
  events.on('devices-changed', (e) => {
    if (e.reason === 'removed') store.mqtt.removeGrantsOf(e.name, 'device');
  });

  return {
    users,
    grants,
    limiter,
    async authenticate({ address, username, password }) {
      if (address === LOCAL_MQTT_ADDRESS) return { ok: true, caller: { kind: 'local', name: 'vm' } };
      const key = rateLimitKey(address);
      const gate = limiter.check(key);
      if (!gate.allowed) {
        const reason = `too many failed logins from ${key}`;
        return { ok: false, failure: 'rate_limited', returnCode: 5, reason, retryAfterSeconds: gate.retryAfterSeconds };
      }
      const who = identifyAddress(store.devices.list(), address);
      if (who && who.role !== 'lan') return { ok: true, caller: { kind: 'peer', role: who.role, name: who.name } };
      if (username === undefined || username === null || username === '') {
        limiter.fail(key);
        return { ok: false, failure: 'not_authorized', returnCode: 5, reason: `${address} is no tunnel peer and gave no user name` };
      }
      const user = await users.verify(username, password);
      if (!user) {
        limiter.fail(key);
        // JSON.stringify: the name comes from the client and goes into a log line.
        const reason = `wrong user name or password for ${JSON.stringify(username.slice(0, 64))} from ${address}`;
        return { ok: false, failure: 'bad_credentials', returnCode: 4, reason };
      }
      return { ok: true, caller: { kind: 'user', name: user.name, prefix: user.prefix } };
    },
    access(caller, action, topic) {
      if (caller.kind === 'user') {
        const user = store.mqtt.user(caller.name);
        if (!user) return { allowed: false, reason: `the MQTT user "${caller.name}" was removed` };
        // The stored prefix, not the one remembered at login.
        const current: MqttCaller = { kind: 'user', name: user.name, prefix: user.prefix };
        return decideAccess(current, grants.of(user.name, 'user'), action, topic, deps.topicLimits);
      }
      if (caller.kind === 'local') return decideAccess(caller, [], action, topic, deps.topicLimits);
      const device = store.devices.get(caller.name);
      if (!device || device.role !== caller.role) return { allowed: false, reason: `the device "${caller.name}" was removed` };
      return decideAccess(caller, grants.of(caller.name, 'device'), action, topic, deps.topicLimits);
    },
  };
}
