import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { renderFirewall } from '../../cloud/firewall/render.ts';
import type { FirewallDesired, FirewallEgress } from '../../cloud/firewall/desired.ts';
import { golden } from './gateway-golden.ts';
import { labDesired } from './cloud-firewall-fixtures.ts';

function withEgress(egress: FirewallEgress): FirewallDesired {
  return { ...labDesired(), egress };
}

/** The rule lines of one chain. */
function chain(text: string, name: string): string[] {
  const body = text.split(`\tchain ${name} {\n`)[1]?.split('\n\t}')[0];
  assert.ok(body !== undefined, `no chain ${name}`);
  return body.split('\n').map((l) => l.trim()).filter((l) => !l.startsWith('type '));
}

function set(text: string, name: string): string {
  const body = text.split(`\tset ${name} {\n`)[1]?.split('\t}')[0];
  assert.ok(body !== undefined, `no set ${name}`);
  return body;
}

test('global egress: SNAT of everything inside to the pool addresses, before the masquerade, except to the exceptions', () => {
  const text = renderFirewall(
    withEgress({
      v4: '203.0.113.11',
      v6: '2001:db8:203::5e:1',
      sources: 'all',
      exceptPrefixes: ['198.51.100.0/24', '2001:db8:5::/48', '192.0.2.53'],
      temporary: ['203.0.113.11', '203.0.113.12', '2001:db8:203::5e:1', '2001:db8:203::5e:0'],
    }),
  );
  golden('cloud-firewall-egress-global.nft', text);
  const post = chain(text, 'postrouting');
  assert.is(post.length, 4);
  assert.match(post[0]!, /^oifname "eth0" ip saddr @inside4 ip daddr != @egress_except4 counter snat ip to 203\.0\.113\.11 comment /);
  assert.match(post[1]!, /^oifname "eth0" ip6 saddr @inside6 ip6 daddr != @egress_except6 counter snat ip6 to 2001:db8:203::5e:1 comment /);
  assert.match(post[2]!, /masquerade/);
  assert.match(set(text, 'egress_except4'), 'flags interval, timeout');
  assert.match(set(text, 'egress_except4'), 'elements = { 192.0.2.53, 198.51.100.0/24 }');
  assert.match(set(text, 'egress_except6'), 'elements = { 2001:db8:5::/48 }');
  assert.not.match(text, 'egress_sources');
  // Nothing from outside reaches the VM, or a published service, at a temporary address.
  assert.match(set(text, 'egress_temporary4'), 'elements = { 203.0.113.11, 203.0.113.12 }');
  assert.match(set(text, 'egress_temporary6'), 'elements = { 2001:db8:203::5e:0, 2001:db8:203::5e:1 }');
  const input = chain(text, 'input');
  const drop = input.findIndex((l) => l.startsWith('iifname "eth0" ip daddr @egress_temporary4 counter drop'));
  const ssh = input.findIndex((l) => l.startsWith('tcp dport 22 '));
  assert.ok(drop > 0 && drop < ssh, 'before SSH, pairing and WireGuard');
  assert.ok(input.findIndex((l) => l.startsWith('ct state established,related')) < drop, 'after the replies to what the VM started');
  assert.ok(input.findIndex((l) => l.includes('nd-neighbor-solicit')) < drop, 'after neighbour discovery: the provider still finds the address');
});

test('a publish is not reached at a temporary address', () => {
  const text = renderFirewall({
    ...labDesired(),
    publishes: [{ name: 'web', proto: 'tcp', port: 8444, toAddress: '192.0.2.130', toPort: 80 }],
    egress: { v4: '203.0.113.11', v6: null, sources: 'all', exceptPrefixes: [], temporary: ['203.0.113.11'] },
  });
  assert.match(chain(text, 'publish')[0]!, /fib daddr type local ip daddr != @egress_temporary4 tcp dport 8444 counter dnat ip to 192\.0\.2\.130:80/);
});

test('per device: only the named subjects (a gateway with its homes) leave with the temporary address', () => {
  const text = renderFirewall(withEgress({ v4: null, v6: '2001:db8:203::77', sources: ['phone', 'router'], exceptPrefixes: [] }));
  golden('cloud-firewall-egress-devices.nft', text);
  const post = chain(text, 'postrouting');
  // No IPv4 pool address: IPv4 keeps the masquerade only.
  assert.is(post.filter((l) => l.includes('snat')).length, 1);
  assert.match(post[0]!, 'ip6 saddr @egress_sources6 ip6 daddr != @egress_except6 counter snat ip6 to 2001:db8:203::77');
  assert.match(set(text, 'egress_sources4'), 'elements = { 192.0.2.128/25, 203.0.113.130, 203.0.113.131 }');
  assert.match(set(text, 'egress_sources6'), 'elements = { 2001:db8:1a::/64, 2001:db8:a0::2, 2001:db8:a0::3 }');
  // Declared even when empty, so the daemon can add resolver answers.
  assert.not.match(set(text, 'egress_except6'), 'elements =');
});

test('without egress the table is the one of part 1 (no egress sets, no SNAT)', () => {
  const text = renderFirewall(labDesired());
  assert.not.match(text, 'egress');
  assert.not.match(text, 'snat');
});

test('bad egress input: ValidationError naming the field, nothing rendered', () => {
  const cases: [Partial<FirewallEgress>, string][] = [
    [{ v4: '2001:db8:203::1' }, 'egress.v4'],
    [{ v6: '203.0.113.11' }, 'egress.v6'],
    [{ v6: 'not-an-address' }, 'egress.v6'],
    [{ sources: ['nobody'] }, 'egress.sources[0]'],
    [{ sources: 'some' as 'all' }, 'egress.sources'],
    [{ exceptPrefixes: ['198.51.100.1/24'] }, 'egress.exceptPrefixes[0]'],
    [{ temporary: ['203.0.113.11', '203.0.113.0/25'] }, 'egress.temporary[1]'],
  ];
  for (const [change, field] of cases) {
    const d = withEgress({ v4: '203.0.113.11', v6: null, sources: 'all', exceptPrefixes: [], ...change });
    try {
      renderFirewall(d);
      assert.unreachable(`${field}: rendered`);
    } catch (err) {
      assert.instance(err, ValidationError, String(err));
      assert.is((err as ValidationError).field, field);
    }
  }
});

test('egress comments fit nft and every SNAT rule counts', () => {
  const text = renderFirewall(withEgress({ v4: '203.0.113.11', v6: '2001:db8:203:0:ffff:ffff:ffff:fff0', sources: ['tablet'], exceptPrefixes: [] }));
  for (const l of chain(text, 'postrouting')) {
    assert.match(l, ' counter ');
    const comment = / comment "([^"]+)"$/.exec(l)?.[1];
    assert.ok(comment && Buffer.byteLength(comment) <= 128, l);
  }
});

test.run();
