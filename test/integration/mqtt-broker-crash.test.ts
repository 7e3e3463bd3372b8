import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectFrom, GATEWAY, inbox, mqttVms, OWNER, sleep, subscribe, within } from './lib/mqtt-broker-env.ts';

// kill -9 of the broker's process: what was stored before stays stored
// (retained messages, subscriptions and queued QoS 1 messages of persistent
// sessions), and a new process serves it.

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const CHILD = join(import.meta.dirname, 'lib/mqtt-broker-child.ts');

const freshVm = mqttVms(test, 'mqtt-crash');

/** Starts the broker child process; resolves with it and its port once it says "ready". */
async function startChild(vm: ReturnType<typeof freshVm>): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(NODE, [CHILD, vm.stateDir, vm.dbPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid!;
  // Killed by PID after the test whatever happens; a dead child makes this a no-op.
  vm.track(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await within(
    15_000,
    'the broker child starts',
    new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ready (\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the broker child exited with ${code}: ${stderr}`)));
    }),
  );
  return { child, port };
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid!, 'SIGKILL');
  await within(5000, 'the child dies', exited);
}

/** aedes acknowledges a QoS 1 PUBLISH before it queues it: wait until the queue rows are written. */
async function queuedRows(dbPath: string, clientId: string, n: number): Promise<void> {
  const until = Date.now() + 3000;
  for (;;) {
    const db = new DatabaseSync(dbPath, { readOnly: true });
    const row = db.prepare('SELECT count(*) AS n FROM outgoing WHERE client_id = ?').get(clientId);
    db.close();
    if (Number(row?.['n']) >= n) return;
    if (Date.now() > until) throw new Error(`${n} messages were never queued for ${clientId}`);
    await sleep(20);
  }
}

test('after kill -9 a new broker process has the retained state, and a persistent subscriber gets the QoS 1 messages it missed', async () => {
  const vm = freshVm();
  let { child, port } = await startChild(vm);
  const phone = await connectFrom(port, OWNER, { clientId: 'phone', clean: false });
  assert.equal(await subscribe(phone, ['aerie/gw/home/#']), [1]);
  await phone.endAsync();
  const router = await connectFrom(port, GATEWAY, { clientId: 'router' });
  await router.publishAsync('aerie/gw/home/state', 'online', { qos: 1, retain: true });
  for (let i = 0; i < 10; i++) await router.publishAsync('aerie/gw/home/event', `e${i}`, { qos: 1 });
  await queuedRows(vm.dbPath, 'phone', 11);
  await killHard(child);
  router.end(true);

  ({ child, port } = await startChild(vm));
  const back = await connectFrom(port, OWNER, { clientId: 'phone', clean: false });
  const box = inbox(back);
  const got = await box.wait(11, 5000);
  await sleep(100);
  assert.equal(
    got.map((m) => m.payload),
    ['online', ...Array.from({ length: 10 }, (_, i) => `e${i}`)],
    'each missed message once, in order',
  );
  const fresh = await connectFrom(port, OWNER, { clientId: 'fresh' });
  const freshBox = inbox(fresh);
  await subscribe(fresh, ['aerie/gw/home/state']);
  assert.equal(await freshBox.wait(1), [{ topic: 'aerie/gw/home/state', payload: 'online', retain: true, qos: 1 }]);
  // The ACL holds in the new process too.
  assert.equal(await subscribe(await connectFrom(port, GATEWAY, { clientId: 'router' }), ['aerie/gw/other/#']), [128]);
});

test.run();
