import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { renderKillSwitch } from '../../gateway/platform/kill-switch.ts';
import { golden } from './gateway-golden.ts';

const base = {
  tunnel: 'aerie',
  lanInterfaces: ['lan0', 'br-guest'],
  lanPrefixes: ['192.0.2.128/25', '2001:db8:1a::/64', '198.51.100.128/25'],
  killSwitch: true,
  mtu: 1420,
};

test('kill switch on: LAN leaves only by the tunnel, nothing but the tunnel reaches the LAN', () => {
  golden('gateway-kill-switch-on.nft', renderKillSwitch(base));
});

test('kill switch off: no LAN drop, inbound only replies', () => {
  golden('gateway-kill-switch-off.nft', renderKillSwitch({ ...base, killSwitch: false }));
});

const dns = { dnsIntercept: true, overlay: ['203.0.113.128/25', '2001:db8:a0::/64'] };

test('DNS interception and the overlay guard: LAN port 53 to the router, DoT/DoQ refused, overlay only by the tunnel', () => {
  golden('gateway-dns-intercept.nft', renderKillSwitch({ ...base, ...dns }));
});

test('every rule carries a comment', () => {
  for (const killSwitch of [true, false]) {
    for (const extra of [{}, dns]) {
      const rules = renderKillSwitch({ ...base, killSwitch, ...extra })
        .split('\n')
        .filter((l) => /\b(accept|drop|set|reject|redirect)\b/.test(l) && !/type (filter|nat) hook/.test(l));
      assert.ok(rules.length >= (extra === dns ? 11 : 5));
      for (const r of rules) assert.match(r, / comment "[^"]+"$/);
    }
  }
});

