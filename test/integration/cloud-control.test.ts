import { statSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { decodePairingCode } from '../../shared/pairing-code.ts';
import { createApi } from '../../cloud/api/api.ts';
import { identifyLocal } from '../../cloud/api/identify.ts';
import { appTransport, connectControl, ControlError, createControlClient } from '../../cloud/control/client.ts';
import { serveControl } from '../../cloud/control/server.ts';
import { createCore } from '../../cloud/core/core.ts';
import { vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'control');

function setup() {
  const { dir, store, state } = freshVm();
  const core = createCore({ store, config: state });
  return { dir, core, app: createApi({ core }, identifyLocal), socket: join(dir, 'control.sock') };
}

/** Leaves a socket file behind the way a crashed daemon does: a child listens, then is killed with SIGKILL. */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('ready'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child did not listen within 5 s')), 5000);
      child.stdout!.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', () => reject(new Error('child exited early')));
    });
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    }
  }
  assert.ok(statSync(path).isSocket(), 'the crashed listener left its socket file');
}

test('no daemon: connectControl returns null, also for a stale socket file', async () => {
  const { dir, socket } = setup();
  assert.is(await connectControl(dir), null);
  await staleSocket(socket);
  assert.is(await connectControl(dir), null);
});

test('the control socket is 0600, serves the local-root API and is removed on close', async () => {
  const { dir, app, core, socket } = setup();
  const server = await serveControl(app, socket);
  try {
    assert.is(statSync(socket).mode & 0o777, 0o600);
    const client = await connectControl(dir);
    assert.ok(client, 'a running daemon is found');
    const added = await client.addDevice({ name: 'phone' });
    assert.match(added.config!, /PrivateKey = /);
    assert.is(core.devices.get('phone')?.publicKey, added.device.publicKey, 'the change reached the daemon');
    assert.equal((await client.listDevices()).map((d) => d.name), ['phone']);
    assert.is((await client.status()).peers.length, 1);
    const { code } = await client.createPairingCode({ ttlSeconds: 120 });
    assert.is(decodePairingCode(code).port, 8443);
    assert.is((await client.removeDevice('phone')).name, 'phone');
    try {
      await client.removeDevice('phone');
      assert.unreachable('removing twice must fail');
    } catch (err) {
      assert.ok(err instanceof ControlError);
      assert.is(err.status, 404);
      assert.is(err.code, 'not_found');
      assert.match(err.message, /no device named "phone"/);
    }
    try {
      await client.addDevice({ name: 'Bad Name' });
      assert.unreachable();
    } catch (err) {
      assert.ok(err instanceof ControlError && err.status === 400 && /^name: /.test(err.message));
    }
  } finally {
    await server.close();
  }
  assert.not.ok(existsSync(socket), 'socket file removed');
  assert.is(await connectControl(dir), null);
});

test('a second daemon is refused; a stale socket file is replaced; a regular file is not', async () => {
  const { app, socket, dir } = setup();
  const first = await serveControl(app, socket);
  try {
    await serveControl(app, socket).then(
      () => assert.unreachable('second daemon must be refused'),
      (err: Error) => assert.match(err.message, /already listening/),
    );
  } finally {
    await first.close();
  }
  await staleSocket(socket);
  const second = await serveControl(app, socket);
  assert.ok(await connectControl(dir));
  await second.close();
  writeFileSync(socket, 'not a socket');
  await serveControl(app, socket).then(
    () => assert.unreachable('a regular file must not be replaced'),
    (err: Error) => assert.match(err.message, /not a socket/),
  );
});

test('the same client works in-process when no daemon runs', async () => {
  const { app, core } = setup();
  const client = createControlClient(appTransport(app));
  const key = generateKeyPair().publicKey;
  const { device, config } = await client.addDevice({ name: 'laptop', publicKey: key, role: 'member' });
  assert.is(config, undefined);
  assert.is(device.role, 'member');
  assert.is(core.devices.get('laptop')?.publicKey, key);
});

test.run();
