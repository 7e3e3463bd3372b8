import type { FirewallDesired, FirewallPolicy, FirewallSubject } from '../../cloud/firewall/desired.ts';

export const DEFAULT_POLICY: FirewallPolicy = { internet: 'allow', isolated: false, lanAccess: false };

/** The lab VM's own side of a FirewallDesired: interfaces, overlay, its addresses and ports. */
export function labVm(): Pick<FirewallDesired, 'wanInterface' | 'tunnelInterface' | 'overlay' | 'vmAddresses' | 'ports'> {
  return {
    wanInterface: 'eth0',
    tunnelInterface: 'aerie0',
    overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
    vmAddresses: ['203.0.113.129', '2001:db8:a0::1'],
    ports: { wireguard: 51820, pairing: 8443, api: 80, dns: 53, mqtt: 1883, ssh: 22 },
  };
}

/**
 * The lab's VM: overlay 203.0.113.128/25 + 2001:db8:a0::/64 (VM .129 / ::1), one
 * router with home 192.0.2.128/25 + 2001:db8:1a::/64, an owner's phone, a
 * member's tablet and a named LAN host (the camera), all with default policy.
 */
export function labDesired(): FirewallDesired {
  return {
    ...labVm(),
    subjects: [
      subject('router', 'gateway', ['203.0.113.130', '2001:db8:a0::2'], ['192.0.2.128/25', '2001:db8:1a::/64']),
      subject('phone', 'owner', ['203.0.113.131', '2001:db8:a0::3']),
      subject('tablet', 'member', ['203.0.113.132', '2001:db8:a0::4']),
      subject('camera', 'host', ['192.0.2.150', '2001:db8:1a::150']),
    ],
    publishes: [],
  };
}

export function subject(
  name: string,
  kind: FirewallSubject['kind'],
  addresses: string[],
  homePrefixes: string[] = [],
  policy: Partial<FirewallPolicy> = {},
): FirewallSubject {
  return { name, kind, addresses, homePrefixes, policy: { ...DEFAULT_POLICY, ...policy } };
}

/** labDesired() with one subject's policy changed. */
export function withPolicy(name: string, policy: Partial<FirewallPolicy>): FirewallDesired {
  const d = labDesired();
  d.subjects = d.subjects.map((s) => (s.name === name ? { ...s, policy: { ...s.policy, ...policy } } : s));
  return d;
}
