// The VM's firewall (issue 6, "Benchmark"): the time to render and to apply
// (one `nft -f` transaction) the whole table for 10, 100 and 1,000 devices
// with policies, in a scratch network namespace; and the throughput through
// the lab's tunnel (laptop ← website, through the VM) with the daemon's table
// loaded, as a ratio to the same tunnel with an empty ruleset but for the one
// NAT rule the path needs (target ≥ 0.95).
// Reports figures; never asserts them.
//
//   node bench/firewall.ts [--runs N] [--windows N] [--seconds S]
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFirewall } from '../cloud/firewall/apply.ts';
import { renderFirewall } from '../cloud/firewall/render.ts';
import { createRunner, type Runner } from '../shared/run.ts';
import { ADDR, NODE24, REPO_ROOT, withLab, type Lab } from '../test/lab/lib/lab.ts';
import { CLOUD, GATEWAY, pairedAerie } from '../test/lab/lib/aerie.ts';
import { parseIntOptions } from './lib/args.ts';
import { checkBundles } from './lib/bundles.ts';
import { scaledDesired } from './lib/firewall-scale.ts';
import { round, spread } from './lib/stats.ts';

const THROUGHPUT_TARGET = 0.95;
const SIZES = [10, 100, 1000] as const;
const BULK_PORT = 9000;

const opts = parseIntOptions('Usage: node bench/firewall.ts [options]', [
  { name: 'runs', default: 5, min: 1, max: 50, help: 'renders and applies per size' },
  { name: 'windows', default: 11, min: 1, max: 50, help: 'throughput windows per side' },
  { name: 'seconds', default: 3, min: 1, max: 30, help: 'length of one throughput window' },
]);

const ms = (t0: number) => performance.now() - t0;
const fmt = (values: number[]) => {
  const s = spread(values)!;
  return `${round(s.median, 1)} ms (${round(s.min, 1)}–${round(s.max, 1)})`;
};

/** Render and apply times per size, in a namespace of its own. */
async function renderAndApply(): Promise<Record<number, { renderMs: number[]; applyMs: number[]; bytes: number }>> {
  const host = createRunner();
  const ns = `aerie-fwbench-${process.pid}`;
  const inNs: Runner = (argv, o) => host(['ip', 'netns', 'exec', ns, ...argv], o);
  const out: Record<number, { renderMs: number[]; applyMs: number[]; bytes: number }> = {};
  await host(['ip', 'netns', 'add', ns]);
  try {
    for (const n of SIZES) {
      const desired = scaledDesired(n);
      const renderMs: number[] = [];
      let bytes = 0;
      for (let i = 0; i < opts.runs; i++) {
        const t0 = performance.now();
        bytes = renderFirewall(desired).length;
        renderMs.push(ms(t0));
      }
      // A fresh adapter each time, and a changed table: every set() renders, replaces and lists.
      const applyMs: number[] = [];
      for (let i = 0; i < opts.runs; i++) {
        const d = { ...desired, publishes: desired.publishes.map((p) => ({ ...p, port: p.port + i })) };
        const t0 = performance.now();
        await createFirewall(inNs).set(d);
        applyMs.push(ms(t0));
      }
      out[n] = { renderMs, applyMs, bytes };
    }
  } finally {
    await host(['ip', 'netns', 'del', ns], { allowFail: true });
  }
  return out;
}

/** Bytes per second the laptop downloads from the website through the tunnel in one window. */
async function window(lab: Lab): Promise<number> {
  const r = await lab.run(
    'lan',
    ['curl', '--silent', '--max-time', String(opts.seconds), '--output', '/dev/null', '--write-out', '%{size_download}', `http://${ADDR.website.v4}:${BULK_PORT}/`],
    { allowFail: true, timeoutMs: (opts.seconds + 10) * 1000 },
  );
  return Number(r.stdout.trim()) / opts.seconds;
}

