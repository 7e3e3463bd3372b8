// /v1/firewall: the owner's firewall policy over the real API app, callers
// identified by their tunnel address as the overlay listener would; no sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { createApi } from '../../cloud/api/api.ts';
import type { FirewallLive } from '../../cloud/api/firewall.ts';
import { createCore } from '../../cloud/core/core.ts';
import type { FirewallCounters } from '../../cloud/firewall/desired.ts';
import { callApi as call, isApiError as isError } from './lib/api-call.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'fw-api');

const GATEWAY = '203.0.113.130';
const OWNER = '2001:db8:a0::3';
const MEMBER = '203.0.113.132';
const LAN = '192.0.2.130';
const STRANGER = '198.51.100.7';

/** A VM with a gateway "home" (.2, 192.0.2.128/25 and 2001:db8:1a::/64), an owner "phone" (.3) and a member "guest" (.4). */
function setup(live?: FirewallLive) {
  const { store, state } = freshVm();
  const core = createCore({ store, config: state });
  const { code } = core.pairing.createCode();
  core.pairing.redeem(pairRequest(code));
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  core.devices.add({ name: 'guest', role: 'member', publicKey: generateKeyPair().publicKey });
  const changes: string[] = [];
  core.events.on('firewall-changed', (e) => changes.push(e.reason));
  const errors: unknown[] = [];
  const app = createApi({ core, logError: (e) => errors.push(e), ...(live && { firewall: live }) }, (c) => core.identify(c.req.header('x-test-from') ?? ''));
  return { core, app, changes, errors };
}

const DEFAULTS = { internet: 'allow', isolated: false, lanAccess: false };

test('an owner names a LAN host, fences it in, lets a member reach home, publishes a service, moves SSH', async () => {
  const { app, changes } = setup();
  const start = await call(app, 'GET', '/v1/firewall', OWNER);
  assert.is(start.status, 200);
  assert.equal(start.json, {
    policies: [
      { name: 'guest', kind: 'member', policy: DEFAULTS },
      { name: 'home', kind: 'gateway', policy: DEFAULTS },
      { name: 'phone', kind: 'owner', policy: DEFAULTS },
    ],
    hosts: [],
    publishes: [],
    settings: { sshPort: 22 },
  });

  const host = await call(app, 'POST', '/v1/firewall/hosts', OWNER, { name: 'camera', address: '192.0.2.140/32' });
  assert.is(host.status, 201);
  assert.equal(host.json, { host: { name: 'camera', addresses: ['192.0.2.140'], gateway: 'home' } });
  const fenced = await call(app, 'PUT', '/v1/firewall/policies/camera', GATEWAY, { isolated: true, internet: 'block' });
  assert.is(fenced.status, 200, 'a gateway may do it too');
  assert.equal(fenced.json, { name: 'camera', kind: 'host', policy: { internet: 'block', isolated: true, lanAccess: false } });
  const member = await call(app, 'PUT', '/v1/firewall/policies/guest', OWNER, { lanAccess: true });
  assert.equal(member.json.policy, { internet: 'allow', isolated: false, lanAccess: true });
  const one = await call(app, 'GET', '/v1/firewall/policies/guest', OWNER);
  assert.equal(one.json, { name: 'guest', kind: 'member', policy: { internet: 'allow', isolated: false, lanAccess: true } });

  const pub = await call(app, 'POST', '/v1/firewall/publishes', OWNER, { name: 'web', port: 443, toAddress: '192.0.2.140', toPort: 8443 });
  assert.is(pub.status, 201);
  assert.equal(pub.json, { publish: { name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8443 } });
  const ssh = await call(app, 'PATCH', '/v1/firewall/settings', OWNER, { sshPort: 2222 });
  assert.equal(ssh.json, { settings: { sshPort: 2222 } });

  const after = await call(app, 'GET', '/v1/firewall', GATEWAY);
  assert.equal(after.json.hosts, [{ name: 'camera', addresses: ['192.0.2.140'], gateway: 'home' }]);
  assert.equal(after.json.policies.map((p: { name: string }) => p.name), ['camera', 'guest', 'home', 'phone']);
  assert.equal(after.json.publishes, [{ name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8443 }]);
  assert.equal(after.json.settings, { sshPort: 2222 });
  assert.equal(changes, ['host-added', 'policy-set', 'policy-set', 'publish-added', 'settings-changed'], 'every change tells the daemon');

  const unpub = await call(app, 'DELETE', '/v1/firewall/publishes/web', OWNER);
  assert.equal(unpub.json, { publish: { name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8443 } });
  const gone = await call(app, 'DELETE', '/v1/firewall/hosts/camera', OWNER);
  assert.equal(gone.json, { host: { name: 'camera', addresses: ['192.0.2.140'], gateway: 'home' } });
  const closed = await call(app, 'PATCH', '/v1/firewall/settings', OWNER, { sshPort: null });
  assert.equal(closed.json, { settings: { sshPort: null } });
  const end = await call(app, 'GET', '/v1/firewall', OWNER);
  assert.equal([end.json.hosts, end.json.publishes, end.json.settings], [[], [], { sshPort: null }]);
});