test('DNS rules: port 53 from every LAN interface redirected, both families, in a nat chain ahead of dstnat', () => {
  const text = renderKillSwitch({ ...base, ...dns });
  assert.match(text, /chain dns_redirect \{\n\t\ttype nat hook prerouting priority dstnat - 10; policy accept;\n/);
  assert.match(text, /\t\tiifname \{ "br-guest", "lan0" \} meta l4proto \{ tcp, udp \} th dport 53 redirect to :53 comment "dns intercept:/);
  // An inet table: one rule covers IPv4 and IPv6, with no family match to narrow it.
  const redirect = text.split('\n').find((l) => l.includes('redirect to :53'))!;
  assert.not.match(redirect, /\b(ip|ip6) (s|d)addr|nfproto/);
});

test('DoT and DoQ from the LAN are rejected before any accept into the tunnel, kill switch on or off', () => {
  for (const killSwitch of [true, false]) {
    const lines = renderKillSwitch({ ...base, ...dns, killSwitch }).split('\n');
    const tls = lines.findIndex((l) => /iifname \{ "br-guest", "lan0" \} tcp dport 853 reject with tcp reset comment/.test(l));
    const quic = lines.findIndex((l) => /iifname \{ "br-guest", "lan0" \} udp dport 853 reject with icmpx port-unreachable comment/.test(l));
    const plain = lines.findIndex((l) => /iifname \{ "br-guest", "lan0" \} meta l4proto \{ tcp, udp \} th dport 53 reject comment/.test(l));
    assert.ok(tls > 0 && quic > 0 && plain > 0, `killSwitch ${killSwitch}: all three rejects`);
    const intoTunnel = lines.findIndex((l) => l.includes('oifname "aerie" accept'));
    if (killSwitch) assert.ok(tls < intoTunnel && quic < intoTunnel && plain < intoTunnel, 'before the accept into the tunnel');
    else assert.is(intoTunnel, -1);
  }
  // Off: none of it.
  const off = renderKillSwitch({ ...base, overlay: dns.overlay });
  assert.not.match(off, /dport (53|853)|dns_redirect/);
});

test('overlay guard: the router\'s own packets to the overlay leave only by the tunnel or stay local', () => {
  const text = renderKillSwitch({ ...base, ...dns });
  assert.match(text, /chain output \{\n\t\ttype filter hook output priority filter - 10; policy accept;\n/);
  assert.match(text, /\t\tip daddr \{ 203\.0\.113\.128\/25 \} oifname != \{ "lo", "aerie" \} drop comment/);
  assert.match(text, /\t\tip6 daddr \{ 2001:db8:a0::\/64 \} oifname != \{ "lo", "aerie" \} drop comment/);
  // IPv4-only overlay: no IPv6 rule; no overlay at all: no chain.
  assert.not.match(renderKillSwitch({ ...base, overlay: ['203.0.113.128/25'] }), /ip6 daddr/);
  assert.not.match(renderKillSwitch({ ...base, dnsIntercept: true }), /chain output/);
  assert.throws(
    () => renderKillSwitch({ ...base, overlay: ['203.0.113.128/25', '203.0.113.129/25'] }),
    (e: unknown) => e instanceof ValidationError && e.field === 'overlay[1]',
  );
});

test('the LAN drop judges every packet: no conntrack state on the way out', () => {
  const text = renderKillSwitch(base);
  const lanDrop = text.split('\n').find((l) => l.includes('iifname { "br-guest", "lan0" } drop'));
  assert.ok(lanDrop, 'a drop for all LAN traffic that did not go to the tunnel');
  assert.not.match(lanDrop!, /ct state/);
});

test('anti-spoofing: LAN packets into the tunnel need a LAN source, with the kill switch on or off', () => {
  for (const killSwitch of [true, false]) {
    const lines = renderKillSwitch({ ...base, killSwitch }).split('\n');
    const v4 = lines.findIndex((l) => l.includes('iifname { "br-guest", "lan0" } oifname "aerie" ip saddr != { 192.0.2.128/25, 198.51.100.128/25 } drop'));
    const v6 = lines.findIndex((l) => l.includes('iifname { "br-guest", "lan0" } oifname "aerie" ip6 saddr != { 2001:db8:1a::/64 } drop'));
    assert.ok(v4 > 0 && v6 > 0, 'a drop for each family');
    const firstAccept = lines.findIndex((l) => / accept comment/.test(l));
    assert.ok(v4 < firstAccept && v6 < firstAccept, 'before any accept');
  }
  // No IPv6 prefix on the LAN: no IPv6 source is legitimate.
  const v4only = renderKillSwitch({ ...base, lanPrefixes: ['192.0.2.128/25'] });
  assert.match(v4only, /oifname "aerie" meta nfproto ipv6 drop comment/);
  assert.not.match(v4only, /ip6 saddr/);
});

test('LAN prefixes are checked: a malformed one is refused, naming it', () => {
  assert.throws(
    () => renderKillSwitch({ ...base, lanPrefixes: ['192.0.2.128/25', '192.0.2.1/24'] }),
    (e: unknown) => e instanceof ValidationError && e.field === 'lanPrefixes[1]',
  );
  assert.throws(() => renderKillSwitch({ ...base, lanPrefixes: ['} accept'] }), (e: unknown) => e instanceof ValidationError);
});

test('MSS clamping: path MTU into the tunnel, tunnel MTU for v4 and v6 out of it', () => {
  const text = renderKillSwitch({ ...base, mtu: 1280 });
  assert.match(text, /oifname "aerie" tcp flags & \(syn \| rst\) == syn tcp option maxseg size set rt mtu/);
  assert.match(text, /meta nfproto ipv4 .* maxseg size set 1240 /);
  assert.match(text, /meta nfproto ipv6 .* maxseg size set 1220 /);
});

const isolated = ['198.51.100.140', '198.51.100.144/28', '2001:db8:1a::140'];

test('isolated devices: no connection of theirs to another home network, only DNS, DHCP and time on the router', () => {
  const text = renderKillSwitch({ ...base, ...dns, isolated });
  golden('gateway-isolated.nft', text);
  const lines = text.split('\n');
  const fwd4 = lines.findIndex((l) => l.includes('iifname { "br-guest", "lan0" } oifname { "br-guest", "lan0" } ip saddr { 198.51.100.140/32, 198.51.100.144/28 } ct direction original drop'));
  const fwd6 = lines.findIndex((l) => l.includes('ip6 saddr { 2001:db8:1a::140/128 } ct direction original drop'));
  const lanAccept = lines.findIndex((l) => l.includes('"LAN to LAN stays at home"'));
  assert.ok(fwd4 > 0 && fwd6 > 0 && fwd4 < lanAccept && fwd6 < lanAccept, 'both families, before the LAN-to-LAN accept');
  assert.match(text, /chain input \{\n\t\ttype filter hook input priority filter - 10; policy accept;\n\t\tiifname \{ "br-guest", "lan0" \} ip saddr \{ 198\.51\.100\.140\/32, 198\.51\.100\.144\/28 \} ct direction original meta l4proto \{ tcp, udp \} th dport != \{ 53, 67, 123, 547 \} drop/);
  // Nobody isolated: no rule and no input chain; one family only: that family's rules only.
  for (const none of [undefined, []]) assert.not.match(renderKillSwitch({ ...base, isolated: none }), /isolated|chain input/);
  assert.not.match(renderKillSwitch({ ...base, isolated: ['198.51.100.140'] }), /ip6 saddr \{ 2001/);
});

test('isolated addresses are checked: a malformed one is refused, naming it', () => {
  for (const bad of ['198.51.100.300', '198.51.100.0/24 } accept', '2001:db8::1/64', 42]) {
    assert.throws(
      () => renderKillSwitch({ ...base, isolated: ['198.51.100.140', bad as string] }),
      (e: unknown) => e instanceof ValidationError && e.field === 'isolated[1]',
      String(bad),
    );
  }
});

test('names that could change the rules are refused', () => {
  for (const bad of ['lan"0', 'lan*', 'a b', '', 'x'.repeat(16)]) {
    assert.throws(() => renderKillSwitch({ ...base, lanInterfaces: [bad] }), (e: unknown) => e instanceof ValidationError && e.field === 'lanInterfaces[0]');
  }
  assert.throws(() => renderKillSwitch({ ...base, tunnel: 'aer"ie' }), (e: unknown) => e instanceof ValidationError && e.field === 'interface');
  assert.throws(() => renderKillSwitch({ ...base, lanInterfaces: [] }), /at least one LAN interface/);
  assert.throws(() => renderKillSwitch({ ...base, lanInterfaces: ['aerie'] }), /cannot also be a LAN interface/);
  assert.throws(() => renderKillSwitch({ ...base, mtu: 1000 }), /mtu/);
});

test.run();
