import { parseArgs } from 'node:util';

export interface DnsBenchOptions {
  json: boolean;
  loopback: boolean;
  side: 'both' | 'dnsmasq' | 'aerie';
  names: number;
  allowed: number;
  queries: number;
  blockedPercent: number;
  seconds: number;
  warmup: number;
  latencyQps: number;
  latencySeconds: number;
  clients: number;
  outstanding: number;
  seed: number;
  dnsmasqCache: number[];
  lockWait: number;
}

const INTS = {
  names: { default: 1_000_000, min: 1_000, max: 5_000_000, help: 'names on the blocklist' },
  allowed: { default: 20_000, min: 100, max: 200_000, help: 'names in the upstream zone (each A + AAAA, TTL 3600)' },
  queries: { default: 300_000, min: 1_000, max: 5_000_000, help: "lines in dnsperf's query file (Zipf-like repetition)" },
  'blocked-percent': { default: 30, min: 0, max: 100, help: 'share of queries for blocked names' },
  seconds: { default: 15, min: 1, max: 600, help: 'dnsperf -l of the run at full speed' },
  warmup: { default: 3, min: 0, max: 120, help: 'seconds of load before the measured run (fills caches)' },
  'latency-qps': { default: 5_000, min: 0, max: 1_000_000, help: 'rate of the latency run (dnsperf -Q -v), the same for every server; 0 skips it' },
  'latency-seconds': { default: 10, min: 1, max: 600, help: 'length of the latency run' },
  clients: { default: 4, min: 1, max: 256, help: 'dnsperf -c' },
  outstanding: { default: 100, min: 1, max: 10_000, help: 'dnsperf -q: queries in flight at most' },
  seed: { default: 1, min: 0, max: 2 ** 31 - 1, help: 'seed of the generated names and queries' },
  'lock-wait': { default: 3_600, min: 0, max: 86_400, help: 'seconds to wait for another lab to finish' },
} as const;
type IntName = keyof typeof INTS;

const USAGE = `Usage: node bench/dns.ts [options]

Aerie's resolver against dnsmasq with the same 1,000,000-name blocklist and
the same local upstream (unbound), one after the other in the lab's vm namespace.

Options:
  --json                 print the result as JSON only (progress goes to stderr)
  --side both|dnsmasq|aerie   which servers to measure (default both)
  --loopback             dnsmasq only, on this machine's loopback, without a lab
  --dnsmasq-cache N,N    dnsmasq --cache-size values, one run each (default 150,10000)
${Object.entries(INTS)
  .map(([k, o]) => `  --${k} N`.padEnd(25) + `${o.help} (default ${o.default}, ${o.min}-${o.max})`)
  .join('\n')}
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

export function parseDnsBenchOptions(argv: string[]): DnsBenchOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        json: { type: 'boolean' },
        loopback: { type: 'boolean' },
        side: { type: 'string' },
        'dnsmasq-cache': { type: 'string' },
        ...Object.fromEntries(Object.keys(INTS).map((k) => [k, { type: 'string' as const }])),
      },
    }).values;
  } catch (e) {
    fail((e as Error).message.split('\n')[0]!);
  }
  if (values['help']) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const ints = {} as Record<IntName, number>;
  for (const [k, o] of Object.entries(INTS) as [IntName, (typeof INTS)[IntName]][]) {
    const raw = values[k];
    const n = typeof raw === 'string' ? Number(raw) : o.default;
    if (!Number.isInteger(n) || n < o.min || n > o.max) fail(`--${k}: expected an integer from ${o.min} to ${o.max}, got ${JSON.stringify(raw)}`);
    ints[k] = n;
  }
  const side = (values['side'] ?? 'both') as string;
  if (side !== 'both' && side !== 'dnsmasq' && side !== 'aerie') fail(`--side: expected both, dnsmasq or aerie, got ${JSON.stringify(side)}`);
  const cacheText = typeof values['dnsmasq-cache'] === 'string' ? values['dnsmasq-cache'] : '150,10000';
  const dnsmasqCache = cacheText.split(',').map((s) => Number(s.trim()));
  if (dnsmasqCache.length < 1 || dnsmasqCache.length > 4 || dnsmasqCache.some((n) => !Number.isInteger(n) || n < 0 || n > 1_000_000)) {
    fail(`--dnsmasq-cache: expected 1 to 4 comma-separated cache sizes from 0 to 1000000, got ${JSON.stringify(cacheText)}`);
  }
  const loopback = values['loopback'] === true;
  if (loopback && side === 'aerie') fail('--loopback measures dnsmasq only: Aerie runs in the lab');
  return {
    json: values['json'] === true,
    loopback,
    side: loopback ? 'dnsmasq' : side,
    names: ints.names,
    allowed: ints.allowed,
    queries: ints.queries,
    blockedPercent: ints['blocked-percent'],
    seconds: ints.seconds,
    warmup: ints.warmup,
    latencyQps: ints['latency-qps'],
    latencySeconds: ints['latency-seconds'],
    clients: ints.clients,
    outstanding: ints.outstanding,
    seed: ints.seed,
    dnsmasqCache,
    lockWait: ints['lock-wait'],
  };
}
