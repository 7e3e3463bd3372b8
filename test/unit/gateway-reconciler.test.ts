import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { parseConfig, type LoadedConfig } from '../../gateway/config.ts';
import type { GatewayDesired, Platform, TunnelState } from '../../gateway/platform/platform.ts';
import { createReconciler, type Timing } from '../../gateway/reconciler.ts';
import { sampleConfig } from './gateway-fixtures.ts';

const privateKey = generateKeyPair().privateKey;

/** A fake world: a platform that records set() calls, a VM that answers or not, a clock we move. */
function world(
  configText: Record<string, any> = { ...sampleConfig(), vm: { ...sampleConfig().vm, endpoint: 'vm.example:51820' } },
  timing: Partial<Timing> = {},
) {
  let clock = 1_000_000;
  let loaded: LoadedConfig | null | Error = { config: parseConfig(configText), privateKey };
  const sets: (GatewayDesired | null)[] = [];
  const logs: string[] = [];
  const w = {
    vmAnswers: true,
    /** The VM's kernel answers (a TCP reset) even when its API does not. */
    vmKernelAnswers: false,
    rx: 0,
    failSet: false,
    /** The VM's isolated devices of this home, as the router last fetched them. */
    isolated: [] as string[],
    dns: new Map([['vm.example', '203.0.113.10']]),
    resolves: 0,
    sets,
    logs,
    advance(ms: number) {
      clock += ms;
    },
    setConfig(next: LoadedConfig | null | Error) {
      loaded = next;
    },
  };
  const platform: Platform = {
    name: 'fake',
    async set(d) {
      if (w.failSet) throw new Error('nft: Operation not permitted');
      sets.push(d === null ? null : structuredClone(d));
    },
    async show(): Promise<TunnelState> {
      const pk = (loaded as LoadedConfig).config.vm.publicKey;
      return { present: true, up: true, killSwitch: true, dnsIntercept: true, peers: [{ publicKey: pk, endpoint: null, latestHandshake: 0, rxBytes: w.rx, txBytes: 0 }] };
    },
  };
  const reconciler = createReconciler({
    platform,
    isolated: () => w.isolated,
    load: async () => {
      if (loaded instanceof Error) throw loaded;
      return loaded;
    },
    probe: async () => {
      if (w.vmAnswers || w.vmKernelAnswers) w.rx += 60;
      return w.vmAnswers;
    },
    resolve: async (host) => {
      w.resolves++;
      const a = w.dns.get(host);
      if (!a) throw new Error(`ENOTFOUND ${host}`);
      return a;
    },
    log: (m) => logs.push(m),
    now: () => clock,
    timing: { probeTimeoutMs: 10, ...timing }, // otherwise the defaults: reconcile 5 s, reset after 2 failures, at most every 3 s
  });
  return { w, reconciler };
}

test('the first pass resolves the endpoint name and applies the desired state', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  assert.is(w.sets.length, 1);
  assert.is(w.sets[0]!.peer.endpoint, '203.0.113.10:51820');
  assert.is(w.sets[0]!.privateKey, privateKey);
  assert.is(reconciler.state().health, 'up');
});

test('re-applies every reconcile interval (drift repair) and not more often', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  w.advance(2000);
  await reconciler.pass();
  assert.is(w.sets.length, 1);
  w.advance(3000);
  await reconciler.pass();
  assert.is(w.sets.length, 2);
  assert.equal(w.sets[1], w.sets[0], 'the same state again: the platform makes it a no-op');
});

test('VM silent with nothing coming back: peer re-created and endpoint re-resolved, rate-limited', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  w.vmAnswers = false;
  w.dns.set('vm.example', '203.0.113.99'); // the VM came back elsewhere
  w.advance(2000);
  await reconciler.pass(); // one lost probe is not an outage yet
  assert.is(reconciler.state().health, 'up');
  w.advance(500);
  await reconciler.pass(); // the second in a row, but the new peer still has time to handshake
  assert.is(reconciler.state().health, 'down');
  assert.ok(w.sets.every((s) => s!.peer.generation === 0));
  w.advance(500);
  await reconciler.pass(); // 3 s after the peer was set up: re-create it
  const reset = w.sets.at(-1)!;
  assert.is(reset.peer.generation, 1);
  assert.is(reset.peer.endpoint, '203.0.113.99:51820');
  w.advance(1000);
  await reconciler.pass(); // still failing, but only 1 s after the reset
  assert.is(w.sets.at(-1)!.peer.generation, 1);
  w.advance(2000);
  await reconciler.pass();
  assert.is(w.sets.at(-1)!.peer.generation, 2, 'tries again while the VM stays away');
  w.vmAnswers = true;
  w.advance(1000);
  await reconciler.pass();
  assert.is(reconciler.state().health, 'up');
  assert.is(w.sets.at(-1)!.peer.generation, 2);
  assert.ok(w.logs.some((l) => /re-creating the VM peer/.test(l)));
});

test('a new peer gets time for its first handshake before it counts as dead', async () => {
  const { w, reconciler } = world();
  w.vmAnswers = false;
  await reconciler.pass();
  w.advance(1000);
  await reconciler.pass();
  w.advance(1000);
  await reconciler.pass();
  assert.ok(w.sets.every((s) => s!.peer.generation === 0));
  w.advance(1000);
  await reconciler.pass();
  assert.is(w.sets.at(-1)!.peer.generation, 1);
});

