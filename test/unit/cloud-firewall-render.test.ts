import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ValidationError } from '../../shared/errors.ts';
import { renderFirewall, type FirewallDesired } from '../../cloud/firewall/render.ts';

/** Compares with test/unit/golden/NAME; UPDATE_GOLDEN=1 rewrites it (review the diff). */
function golden(name: string, actual: string): void {
  const url = new URL(`golden/${name}`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(url, actual);
  if (!existsSync(url)) assert.unreachable(`golden file ${name} is missing; run with UPDATE_GOLDEN=1`);
  assert.fixture(actual, readFileSync(url, 'utf8'));
}

// The lab's VM: overlay 203.0.113.128/25 + 2001:db8:a0::/64, one home 192.0.2.128/25 + 2001:db8:1a::/64.
const lab: FirewallDesired = {
  wanInterface: 'eth0',
  tunnelInterface: 'aerie0',
  natSources: ['203.0.113.128/25', '2001:db8:a0::/64', '192.0.2.128/25', '2001:db8:1a::/64'],
};

test('dual stack: NAT44 and NAT66, forward policy, MSS clamp, anti-spoofing', () => {
  golden('cloud-firewall-dual-stack.nft', renderFirewall(lab));
});

test('IPv4 only: no IPv6 rules at all', () => {
  golden('cloud-firewall-ipv4-only.nft', renderFirewall({ ...lab, natSources: ['203.0.113.128/25'] }));
});

test('no sources yet: the tunnel rules stand, no NAT and no empty sets', () => {
  const text = renderFirewall({ ...lab, natSources: [] });
  golden('cloud-firewall-no-sources.nft', text);
  assert.not.match(text, /\{ \}/);
});

test('every rule carries a comment', () => {
  for (const natSources of [lab.natSources, []]) {
    const rules = renderFirewall({ ...lab, natSources })
      .split('\n')
      .filter((l) => l.startsWith('\t\t') && !l.includes(' hook '));
    assert.ok(rules.length >= 4);
    for (const r of rules) assert.match(r, / comment "[^"]+"$/);
  }
});

test('order, duplicates and prefixes inside others do not change the table', () => {
  const messy = renderFirewall({
    ...lab,
    natSources: ['2001:db8:1a::/64', '192.0.2.192/26', '192.0.2.128/25', '2001:db8:a0::/64', '203.0.113.128/25', '192.0.2.128/25', '2001:db8:1a:0:1::/80'],
  });
  assert.is(messy, renderFirewall(lab));
});

test('interface names and prefixes are checked; the error names the field', () => {
  const cases: [Partial<FirewallDesired>, string][] = [
    [{ wanInterface: 'a-name-of-16-chr' }, 'wanInterface'],
    [{ wanInterface: '' }, 'wanInterface'],
    [{ wanInterface: 'eth 0' }, 'wanInterface'],
    [{ wanInterface: 'eth0"; flush ruleset' }, 'wanInterface'],
    [{ wanInterface: 'eth*' }, 'wanInterface'],
    [{ wanInterface: '..' }, 'wanInterface'],
    [{ tunnelInterface: 'aerie/0' }, 'tunnelInterface'],
    [{ tunnelInterface: 'eth0' }, 'tunnelInterface'],
    [{ tunnelInterface: 42 as unknown as string }, 'tunnelInterface'],
    [{ natSources: '192.0.2.0/24' as unknown as string[] }, 'natSources'],
    [{ natSources: ['203.0.113.128/25', '192.0.2.1/24'] }, 'natSources[1]'],
    [{ natSources: ['192.0.2.0/33'] }, 'natSources[0]'],
    [{ natSources: ['192.0.2.0'] }, 'natSources[0]'],
    [{ natSources: ['2001:db8::/64\n}'] }, 'natSources[0]'],
  ];
  for (const [over, field] of cases) {
    try {
      renderFirewall({ ...lab, ...over });
      assert.unreachable(`accepted ${JSON.stringify(over)}`);
    } catch (e) {
      assert.instance(e, ValidationError);
      assert.is((e as ValidationError).field, field, JSON.stringify(over));
      assert.ok((e as Error).message.startsWith(`${field}: `));
    }
  }
});

test('the longest legal interface name (15 characters) is accepted', () => {
  assert.match(renderFirewall({ ...lab, wanInterface: 'enp0s31f6.1000x' }), 'oifname "enp0s31f6.1000x"');
});

test.run();
