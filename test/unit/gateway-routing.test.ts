import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRoutes, parseRules, planRouting, renderRouting, routeArgv, ruleArgv, type RoutingInput } from '../../gateway/platform/policy-routing.ts';
import { golden } from './gateway-golden.ts';

const input: RoutingInput = {
  interface: 'aerie',
  addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
  overlay: ['203.0.113.128/25', '2001:db8:a0::/64', '198.51.100.192/26'],
  lan: [
    { interface: 'lan0', prefixes: ['192.0.2.128/25', '2001:db8:1a::/64'] },
    { interface: 'guest', prefixes: [] },
  ],
  table: 7375,
  rulePriority: 7375,
  killSwitch: true,
};

test('kill switch on: LAN rules, LAN prefixes, tunnel default and unreachable fallback, v4 and v6', () => {
  golden('gateway-routing-on.txt', renderRouting(input));
});

test('kill switch off: no unreachable route, so LAN traffic falls back to the main table', () => {
  const text = renderRouting({ ...input, killSwitch: false });
  golden('gateway-routing-off.txt', text);
  assert.not.match(text, /unreachable/);
});

test('the unreachable fallback sits behind the tunnel route, for both families', () => {
  const { routes } = planRouting(input);
  for (const family of [4, 6] as const) {
    const dflt = routes.filter((r) => r.family === family && r.dst === 'default');
    const tunnel = dflt.find((r) => r.type === 'unicast')!;
    const fallback = dflt.find((r) => r.type === 'unreachable')!;
    assert.is(tunnel.dev, 'aerie');
    assert.ok(fallback.metric > tunnel.metric);
  }
});

test('overlay prefixes already on-link through a tunnel address get no extra route', () => {
  const { overlayRoutes } = planRouting(input);
  assert.equal(overlayRoutes.map((r) => r.dst), ['198.51.100.192/26']);
  assert.is(overlayRoutes[0]!.table, 254);
});

test('bad input names its field', () => {
  assert.throws(() => planRouting({ ...input, lan: [{ interface: 'lan0', prefixes: ['192.0.2.129/25'] }] }), /lan\[0\]\.prefixes\[0\].*did you mean 192\.0\.2\.128\/25/);
  assert.throws(() => planRouting({ ...input, interface: 'x y' }), /interface/);
  assert.throws(() => planRouting({ ...input, lan: [] }), /lan: expected at least one/);
});

// Captured from iproute2 6.1 (`ip -j -4|-6 route show table 7375`, `ip -j -4 rule show`).
test('parses what ip -j prints, so a second pass finds nothing to change', () => {
  const v4 = '[{"dst":"default","dev":"aerie","scope":"link","metric":100,"flags":[]},{"type":"unreachable","dst":"default","metric":65535,"flags":[]},{"dst":"192.0.2.128/25","dev":"lan0","scope":"link","metric":100,"flags":[]}]';
  const v6 = '[{"dst":"2001:db8:1a::/64","dev":"lan0","metric":100,"flags":[],"pref":"medium"},{"dst":"default","dev":"aerie","metric":100,"flags":[],"pref":"medium"},{"type":"unreachable","dst":"default","dev":"lo","metric":65535,"flags":[],"pref":"medium"}]';
  const have = [...parseRoutes(v4, 4, 7375), ...parseRoutes(v6, 6, 7375)].map((r) => routeArgv('replace', r).join(' ')).sort();
  const want = planRouting({ ...input, lan: [input.lan[0]!] }).routes.map((r) => routeArgv('replace', r).join(' ')).sort();
  assert.equal(have, want);

  const rules = '[{"priority":0,"src":"all","table":"local"},{"priority":7375,"src":"all","iif":"lan0","iif_detached":null,"table":"7375"},{"priority":7000,"src":"10.0.0.0","srclen":8,"table":"7375"},{"priority":32766,"src":"all","table":"main"}]';
  const parsed = parseRules(rules, 4, 7375);
  assert.equal(parsed, [
    { family: 4, priority: 7375, iif: 'lan0', table: 7375 },
    // A rule of ours with a selector we never set: listed without iif so it gets deleted.
    { family: 4, priority: 7000, iif: '', table: 7375 },
  ]);
  assert.equal(ruleArgv('del', parsed[1]!), ['ip', '-4', 'rule', 'del', 'lookup', '7375', 'priority', '7000']);
});

test('host routes without a length and an empty answer parse', () => {
  assert.equal(parseRoutes('[{"dst":"192.0.2.1","dev":"x","metric":100}]', 4, 9)[0]!.dst, '192.0.2.1/32');
  assert.equal(parseRoutes('', 6, 9), []);
});

test.run();
