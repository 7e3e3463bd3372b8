// Tunnel timing in the lab (DESIGN.md §10, "Tunnel"): how long from
// `aerie-gateway pair CODE` to the first packet through the tunnel (target
// under 3 s), and how long after the cloud daemon restarts until the home's
// traffic flows through the VM again (target under 10 s). Reports figures;
// never asserts them.
//
//   node bench/tunnel-timing.ts [--runs N]
//
// Each run gets a fresh lab: pairing needs an unpaired router, and a fresh
// lab makes sure nothing of the previous run helps the next.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADDR, URLS, WG_IF, withLab } from '../test/lab/lib/lab.ts';
import { CLOUD, GATEWAY, setUpAerie } from '../test/lab/lib/aerie.ts';
import { DEFAULT_TIMING } from '../gateway/reconciler.ts';
import { parseIntOptions } from './lib/args.ts';
import { checkBundles } from './lib/bundles.ts';
import { firstAnswer } from './lib/first-answer.ts';
import { ofTarget, round, seconds, spread } from './lib/stats.ts';

const PAIR_TARGET_MS = 3_000;
const RECOVERY_TARGET_MS = 10_000;
// Generous limits: a figure beyond them is reported as "timed out", not waited for.
const PAIR_LIMIT_MS = 30_000;
const RECOVERY_LIMIT_MS = 60_000;
// After the first packet, let the gateway settle into its steady rhythm
// before the VM restarts. The gateway notices a dead tunnel with its next
// probe, so recovery depends on where in the probe cycle the restart falls:
// each run restarts at a different point of the cycle, evenly spread, rather
// than always at the same one.
const SETTLE_MS = 3_000;
const CYCLE_MS = DEFAULT_TIMING.tickMs;

const { runs } = parseIntOptions('Usage: node bench/tunnel-timing.ts [--runs N]', [
  { name: 'runs', default: 5, min: 1, max: 50, help: 'runs, each in a fresh lab' },
]);

interface Run {
  /** `pair` started → first answer through the VM; null when timed out. */
  pairMs: number | null;
  /** How long the `pair` command itself took. */
  pairCommandMs: number;
  /** Cloud daemon (re)started → first answer through the VM; null when timed out. */
  recoveryMs: number | null;
  /** Cloud daemon (re)started → its API answers. */
  cloudApiMs: number;
  /** SIGTERM → the old cloud daemon exited. */
  cloudStopMs: number;
}

const website = { host: 'lan' as const, url: URLS.website4, expect: ADDR.vm.v4 };

async function oneRun(settleMs: number): Promise<Run> {
  return withLab(async (lab) => {
    const aerie = await setUpAerie(lab);
    await aerie.startCloud();
    const code = await aerie.pairingCode();

    // The clock starts with the command a user types.
    const t0 = performance.now();
    await aerie.pairGateway(code);
    const paired = performance.now();
    // The daemon starts right after, as a user would start it. Before it runs
    // the tunnel cannot carry anything, so probing starts here.
    await aerie.startGateway();
    const first = await firstAnswer(lab, { ...website, timeoutMs: PAIR_LIMIT_MS });
    if (first.at === null) {
      return { pairMs: null, pairCommandMs: paired - t0, recoveryMs: null, cloudApiMs: 0, cloudStopMs: 0 };
    }

    await sleep(settleMs);
    const stopAt = performance.now();
    await aerie.stopCloud();
    const cloudStopMs = performance.now() - stopAt;
    // The stopped daemon removes its interface: nothing can pass the VM now.
    const link = await lab.run('vm', ['ip', 'link', 'show', WG_IF.vm], { allowFail: true });
    if (link.code === 0) throw new Error(`${WG_IF.vm} still exists on the VM after the cloud daemon stopped`);

    const t1 = performance.now();
    const api = aerie.startCloud().then(
      () => ({ at: performance.now(), error: null }),
      (e: unknown) => ({ at: performance.now(), error: e }),
    );
    const back = await firstAnswer(lab, { ...website, timeoutMs: RECOVERY_LIMIT_MS });
    const up = await api;
    if (up.error) throw up.error;
    return {
      pairMs: first.at - t0,
      pairCommandMs: paired - t0,
      recoveryMs: back.at === null ? null : back.at - t1,
      cloudApiMs: up.at - t1,
      cloudStopMs,
    };
  });
}

function line(label: string, values: (number | null)[], targetMs: number) {
  const got = values.filter((v): v is number => v !== null);
  const s = spread(got);
  const timedOut = values.length - got.length;
  const figures = s
    ? `min ${seconds(s.min)}  median ${seconds(s.median)}  max ${seconds(s.max)}  ` +
      `(median ${ofTarget(s.median, targetMs)}, max ${ofTarget(s.max, targetMs)}; target < ${seconds(targetMs)})`
    : 'no figure';
  console.log(`${label}  ${figures}${timedOut ? `  ${timedOut} of ${values.length} timed out` : ''}`);
  return {
    runs: values.length,
    timedOut,
    minMs: s ? round(s.min, 0) : null,
    medianMs: s ? round(s.median, 0) : null,
    maxMs: s ? round(s.max, 0) : null,
    targetMs,
    medianRatio: s ? round(s.median / targetMs) : null,
    maxRatio: s ? round(s.max / targetMs) : null,
    samplesMs: values.map((v) => (v === null ? null : round(v, 0))),
  };
}

async function main() {
  checkBundles([
    { file: GATEWAY, sources: ['gateway', 'shared'] },
    { file: CLOUD, sources: ['cloud', 'shared'] },
  ]);
  console.log(`Tunnel timing: ${runs} run(s), a fresh lab each; the laptop probes the website every 50 ms;`);
  console.log(`the cloud restarts at a different point of the gateway's ${seconds(CYCLE_MS)} probe cycle in each run`);
  const results: Run[] = [];
  for (let i = 1; i <= runs; i++) {
    const r = await oneRun(SETTLE_MS + Math.round(((i - 1) / runs) * CYCLE_MS));
    results.push(r);
    const pair = r.pairMs === null ? `timed out (> ${seconds(PAIR_LIMIT_MS)})` : seconds(r.pairMs);
    const rec = r.recoveryMs === null ? (r.pairMs === null ? 'not measured' : `timed out (> ${seconds(RECOVERY_LIMIT_MS)})`) : seconds(r.recoveryMs);
    console.log(
      `run ${i}/${runs}: pair → first packet ${pair} (pair command ${seconds(r.pairCommandMs)})` +
        (r.pairMs === null ? '' : `; cloud restart → traffic again ${rec} (API up after ${seconds(r.cloudApiMs)}, stop took ${seconds(r.cloudStopMs)})`),
    );
  }
  console.log('');
  const pair = line('pairing code → first packet through the tunnel:', results.map((r) => r.pairMs), PAIR_TARGET_MS);
  const recovery = line(
    'cloud restart → laptop through the VM again:   ',
    results.filter((r) => r.pairMs !== null).map((r) => r.recoveryMs),
    RECOVERY_TARGET_MS,
  );
  console.log(JSON.stringify({ bench: 'tunnel-timing', runs, pairToFirstPacket: pair, cloudRestartRecovery: recovery }));
}

await main();
