import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderFirewall } from '../../cloud/firewall/render.ts';
import type { FirewallDesired } from '../../cloud/firewall/desired.ts';
import { golden } from './gateway-golden.ts';
import { labDesired, subject, withPolicy } from './cloud-firewall-fixtures.ts';

/** The element list of one named set in rendered text ('' when it has none). */
function elements(text: string, set: string): string {
  const body = text.split(`\tset ${set} {\n`)[1]?.split('\t}')[0];
  assert.ok(body !== undefined, `no set ${set}`);
  return /elements = \{ (.*) \}/.exec(body)?.[1] ?? '';
}

/** The rule lines of one chain. */
function chain(text: string, name: string): string[] {
  const body = text.split(`\tchain ${name} {\n`)[1]?.split('\n\t}')[0];
  assert.ok(body !== undefined, `no chain ${name}`);
  return body.split('\n').map((l) => l.trim()).filter((l) => !l.startsWith('type '));
}

test('defaults: owners reach homes and peers, members and homes only the internet', () => {
  const text = renderFirewall(labDesired());
  golden('cloud-firewall-defaults.nft', text);
  assert.is(elements(text, 'owners4'), '203.0.113.131');
  assert.is(elements(text, 'owners6'), '2001:db8:a0::3');
  // The member (tablet) has no LAN access by default; nobody is blocked or isolated.
  for (const set of ['lan_members4', 'lan_members6', 'blocked4', 'blocked6', 'isolated4', 'isolated6']) assert.is(elements(text, set), '', set);
  assert.is(elements(text, 'inside4'), '192.0.2.128/25, 203.0.113.128/25');
  assert.not.match(text, 'chain publish');
  assert.match(text, 'tcp dport 22 counter accept');
});

test('internet block: only that subject leaves no more', () => {
  const text = renderFirewall(withPolicy('phone', { internet: 'block' }));
  golden('cloud-firewall-internet-block.nft', text);
  assert.is(elements(text, 'blocked4'), '203.0.113.131');
  assert.is(elements(text, 'blocked6'), '2001:db8:a0::3');
  // Still an owner: homes and peers stay reachable.
  assert.is(elements(text, 'owners4'), '203.0.113.131');
});

test('isolated owner peer: in the isolated sets, still an owner for others to answer', () => {
  const text = renderFirewall(withPolicy('phone', { isolated: true }));
  golden('cloud-firewall-isolated-owner.nft', text);
  assert.is(elements(text, 'isolated4'), '203.0.113.131');
  assert.is(elements(text, 'isolated6'), '2001:db8:a0::3');
  // Every packet an isolated peer sends the VM is judged, before the established accept: DNS and MQTT only.
  const input = chain(text, 'input');
  const at = (s: string) => input.findIndex((l) => l.includes(s));
  assert.match(input[at('saddr @isolated4 ct direction original tcp')]!, /tcp dport != \{ 53, 1883 \} counter goto refused/);
  assert.match(input[at('saddr @isolated4 ct direction original udp')]!, /udp dport != 53 counter goto refused/);
  assert.match(input[at('saddr @isolated4 ct direction original meta')]!, /meta l4proto != \{ tcp, udp \} counter goto refused/);
  assert.ok(at('saddr @isolated4') < at('ct state established,related'), 'before the established accept');
  assert.ok(at('saddr @isolated4') < at('tcp dport 80') && at('saddr @isolated4') < at('tcp dport 22'), 'before the API and SSH');
  assert.ok(at('saddr @isolated4') < at('icmp type echo-request'), 'before ping');
});

test('isolated LAN host with internet blocked: its address or prefix in both sets', () => {
  const d = withPolicy('camera', { isolated: true, internet: 'block' });
  d.subjects.push(subject('sensors', 'host', ['192.0.2.160/28'], [], { isolated: true }));
  const text = renderFirewall(d);
  golden('cloud-firewall-isolated-host.nft', text);
  assert.is(elements(text, 'isolated4'), '192.0.2.150, 192.0.2.160/28');
  assert.is(elements(text, 'isolated6'), '2001:db8:1a::150');
  assert.is(elements(text, 'blocked4'), '192.0.2.150');
  // Named counters follow it by address, prefixes included.
  assert.match(text, '192.0.2.160/28 : "sent-sensors"');
});

test('member with LAN access reaches the homes; without it does not', () => {
  const text = renderFirewall(withPolicy('tablet', { lanAccess: true }));
  golden('cloud-firewall-member-lan-access.nft', text);
  assert.is(elements(text, 'lan_members4'), '203.0.113.132');
  assert.is(elements(text, 'lan_members6'), '2001:db8:a0::4');
  assert.is(elements(renderFirewall(labDesired()), 'lan_members4'), '');
  // Members never reach other peers: only owners are matched towards the overlay.
  const peers = chain(text, 'from-tunnel').filter((l) => l.includes('daddr @overlay'));
  assert.ok(peers.length === 2 && peers.every((l) => l.includes('saddr @owners')));
});

