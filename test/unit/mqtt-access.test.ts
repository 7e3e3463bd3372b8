import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkGrantAction,
  checkGrantFilter,
  checkUserPrefix,
  decideAccess,
  type MqttAction,
  type MqttCaller,
  type MqttGrant,
} from '../../cloud/core/mqtt-access.ts';
import { throwsValidation } from './throws-validation.ts';

// The router is "home" (a second router is "cabin"), the owner's phone is
// "phone", a member's tablet "tablet", a plug behind the router is the MQTT
// user "plug". Each of them is asked about the same places.
const callers: Record<string, MqttCaller> = {
  gateway: { kind: 'peer', role: 'gateway', name: 'home' },
  owner: { kind: 'peer', role: 'owner', name: 'phone' },
  member: { kind: 'peer', role: 'member', name: 'tablet' },
  user: { kind: 'user', name: 'plug', prefix: 'home/plug/#' },
};
const ownPrefix: Record<string, string> = { gateway: 'home/home', owner: 'home/phone', member: 'home/tablet', user: 'home/plug' };

type Row = { place: string; topic: (who: string) => string; filter: (who: string) => string };
const places: Row[] = [
  { place: 'own prefix', topic: (w) => `${ownPrefix[w]}/state`, filter: (w) => `${ownPrefix[w]}/#` },
  { place: 'another device', topic: () => 'home/lamp/set', filter: () => 'home/lamp/#' },
  { place: 'all of home', topic: () => 'home', filter: () => 'home/#' },
  { place: 'another root', topic: () => 'zigbee/bridge/state', filter: () => 'zigbee/#' },
  { place: 'own router state', topic: () => 'aerie/gw/home/state', filter: () => 'aerie/gw/home/#' },
  { place: 'own router commands', topic: () => 'aerie/gw/home/cmd/rotate', filter: () => 'aerie/gw/home/cmd/+' },
  { place: 'another router', topic: () => 'aerie/gw/cabin/state', filter: () => 'aerie/gw/cabin/#' },
  { place: 'all of aerie', topic: () => 'aerie/x', filter: () => 'aerie/#' },
  { place: '$SYS', topic: () => '$SYS/broker/uptime', filter: () => '$SYS/#' },
  { place: 'everything', topic: () => 'anything', filter: () => '#' },
];

// [publish, subscribe] for each caller at each place, without any grant.
const Y = true;
const N = false;
const expected: Record<string, Record<string, [boolean, boolean]>> = {
  gateway: {
    'own prefix': [N, N],
    'another device': [N, N],
    'all of home': [N, N],
    'another root': [N, N],
    'own router state': [Y, Y],
    'own router commands': [N, Y],
    'another router': [N, N],
    'all of aerie': [N, N],
    $SYS: [N, N],
    everything: [N, N],
  },
  owner: {
    'own prefix': [Y, Y],
    'another device': [Y, Y],
    'all of home': [Y, Y],
    'another root': [Y, Y],
    'own router state': [N, Y],
    'own router commands': [N, Y],
    'another router': [N, Y],
    'all of aerie': [N, Y],
    $SYS: [N, Y],
    everything: [Y, Y],
  },
  member: {
    'own prefix': [Y, Y],
    'another device': [N, N],
    'all of home': [N, N],
    'another root': [N, N],
    'own router state': [N, N],
    'own router commands': [N, N],
    'another router': [N, N],
    'all of aerie': [N, N],
    $SYS: [N, N],
    everything: [N, N],
  },
  user: {
    'own prefix': [Y, Y],
    'another device': [N, N],
    'all of home': [N, N],
    'another root': [N, N],
    'own router state': [N, N],
    'own router commands': [N, N],
    'another router': [N, N],
    'all of aerie': [N, N],
    $SYS: [N, N],
    everything: [N, N],
  },
};

const decide = (who: string, action: MqttAction, topic: unknown, grants: MqttGrant[] = []) =>
  decideAccess(callers[who]!, grants, action, topic);

test('without grants, each role may publish and subscribe exactly where the table says', () => {
  for (const who of Object.keys(callers)) {
    for (const row of places) {
      const [pub, sub] = expected[who]![row.place]!;
      const p = decide(who, 'publish', row.topic(who));
      const s = decide(who, 'subscribe', row.filter(who));
      assert.is(p.allowed, pub, `${who} publish ${row.topic(who)}: ${p.reason}`);
      assert.is(s.allowed, sub, `${who} subscribe ${row.filter(who)}: ${s.reason}`);
      assert.ok(p.reason.length > 0 && s.reason.length > 0, 'every decision says why');
    }
  }
});

