import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { conntrackReplyTargets } from '../../cloud/egress/addresses.ts';
import { checkException, coveredBy } from '../../cloud/egress/exceptions.ts';
import { checkEgressPool, type WanView } from '../../cloud/egress/pool.ts';
import { formatSchedule, parseSchedule } from '../../cloud/egress/schedule.ts';

// The lab VM's WAN: 203.0.113.10/25 and two extra IPv4 addresses, 2001:db8:203::10/64, and a /56 routed to it.
const wan: WanView = {
  addresses: ['203.0.113.10', '203.0.113.11', '203.0.113.12', '2001:db8:203::10'],
  prefixes: ['203.0.113.0/25', '2001:db8:203::/64', '2001:db8:2ff:ff00::/56'],
};

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ValidationError, String(err));
    return (err as ValidationError).field;
  }
  return assert.unreachable('no error') as never;
}

test('schedule: minutes, hours, days, off; at least 5 minutes', () => {
  assert.is(parseSchedule('30m'), 1800);
  assert.is(parseSchedule('1h'), 3600);
  assert.is(parseSchedule('1d'), 86400);
  assert.is(parseSchedule(' OFF '), null);
  assert.is(parseSchedule('5m'), 300);
  for (const bad of ['4m', '0h', '1w', '1.5h', 'hourly', '', '31d', 60]) assert.is(fieldOf(() => parseSchedule(bad)), 'every', String(bad));
  assert.throws(() => parseSchedule('4m'), /at most every 5 minutes/);
  assert.is(formatSchedule(86400), '1d');
  assert.is(formatSchedule(5400), '90m');
  assert.is(formatSchedule(null), 'off');
  for (const t of ['30m', '2h', '7d']) assert.is(formatSchedule(parseSchedule(t)), t);
});

