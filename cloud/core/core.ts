import type { CloudStatus } from '../../shared/schemas.ts';
import { formatEndpoint } from '../../shared/pairing-code.ts';
import { createEventBus, type EventBus } from '../events.ts';
import type { WanView } from '../egress/pool.ts';
import type { Store } from '../store/store.ts';
import { overlayPrefixes } from './addressing.ts';
import type { CoreConfig } from './config.ts';
import { createEgressCore, type EgressCore } from './egress.ts';
import { createDevices, toDeviceInfo, type Devices, type PeerStats } from './devices.ts';
import { createFirewallCore, type FirewallCore } from './firewall.ts';
import { identifyAddress, type Identity } from './identity.ts';
import { createMqtt, type Mqtt } from './mqtt.ts';
import { createPairing, type Pairing } from './pairing.ts';
import { createRateLimiter, type RateLimiter } from './rate-limit.ts';

export interface CoreDeps {
  store: Store;
  config: CoreConfig;
  events?: EventBus;
  /** Unix ms; injectable for tests of expiry and rate limits. */
  now?: () => number;
  /** Live peer counters from the hub; absent or failing means "no live data". */
  peerStats?: () => Promise<PeerStats[]> | PeerStats[];
  /**
   * Networks of the VM's own interface addresses outside the tunnel (canonical
   * prefixes such as "10.0.0.0/24"); pairing refuses home prefixes overlapping
   * them. Supplied by the platform side, so core stays free of it.
   */
  localPrefixes?: () => readonly string[];
  /** The VM's WAN addresses and prefixes (cloud/egress/wan.ts readWanView); the egress pool is checked against them. */
  egressWan?: () => WanView;
  /** 16 random bytes per call for egress picks (tests drive it; default crypto). */
  egressRandom?: () => Uint8Array;
  /** A publish's port in use on the VM (cloud/firewall/listening.ts); absent: not checked. */
  portInUse?: (proto: 'tcp' | 'udp', port: number) => string | null;
  /** Failures of POST /v1/pair per source address (default 5 a minute). */
  pairLimiter?: RateLimiter;
  /** Failed MQTT logins per source address (default 5 a minute). */
  mqttLimiter?: RateLimiter;
}

export interface Core {
  readonly config: CoreConfig;
  readonly events: EventBus;
  readonly devices: Devices;
  readonly pairing: Pairing;
  readonly pairLimiter: RateLimiter;
  /** MQTT users, grants and the topic rules the broker and the API share. */
  readonly mqtt: Mqtt;
  /** The owner's firewall policy: LAN hosts, policies, publishes, the SSH port. */
  readonly firewall: FirewallCore;
  /** The temporary egress address: pool, who uses it, rotation, exceptions. */
  readonly egress: EgressCore;
  /** Source address (normalized, see shared/cidr normalizeRemoteAddress) → caller, or null if unknown. */
  identify(address: string): Identity | null;
  status(): Promise<CloudStatus>;
}

export function createCore(deps: CoreDeps): Core {
  const now = deps.now ?? Date.now;
  const events = deps.events ?? createEventBus();
  const inner = { store: deps.store, config: deps.config, events, now };
  const { store, config } = deps;
  return {
    config,
    events,
    devices: createDevices(inner),
    pairing: createPairing({ ...inner, ...(deps.localPrefixes && { localPrefixes: deps.localPrefixes }) }),
    pairLimiter: deps.pairLimiter ?? createRateLimiter({ now }),
    mqtt: createMqtt({ ...inner, limiter: deps.mqttLimiter ?? createRateLimiter({ now }) }),
    firewall: createFirewallCore({ ...inner, ...(deps.portInUse && { portInUse: deps.portInUse }) }),
    egress: createEgressCore({
      ...inner,
      ...(deps.egressWan && { wan: deps.egressWan }),
      ...(deps.egressRandom && { random: deps.egressRandom }),
    }),
    identify: (address) => identifyAddress(store.devices.list(), address),
    async status() {
      let stats: PeerStats[] = [];
      try {
        stats = (await deps.peerStats?.()) ?? [];
      } catch {
        stats = []; // the hub is down or not ours to ask: show the stored view
      }
      const byKey = new Map(stats.map((s) => [s.publicKey, s]));
      const peers = store.devices.list().map((d) => {
        const live = byKey.get(d.publicKey);
        // Remember where a peer was last seen, so status has it after a restart.
        if (live?.endpoint && live.endpoint !== d.endpoint) store.devices.setEndpoint(d.name, live.endpoint);
        return toDeviceInfo(d, live);
      });
      return {
        interface: config.interface,
        publicKey: config.publicKey,
        listenPort: config.listenPort,
        endpoint: formatEndpoint(config.publicHost, config.publicPort),
        overlay: overlayPrefixes(config.overlay),
        peers,
      };
    },
  };
}
