import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ValidationError } from '../../shared/errors.ts';
import { ensureForwarding } from '../../cloud/system/forwarding.ts';

/** A pretend /proc with the given sysctl files (path under sys/ → value). */
async function fakeProc(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'aerie-proc-'));
  for (const [path, value] of Object.entries(files)) {
    const file = join(root, 'sys', path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, `${value}\n`);
  }
  return root;
}
const value = async (root: string, path: string) => (await readFile(join(root, 'sys', path), 'utf8')).trim();

const fresh = {
  'net/ipv4/ip_forward': '0',
  'net/ipv6/conf/all/forwarding': '0',
  'net/ipv6/conf/eth0/accept_ra': '1',
  'net/ipv6/conf/eth0.100/accept_ra': '1',
};

test('turns on IPv4 and IPv6 forwarding, and the next call changes nothing', async () => {
  const root = await fakeProc(fresh);
  try {
    assert.equal(await ensureForwarding({ procRoot: root }), ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']);
    assert.is(await value(root, 'net/ipv4/ip_forward'), '1');
    assert.is(await value(root, 'net/ipv6/conf/all/forwarding'), '1');
    assert.is(await value(root, 'net/ipv6/conf/eth0/accept_ra'), '1', 'no WAN named: RAs left alone');
    assert.equal(await ensureForwarding({ procRoot: root }), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the WAN keeps taking router advertisements: accept_ra 1 becomes 2 before forwarding goes on', async () => {
  const root = await fakeProc(fresh);
  try {
    const changed = await ensureForwarding({ procRoot: root, wanInterface: 'eth0.100' });
    assert.equal(changed, ['net.ipv4.ip_forward', 'net.ipv6.conf.eth0/100.accept_ra', 'net.ipv6.conf.all.forwarding']);
    assert.is(await value(root, 'net/ipv6/conf/eth0.100/accept_ra'), '2');
    assert.is(await value(root, 'net/ipv6/conf/eth0/accept_ra'), '1');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('accept_ra 0 (RAs not wanted) is left as it is', async () => {
  const root = await fakeProc({ ...fresh, 'net/ipv6/conf/eth0/accept_ra': '0' });
  try {
    await ensureForwarding({ procRoot: root, wanInterface: 'eth0' });
    assert.is(await value(root, 'net/ipv6/conf/eth0/accept_ra'), '0');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a kernel without IPv6 gets IPv4 forwarding only', async () => {
  const root = await fakeProc({ 'net/ipv4/ip_forward': '0' });
  try {
    assert.equal(await ensureForwarding({ procRoot: root, wanInterface: 'eth0' }), ['net.ipv4.ip_forward']);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a bad WAN name is refused before anything is written', async () => {
  const root = await fakeProc(fresh);
  try {
    const err = await ensureForwarding({ procRoot: root, wanInterface: '../../ipv4' }).then(() => null, (e: unknown) => e);
    assert.instance(err, ValidationError);
    assert.is((err as ValidationError).field, 'wanInterface');
    assert.is(await value(root, 'net/ipv4/ip_forward'), '0');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('no procfs where expected is an error, not a silent success', async () => {
  const root = await fakeProc({});
  try {
    const err = await ensureForwarding({ procRoot: root }).then(() => null, (e: unknown) => e);
    assert.instance(err, Error);
    assert.match((err as Error).message, 'net.ipv4.ip_forward');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
