// The home's IPv6 from the VM on the router: what radvd is told, and bad input.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRecordingRunner } from '../../shared/run.ts';
import { ValidationError } from '../../shared/errors.ts';
import { createHomeV6, radvdConfig } from '../../gateway/platform/home-v6.ts';

test('radvd announces the /64 for SLAAC, on-link, with the router as DNS server', () => {
  const text = radvdConfig({ interface: 'br-lan', prefix: '2001:db8:a0:2::/64' }, '2001:db8:a0:2::1');
  assert.match(text, /^interface br-lan \{$/m);
  assert.match(text, /^\tAdvSendAdvert on;$/m);
  assert.match(text, /^\tprefix 2001:db8:a0:2::\/64 \{\n\t\tAdvOnLink on;\n\t\tAdvAutonomous on;\n\t\tDeprecatePrefix on;\n\t\};$/m);
  assert.match(text, /^\tRDNSS 2001:db8:a0:2::1 \{$/m);
});

test('bad input names the field and runs nothing', async () => {
  const { run, calls } = createRecordingRunner({});
  const home = createHomeV6(run, { runDir: '/nonexistent-for-this-test' });
  for (const [d, field] of [
    [{ interface: 'br-lan', prefix: '192.0.2.0/24' }, 'homeV6.prefix'],
    [{ interface: 'br-lan', prefix: '2001:db8:a0::/56' }, 'homeV6.prefix'],
    [{ interface: 'br lan', prefix: '2001:db8:a0:2::/64' }, 'homeV6.interface'],
  ] as const) {
    const err = await home.set(d).then(() => null, (e: unknown) => e);
    assert.instance(err, ValidationError);
    assert.is((err as ValidationError).field, field);
  }
  assert.equal(calls, []);
});

test("a pid file left by a radvd that died names another program by now: that one is left alone and radvd started", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aerie-homev6-'));
  try {
    const { run, calls } = createRecordingRunner({});
    const home = createHomeV6(run, { runDir: dir, radvd: '/usr/sbin/radvd' });
    const d = { interface: 'br-lan', prefix: '2001:db8:a0:2::/64' };
    writeFileSync(join(dir, 'radvd.conf'), radvdConfig(d, '2001:db8:a0:2::1'));
    // This very process has the number now: were it taken for radvd, it would get a SIGTERM.
    writeFileSync(join(dir, 'radvd.pid'), `${process.pid}\n`);
    await home.set(d);
    const started = calls.map((c) => c.argv.join(' ')).filter((a) => a.startsWith('/usr/sbin/radvd'));
    assert.equal(started, [`/usr/sbin/radvd --config ${join(dir, 'radvd.conf')} --pidfile ${join(dir, 'radvd.pid')}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