test('bad input: 400 naming the field, 409 for what is taken, 404 for unknown names; nothing stored or announced', async () => {
  const { app, core, changes } = setup();
  await call(app, 'POST', '/v1/firewall/hosts', OWNER, { name: 'camera', address: '192.0.2.140' });
  await call(app, 'POST', '/v1/firewall/publishes', OWNER, { name: 'web', port: 443, toAddress: '192.0.2.140' });
  const before = (await call(app, 'GET', '/v1/firewall', OWNER)).text;
  const announced = changes.length;

  const cases: [string, string, unknown, number, string, RegExp][] = [
    ['POST', '/v1/firewall/hosts', '', 400, 'bad_request', /^body: expected an object/],
    ['POST', '/v1/firewall/hosts', { name: 'nas', address: '203.0.113.5' }, 400, 'bad_request', /^address: 203\.0\.113\.5 is not inside any gateway's home prefix/],
    ['POST', '/v1/firewall/hosts', { name: 'nas', address: '192.0.2.141/24' }, 400, 'bad_request', /^address: .*did you mean 192\.0\.2\.0\/24/],
    ['POST', '/v1/firewall/hosts', { name: 'nas', address: 'nas.lan' }, 400, 'bad_request', /^address: expected an IP address or prefix/],
    ['POST', '/v1/firewall/hosts', { name: 'NAS', address: '192.0.2.141' }, 400, 'bad_request', /^name: /],
    ['POST', '/v1/firewall/hosts', { name: 'phone', address: '192.0.2.141' }, 409, 'conflict', /"phone" is already a device's name/],
    ['POST', '/v1/firewall/hosts', { name: 'cams', address: '192.0.2.128/27' }, 409, 'conflict', /^address: 192\.0\.2\.128\/27 overlaps LAN host "camera"/],
    ['DELETE', '/v1/firewall/hosts/nas', undefined, 404, 'not_found', /no LAN host named "nas"/],
    ['PUT', '/v1/firewall/policies/camera', { internet: 'never' }, 400, 'bad_request', /^internet: expected "allow" or "block", got "never"/],
    ['PUT', '/v1/firewall/policies/camera', { isolated: 'on' }, 400, 'bad_request', /^isolated: expected true or false/],
    ['PUT', '/v1/firewall/policies/camera', { colour: 'red' }, 400, 'bad_request', /^colour: unknown field/],
    ['PUT', '/v1/firewall/policies/camera', {}, 400, 'bad_request', /^body: expected at least one of/],
    ['PUT', '/v1/firewall/policies/phone', { lanAccess: true }, 400, 'bad_request', /^lanAccess: only members have this switch/],
    ['PUT', '/v1/firewall/policies/home', { isolated: true }, 400, 'bad_request', /^isolated: "home" is a gateway/],
    ['PUT', '/v1/firewall/policies/nobody', { internet: 'block' }, 404, 'not_found', /no device or LAN host named "nobody"/],
    ['GET', '/v1/firewall/policies/nobody', undefined, 404, 'not_found', /no device or LAN host named "nobody"/],
    ['POST', '/v1/firewall/publishes', { name: 'web2', port: 443, toAddress: '192.0.2.141' }, 409, 'conflict', /^port: 443\/tcp is already published as "web"/],
    ['POST', '/v1/firewall/publishes', { name: 'web', port: 444, toAddress: '192.0.2.141' }, 409, 'conflict', /publish named "web" already exists/],
    ['POST', '/v1/firewall/publishes', { name: 'wg', proto: 'udp', port: 51820, toAddress: '192.0.2.141' }, 400, 'bad_request', /^port: 51820\/udp is the VM's WireGuard port/],
    ['POST', '/v1/firewall/publishes', { name: 'pair', port: 8443, toAddress: '192.0.2.141' }, 400, 'bad_request', /^port: 8443\/tcp is the VM's pairing port/],
    ['POST', '/v1/firewall/publishes', { name: 'ssh', port: 22, toAddress: '192.0.2.141' }, 400, 'bad_request', /^port: 22\/tcp is the VM's SSH port/],
    ['POST', '/v1/firewall/publishes', { name: 'x', port: 70000, toAddress: '192.0.2.141' }, 400, 'bad_request', /^port: expected a port number from 1 to 65535, got 70000/],
    ['POST', '/v1/firewall/publishes', { name: 'x', port: 8080, toAddress: '192.0.2.141', toPort: 0 }, 400, 'bad_request', /^toPort: /],
    ['POST', '/v1/firewall/publishes', { name: 'x', port: 8080, toAddress: '198.51.100.7' }, 400, 'bad_request', /^toAddress: 198\.51\.100\.7 is not inside any gateway's home prefix/],
    ['POST', '/v1/firewall/publishes', { name: 'x', port: 8080, toAddress: '192.0.2.141', proto: 'sctp' }, 400, 'bad_request', /^proto: expected "tcp" or "udp"/],
    ['DELETE', '/v1/firewall/publishes/nothing', undefined, 404, 'not_found', /no publish named "nothing"/],
    ['PATCH', '/v1/firewall/settings', { sshPort: 443.5 }, 400, 'bad_request', /^sshPort: expected a port number/],
    ['PATCH', '/v1/firewall/settings', { sshPort: 443 }, 409, 'conflict', /^sshPort: 443\/tcp is published as "web"/],
    ['PATCH', '/v1/firewall/settings', { sshPort: 80 }, 400, 'bad_request', /^sshPort: 80 is the port of the VM's API service on the tunnel/],
    ['PATCH', '/v1/firewall/settings', {}, 400, 'bad_request', /^sshPort: /],
  ];
  for (const [method, path, body, status, code, message] of cases) {
    const res = await call(app, method, path, OWNER, body);
    assert.is(res.status, status, `${method} ${path} ${JSON.stringify(body)}: ${res.text}`);
    assert.ok(isError(res.json, code), res.text);
    assert.match(res.json.error.message, message);
  }
  assert.is((await call(app, 'GET', '/v1/firewall', OWNER)).text, before, 'nothing stored');
  assert.is(changes.length, announced, 'nothing announced');
  assert.equal(core.firewall.settings.get(), { sshPort: 22 });
});

test('removing a gateway takes its LAN hosts, their policies and its publishes along', async () => {
  const { app, core, changes } = setup();
  await call(app, 'POST', '/v1/firewall/hosts', OWNER, { name: 'camera', address: '2001:db8:1a::140' });
  await call(app, 'PUT', '/v1/firewall/policies/camera', OWNER, { isolated: true });
  await call(app, 'POST', '/v1/firewall/publishes', OWNER, { name: 'web', port: 443, toAddress: '2001:db8:1a::140' });
  await call(app, 'PUT', '/v1/firewall/policies/guest', OWNER, { internet: 'block' });
  const removed = await call(app, 'DELETE', '/v1/devices/home', OWNER);
  assert.is(removed.status, 200);
  const after = (await call(app, 'GET', '/v1/firewall', OWNER)).json;
  assert.equal(after.hosts, []);
  assert.equal(after.publishes, []);
  assert.equal(after.policies.map((p: { name: string }) => p.name), ['guest', 'phone']);
  assert.is(changes.at(-1), 'device-removed');
  assert.equal(core.firewall.subjects().map((s) => s.name), ['guest', 'phone']);
});

test('print, stats and apply need the running daemon: without it, 503 and why', async () => {
  const { app } = setup();
  for (const [method, path] of [['GET', '/v1/firewall/rules'], ['GET', '/v1/firewall/stats'], ['POST', '/v1/firewall/apply']] as const) {
    const res = await call(app, method, path, OWNER);
    assert.is(res.status, 503, path);
    assert.ok(isError(res.json, 'unavailable'), res.text);
    assert.match(res.json.error.message, /need the running daemon \(aerie-cloud serve\)/);
  }
});

test('with the daemon: the ruleset text, the counters, an apply; a failed apply says the old ruleset stays', async () => {
  const counters: FirewallCounters = {
    rules: [{ chain: 'input', comment: 'drop what no rule above allowed', packets: 7, bytes: 420 }],
    subjects: { phone: { outPackets: 10, outBytes: 1000, droppedPackets: 1, droppedBytes: 60 } },
  };
  let applies = 0;
  let fail = false;
  const { app, errors } = setup({
    print: () => 'table inet aerie {\n}\n',
    stats: async () => counters,
    apply: async () => {
      applies++;
      if (fail) throw new Error('nft: Error: Could not process rule: No such file or directory');
    },
  });
  const rules = await call(app, 'GET', '/v1/firewall/rules', OWNER);
  assert.equal([rules.status, rules.json], [200, { rules: 'table inet aerie {\n}\n' }]);
  const stats = await call(app, 'GET', '/v1/firewall/stats', GATEWAY);
  assert.equal([stats.status, stats.json], [200, counters]);
  const applied = await call(app, 'POST', '/v1/firewall/apply', OWNER);
  assert.equal([applied.status, applied.json, applies], [200, { applied: true }, 1]);
  fail = true;
  const failed = await call(app, 'POST', '/v1/firewall/apply', OWNER);
  assert.is(failed.status, 500);
  assert.ok(isError(failed.json, 'apply_failed'), failed.text);
  assert.match(failed.json.error.message, /^the firewall was not applied; the previous ruleset stays in force: nft: Error: Could not process rule/);
  assert.is(errors.length, 1, 'and it is logged');
});

test('members, home devices and strangers can do none of it', async () => {
  const { app, core } = setup({ print: () => 'x', stats: async () => ({ rules: [], subjects: {} }), apply: async () => {} });
  const calls: [string, string, unknown?][] = [
    ['GET', '/v1/firewall'],
    ['GET', '/v1/firewall/policies/guest'],
    ['PUT', '/v1/firewall/policies/guest', { lanAccess: true }],
    ['POST', '/v1/firewall/hosts', { name: 'camera', address: '192.0.2.140' }],
    ['DELETE', '/v1/firewall/hosts/camera'],
    ['POST', '/v1/firewall/publishes', { name: 'web', port: 443, toAddress: '192.0.2.140' }],
    ['DELETE', '/v1/firewall/publishes/web'],
    ['PATCH', '/v1/firewall/settings', { sshPort: null }],
    ['GET', '/v1/firewall/rules'],
    ['GET', '/v1/firewall/stats'],
    ['POST', '/v1/firewall/apply'],
  ];
  for (const [method, path, body] of calls) {
    for (const [from, status] of [[MEMBER, 403], [LAN, 403], [STRANGER, 401]] as const) {
      const res = await call(app, method, path, from, body);
      assert.is(res.status, status, `${method} ${path} from ${from}`);
      assert.ok(isError(res.json, status === 403 ? 'forbidden' : 'unauthorized'), res.text);
    }
  }
  assert.equal(core.firewall.policies.get('guest').policy, DEFAULTS);
  assert.equal(core.firewall.hosts.list(), []);
  assert.equal(core.firewall.settings.get(), { sshPort: 22 });
});

test.run();
