// The VM state our broker runs on in the MQTT benchmark: a fresh state
// directory whose overlay is moved onto loopback (127.66.0.0/24), one owner
// device (a tunnel peer, known by its address alone) and one MQTT user (a
// device behind the router, logging in with name and password).
import { join } from 'node:path';
import { parsePrefix } from '../../shared/cidr.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { createCore } from '../../cloud/core/core.ts';
import { initState, loadState, type CloudState } from '../../cloud/state-dir.ts';
import { openStore } from '../../cloud/store/store.ts';

/** The VM's own overlay address, where the broker listens; all of 127/8 is loopback. */
export const OURS_HOST = '127.66.0.1';
const OVERLAY = { v4: '127.66.0.0/24', v6: 'fd00:66::/64' };

export const BENCH_USER = 'bench';

export interface OursState {
  stateDir: string;
  dbPath: string;
  /** The owner device's overlay address: connections from it need no password. */
  peerAddress: string;
  /** BENCH_USER's password; publishes and subscriptions go under home/bench/#. */
  password: string;
}

export function loopbackOverlay(state: CloudState): CloudState {
  return { ...state, overlay: { v4: parsePrefix(OVERLAY.v4), v6: parsePrefix(OVERLAY.v6) } };
}

export async function prepareOursState(dir: string): Promise<OursState> {
  const stateDir = join(dir, 'state');
  initState({ stateDir, publicEndpoint: '203.0.113.10', overlayV4: '203.0.113.128/25', overlayV6: '2001:db8:a0::/64', dnsLists: 'none' });
  const store = openStore(stateDir);
  try {
    const core = createCore({ store, config: loopbackOverlay(loadState(stateDir, store)) });
    const { device } = core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
    const { password } = await core.mqtt.users.add({ name: BENCH_USER });
    return { stateDir, dbPath: join(dir, 'mqtt.db'), peerAddress: device.addressV4, password };
  } finally {
    store.close();
  }
}
