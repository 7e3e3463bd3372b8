// The egress pool's IPv6 addresses on the WAN: with egress off and nothing of
// ours on the interface, a pass runs no command at all (it runs on every
// repair pass of the daemon).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createEgressAddresses } from '../../cloud/egress/addresses.ts';
import { createRecordingRunner } from '../../shared/run.ts';

test('egress off and nothing of ours: no command; an address wanted: read the interface, then add it', async () => {
  const { run, calls } = createRecordingRunner({ 'ip -j -6 addr show dev eth0': { stdout: '[]' } });
  const addresses = createEgressAddresses(run);
  await addresses.set({ interface: 'eth0', v6: [] });
  await addresses.set(null);
  assert.equal(calls, []);
  await addresses.set({ interface: 'eth0', v6: ['2001:db8:203::77'] });
  assert.equal(
    calls.map((c) => c.argv.join(' ')),
    ['ip -j -6 addr show dev eth0', 'ip -6 addr add 2001:db8:203::77/128 dev eth0 nodad preferred_lft 0'],
  );
});

test.run();
