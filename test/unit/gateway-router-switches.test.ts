import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig, type LoadedConfig } from '../../gateway/config.ts';
import { parseRouterSwitches, withRouterSwitches } from '../../gateway/router-switches.ts';
import { ROUTER_OPTIONS } from '../../gateway/rpc/router-options.ts';
import { UbusError, UBUS_STATUS } from '../../gateway/ubus/error.ts';
import type { UbusCaller, UbusTable } from '../../gateway/ubus/types.ts';
import { ValidationError } from '../../shared/errors.ts';
import { sampleConfig } from './gateway-fixtures.ts';

const base = (): LoadedConfig => ({ config: parseConfig(sampleConfig()), privateKey: 'unused' });

/**
 * rpcd's `uci get` for a named section, in the shape 02-uci-get.jsonl
 * recorded (metadata keys, every option a string, lists as arrays), and
 * netifd's interface status with l3_device.
 */
function fakeUbus(section: () => UbusTable | null, devices: Record<string, string>) {
  const calls: string[] = [];
  const ubus: UbusCaller = {
    async call(path, method, args = {}): Promise<UbusTable> {
      calls.push(`${path} ${method} ${JSON.stringify(args)}`);
      if (path === 'uci' && method === 'get') {
        const values = section();
        if (!values) throw new UbusError(UBUS_STATUS.NOT_FOUND, 'uci get: NOT_FOUND');
        return { values: { '.anonymous': false, '.type': 'aerie', '.name': 'main', ...values } };
      }
      const m = /^network\.interface\.(\w+)$/.exec(path);
      if (m && method === 'status') {
        const dev = devices[m[1]!];
        if (!dev) throw new UbusError(UBUS_STATUS.NOT_FOUND, `${path}: NOT_FOUND`);
        return { up: true, l3_device: dev, device: dev };
      }
      throw new UbusError(UBUS_STATUS.METHOD_NOT_FOUND, `${path} ${method}`);
    },
  };
  return { ubus, calls };
}

test('UCI booleans are read the way uci reads them; missing options keep the config file', () => {
  const cfg = { enabled: true, killSwitch: true, dnsIntercept: false, homeAssistant: true };
  assert.equal(parseRouterSwitches({ enabled: 'yes', kill_switch: 'off', home_assistant: '0', lan_network: ['lan', 'guest'] }, cfg), {
    enabled: true,
    killSwitch: false,
    dnsIntercept: false,
    homeAssistant: false,
    lanNetworks: ['lan', 'guest'],
  });
  assert.equal(parseRouterSwitches({}, cfg).lanNetworks, ['lan']);
  assert.equal(parseRouterSwitches({ lan_network: 'lan guest' }, cfg).lanNetworks, ['lan', 'guest'], 'an option, not a list');
});

test('a bad switch names the UCI option and what was expected', () => {
  const cfg = { enabled: true, killSwitch: true, dnsIntercept: true, homeAssistant: true };
  try {
    parseRouterSwitches({ kill_switch: 'maybe' }, cfg);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ValidationError);
    assert.is((e as ValidationError).field, 'aerie.main.kill_switch');
    assert.match((e as Error).message, /expected a boolean/);
  }
  assert.throws(() => parseRouterSwitches({ lan_network: ['lan; rm -rf /'] }, cfg), /lan_network: expected one or more UCI network names/);
});

test('every option LuCI binds and the init script validates is read here', () => {
  const cfg = { enabled: true, killSwitch: true, dnsIntercept: true, homeAssistant: true };
  for (const option of Object.keys(ROUTER_OPTIONS)) {
    assert.throws(() => parseRouterSwitches({ [option]: ['?', '!'] }, cfg), (e: Error) => (e as ValidationError).field === `aerie.main.${option}`, option);
  }
});

test('the switches override the config file; the LAN devices come from netifd', async () => {
  let section: UbusTable | null = { enabled: '1', kill_switch: '0', dns_intercept: '0', lan_network: ['lan'] };
  const { ubus } = fakeUbus(() => section, { lan: 'lan0', guest: 'br-guest' });
  const logs: string[] = [];
  const b = base();
  const load = withRouterSwitches(async () => b, ubus, (m) => logs.push(m));
  const first = (await load())!;
  assert.is(first.config.killSwitch, false);
  assert.is(first.config.dnsIntercept, false);
  assert.equal(first.config.lanInterfaces, ['lan0']);
  assert.is(await load(), first, 'the same object while nothing changed');

  section = { ...section, kill_switch: '1', lan_network: ['lan', 'guest'] };
  const second = (await load())!;
  assert.is.not(second, first);
  assert.is(second.config.killSwitch, true);
  assert.equal(second.config.lanInterfaces, ['lan0', 'br-guest']);
  assert.is(second.config.lanPrefixes.length, 2, 'the prefixes of the paired LAN stay');

  // A broken edit keeps the last good switches and is said once.
  section = { ...section, enabled: 'perhaps' };
  assert.is((await load())!.config.killSwitch, true);
  assert.is((await load())!.config.lanInterfaces.length, 2);
  assert.is(logs.filter((l) => l.includes('aerie.main.enabled')).length, 1);
  assert.match(logs[0]!, /keeping the last good switches/);
});

test('without the UCI section, the config file decides', async () => {
  const { ubus } = fakeUbus(() => null, {});
  const logs: string[] = [];
  const b = base();
  const loaded = (await withRouterSwitches(async () => b, ubus, (m) => logs.push(m))())!;
  assert.equal(loaded.config, b.config);
  assert.match(logs[0]!, /keeping the switches of the config file/);
  assert.is(await withRouterSwitches(async () => null, ubus, () => {})(), null, 'not paired');
});

test.run();
