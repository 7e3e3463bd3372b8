// Gateway memory and size (DESIGN.md §10, "Router daemon"): the steady RSS of
// the gateway daemon after 5 minutes in the lab, as a ratio to an idle
// `node -e 'setInterval(()=>{},1e3)'` on the same Node started at the same
// moment in the same namespace (target ≤ 1.3), and the size of the gateway
// bundle (target under 400 KB). Reports figures; never asserts them.
//
//   node bench/gateway-rss.ts [--seconds N]
//
// The gateway runs with the V8 flags it is meant to run with
// (gateway/node-flags.ts); an idle node with the same flags runs beside the
// plain one, so the ratio to each can be read.
//
// During the run the gateway does its normal work: the tunnel is up, its
// reconciler probes the VM, and the laptop fetches the website through the
// VM every few seconds.
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADDR, NODE20, URLS, withLab, type LabProcess } from '../test/lab/lib/lab.ts';
import { GATEWAY, setUpAerie } from '../test/lab/lib/aerie.ts';
import { DAEMON_NODE_FLAGS } from '../gateway/node-flags.ts';
import { parseIntOptions } from './lib/args.ts';
import { checkBundles } from './lib/bundles.ts';
import { commOf, memoryOf, type Memory } from './lib/proc.ts';
import { mib, ofTarget, round, slope, spread } from './lib/stats.ts';

const RSS_TARGET_RATIO = 1.3;
const BUNDLE_BUDGET_KB = 400;
const SAMPLE_MS = 1_000;
const LAPTOP_EVERY_MS = 10_000;
/** "Steady" is the median over the last part of the run: one sample can catch a GC mid-way. */
const STEADY_WINDOW_MS = 60_000;

const { seconds } = parseIntOptions('Usage: node bench/gateway-rss.ts [--seconds N]', [
  { name: 'seconds', default: 300, min: 10, max: 3_600, help: 'how long the gateway runs before the figure is taken' },
]);

interface Sample {
  atMs: number;
  gateway: Memory;
  idle: Memory;
  idleFlags: Memory;
}

function sample(gateway: LabProcess, idle: LabProcess, idleFlags: LabProcess, atMs: number): Sample {
  const g = memoryOf(gateway.pid);
  const i = memoryOf(idle.pid);
  if (!g || gateway.exit) throw new Error(`the gateway daemon exited during the run: ${gateway.output().trim().split('\n').slice(-3).join(' | ')}`);
  const f = memoryOf(idleFlags.pid);
  if (!i || idle.exit || !f || idleFlags.exit) throw new Error('an idle node process exited during the run');
  return { atMs, gateway: g, idle: i, idleFlags: f };
}

async function measure() {
  return withLab(async (lab) => {
    const aerie = await setUpAerie(lab);
    await aerie.startCloud();
    await aerie.pairGateway(await aerie.pairingCode());
    // Both start together, so both have lived equally long when sampled.
    const idle = lab.spawn('router', [NODE20, '-e', 'setInterval(()=>{},1e3)'], { logFile: 'idle-node.log' });
    const idleFlags = lab.spawn('router', [NODE20, ...DAEMON_NODE_FLAGS, '-e', 'setInterval(()=>{},1e3)'], { logFile: 'idle-node-flags.log' });
    const gateway = await aerie.startGateway();
    const start = performance.now();
    await aerie.waitLaptopThroughVm();

    const samples: Sample[] = [];
    const requests = { through: 0, total: 0 };
    const endAt = start + seconds * 1000;
    const printEveryMs = Math.max(10_000, Math.round((seconds * 1000) / 10 / 10_000) * 10_000);
    let nextPrint = printEveryMs;
    let nextRequest = 0;
    const maxSamples = Math.ceil((seconds * 1000) / SAMPLE_MS) + 2;
    for (let n = 0; n < maxSamples; n++) {
      const now = performance.now();
      if (now >= endAt) break;
      const at = now - start;
      samples.push(sample(gateway, idle, idleFlags, at));
      if (at >= nextRequest) {
        nextRequest += LAPTOP_EVERY_MS;
        requests.total++;
        const r = await lab.fetch('lan', URLS.website4, { timeoutMs: 3_000 });
        if (r.body === ADDR.vm.v4) requests.through++;
      }
      if (at >= nextPrint) {
        nextPrint += printEveryMs;
        const s = samples[samples.length - 1]!;
        console.log(
          `  ${String(Math.round(at / 1000)).padStart(4)} s  gateway ${mib(s.gateway.rssKb).padStart(9)}  idle node ${mib(s.idle.rssKb).padStart(9)}  ` +
            `ratio ${(s.gateway.rssKb / s.idle.rssKb).toFixed(2)}`,
        );
      }
      await sleep(Math.max(0, Math.min(SAMPLE_MS - (performance.now() - now), endAt - performance.now())));
    }
    const last = sample(gateway, idle, idleFlags, performance.now() - start);
    samples.push(last);
    // wireguard-go stands in for the kernel module in the lab (OpenWrt has the module): shown, not counted.
    const wgGo = lab
      .pids('router')
      .filter((pid) => commOf(pid) === 'wireguard-go')
      .map((pid) => memoryOf(pid)?.rssKb ?? 0)
      .reduce((a, b) => a + b, 0);
    return { samples, requests, last, wgGoKb: wgGo };
  });
}

