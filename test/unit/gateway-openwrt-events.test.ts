import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listenInterfaceEvents, parseInterfaceEvent, type InterfaceEvent } from '../../gateway/platform/openwrt/interface-events.ts';
import type { UbusTable } from '../../gateway/ubus/types.ts';

test('netifd interface events: the WAN going up or down is reported, our own tunnel and malformed events are not', async () => {
  let handler: ((event: string, data: UbusTable) => void) | undefined;
  let pattern = '';
  let removed = false;
  const client = {
    async listen(p: string, h: (event: string, data: UbusTable) => void) {
      pattern = p;
      handler = h;
      return async () => void (removed = true);
    },
  };
  const seen: InterfaceEvent[] = [];
  const stop = await listenInterfaceEvents(client, (e) => seen.push(e), ['aerie']);
  assert.is(pattern, 'network.interface');
  handler!('network.interface', { action: 'ifdown', interface: 'wan' });
  handler!('network.interface', { action: 'ifup', interface: 'aerie' });
  handler!('network.interface', { action: 'ifup' });
  handler!('network.interface', { action: 'ifupdate', interface: 'wan6', 'ipv6-prefix': [] });
  assert.equal(seen, [
    { action: 'ifdown', interface: 'wan' },
    { action: 'ifupdate', interface: 'wan6' },
  ]);
  await stop();
  assert.ok(removed);
  assert.is(parseInterfaceEvent('other', { action: 'ifup', interface: 'wan' }), null);
});

test.run();