test('publish tcp and udp: DNAT on the WAN for the VM itself, forward accept for the DNATed flow only', () => {
  const d = labDesired();
  d.publishes = [
    { name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8080 },
    { name: 'game', proto: 'udp', port: 27015, toAddress: '2001:db8:1a::50', toPort: 27016 },
  ];
  const text = renderFirewall(d);
  golden('cloud-firewall-publish.nft', text);
  const dnat = chain(text, 'publish');
  assert.equal(dnat.map((l) => /dnat (ip6?) to (\S+)/.exec(l)?.slice(1).join(' ')), ['ip6 [2001:db8:1a::50]:27016', 'ip 192.0.2.140:8080']);
  assert.ok(dnat.every((l) => l.startsWith('iifname "eth0"') && l.includes('fib daddr type local')));
  const forward = chain(text, 'forward');
  const pub = forward.findIndex((l) => l.includes('ct status dnat ip daddr 192.0.2.140 tcp dport 8080 counter accept'));
  assert.ok(pub > 0 && pub < forward.findIndex((l) => l.startsWith('oifname "aerie0" counter drop')));
});

test('ssh off: no SSH rule at all', () => {
  const d = labDesired();
  d.ports.ssh = null;
  const text = renderFirewall(d);
  golden('cloud-firewall-ssh-off.nft', text);
  assert.not.match(text, 'dport 22 ');
  assert.not.match(text, 'SSH');
});

test('IPv4-only overlay: IPv6 sets stay empty, so the tunnel lets no IPv6 source through', () => {
  const d: FirewallDesired = {
    ...labDesired(),
    overlay: ['203.0.113.128/25'],
    vmAddresses: ['203.0.113.129'],
    subjects: [
      subject('router', 'gateway', ['203.0.113.130'], ['192.0.2.128/25']),
      subject('phone', 'owner', ['203.0.113.131']),
    ],
  };
  const text = renderFirewall(d);
  golden('cloud-firewall-ipv4-only.nft', text);
  for (const set of ['overlay6', 'homes6', 'inside6', 'vm6', 'owners6']) assert.is(elements(text, set), '', set);
  assert.match(text, 'iifname "aerie0" ip6 saddr != @inside6 counter drop');
});

test('a home /64 the provider routes to the VM leaves as it is; the rest is NATed', () => {
  const d: FirewallDesired = {
    ...labDesired(),
    subjects: labDesired().subjects.map((s) => (s.kind === 'gateway' ? { ...s, homePrefixes: [...s.homePrefixes, '2001:db8:b00:2::/64'] } : s)),
    routed: ['2001:db8:b00:2::/64'],
  };
  const text = renderFirewall(d);
  golden('cloud-firewall-routed-v6.nft', text);
  assert.match(text, 'oifname "eth0" ip6 saddr @inside6 ip6 saddr != { 2001:db8:b00:2::/64 } counter masquerade');
  assert.match(text, 'oifname "eth0" ip saddr @inside4 counter masquerade');
  assert.throws(() => renderFirewall({ ...d, routed: ['2001:db8:c00::/64'] }), /routed\[0\]/);
});

test('every rule has a counter and a comment of at most 128 bytes; every subject its counters', () => {
  const d = withPolicy('tablet', { lanAccess: true });
  d.publishes = [{ name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8080 }];
  const text = renderFirewall(d);
  const rules = text.split('\n').filter((l) => l.startsWith('\t\t') && !l.includes(' hook ') && / (accept|drop|goto|masquerade|dnat|map @|set rt mtu)/.test(l));
  assert.ok(rules.length > 40, `only ${rules.length} rules`);
  for (const r of rules) {
    assert.match(r, /\bcounter /, r);
    const comment = / comment "([^"]+)"$/.exec(r)?.[1];
    assert.ok(comment && Buffer.byteLength(comment) <= 128, r);
  }
  for (const s of d.subjects) {
    assert.match(text, `counter sent-${s.name} {`);
    assert.match(text, `counter dropped-${s.name} {`);
  }
});

test('the longest names and addresses still fit nft\'s 128-byte comments', () => {
  const long = 'a'.repeat(31) + 'z';
  const d = labDesired();
  d.subjects.push(subject(long, 'host', ['2001:db8:1a:0:ffff:ffff:ffff:fff0/124'], [], { isolated: true }));
  d.publishes = [{ name: long, proto: 'udp', port: 65535, toAddress: '2001:db8:1a:0:ffff:ffff:ffff:ffff', toPort: 65535 }];
  const text = renderFirewall(d);
  assert.match(text, `published ${long}: udp 65535 on the VM goes to 2001:db8:1a:0:ffff:ffff:ffff:ffff port 65535`);
  for (const c of text.matchAll(/comment "([^"]*)"/g)) assert.ok(Buffer.byteLength(c[1]!) <= 128, c[1]);
});

test('same input, same text: order of subjects, publishes and prefixes does not matter', () => {
  const d = labDesired();
  d.publishes = [
    { name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8080 },
    { name: 'game', proto: 'udp', port: 27015, toAddress: '2001:db8:1a::50', toPort: 27016 },
  ];
  const shuffled: FirewallDesired = {
    ...d,
    overlay: [...d.overlay].reverse(),
    vmAddresses: [...d.vmAddresses].reverse(),
    subjects: [...d.subjects].reverse().map((s) => ({ ...s, addresses: [...s.addresses].reverse(), homePrefixes: [...s.homePrefixes].reverse() })),
    publishes: [...d.publishes].reverse(),
  };
  assert.is(renderFirewall(shuffled), renderFirewall(d));
  assert.is(renderFirewall(d), renderFirewall(d));
});

test('addresses are written canonically, whatever spelling came in', () => {
  const d = labDesired();
  d.vmAddresses = ['203.0.113.129', '2001:0db8:00a0:0000::0001'];
  assert.is(renderFirewall(d), renderFirewall(labDesired()));
});

test.run();
