import type { GatewayDesired } from '../../gateway/platform/platform.ts';
import { generateKeyPair } from '../../shared/keys.ts';

const vmKey = generateKeyPair().publicKey;
const routerKeys = generateKeyPair();
const vmKeys = generateKeyPair();

/** A config as `pair` writes it, for the lab's addresses; fresh object on every call. */
export function sampleConfig(): Record<string, any> {
  return {
    name: 'home',
    lanInterfaces: ['lan0'],
    lanPrefixes: [
      { prefix: '192.0.2.128/25', interface: 'lan0' },
      { prefix: '2001:db8:1a::/64', interface: 'lan0' },
    ],
    vm: {
      publicKey: vmKey,
      endpoint: '203.0.113.10:51820',
      addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
      overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
      api: ['203.0.113.129', '2001:db8:a0::1'],
    },
  };
}

/** A desired state as the reconciler builds it for the lab's addresses (fresh keys per process). */
export function sampleDesired(lan: GatewayDesired['lan'] = [{ interface: 'lan0', prefixes: ['192.0.2.128/25'] }]): GatewayDesired {
  return {
    interface: 'aerie',
    privateKey: routerKeys.privateKey,
    addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
    mtu: 1420,
    peer: { publicKey: vmKeys.publicKey, endpoint: '203.0.113.10:51820', allowedIps: ['0.0.0.0/0', '::/0'], keepalive: 25, generation: 0 },
    overlay: ['203.0.113.128/25'],
    lan,
    table: 7375,
    rulePriority: 7375,
    killSwitch: true,
    dns: { intercept: true, servers: ['203.0.113.129', '2001:db8:a0::1'], resolvFile: null },
  };
}
