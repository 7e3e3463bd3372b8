import { generateKeyPair } from '../../shared/keys.ts';

const vmKey = generateKeyPair().publicKey;

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
