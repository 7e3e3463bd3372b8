import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { CommandError, createRunner } from '../../shared/run.ts';

// The runner with real processes: above all the input, which carries private
// keys to `wg syncconf IF /dev/stdin` and must be readable by name.

const run = createRunner();
const SECRET = 'PrivateKey = QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n';
const leftovers = () => readdirSync('/dev/shm').filter((n) => n.startsWith(`.aerie-in-${process.pid}-`));

test('a command that opens /dev/stdin by name reads the input', async () => {
  assert.is((await run(['cat', '/dev/stdin'], { input: SECRET })).stdout, SECRET);
  // Through a prefix too, as in `ip netns exec NS wg …`.
  assert.is((await createRunner({ prefix: ['env'] })(['cat', '/dev/stdin'], { input: SECRET })).stdout, SECRET);
});

test('the input is an unlinked file only its owner can read, and nothing of it is left', async () => {
  const r = await run(['stat', '-L', '-c', '%a %h %F', '/dev/stdin'], { input: SECRET });
  assert.is(r.stdout.trim(), '600 0 regular file');
  assert.equal(leftovers(), []);
});

test('without input the command reads an empty standard input', async () => {
  assert.is((await run(['cat'])).stdout, '');
});

test('a failing command: CommandError with argv, status and the first line of stderr; input never in it', async () => {
  const err = await run(['cat', '/nonexistent/aerie'], { input: SECRET }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof CommandError);
  assert.is(err.code, 1);
  assert.equal(err.argv, ['cat', '/nonexistent/aerie']);
  assert.match(err.message, /^cat \/nonexistent\/aerie failed \(exit 1\): cat: .*No such file or directory$/);
  assert.not.ok(err.message.includes('PrivateKey'));
  assert.is((await run(['cat', '/nonexistent/aerie'], { allowFail: true })).code, 1);
  assert.equal(leftovers(), []);
});

test('a command whose forked child keeps stdout open still settles, with its output, soon after it exits', async () => {
  // Like wireguard-go daemonizing: the background sleep inherits our stdout pipe and outlives the shell.
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the runner did not settle within 5 s')), 5000);
  });
  let pid = 0;
  try {
    const r = await Promise.race([run(['sh', '-c', 'sleep 30 & echo $!; echo started; exit 3'], { allowFail: true }), bound]);
    pid = Number(r.stdout.split('\n')[0]);
    assert.is(r.code, 3);
    assert.is(r.stdout.split('\n')[1], 'started');
    assert.ok(Date.now() - started < 3000, `settled after ${Date.now() - started} ms`);
  } finally {
    clearTimeout(timer);
    if (pid > 0) {
      try {
        process.kill(pid);
      } catch {
        // already gone
      }
    }
  }
});

test.run();
