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
    withEgress({ v4: '203.0.113.11', v6: '2001:db8:203::5e:1', sources: 'all', exceptPrefixes: ['198.51.100.0/24', '2001:db8:5::/48', '192.0.2.53'] }),
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
