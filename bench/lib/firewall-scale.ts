import type { FirewallDesired, FirewallPolicy, FirewallSubject } from '../../cloud/firewall/desired.ts';
import { labVm } from '../../test/unit/cloud-firewall-fixtures.ts';

// A VM with `n` devices for the firewall benchmark: one router per 50
// devices, each with its home; owners, members and LAN hosts in turn; every
// fourth device with a policy that is not the default; a publish per router.
// Addresses are IPv6 (2001:db8::/32 has room for thousands) beside the lab's
// IPv4 overlay and home.

const allow: FirewallPolicy = { internet: 'allow', isolated: false, lanAccess: false };
const hex = (n: number) => n.toString(16);

export function scaledDesired(n: number): FirewallDesired {
  const subjects: FirewallSubject[] = [];
  const publishes: FirewallDesired['publishes'] = [];
  const routers = Math.max(1, Math.ceil(n / 50));
  for (let r = 0; r < routers; r++) {
    subjects.push({
      name: `router-${r}`,
      kind: 'gateway',
      addresses: [`2001:db8:a0::${hex(0x1000 + r)}`, ...(r === 0 ? ['203.0.113.130'] : [])],
      homePrefixes: [`2001:db8:1${hex(0x100 + r)}::/64`, ...(r === 0 ? ['192.0.2.128/25'] : [])],
      policy: allow,
    });
    publishes.push({ name: `web-${r}`, proto: 'tcp', port: 10_000 + r, toAddress: `2001:db8:1${hex(0x100 + r)}::10`, toPort: 80 });
  }
  for (let i = subjects.length; i < n; i++) {
    const kind = (['owner', 'member', 'host'] as const)[i % 3]!;
    const policy: FirewallPolicy = {
      internet: i % 4 === 1 ? 'block' : 'allow',
      isolated: i % 4 === 3 && kind !== 'member',
      lanAccess: kind === 'member' && i % 4 === 2,
    };
    const address = kind === 'host' ? `2001:db8:1${hex(0x100 + (i % routers))}::${hex(0x100 + i)}` : `2001:db8:a0::${hex(0x2000 + i)}`;
    subjects.push({ name: `${kind}-${i}`, kind, addresses: [address], homePrefixes: [], policy });
  }
  return { ...labVm(), subjects, publishes };
}
