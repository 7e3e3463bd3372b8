import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFirewallDesired, type FirewallDesired } from '../../cloud/firewall/desired.ts';
import { renderFirewall } from '../../cloud/firewall/render.ts';
import { throwsValidation } from './throws-validation.ts';
import { labDesired, subject } from './cloud-firewall-fixtures.ts';

const web = { name: 'web', proto: 'tcp' as const, port: 443, toAddress: '192.0.2.140', toPort: 8080 };

/** labDesired() changed by `change`; rendering it must fail naming `field`. */
function refused(change: (d: FirewallDesired) => void, field: string, pattern?: RegExp): void {
  const d = labDesired();
  change(d);
  throwsValidation(() => renderFirewall(d), field, pattern);
}

test('the lab input is accepted as it is', () => {
  const c = checkFirewallDesired({ ...labDesired(), publishes: [web] });
  assert.equal(c.subjects.map((s) => s.name), ['camera', 'phone', 'router', 'tablet']);
  assert.equal(c.homes, { v4: ['192.0.2.128/25'], v6: ['2001:db8:1a::/64'] });
});

test('two publishes on the same protocol and port are refused; tcp and udp on one port are not', () => {
  refused((d) => (d.publishes = [web, { ...web, name: 'web2', toAddress: '192.0.2.141' }]), 'publishes[1].port', /TCP 443 is already taken by publishes\[0\]\.port/);
  const d = labDesired();
  d.publishes = [web, { ...web, name: 'dns', proto: 'udp' }];
  assert.match(renderFirewall(d), 'udp dport 443');
});

test("a publish may not take a port the VM itself answers on the WAN", () => {
  refused((d) => (d.publishes = [{ ...web, port: 8443 }]), 'publishes[0].port', /ports\.pairing/);
  refused((d) => (d.publishes = [{ ...web, port: 22 }]), 'publishes[0].port', /ports\.ssh/);
  refused((d) => (d.publishes = [{ ...web, proto: 'udp', port: 51820 }]), 'publishes[0].port', /ports\.wireguard/);
  // With SSH off, its port is free to publish.
  const d = labDesired();
  d.ports.ssh = null;
  d.publishes = [{ ...web, port: 22 }];
  assert.match(renderFirewall(d), 'tcp dport 22 counter dnat ip to 192.0.2.140:8080');
});

test('a publish goes only to an address inside a home prefix', () => {
  refused((d) => (d.publishes = [{ ...web, toAddress: '198.51.100.7' }]), 'publishes[0].toAddress', /not inside any gateway's home prefixes/);
  refused((d) => (d.publishes = [{ ...web, toAddress: '203.0.113.131' }]), 'publishes[0].toAddress');
  refused((d) => (d.publishes = [{ ...web, toAddress: '192.0.2.128/25' }]), 'publishes[0].toAddress');
});

test('ports out of range or not integers are refused', () => {
  refused((d) => (d.ports.wireguard = 0), 'ports.wireguard', /1-65535/);
  refused((d) => (d.ports.api = 65536), 'ports.api');
  refused((d) => (d.ports.ssh = 22.5), 'ports.ssh');
  refused((d) => (d.ports.dns = '53' as unknown as number), 'ports.dns');
  refused((d) => (d.publishes = [{ ...web, port: -1 }]), 'publishes[0].port');
  refused((d) => (d.publishes = [{ ...web, toPort: 70000 }]), 'publishes[0].toPort');
  refused((d) => (d.ports.mqtt = 80), 'ports.mqtt', /ports\.api/);
  refused((d) => (d.ports.dns = 51820), 'ports.dns', /wireguard/);
});

test('addresses that are not IPs are refused, naming the one', () => {
  refused((d) => (d.vmAddresses = ['203.0.113.129', 'vm.example']), 'vmAddresses[1]');
  refused((d) => (d.subjects[1]!.addresses = ['203.0.113.131', '2001:db8:a0::3\n}']), 'subjects[1].addresses[1]');
  refused((d) => (d.subjects[1]!.addresses = ['203.0.113.131/32']), 'subjects[1].addresses[0]');
  refused((d) => (d.subjects[0]!.homePrefixes = ['192.0.2.129/25']), 'subjects[0].homePrefixes[0]', /host bits/);
  refused((d) => (d.overlay = ['203.0.113.128']), 'overlay[0]');
  refused((d) => (d.publishes = [{ ...web, toAddress: 'camera' }]), 'publishes[0].toAddress');
});

test('addresses must lie where they belong and not overlap another subject', () => {
  refused((d) => (d.vmAddresses = ['198.51.100.1']), 'vmAddresses[0]', /not inside the overlay/);
  refused((d) => (d.subjects[1]!.addresses = ['192.0.2.131']), 'subjects[1].addresses[0]', /not inside the overlay/);
  refused((d) => (d.subjects[3]!.addresses = ['198.51.100.150']), 'subjects[3].addresses[0]', /home prefixes/);
  refused((d) => (d.subjects[2]!.addresses = ['203.0.113.131']), 'subjects[2].addresses[0]', /overlaps an address of phone/);
  refused((d) => (d.subjects[2]!.addresses = ['203.0.113.129']), 'subjects[2].addresses[0]', /the VM/);
  refused((d) => d.subjects.push(subject('lamps', 'host', ['192.0.2.144/28'])), 'subjects[4].addresses[0]', /camera/);
  refused((d) => (d.subjects[0]!.homePrefixes = ['203.0.113.192/26']), 'subjects[0].homePrefixes[0]', /overlay/);
  refused(
    (d) => d.subjects.push(subject('router2', 'gateway', ['203.0.113.140'], ['192.0.2.192/26'])),
    'subjects[4].homePrefixes[0]',
    /home prefix of router/,
  );
  refused((d) => (d.subjects[1]!.homePrefixes = ['198.51.100.0/24']), 'subjects[1].homePrefixes[0]', /only gateways/);
});

test('duplicate names are refused', () => {
  refused((d) => d.subjects.push(subject('phone', 'member', ['203.0.113.140'])), 'subjects[4].name', /already subjects\[1\]/);
  refused((d) => (d.publishes = [web, { ...web, port: 444 }]), 'publishes[1].name');
  refused((d) => (d.subjects[1]!.name = 'Phone'), 'subjects[1].name');
  refused((d) => (d.publishes = [{ ...web, name: 'x"; flush ruleset' }]), 'publishes[0].name');
});

test('policies are checked; LAN access is for members only', () => {
  refused((d) => (d.subjects[1]!.policy.lanAccess = true), 'subjects[1].policy.lanAccess', /members only/);
  refused((d) => (d.subjects[1]!.policy.internet = 'deny' as 'block'), 'subjects[1].policy.internet');
  refused((d) => (d.subjects[1]!.policy.isolated = 'yes' as unknown as boolean), 'subjects[1].policy.isolated');
  refused((d) => (d.subjects[1]!.kind = 'admin' as 'owner'), 'subjects[1].kind');
});

test('interfaces are checked as before', () => {
  refused((d) => (d.wanInterface = 'eth0"; flush ruleset'), 'wanInterface');
  refused((d) => (d.tunnelInterface = 'eth0'), 'tunnelInterface', /differ/);
  refused((d) => (d.overlay = []), 'overlay');
  refused((d) => (d.subjects = null as unknown as []), 'subjects');
});

test.run();
