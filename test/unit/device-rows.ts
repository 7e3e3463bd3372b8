import type { DeviceRecord, DeviceRole } from '../../cloud/store/devices.ts';
import type { Store } from '../../cloud/store/store.ts';

/** A device row as pairing or `device add` would store it at host index `i` of the lab's overlay. */
export function deviceRow(name: string, role: DeviceRole, i: number, lanPrefixes: string[] = []): DeviceRecord {
  return {
    name,
    role,
    publicKey: `key-${name}`,
    hostIndex: i,
    addressV4: `203.0.113.${128 + i}`,
    addressV6: `2001:db8:a0::${i}`,
    lanPrefixes,
    createdAt: 0,
    endpoint: null,
    dnsBlocking: true,
  };
}

/** Inserts deviceRow(…) straight into the store (no pairing, no events). */
export function insertDeviceRow(store: Store, name: string, role: DeviceRole, i: number, lanPrefixes: string[] = []): void {
  const { endpoint: _e, dnsBlocking: _d, ...row } = deviceRow(name, role, i, lanPrefixes);
  store.devices.insert(row);
}