test('a grant opens exactly its filter, for its action only, for every role', () => {
  const grants: MqttGrant[] = [
    { action: 'read', filter: 'home/+/temperature' },
    { action: 'write', filter: 'home/lamp/set' },
  ];
  for (const who of ['gateway', 'member', 'user']) {
    assert.ok(decide(who, 'subscribe', 'home/+/temperature', grants).allowed, who);
    assert.ok(decide(who, 'subscribe', 'home/kitchen/temperature', grants).allowed, who);
    assert.not.ok(decide(who, 'subscribe', 'home/#', grants).allowed, `${who}: a wider filter than granted`);
    assert.not.ok(decide(who, 'subscribe', 'home/lamp/set', grants).allowed, `${who}: write does not imply read`);
    assert.ok(decide(who, 'publish', 'home/lamp/set', grants).allowed, who);
    assert.not.ok(decide(who, 'publish', 'home/kitchen/temperature', grants).allowed, `${who}: read does not imply write`);
    assert.not.ok(decide(who, 'publish', 'home/lamp/set/x', grants).allowed, who);
  }
  assert.match(decide('user', 'publish', 'home/lamp/set', grants).reason, /granted write home\/lamp\/set/);
});

test('no grant opens aerie/ for writing or any "$" topic', () => {
  const grants: MqttGrant[] = [
    { action: 'write', filter: '#' },
    { action: 'write', filter: 'aerie/#' },
    { action: 'read', filter: '#' },
    { action: 'read', filter: '$SYS/#' },
    { action: 'write', filter: '$SYS/#' },
  ];
  for (const who of ['gateway', 'member', 'user']) {
    assert.ok(decide(who, 'publish', 'zigbee/x', grants).allowed, `${who}: "#" write reaches ordinary topics`);
    assert.not.ok(decide(who, 'publish', 'aerie/gw/cabin/state', grants).allowed, `${who}: spoofing a router`);
    assert.not.ok(decide(who, 'publish', 'aerie/gw/home/cmd/rotate', grants).allowed, `${who}: sending a command`);
    assert.not.ok(decide(who, 'publish', '$SYS/broker/uptime', grants).allowed, who);
    assert.not.ok(decide(who, 'subscribe', '$SYS/#', grants).allowed, `${who}: $SYS is for owners`);
    assert.ok(decide(who, 'subscribe', 'aerie/gw/cabin/state', grants).allowed, `${who}: reading aerie/ can be granted`);
  }
});

test('the router may not command itself, nor write its name into another router\'s topics', () => {
  assert.match(decide('gateway', 'publish', 'aerie/gw/home/cmd/rotate').reason, /only the VM/);
  assert.ok(decide('gateway', 'publish', 'aerie/gw/home').allowed, 'aerie/gw/home/# covers aerie/gw/home');
  assert.not.ok(decide('gateway', 'publish', 'aerie/gw/homes/state').allowed);
  assert.not.ok(decide('gateway', 'subscribe', 'aerie/gw/+/state').allowed, 'other routers\' states');
  assert.not.ok(decide('gateway', 'subscribe', 'aerie/#').allowed);
});

test("the router announces itself to Home Assistant under its own discovery node only", () => {
  assert.ok(decide('gateway', 'publish', 'homeassistant/binary_sensor/aerie_home/tunnel/config').allowed);
  assert.ok(decide('gateway', 'publish', 'homeassistant/sensor/aerie_home/blocked/config').allowed);
  assert.not.ok(decide('gateway', 'publish', 'homeassistant/sensor/aerie_cabin/blocked/config').allowed, "another router's node");
  assert.not.ok(decide('gateway', 'publish', 'homeassistant/sensor/plug/state').allowed, "a device's");
  assert.not.ok(decide('gateway', 'subscribe', 'homeassistant/#').allowed, 'writing is not reading');
});

test('Home Assistant as a user with the README\'s grants: discovery, the routers\' state, and the home\'s devices', () => {
  const ha: MqttCaller = { kind: 'user', name: 'homeassistant', prefix: checkUserPrefix('homeassistant') };
  const grants: MqttGrant[] = [
    { action: 'read', filter: checkGrantFilter('read', 'aerie/gw/+/#') },
    { action: 'read', filter: checkGrantFilter('read', 'home/#') },
    { action: 'write', filter: checkGrantFilter('write', 'home/#') },
  ];
  const may = (action: MqttAction, topic: string) => decideAccess(ha, grants, action, topic).allowed;
  assert.ok(may('subscribe', 'homeassistant/#'), 'the discovery configs the routers publish');
  assert.ok(may('publish', 'homeassistant/status'), 'its birth message');
  assert.ok(may('subscribe', 'aerie/gw/+/state') && may('subscribe', 'aerie/gw/home/availability'));
  assert.ok(may('subscribe', 'home/plug/#') && may('publish', 'home/plug/set'), 'the devices at home, both ways');
  assert.not.ok(may('publish', 'aerie/gw/home/cmd/settings-changed'), 'never a router\'s command');
  assert.not.ok(may('subscribe', '$SYS/#'));
});

