import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { choosePlatform, detectPlatform, parseOverride, probePlatform } from '../../gateway/platform/detect.ts';
import { throwsValidation } from './throws-validation.ts';

test('OpenWrt needs both its release file and a ubus that answers', () => {
  assert.is(detectPlatform({ openwrtRelease: true, ubusSocket: '/var/run/ubus/ubus.sock', override: null }).name, 'openwrt');
  const noUbus = detectPlatform({ openwrtRelease: true, ubusSocket: null, override: null });
  assert.is(noUbus.name, 'linux');
  assert.match(noUbus.reason, /ubus does not answer/);
  assert.is(detectPlatform({ openwrtRelease: false, ubusSocket: '/var/run/ubus.sock', override: null }).name, 'linux');
  assert.is(detectPlatform({ openwrtRelease: false, ubusSocket: null, override: null }).name, 'linux');
});

test('AERIE_PLATFORM overrides whatever the probes say, and says so', () => {
  const d = detectPlatform({ openwrtRelease: true, ubusSocket: '/var/run/ubus/ubus.sock', override: 'linux' });
  assert.equal(d, { name: 'linux', reason: 'AERIE_PLATFORM=linux' });
  assert.is(detectPlatform({ openwrtRelease: false, ubusSocket: null, override: 'openwrt' }).name, 'openwrt');
});

test('a misspelt override is refused, not ignored', () => {
  assert.is(parseOverride(undefined), null);
  assert.is(parseOverride(''), null);
  assert.is(parseOverride('openwrt'), 'openwrt');
  throwsValidation(() => parseOverride('OpenWRT'), 'AERIE_PLATFORM', /expected linux or openwrt/);
});

test('probing this machine: the override comes from the environment; the choice is logged once', async () => {
  const p = await probePlatform({ AERIE_PLATFORM: 'linux' });
  assert.is(p.override, 'linux');
  assert.is(typeof p.openwrtRelease, 'boolean');
  const logs: string[] = [];
  const a = await choosePlatform((m) => logs.push(m), { AERIE_PLATFORM: 'openwrt' });
  const b = await choosePlatform((m) => logs.push(m), { AERIE_PLATFORM: 'openwrt' });
  assert.equal(a, b);
  assert.equal(logs, ['platform: openwrt (AERIE_PLATFORM=openwrt)']);
});

test.run();
