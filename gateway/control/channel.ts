import type { IClientOptions, MqttClient } from 'mqtt';
import { createSerialQueue } from '../../shared/serial-queue.ts';
import { DeviceName, parseWith } from '../../shared/schemas.ts';
import type { TunnelHealth } from '../status.ts';
import type { WanState } from '../wan-state.ts';
import { parseCommand, type CommandArgs } from './commands.ts';
import { discoveryMessages, discoveryTopics } from './discovery.ts';
import { AVAILABLE, DISCOVERY_PREFIX, gatewayTopics, NOT_AVAILABLE } from './topics.ts';

/**
 * The router's side of the control channel (../shared/DESIGN.md §5): one MQTT
 * connection to the VM's broker, through the tunnel. It keeps the router's
 * state retained on aerie/gw/<name>/state and "online" on .../availability
 * ("offline" is the last will), takes the VM's commands from .../cmd/#, and
 * re-syncs over HTTP on every (re)connect, so that a command missed while
 * away is never a change missed. Optionally it announces the router to
 * Home Assistant (discovery.ts).
 *
 * No transport here: `connect` is MQTT.js's (mqtt-tcp.ts); reading the state,
 * applying a command and the re-sync are the caller's.
 */

export interface ControlCounters {
  /** DNS queries the VM's resolver blocked for this router's LAN. */
  blockedQueries: number;
  /** Bytes through the tunnel. */
  rxBytes: number;
  txBytes: number;
}

/** What the router publishes, as JSON; discovery.ts's value templates read these names. */
export interface ControlState {
  tunnel: TunnelHealth;
  /** The kill switch holds in the kernel. */
  killSwitch: boolean;
  /** The VM blocks ads and trackers for this home; null while not known. */
  blocking: boolean | null;
  wan: WanState;
  counters: ControlCounters;
}

/** The commands the caller applies; "resync" the channel turns into a resync() itself. */
export type RouterCommandArgs = Exclude<CommandArgs, ['resync', unknown]>;

export interface ControlTiming {
  /** At most one state message per this interval. */
  minPublishIntervalMs: number;
  /** Look at the state this often even when nobody said it changed (counters); 0: never. */
  statePollMs: number;
  /** Reconnect after this long, doubling per failure up to reconnectMaxMs. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** A failed re-sync is retried after this long, doubling up to resyncRetryMaxMs. */
  resyncRetryMinMs: number;
  resyncRetryMaxMs: number;
  /** MQTT keep-alive: the broker publishes the last will this long (×1.5) after the router went silent. */
  keepaliveS: number;
  connectTimeoutMs: number;
  /** close() waits at most this long for "offline" to reach the broker. */
  closeTimeoutMs: number;
}

export const DEFAULT_CONTROL_TIMING: ControlTiming = {
  minPublishIntervalMs: 1000,
  statePollMs: 10_000,
  reconnectMinMs: 1000,
  reconnectMaxMs: 30_000,
  resyncRetryMinMs: 2000,
  resyncRetryMaxMs: 60_000,
  keepaliveS: 30,
  connectTimeoutMs: 10_000,
  closeTimeoutMs: 2000,
};

export interface ControlChannelDeps {
  /** MQTT.js's connect (connectMqtt in production). */
  connect: (url: string, opts: IClientOptions) => MqttClient;
  /** The broker on the VM's overlay address: mqtt://<address>:1883. */
  url: string;
  /** This router's device name (G in aerie/gw/G/…). */
  name: string;
  state: () => ControlState | Promise<ControlState>;
  /** Applies one command from the VM; a throw is logged. */
  onCommand: (...args: RouterCommandArgs) => void | Promise<void>;
  /** Fetches what the VM holds for this router over HTTP and applies it. */
  resync: () => Promise<void>;
  log: (message: string) => void;
  /** Home Assistant discovery; on by default. */
  discovery?: boolean;
  /** Home Assistant's discovery prefix (its default: "homeassistant"). */
  discoveryPrefix?: string;
  /** The daemon's version, for the Home Assistant device page. */
  version?: string;
  timing?: Partial<ControlTiming>;
}

export interface ControlChannel {
  /** The state may have changed: publish it if it did (at most once per minPublishIntervalMs). */
  update(): void;
  /** Switches Home Assistant discovery on (configs published) or off (configs removed). */
  setDiscovery(on: boolean): void;
  connected(): boolean;
  /** Marks the router offline, disconnects and stops reconnecting. */
  close(): Promise<void>;
}

