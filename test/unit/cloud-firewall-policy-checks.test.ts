// The input checks of the firewall policy: every bad value names its field and what was expected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { onOff, splitTarget } from '../../cloud/cli/firewall.ts';
import { checkFields, checkHostAddress, checkPolicyPatch, checkPort, checkProto } from '../../cloud/core/firewall-checks.ts';
import { throwsValidation } from './throws-validation.ts';

test('ports: whole numbers from 1 to 65535, nothing else', () => {
  assert.is(checkPort(1, 'port'), 1);
  assert.is(checkPort(65535, 'toPort'), 65535);
  for (const bad of [0, 65536, -1, 80.5, '80', null, undefined, Number.NaN]) {
    throwsValidation(() => checkPort(bad, 'toPort'), 'toPort', /expected a port number from 1 to 65535/);
  }
  throwsValidation(() => checkPort('http', 'port'), 'port', /got "http"/);
});

test('protocols: tcp or udp', () => {
  assert.is(checkProto('udp'), 'udp');
  throwsValidation(() => checkProto('TCP'), 'proto', /expected "tcp" or "udp", got "TCP"/);
  throwsValidation(() => checkProto('icmp'), 'proto');
});

test('bodies: an object with known fields only; the stray field is named', () => {
  assert.equal(checkFields({ a: 1 }, ['a', 'b']), { a: 1 });
  throwsValidation(() => checkFields([], ['a']), 'body', /expected an object with a, got an array/);
  throwsValidation(() => checkFields('x', ['a']), 'body', /got "x"/);
  throwsValidation(() => checkFields(null, ['a']), 'body', /got null/);
  throwsValidation(() => checkFields({ a: 1, colour: 'red' }, ['a', 'b']), 'colour', /unknown field; expected a, b/);
});

test('policy changes: any of the three switches, typed, at least one', () => {
  assert.equal(checkPolicyPatch({ internet: 'block' }), { internet: 'block' });
  assert.equal(checkPolicyPatch({ isolated: true, lanAccess: false }), { isolated: true, lanAccess: false });
  throwsValidation(() => checkPolicyPatch({}), 'body', /at least one of internet, isolated, lanAccess/);
  throwsValidation(() => checkPolicyPatch({ internet: 'deny' }), 'internet', /expected "allow" or "block", got "deny"/);
  throwsValidation(() => checkPolicyPatch({ isolated: 'yes' }), 'isolated', /expected true or false/);
  throwsValidation(() => checkPolicyPatch({ lanAccess: 1 }), 'lanAccess', /expected true or false/);
  throwsValidation(() => checkPolicyPatch({ lan_access: true }), 'lan_access', /unknown field/);
});

test('LAN host addresses: an address or a prefix, canonical; a single-address prefix is the address', () => {
  assert.is(checkHostAddress('192.0.2.140').text, '192.0.2.140');
  assert.is(checkHostAddress('2001:DB8:1A:0::140').text, '2001:db8:1a::140');
  assert.is(checkHostAddress('192.0.2.144/28').text, '192.0.2.144/28');
  assert.is(checkHostAddress('192.0.2.140/32').text, '192.0.2.140');
  assert.is(checkHostAddress('2001:db8:1a::140/128').text, '2001:db8:1a::140');
  assert.is(checkHostAddress('192.0.2.144/28').prefix.length, 28);
  throwsValidation(() => checkHostAddress('192.0.2.145/28'), 'address', /did you mean 192\.0\.2\.144\/28/);
  throwsValidation(() => checkHostAddress('camera.lan'), 'address', /expected an IP address or prefix .* got "camera.lan"/);
  throwsValidation(() => checkHostAddress(''), 'address');
  throwsValidation(() => checkHostAddress(42), 'address', /got number/);
  throwsValidation(() => checkHostAddress('192.0.2.0/33'), 'address');
});

test('the CLI\'s on/off and ADDRESS[:PORT]', () => {
  assert.is(onOff('on', 'isolated'), true);
  assert.is(onOff('no', 'isolated'), false);
  throwsValidation(() => onOff('maybe', 'lan-access'), 'lan-access', /expected on or off, got "maybe"/);
  assert.equal(splitTarget('192.0.2.140:8080'), { toAddress: '192.0.2.140', toPort: 8080 });
  assert.equal(splitTarget('192.0.2.140'), { toAddress: '192.0.2.140' });
  assert.equal(splitTarget('[2001:db8:1a::140]:443'), { toAddress: '2001:db8:1a::140', toPort: 443 });
  assert.equal(splitTarget('2001:db8:1a::140'), { toAddress: '2001:db8:1a::140' });
  assert.equal(splitTarget('192.0.2.140:http'), { toAddress: '192.0.2.140', toPort: 'http' }, 'left for the API to refuse by name');
});

test.run();