test("pool: a v6 prefix holding a WAN address or routed to the WAN, and the WAN's own IPv4 addresses", () => {
  assert.equal(checkEgressPool({ v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.11', '203.0.113.12'] }, wan), {
    v6Prefix: '2001:db8:203::/64',
    v4: ['203.0.113.11', '203.0.113.12'],
  });
  // Routed (no address of the VM in it) is as good as on-link.
  assert.equal(checkEgressPool({ v6Prefix: '2001:db8:2ff:ff40::/64' }, wan), { v6Prefix: '2001:db8:2ff:ff40::/64', v4: [] });
  assert.equal(checkEgressPool({}, wan), { v6Prefix: null, v4: [] });
});

test("pool: prefixes and addresses that are not the VM's are refused, naming the field", () => {
  assert.is(fieldOf(() => checkEgressPool({ v6Prefix: '2001:db8:99::/64' }, wan)), 'v6Prefix');
  assert.throws(() => checkEgressPool({ v6Prefix: '2001:db8:99::/64' }, wan), /not the VM's.*2001:db8:203::\/64/);
  assert.is(fieldOf(() => checkEgressPool({ v6Prefix: '203.0.113.0/25' }, wan)), 'v6Prefix');
  assert.is(fieldOf(() => checkEgressPool({ v6Prefix: '2001:db8:203::/120' }, wan)), 'v6Prefix');
  assert.is(fieldOf(() => checkEgressPool({ v6Prefix: '2001:db8:203::1/64' }, wan)), 'v6Prefix');
  assert.is(fieldOf(() => checkEgressPool({ v4: ['203.0.113.11', '198.51.100.7'] }, wan)), 'v4[1]');
  assert.throws(() => checkEgressPool({ v4: ['198.51.100.7'] }, wan), /not an address of the VM's WAN interface \(it has 203\.0\.113\.10/);
  assert.is(fieldOf(() => checkEgressPool({ v4: ['2001:db8:203::10'] }, wan)), 'v4[0]');
  assert.is(fieldOf(() => checkEgressPool({ v4: ['203.0.113.11', '203.0.113.11'] }, wan)), 'v4[1]');
  assert.is(fieldOf(() => checkEgressPool({ v4: '203.0.113.11' }, wan)), 'v4');
  // A prefix that holds the VM's address but is far larger than what a provider gives is not the VM's.
  for (const huge of ['::/0', '2000::/3', '2001:db8::/32']) {
    assert.is(fieldOf(() => checkEgressPool({ v6Prefix: huge }, wan)), 'v6Prefix', huge);
    assert.throws(() => checkEgressPool({ v6Prefix: huge }, wan), /too large to be the VM's: expected \/48 to \/112/);
  }
  // A VM whose WAN has no IPv6 at all says so.
  assert.throws(() => checkEgressPool({ v6Prefix: '2001:db8:203::/64' }, { addresses: ['203.0.113.10'], prefixes: ['203.0.113.0/25'] }), /no IPv6 prefix/);
});

test('exceptions: an address inside an excepted prefix or equal to an excepted address is covered already', () => {
  const covered = coveredBy(['198.51.100.0/24', '2001:db8:99::/64', '192.0.2.7']);
  assert.equal(['198.51.100.5', '2001:db8:99::5', '192.0.2.7', '192.0.2.8', '2001:db8:98::1'].filter(covered), ['198.51.100.5', '2001:db8:99::5', '192.0.2.7']);
  assert.not.ok(coveredBy([])('198.51.100.5'));
});

test("open connections' reply targets, read from the kernel's connection table as it prints them", () => {
  const table = [
    // A TCP connection SNATed to a pool address: the reply goes to it.
    'ipv6     10 tcp      6 431995 ESTABLISHED src=2001:0db8:00a0:0000:0000:0000:0000:0003 dst=2001:0db8:0080:0000:0000:0000:0000:0080 sport=45678 dport=80 src=2001:0db8:0080:0000:0000:0000:0000:0080 dst=2001:0db8:0203:0000:0000:0000:0000:00a1 sport=80 dport=45678 [ASSURED] mark=0 zone=0 use=2',
    // As recorded from a kernel: an ICMPv6 echo to itself.
    'ipv6     10 icmpv6   58 29 src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0000:0000:0000:0000:0001 type=128 code=0 id=14532 src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0000:0000:0000:0000:0001 type=129 code=0 id=14532 mark=0 zone=0 use=2',
    'ipv4     2 tcp      6 300 ESTABLISHED src=203.0.113.131 dst=192.0.2.80 sport=1 dport=80 src=192.0.2.80 dst=203.0.113.11 sport=80 dport=1 mark=0 use=1',
    'ipv6 garbage dst=not-an-address dst=zz',
    // Ended: its address is free.
    'ipv6     10 tcp      6 110 TIME_WAIT src=2001:0db8:00a0:0000:0000:0000:0000:0003 dst=2001:0db8:0080:0000:0000:0000:0000:0080 sport=45679 dport=80 src=2001:0db8:0080:0000:0000:0000:0000:0080 dst=2001:0db8:0203:0000:0000:0000:0000:00b2 sport=80 dport=45679 [ASSURED] mark=0 zone=0 use=2',
  ].join('\n');
  const targets = conntrackReplyTargets(['2001:db8:203::a1', '2001:db8:203::b2', '2001:db8::1'], () => table);
  assert.equal([...targets].sort(), ['2001:db8:203::a1', '2001:db8::1']);
  assert.equal(conntrackReplyTargets(['2001:db8:203::a1'], () => { throw new Error('ENOENT'); }), new Set(), 'no table: none');
});

test('exceptions: domains (normalized), prefixes and single addresses', () => {
  assert.equal(checkException('Example-Bank.COM.'), { kind: 'domain', value: 'example-bank.com' });
  assert.equal(checkException('198.51.100.0/24'), { kind: 'prefix', value: '198.51.100.0/24' });
  assert.equal(checkException('2001:DB8:5::/48'), { kind: 'prefix', value: '2001:db8:5::/48' });
  assert.equal(checkException('198.51.100.9'), { kind: 'prefix', value: '198.51.100.9' });
  assert.equal(checkException('198.51.100.9/32'), { kind: 'prefix', value: '198.51.100.9' });
  for (const bad of ['198.51.100.1/24', 'bad name!', '', '*.example.com', '999.1.1.1', null]) assert.is(fieldOf(() => checkException(bad)), 'value', String(bad));
});

test.run();