test('the VM\'s administrator on the local socket reads everything and writes nothing', () => {
  const local: MqttCaller = { kind: 'local', name: 'vm' };
  for (const filter of ['#', '$SYS/#', 'aerie/gw/+/cmd/#', 'home/plug/#']) assert.ok(decideAccess(local, [], 'subscribe', filter).allowed, filter);
  for (const topic of ['home/plug/set', 'aerie/gw/home/cmd/resync', 'x']) assert.not.ok(decideAccess(local, [], 'publish', topic).allowed, topic);
});

test('owners read everything including $SYS, but "#" alone does not reach $SYS (MQTT-4.7.2-1)', () => {
  assert.ok(decide('owner', 'subscribe', '#').allowed);
  assert.ok(decide('owner', 'subscribe', '+/+/#').allowed);
  assert.ok(decide('owner', 'subscribe', '$SYS/+/uptime').allowed);
  assert.not.ok(decide('owner', 'subscribe', '$share/group/home/#').allowed, 'other "$" topics are the broker\'s');
  assert.not.ok(decide('owner', 'publish', '$SYS/broker/uptime').allowed);
  assert.match(decide('owner', 'publish', 'aerie/gw/home/cmd/rotate').reason, /router and the VM/);
});

test('a user\'s prefix is whatever it was given, and "+" in a subscription must stay inside it', () => {
  const kitchen: MqttCaller = { kind: 'user', name: 'bridge', prefix: 'zigbee/#' };
  assert.ok(decideAccess(kitchen, [], 'publish', 'zigbee/bridge/state').allowed);
  assert.ok(decideAccess(kitchen, [], 'publish', 'zigbee').allowed);
  assert.not.ok(decideAccess(kitchen, [], 'publish', 'home/bridge/state').allowed, 'no default prefix besides');
  assert.not.ok(decide('user', 'subscribe', 'home/+/state').allowed, '"+" reaches other devices');
  assert.ok(decide('user', 'subscribe', 'home/plug/+/state').allowed);
  assert.not.ok(decide('user', 'publish', 'home/plugx/state').allowed, 'a prefix is a whole level');
});

test('malformed topics are denied with the reason, never thrown', () => {
  const bad: [MqttAction, unknown, RegExp][] = [
    ['publish', 'home/plug/#', /wildcards/],
    ['publish', '', /at least one character/],
    ['publish', 'home/plug/\u0000', /NUL/],
    ['publish', Buffer.from([0x68, 0xff]), /UTF-8/],
    ['publish', undefined, /as text/],
    ['subscribe', 'home/plug/#/x', /"#" must be/],
    ['subscribe', 'home/plug+', /"\+" must be/],
    ['subscribe', 'a/'.repeat(40) + '#', /levels/],
  ];
  for (const who of Object.keys(callers)) {
    for (const [action, topic, why] of bad) {
      const d = decide(who, action, topic, [{ action: 'write', filter: '#' }, { action: 'read', filter: '#' }]);
      assert.is(d.allowed, false, `${who} ${action} ${String(topic)}`);
      assert.match(d.reason, why);
    }
  }
  assert.is(decideAccess(callers.owner!, [], 'publish', 'x'.repeat(70000)).allowed, false);
});

test('prefixes: plain levels, "/#" added when missing, never aerie/ or "$"', () => {
  assert.is(checkUserPrefix('home/kitchen'), 'home/kitchen/#');
  assert.is(checkUserPrefix('home/kitchen/#'), 'home/kitchen/#');
  assert.is(checkUserPrefix('zigbee'), 'zigbee/#');
  for (const p of ['home/+', 'home/+/x', '#', '+/#', 'home//x', '/home', 'home/', 'home/#/x', 'home/a#', '']) {
    throwsValidation(() => checkUserPrefix(p), 'prefix', /plain text/);
  }
  throwsValidation(() => checkUserPrefix('aerie/gw/home'), 'prefix', /reserved/);
  throwsValidation(() => checkUserPrefix('$SYS'), 'prefix', /"\$"/);
  throwsValidation(() => checkUserPrefix('home/a\u0000'), 'prefix', /NUL/);
  throwsValidation(() => checkUserPrefix(7), 'prefix', /got number/);
});

test('grant filters: any valid filter, but no "$" topic and no aerie/ for writing', () => {
  assert.is(checkGrantFilter('read', 'aerie/gw/home/state'), 'aerie/gw/home/state');
  assert.is(checkGrantFilter('write', '#'), '#');
  assert.is(checkGrantFilter('write', 'home/+/set'), 'home/+/set');
  throwsValidation(() => checkGrantFilter('write', 'aerie/gw/home/cmd/x'), 'filter', /grant "read" instead/);
  throwsValidation(() => checkGrantFilter('read', '$SYS/#'), 'filter', /owners only/);
  throwsValidation(() => checkGrantFilter('read', 'a/#/b'), 'filter', /"#" must be/);
  assert.is(checkGrantAction('read'), 'read');
  throwsValidation(() => checkGrantAction('admin'), 'action', /"read" or "write"/);
});

test.run();