/** Without NAT the website's answers would not find their way back: the baseline keeps that one rule. */
const NAT_ONLY = `table inet aerie
delete table inet aerie
table inet aerie {
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname "eth0" ip saddr 192.0.2.128/25 masquerade
\t}
}
`;

/**
 * Windows with the daemon's table and with only the NAT rule, alternating,
 * with the order flipped every round (ABBA) so that neither side always
 * follows the other. The daemon is paused (SIGSTOP) meanwhile, so that its
 * repair pass does not put its table back during a baseline window; the
 * tunnel itself is wireguard-go's and keeps running.
 */
async function throughput(lab: Lab, daemonPid: number): Promise<{ withTable: number[]; without: number[] }> {
  const daemonTable = (await lab.run('vm', ['nft', '-s', 'list', 'table', 'inet', 'aerie'])).stdout;
  if (!/chain input/.test(daemonTable)) throw new Error("the daemon's table is not in the kernel");
  const tables = { withTable: `table inet aerie\ndelete table inet aerie\n${daemonTable}`, without: NAT_ONLY };
  const out = { withTable: [] as number[], without: [] as number[] };
  process.kill(daemonPid, 'SIGSTOP');
  try {
    for (let i = 0; i < opts.windows; i++) {
      const order = i % 2 === 0 ? (['withTable', 'without'] as const) : (['without', 'withTable'] as const);
      for (const side of order) {
        await lab.run('vm', ['nft', '-f', '/dev/stdin'], { input: tables[side] });
        out[side].push(await window(lab));
      }
    }
  } finally {
    process.kill(daemonPid, 'SIGCONT');
  }
  return out;
}

const mbit = (bps: number) => `${round((bps * 8) / 1e6, 1)} Mbit/s`;

checkBundles([
  { file: CLOUD, sources: ['cloud', 'shared'] },
  { file: GATEWAY, sources: ['gateway', 'shared'] },
]);
console.log(`Firewall render and apply (${opts.runs} runs each; apply = nft -f of the whole table and a listing to compare)`);
const scale = await renderAndApply();
for (const n of SIZES) {
  const s = scale[n]!;
  console.log(`  ${String(n).padStart(5)} devices  table ${round(s.bytes / 1024, 1)} KiB  render ${fmt(s.renderMs)}  apply ${fmt(s.applyMs)}`);
}

console.log(`\nThroughput through the lab tunnel, laptop ← website via the VM (${opts.windows} windows of ${opts.seconds} s each way, alternating)`);
const tp = await withLab(async (lab: Lab) => {
  const aerie = await pairedAerie(lab);
  const bulk = lab.spawn('internet', [NODE24, `${REPO_ROOT}/bench/lib/bulk-server.ts`, ADDR.website.v4, String(BULK_PORT)], { logFile: 'bulk.log' });
  try {
    for (let i = 0; i < 50 && !bulk.output().includes('ready'); i++) await sleep(100);
    return await throughput(lab, aerie.cloud!.pid);
  } finally {
    await lab.stop(bulk);
  }
});
const w = spread(tp.withTable)!;
const wo = spread(tp.without)!;
const ratio = w.median / wo.median;
console.log(`  with the daemon's table  ${mbit(w.median)} (${mbit(w.min)}–${mbit(w.max)})`);
console.log(`  with the NAT rule alone  ${mbit(wo.median)} (${mbit(wo.min)}–${mbit(wo.max)})`);
console.log(`  ratio ${round(ratio, 3)}, target ≥ ${THROUGHPUT_TARGET} ${ratio >= THROUGHPUT_TARGET ? '✓' : '✗'}`);
console.log(
  JSON.stringify({
    bench: 'firewall',
    runs: opts.runs,
    windows: opts.windows,
    scale: Object.fromEntries(SIZES.map((n) => [n, { bytes: scale[n]!.bytes, renderMs: spread(scale[n]!.renderMs)!.median, applyMs: spread(scale[n]!.applyMs)!.median }])),
    throughputBps: { withTable: w.median, without: wo.median },
    ratio: round(ratio, 3),
    target: THROUGHPUT_TARGET,
  }),
);