/** Ids of commands already applied, against QoS 1's repeats. */
const REMEMBERED_IDS = 64;

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));
const backoff = (min: number, max: number, failures: number) => Math.min(max, min * 2 ** Math.min(failures, 20));

export function createControlChannel(deps: ControlChannelDeps): ControlChannel {
  const name = parseWith(DeviceName, deps.name, 'name');
  const timing = { ...DEFAULT_CONTROL_TIMING, ...deps.timing };
  const topics = gatewayTopics(name);
  const prefix = deps.discoveryPrefix ?? DISCOVERY_PREFIX;
  const { log } = deps;
  const serial = createSerialQueue();

  let discovery = deps.discovery ?? true;
  /** Configs cleared since discovery was last switched off (clearing again would be noise). */
  let discoveryCleared = false;
  let closed = false;
  let wasConnected = false;
  let lastError: string | null = null;
  let reconnectFailures = 0;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let resyncQueued = false;
  let resyncFailures = 0;
  let resyncTimer: NodeJS.Timeout | null = null;
  let stateTimer: NodeJS.Timeout | null = null;
  let lastState: string | null = null;
  let lastPublishAt = -Infinity;
  let reading = false;
  let readAgain = false;
  let stateError: string | null = null;
  const seenIds = new Set<string>();
  const seenOrder: string[] = [];

  const client = deps.connect(deps.url, {
    clientId: `aerie-gw-${name}`,
    // A persistent session: QoS 1 commands sent while we were away are kept for us.
    clean: false,
    // aedes speaks MQTT 3.1.1.
    protocolVersion: 4,
    keepalive: timing.keepaliveS,
    connectTimeout: timing.connectTimeoutMs,
    // MQTT.js retries at a fixed period; the bounded backoff below calls its reconnect().
    reconnectPeriod: 0,
    // We subscribe on every connect ourselves.
    resubscribe: false,
    // mqtt-packet's cache of all 65,536 encoded message ids costs ~8 MiB of RSS; a router sends a few messages a minute.
    writeCache: false,
    will: { topic: topics.availability, payload: Buffer.from(NOT_AVAILABLE), qos: 1, retain: true },
  });

  const report = (message: string) => {
    if (message !== lastError) log(message);
    lastError = message;
  };

  const publish = (topic: string, payload: string, what: string) => {
    client.publish(topic, payload, { qos: 1, retain: true }, (e) => {
      if (e && !closed) log(`publishing ${what} failed: ${messageOf(e)}`);
    });
  };

  // ---- state ----------------------------------------------------------------

  async function publishState(force: boolean): Promise<void> {
    if (closed || !client.connected) return;
    if (reading) {
      readAgain = true;
      return;
    }
    reading = true;
    try {
      const payload = JSON.stringify(await deps.state());
      stateError = null;
      if ((force || payload !== lastState) && client.connected && !closed) {
        lastState = payload;
        lastPublishAt = Date.now();
        publish(topics.state, payload, 'the state');
      }
    } catch (e) {
      const message = `reading the state to publish failed: ${messageOf(e)}`;
      if (message !== stateError) log(message);
      stateError = message;
    } finally {
      reading = false;
      if (readAgain) {
        readAgain = false;
        scheduleState();
      }
    }
  }

  function scheduleState(): void {
    if (closed || stateTimer) return;
    const wait = Math.max(0, lastPublishAt + timing.minPublishIntervalMs - Date.now());
    stateTimer = setTimeout(() => {
      stateTimer = null;
      void publishState(false);
    }, wait);
  }

  const poll = timing.statePollMs > 0 ? setInterval(scheduleState, timing.statePollMs) : null;

  // ---- re-sync and commands, one at a time -----------------------------------

  function requestResync(): void {
    if (closed || resyncQueued) return;
    resyncQueued = true;
    if (resyncTimer) clearTimeout(resyncTimer);
    resyncTimer = null;
    void serial(async () => {
      resyncQueued = false;
      if (closed) return;
      try {
        await deps.resync();
        if (resyncFailures > 0) log('re-sync over HTTP succeeded again');
        resyncFailures = 0;
      } catch (e) {
        const wait = backoff(timing.resyncRetryMinMs, timing.resyncRetryMaxMs, resyncFailures++);
        log(`re-sync over HTTP failed (${messageOf(e)}); trying again in ${Math.round(wait / 1000)} s`);
        if (!closed && !resyncTimer) {
          resyncTimer = setTimeout(() => {
            resyncTimer = null;
            requestResync();
          }, wait);
        }
      }
    });
  }

  function seenBefore(id: string): boolean {
    if (seenIds.has(id)) return true;
    seenIds.add(id);
    seenOrder.push(id);
    if (seenOrder.length > REMEMBERED_IDS) seenIds.delete(seenOrder.shift()!);
    return false;
  }

  client.on('message', (topic, payload, packet) => {
    if (!topic.startsWith(topics.commandPrefix)) return;
    const command = topic.slice(topics.commandPrefix.length);
    // A command is an event: one kept by the broker would be applied again on every
    // connect. What it said, the re-sync on connect fetches anyway.
    if (packet.retain) {
      log(`ignored a retained command on ${topic}: commands must not be retained`);
      return;
    }
    let args: CommandArgs;
    try {
      args = parseCommand(command, payload);
    } catch (e) {
      log(`ignored a malformed command on ${topic}: ${messageOf(e)}`);
      return;
    }
    const id = args[1].id;
    if (id !== undefined && seenBefore(id)) return;
    if (args[0] === 'resync') {
      requestResync();
      return;
    }
    const routerArgs = args;
    void serial(async () => {
      try {
        await deps.onCommand(...routerArgs);
      } catch (e) {
        log(`applying the command ${routerArgs[0]} failed: ${messageOf(e)}`);
      }
    });
  });

  // ---- discovery --------------------------------------------------------------

  function syncDiscovery(): void {
    if (!client.connected) return;
    if (discovery) {
      for (const m of discoveryMessages({ name, topics, prefix, ...(deps.version ? { version: deps.version } : {}) })) {
        publish(m.topic, m.payload, 'a Home Assistant discovery config');
      }
    } else if (!discoveryCleared) {
      // An empty retained message removes the retained config, and the entity with it.
      for (const topic of discoveryTopics({ name, prefix })) publish(topic, '', 'a Home Assistant discovery removal');
      discoveryCleared = true;
    }
  }

  // ---- the connection ---------------------------------------------------------

  client.on('connect', () => {
    if (closed) return;
    reconnectFailures = 0;
    lastError = null;
    wasConnected = true;
    log(`connected to the broker at ${deps.url}`);
    client.subscribe(topics.commands, { qos: 1 }, (e, granted) => {
      if (e) log(`subscribing to ${topics.commands} failed: ${messageOf(e)}`);
      else if (granted?.some((g) => g.qos === 128)) log(`the broker refused the subscription to ${topics.commands}`);
    });
    publish(topics.availability, AVAILABLE, 'availability');
    syncDiscovery();
    // The broker may have lost the retained state: publish it on every connect.
    void publishState(true);
    requestResync();
  });

  client.on('error', (e) => report(`broker ${deps.url}: ${messageOf(e)}`));

  client.on('close', () => {
    if (wasConnected) {
      wasConnected = false;
      if (!closed) log('lost the connection to the broker; reconnecting');
    }
    if (closed || reconnectTimer) return;
    const wait = backoff(timing.reconnectMinMs, timing.reconnectMaxMs, reconnectFailures++);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      // The same stores: QoS 1 messages in flight are sent again.
      if (!closed) client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, wait);
  });

  return {
    update: scheduleState,
    setDiscovery(on) {
      if (on === discovery) return;
      discovery = on;
      if (on) discoveryCleared = false;
      syncDiscovery();
    },
    connected: () => client.connected,
    async close() {
      if (closed) return;
      closed = true;
      for (const t of [reconnectTimer, resyncTimer, stateTimer]) if (t) clearTimeout(t);
      if (poll) clearInterval(poll);
      // A clean DISCONNECT does not send the will: say "offline" ourselves.
      const done = new Promise<void>((resolve) => {
        if (!client.connected) return void client.end(true, {}, () => resolve());
        client.publish(topics.availability, NOT_AVAILABLE, { qos: 1, retain: true }, () => client.end(false, {}, () => resolve()));
      });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), timing.closeTimeoutMs);
      });
      if ((await Promise.race([done, late])) === 'late') {
        await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
      }
      clearTimeout(timer);
    },
  };
}