test('a long outage is logged once, then every few minutes, not at every retry', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  w.vmAnswers = false;
  for (let i = 0; i < 210; i++) {
    w.advance(3000);
    await reconciler.pass();
  }
  assert.is(w.sets.at(-1)!.peer.generation, 209, 'kept trying all along (10.5 minutes)');
  const lines = w.logs.filter((l) => /re-creat/.test(l));
  assert.is(lines.length, 3, lines.join('\n'));
  assert.match(lines[1]!, /still no answer from the VM; re-created its peer \d+ times so far/);
});

test('API silent but the VM answers the probe with a reset: the tunnel is alive, nothing is re-created', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  w.vmAnswers = false;
  w.vmKernelAnswers = true;
  for (let i = 0; i < 5; i++) {
    w.advance(2000);
    await reconciler.pass();
  }
  assert.ok(w.sets.every((s) => s!.peer.generation === 0));
});

test('traffic from before the probe does not count as a sign of life', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  w.vmAnswers = false;
  w.rx += 5000; // LAN traffic that arrived while the VM was still there
  w.advance(3000);
  await reconciler.pass();
  w.advance(1000);
  await reconciler.pass();
  assert.is(w.sets.at(-1)!.peer.generation, 1);
});

test('one lost probe re-creates nothing; two in a row do', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  w.vmAnswers = false;
  w.advance(3000);
  await reconciler.pass(); // lost once
  assert.ok(w.sets.every((s) => s!.peer.generation === 0));
  w.vmAnswers = true;
  w.advance(1000);
  await reconciler.pass(); // answered again: the count starts over
  w.vmAnswers = false;
  w.advance(1000);
  await reconciler.pass();
  assert.ok(w.sets.every((s) => s!.peer.generation === 0), 'two losses, but not in a row');
  w.advance(1000);
  await reconciler.pass();
  assert.is(w.sets.at(-1)!.peer.generation, 1);
});

test('after a lost probe the confirming one comes at the fast tick, not the slow one', async () => {
  const { w, reconciler } = world(undefined, { tickMs: 300, fastTickMs: 20 });
  await reconciler.start(); // the first pass, answered
  w.vmAnswers = false;
  w.advance(10_000); // the fake clock: long past the new peer's grace time
  const started = Date.now();
  const deadline = started + 3000;
  while (w.sets.at(-1)!.peer.generation === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const elapsed = Date.now() - started;
  await reconciler.stop();
  assert.is(w.sets.at(-1)!.peer.generation, 1);
  // One slow tick to the first loss, one fast tick to the second (two slow ones would be 600 ms).
  assert.ok(elapsed < 500, `re-created after ${elapsed} ms`);
});

test('the VM isolates a device: the next pass applies it at once, not at the reconcile interval', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  assert.equal(w.sets[0]!.isolated, []);
  await reconciler.pass();
  assert.is(w.sets.length, 1, 'nothing new: nothing applied');
  w.isolated = ['192.0.2.140'];
  await reconciler.pass();
  assert.is(w.sets.length, 2);
  assert.equal(w.sets[1]!.isolated, ['192.0.2.140']);
  w.failSet = true;
  w.isolated = [];
  await reconciler.pass();
  w.failSet = false;
  await reconciler.pass();
  assert.equal(w.sets.at(-1)!.isolated, [], 'a failed apply is tried again at the next pass');
});

test('disabled in config: set(null), again on every interval', async () => {
  const { w, reconciler } = world({ ...sampleConfig(), enabled: false });
  await reconciler.pass();
  assert.equal(w.sets, [null]);
  assert.is(reconciler.state().health, 'disabled');
  w.advance(5000);
  await reconciler.pass();
  assert.equal(w.sets, [null, null]);
});

test('not paired: nothing applied, nothing removed', async () => {
  const { w, reconciler } = world();
  w.setConfig(null);
  await reconciler.pass();
  w.advance(10_000);
  await reconciler.pass();
  assert.equal(w.sets, []);
  assert.is(reconciler.state().health, 'unpaired');
});

test('a broken config edit keeps the last good state; a fixed one applies at once', async () => {
  const { w, reconciler } = world();
  await reconciler.pass();
  w.setConfig(new Error('config /etc/aerie/gateway.json: vm.publicKey: expected a base64 WireGuard key'));
  w.advance(5000);
  await reconciler.pass();
  assert.is(w.sets.at(-1)!.killSwitch, true);
  assert.ok(w.logs.some((l) => /vm\.publicKey/.test(l)));
  w.setConfig({ config: parseConfig({ ...sampleConfig(), killSwitch: false }), privateKey });
  w.advance(100);
  await reconciler.pass();
  assert.is(w.sets.at(-1)!.killSwitch, false);
});

test('a failing apply is reported once and retried next pass', async () => {
  const { w, reconciler } = world();
  w.failSet = true;
  await reconciler.pass();
  w.advance(2000);
  await reconciler.pass();
  assert.is(w.logs.filter((l) => /Operation not permitted/.test(l)).length, 1);
  w.failSet = false;
  w.advance(100);
  await reconciler.pass();
  assert.is(w.sets.length, 1);
  assert.is(reconciler.state().lastError, null);
});

test('an unresolvable name leaves the endpoint unset rather than guessed', async () => {
  const { w, reconciler } = world();
  w.dns.clear();
  await reconciler.pass();
  assert.is(w.sets[0]!.peer.endpoint, null);
  assert.ok(w.logs.some((l) => /cannot resolve the VM endpoint vm\.example:51820/.test(l)));
});

test('start and stop: stop waits for the running pass and no timer stays behind', async () => {
  const { w, reconciler } = world();
  await reconciler.start();
  assert.is(w.sets.length, 1);
  await reconciler.stop();
  // If a timer were left, this process would not exit and the runner would time out.
});

test.run();
