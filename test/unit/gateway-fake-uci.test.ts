import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UbusError } from '../../gateway/ubus/error.ts';
import type { UbusTable, UbusValue } from '../../gateway/ubus/types.ts';
import { createFakeUbus, type Fixture } from './lib/fake-uci.ts';

// The fake rpcd the OpenWrt adapter is tested against must answer as the real
// one does: every `uci` request recorded from a real rpcd is fed to the fake,
// and its reply (values, their types, key order) and status must be the same.

const VECTORS = new URL('../../../shared/ubus-vectors/', import.meta.url);

interface Node {
  type: string;
  name: string;
  value: unknown;
}
interface Exchange {
  object: string;
  method: string | null;
  args: UbusTable;
  data: UbusTable[];
  status: number;
}

/** A recorded blobmsg tree as the ubus client decodes it: int8 → boolean, the integers → number. */
function decode(n: Node): UbusValue {
  switch (n.type) {
    case 'table':
      return Object.fromEntries((n.value as Node[]).map((c) => [c.name, decode(c)]));
    case 'array':
      return (n.value as Node[]).map(decode);
    case 'int8':
      return n.value !== 0 && n.value !== false;
    case 'int16':
    case 'int32':
    case 'int64':
    case 'double':
      return Number(n.value);
    case 'unspec':
      return null;
    default:
      return n.value as string;
  }
}

/** Each client connection's call: the object it looked up, what it invoked, the DATA and STATUS it got. */
function exchanges(file: string): Exchange[] {
  const byConn = new Map<number, Exchange>();
  for (const line of readFileSync(new URL(file, VECTORS), 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as { kind: string; conn?: number; dir?: string; type_name?: string; attrs?: { attr: string; value?: unknown; json?: UbusTable; blobmsg?: Node[] }[] };
    if (r.kind !== 'frame' || !r.conn) continue;
    const x = byConn.get(r.conn) ?? { object: '', method: null, args: {}, data: [], status: -1 };
    byConn.set(r.conn, x);
    const attr = (name: string) => r.attrs?.find((a) => a.attr === name);
    if (r.dir === 'c2s' && r.type_name === 'LOOKUP') x.object = String(attr('OBJPATH')?.value);
    if (r.dir === 'c2s' && r.type_name === 'INVOKE') {
      x.method = String(attr('METHOD')?.value);
      x.args = attr('DATA')?.json ?? {};
    }
    if (r.dir === 's2c' && r.type_name === 'DATA' && attr('DATA')) x.data.push(decode({ type: 'table', name: '', value: attr('DATA')!.blobmsg }) as UbusTable);
    if (r.dir === 's2c' && r.type_name === 'STATUS') x.status = Number(attr('STATUS')?.value);
  }
  return [...byConn.values()];
}

/** The network config of the recording (the vectors' README), and rpcd's own. */
const recorded: Fixture = {
  network: [
    { name: 'loopback', type: 'interface', options: { device: 'lo', proto: 'static', ipaddr: '127.0.0.1', netmask: '255.0.0.0' } },
    { name: 'globals', type: 'globals', options: { ula_prefix: 'fd12:3456:789a::/48', packet_steering: '1' } },
    { name: 'cfg030f15', anonymous: true, type: 'device', options: { name: 'br-lan', type: 'bridge', ports: ['lan1', 'lan2'], mtu: '1500', stp: '0', enabled: 'true' } },
    {
      name: 'lan',
      type: 'interface',
      options: {
        device: 'br-lan', proto: 'static', ipaddr: '192.168.1.1', netmask: '255.255.255.0', ip6assign: '60', auto: '1', force_link: 'off',
        dns: ['192.168.1.2', '192.168.1.3'], metric: '-10', description: 'LAN with "quotes", spaces & ünïcödé',
      },
    },
  ],
  rpcd: [{ type: 'rpcd', options: { socket: '/var/run/ubus/ubus.sock', timeout: '30' } }],
};

async function replay(file: string): Promise<number> {
  const fake = createFakeUbus(recorded);
  let compared = 0;
  for (const x of exchanges(file)) {
    // Only what the fake stands for: rpcd's uci object, and objects that do not exist.
    if (x.object !== 'uci' && x.method !== null) continue;
    let reply: UbusTable | undefined;
    let status = 0;
    try {
      reply = await fake.ubus.call(x.object, x.method ?? 'any', x.args);
    } catch (e) {
      if (!(e instanceof UbusError)) throw e;
      status = e.status;
    }
    const label = `${x.object} ${x.method} ${JSON.stringify(x.args)}`;
    assert.is(status, x.status, `status of ${label}`);
    // The client merges DATA frames into one table; the key order is rpcd's.
    const want = Object.assign({}, ...x.data) as UbusTable;
    if (status === 0) assert.is(JSON.stringify(reply), JSON.stringify(want), label);
    compared++;
  }
  return compared;
}

test('02-uci-get: configs and every get variant answer as the real rpcd did', async () => {
  assert.is(await replay('02-uci-get.jsonl'), 5);
});

test('03-errors: a missing object, a missing config, a missing argument give the same statuses', async () => {
  assert.is(await replay('03-errors.jsonl'), 3);
});

test('the metadata types: .anonymous is a boolean and .index a number, every value a string or a list of strings', async () => {
  const fake = createFakeUbus(recorded);
  const r = await fake.ubus.call('uci', 'get', { config: 'network' });
  const dev = (r.values as Record<string, Record<string, UbusValue>>).cfg030f15!;
  assert.is(dev['.anonymous'], true);
  assert.is(dev['.index'], 2);
  assert.equal(dev.ports, ['lan1', 'lan2']);
});

test('writes stage until commit; revert drops them; a failed add answers without a section', async () => {
  const fake = createFakeUbus(recorded);
  assert.equal(await fake.ubus.call('uci', 'add', { config: 'network', type: 'rule', name: 'aerie_x', values: { in: 'lan', priority: 7 } }), { section: 'aerie_x' });
  assert.equal(fake.pending(), { network: 3 });
  const staged = await fake.ubus.call('uci', 'get', { config: 'network', section: 'aerie_x' });
  assert.equal(staged.values, { '.anonymous': false, '.type': 'rule', '.name': 'aerie_x', in: 'lan', priority: '7' });
  await fake.ubus.call('uci', 'revert', { config: 'network' });
  assert.equal(await fake.ubus.call('uci', 'get', { config: 'network', section: 'aerie_x' }), {});
  assert.equal(await fake.ubus.call('uci', 'add', { config: 'network', type: 'rule', name: 'bad-name' }), {});
  // An array replaces a list whole; an empty one removes it.
  await fake.ubus.call('uci', 'set', { config: 'network', section: 'lan', values: { dns: ['198.51.100.1'] } });
  await fake.ubus.call('uci', 'set', { config: 'network', section: '@device[0]', values: { ports: [] } });
  await fake.ubus.call('uci', 'commit', { config: 'network' });
  assert.equal(fake.events, ['network']);
  const snap = fake.snapshot();
  assert.equal(snap.network!.find((s) => s.name === 'lan')!.options.dns, ['198.51.100.1']);
  assert.is(snap.network!.find((s) => s.name === 'cfg030f15')!.options.ports, undefined);
});

test.run();
