import { generateKeyPair } from '../../shared/keys.ts';
import { formatEndpoint } from '../../shared/pairing-code.ts';
import { AddDeviceRequest, DeviceName, parseWith, type DeviceInfo } from '../../shared/schemas.ts';
import type { WgPeerStats } from '../../shared/wg-conf.ts';
import { renderWgQuick } from '../../shared/wg-quick.ts';
import type { EventBus } from '../events.ts';
import type { DeviceRecord, DeviceRole } from '../store/devices.ts';
import type { Store } from '../store/store.ts';
import {
  addressesAt,
  allocateIndex,
  homePrefixes,
  interfaceAddressesAt,
  maxHostIndex,
  overlayPrefixes,
  vmAddresses,
} from './addressing.ts';
import { readDnsSettings } from './dns-settings.ts';
import { KEEPALIVE_SECONDS, type CoreConfig } from './config.ts';
import { CoreError } from './errors.ts';
import { refuseTakenName } from './names.ts';

/** Live counters of one peer, as the hub reports them. */
export type PeerStats = Pick<WgPeerStats, 'publicKey' | 'endpoint' | 'latestHandshake' | 'rxBytes' | 'txBytes'>;

export interface AddDeviceResult {
  device: DeviceRecord;
  /** wg-quick config with the generated private key: only when no key was given; show once, never store. */
  config?: string;
}

export interface Devices {
  list(): DeviceRecord[];
  get(name: string): DeviceRecord | undefined;
  /** Adds a phone or laptop; `input` is checked against AddDeviceRequest. */
  add(input: unknown): AddDeviceResult;
  /** Removes a device (its overlay index becomes free); CoreError 'not_found' if there is none. */
  remove(name: string): DeviceRecord;
}

export interface DeviceDeps {
  store: Store;
  config: CoreConfig;
  events: EventBus;
  now: () => number;
}

/**
 * Inserts a device with the next free overlay index. Must run inside a store
 * transaction so that checks and insert see the same data.
 */
export function insertDevice(
  deps: Pick<DeviceDeps, 'store' | 'config' | 'now'>,
  d: { name: string; role: DeviceRole; publicKey: string; lanPrefixes: string[] | ((hostIndex: number) => string[]) },
): DeviceRecord {
  const { store, config } = deps;
  refuseTakenName(store, d.name, 'device');
  if (d.publicKey === config.publicKey) {
    throw new CoreError('conflict', 'publicKey: this is the VM\'s own WireGuard key; every device needs its own');
  }
  const holder = store.devices.getByPublicKey(d.publicKey);
  if (holder) throw new CoreError('conflict', `publicKey: this key already belongs to device "${holder.name}"`);
  const existing = store.devices.list();
  const index = allocateIndex(
    existing.map((e) => e.hostIndex),
    maxHostIndex(config.overlay),
  );
  if (index === null) throw new CoreError('exhausted', 'the overlay network has no free address left; remove a device first');
  const { v4, v6 } = addressesAt(config.overlay, index);
  const record: DeviceRecord = {
    name: d.name,
    role: d.role,
    publicKey: d.publicKey,
    hostIndex: index,
    addressV4: v4,
    addressV6: v6,
    lanPrefixes: typeof d.lanPrefixes === 'function' ? d.lanPrefixes(index) : d.lanPrefixes,
    createdAt: deps.now(),
    endpoint: null,
    dnsBlocking: true,
  };
  store.devices.insert(record);
  return record;
}

export function createDevices(deps: DeviceDeps): Devices {
  const { store, config, events } = deps;
  return {
    list: () => store.devices.list(),
    get: (name) => store.devices.get(name),
    add(input) {
      const req = parseWith(AddDeviceRequest, input);
      // Preferred: the device's own key. Otherwise generate one here, put it in
      // the config this once and keep only the public half.
      const generated = req.publicKey === undefined ? generateKeyPair() : null;
      const publicKey = req.publicKey ?? generated!.publicKey;
      const device = store.transaction(() =>
        insertDevice(deps, { name: req.name, role: req.role ?? 'owner', publicKey, lanPrefixes: [] }),
      );
      events.emit('devices-changed', { reason: 'added', name: device.name });
      if (!generated) return { device };
      const allowedIps = req.split
        ? [...overlayPrefixes(config.overlay), ...homePrefixes(store.devices.list())]
        : ['0.0.0.0/0', '::/0'];
      const config_ = renderWgQuick({
        name: device.name,
        privateKey: generated.privateKey,
        addresses: interfaceAddressesAt(config.overlay, device.hostIndex),
        // The VM's resolver, and its zone as search domain so that `laptop` alone resolves.
        dns: vmAddresses(config.overlay),
        dnsSearch: [readDnsSettings(store.settings).zone],
        peer: {
          publicKey: config.publicKey,
          endpoint: formatEndpoint(config.publicHost, config.publicPort),
          allowedIps,
          keepalive: KEEPALIVE_SECONDS,
        },
      });
      return { device, config: config_ };
    },
    remove(name) {
      parseWith(DeviceName, name, 'name');
      const device = store.transaction(() => {
        const d = store.devices.get(name);
        if (!d || !store.devices.remove(name)) throw new CoreError('not_found', `there is no device named "${name}"`);
        return d;
      });
      events.emit('devices-changed', { reason: 'removed', name });
      return device;
    },
  };
}

/** The API's view of a device, with live counters when the hub knows the peer. */
export function toDeviceInfo(d: DeviceRecord, stats?: PeerStats): DeviceInfo {
  return {
    name: d.name,
    role: d.role,
    publicKey: d.publicKey,
    addresses: [d.addressV4, d.addressV6],
    lanPrefixes: d.lanPrefixes,
    createdAt: new Date(d.createdAt).toISOString(),
    endpoint: stats?.endpoint ?? d.endpoint,
    latestHandshake: stats?.latestHandshake ?? 0,
    rxBytes: stats?.rxBytes ?? 0,
    txBytes: stats?.txBytes ?? 0,
  };
}