async function main() {
  checkBundles([{ file: GATEWAY, sources: ['gateway', 'shared'] }]);
  const bundleBytes = statSync(GATEWAY).size;
  const bundleKb = bundleBytes / 1024;
  console.log(`Gateway RSS: the gateway daemon and an idle node (${NODE20}), started together in the router namespace, for ${seconds} s`);

  const { samples, requests, last, wgGoKb } = await measure();
  const windowStart = last.atMs - Math.min(STEADY_WINDOW_MS, last.atMs / 5);
  const steady = samples.filter((s) => s.atMs >= windowStart);
  const g = spread(steady.map((s) => s.gateway.rssKb))!;
  const i = spread(steady.map((s) => s.idle.rssKb))!;
  const f = spread(steady.map((s) => s.idleFlags.rssKb))!;
  const ratio = g.median / i.median;
  const ratioFlags = g.median / f.median;
  const windowS = Math.round((last.atMs - windowStart) / 1000);
  // Steady means flat: the trend over the second half of the run says whether it is.
  const perMin = (pick: (s: Sample) => number) =>
    (slope(samples.filter((s) => s.atMs >= last.atMs / 2).map((s) => ({ x: s.atMs, y: pick(s) }))) * 60_000) / 1024;
  const gTrend = perMin((s) => s.gateway.rssKb);
  const iTrend = perMin((s) => s.idle.rssKb);
  const first = samples[0]!;

  console.log('');
  console.log(`steady RSS (median of the last ${windowS} s, ${steady.length} samples):`);
  const row = (name: string, m: typeof g, end: Memory, start: Memory, trend: number) =>
    console.log(
      `  ${name} ${mib(m.median)} (range ${mib(m.min)}–${mib(m.max)}), peak ${mib(end.hwmKb)}; ` +
        `trend ${trend >= 0 ? '+' : ''}${trend.toFixed(2)} MiB/min\n` +
        `    first sample → last: anonymous ${mib(start.anonKb)} → ${mib(end.anonKb)}, file-backed ${mib(start.fileKb)} → ${mib(end.fileKb)}`,
    );
  row('gateway daemon', g, last.gateway, first.gateway, gTrend);
  row('idle node     ', i, last.idle, first.idle, iTrend);
  row('idle node, same flags', f, last.idleFlags, first.idleFlags, perMin((s) => s.idleFlags.rssKb));
  console.log(`  gateway flags: ${DAEMON_NODE_FLAGS.join(' ')}`);
  console.log(`  ratio to the idle node ${ratio.toFixed(2)}, target ≤ ${RSS_TARGET_RATIO}: ${ofTarget(ratio, RSS_TARGET_RATIO)}`);
  console.log(`  ratio to the idle node with the same flags ${ratioFlags.toFixed(2)}`);
  console.log(`gateway bundle ${bundleKb.toFixed(1)} KB (${bundleBytes} bytes), budget ${BUNDLE_BUDGET_KB} KB: ${ofTarget(bundleKb, BUNDLE_BUDGET_KB)}`);
  console.log(`laptop requests through the VM during the run: ${requests.through} of ${requests.total}`);
  console.log(`(not counted: wireguard-go, the lab's stand-in for the kernel module, ${mib(wgGoKb)})`);
  console.log(
    JSON.stringify({
      bench: 'gateway-rss',
      seconds,
      steadyWindowS: windowS,
      gatewayRssKb: g.median,
      idleNodeRssKb: i.median,
      idleNodeSameFlagsRssKb: f.median,
      gatewayNodeFlags: DAEMON_NODE_FLAGS,
      rssRatioSameFlags: round(ratioFlags),
      gatewayPeakKb: last.gateway.hwmKb,
      idleNodePeakKb: last.idle.hwmKb,
      gatewayAnonKb: { start: first.gateway.anonKb, end: last.gateway.anonKb },
      gatewayFileKb: { start: first.gateway.fileKb, end: last.gateway.fileKb },
      idleNodeAnonKb: { start: first.idle.anonKb, end: last.idle.anonKb },
      idleNodeFileKb: { start: first.idle.fileKb, end: last.idle.fileKb },
      gatewayTrendMiBPerMin: round(gTrend),
      idleNodeTrendMiBPerMin: round(iTrend),
      rssRatio: round(ratio),
      rssTargetRatio: RSS_TARGET_RATIO,
      rssRatioToTarget: round(ratio / RSS_TARGET_RATIO),
      bundleBytes,
      bundleKb: round(bundleKb, 1),
      bundleBudgetKb: BUNDLE_BUDGET_KB,
      bundleRatio: round(bundleKb / BUNDLE_BUDGET_KB),
      laptopRequests: requests,
      wireguardGoRssKb: wgGoKb,
    }),
  );
}

await main();
