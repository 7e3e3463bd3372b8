// DNS in the lab: the "internet"'s own DNS server (Debian's unbound with
// local data, in the internet namespace), the router's resolver (dnsmasq, as
// on OpenWrt), and dig/getent as a client would use them.
//
//   const labDns = await startLabDns(lab);
//   const r = await dig(lab, 'lan', ADDR.labDns.v4, LAB_NAMES.website);
//   r.answers[0]?.data === ADDR.website.v4
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateSelfSignedCert } from '../../../cloud/tls-cert.ts';
import { ADDR, waitFor, type Host, type Lab, type LabProcess } from './lab.ts';
import { sleep } from './pids.ts';
import { UNBOUND, unboundServerBase } from '../../integration/lib/unbound.ts';

export { UNBOUND };
export const DNSMASQ = '/usr/sbin/dnsmasq';

/** The lab's "internet" names (zone `example`), served by startLabDns. */
export const LAB_NAMES = {
  /** A/AAAA: the website. */
  website: 'website.example',
  /** A 192.0.2.81, AAAA 2001:db8:80::81: a name for a block list. */
  ads: 'ads.example',
  /** The same addresses: a subdomain of a blocked name. */
  tracker: 'tracker.ads.example',
  /** A 192.0.2.82: a name to block by hand (`dns block`). */
  other: 'other.example',
  /** BIG_TXT as TXT records, far more than 512 bytes: truncated over UDP, whole over TCP. */
  big: 'big.example',
} as const;

export const LAB_TTL = 300;
export const ADS = { v4: '192.0.2.81', v6: '2001:db8:80::81' } as const;
export const OTHER = { v4: '192.0.2.82' } as const;
export const BIG_TXT: readonly string[] = Array.from({ length: 24 }, (_, i) => `record ${String(i).padStart(2, '0')} ${'x'.repeat(60)}`);

/** unbound local-data lines; the SOA gives negative answers a TTL (RFC 2308). */
export const LAB_RECORDS: readonly string[] = [
  `example. 3600 IN SOA ns.example. hostmaster.example. 1 3600 900 604800 ${LAB_TTL}`,
  `${LAB_NAMES.website}. ${LAB_TTL} IN A ${ADDR.website.v4}`,
  `${LAB_NAMES.website}. ${LAB_TTL} IN AAAA ${ADDR.website.v6}`,
  `${LAB_NAMES.ads}. ${LAB_TTL} IN A ${ADS.v4}`,
  `${LAB_NAMES.ads}. ${LAB_TTL} IN AAAA ${ADS.v6}`,
  `${LAB_NAMES.tracker}. ${LAB_TTL} IN A ${ADS.v4}`,
  `${LAB_NAMES.tracker}. ${LAB_TTL} IN AAAA ${ADS.v6}`,
  `${LAB_NAMES.other}. ${LAB_TTL} IN A ${OTHER.v4}`,
  ...BIG_TXT.map((t) => `${LAB_NAMES.big}. ${LAB_TTL} IN TXT "${t}"`),
];

export interface LabDns {
  proc: LabProcess;
  configFile: string;
  /** Stops it by PID (the lab's teardown does too). */
  stop(): Promise<void>;
}

/**
 * unbound in the internet namespace on ADDR.labDns: plain DNS on port 53 (UDP
 * and TCP), DNS over TLS on TCP 853 with a self-signed certificate, and plain
 * DNS on UDP 853 too, which stands in for DNS over QUIC (a client that reaches
 * it gets an answer; one that is refused gets a port unreachable). Answers
 * anyone; names outside `example` are not resolved (no real internet).
 */
export async function startLabDns(lab: Lab): Promise<LabDns> {
  const dir = join(lab.logDir, 'lab-dns');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cert = generateSelfSignedCert({ host: 'dns.example' });
  writeFileSync(join(dir, 'key.pem'), cert.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'cert.pem'), cert.certPem);
  const addrs = [ADDR.labDns.v4, ADDR.labDns.v6];
  const conf = [
    ...unboundServerBase(dir),
    '  logfile: ""',
    '  do-daemonize: no',
    '  so-reuseport: no',
    // No validator: it would want a trust anchor, and there is no root to validate against.
    '  module-config: "iterator"',
    '  interface-automatic: no',
    ...addrs.flatMap((a) => [`  interface: ${a}@53`, `  interface: ${a}@853`]),
    '  tls-port: 853',
    `  tls-service-key: "${join(dir, 'key.pem')}"`,
    `  tls-service-pem: "${join(dir, 'cert.pem')}"`,
    '  access-control: 0.0.0.0/0 allow',
    '  access-control: ::/0 allow',
    '  local-zone: "example." static',
    ...LAB_RECORDS.map((r) => `  local-data: '${r}'`),
    'remote-control:',
    '  control-enable: no',
    '',
  ];
  const configFile = join(dir, 'unbound.conf');
  writeFileSync(configFile, conf.join('\n'));
  const proc = lab.spawn('internet', [UNBOUND, '-d', '-c', configFile], { logFile: 'lab-dns.log' });
  try {
    await waitFor(
      'the lab DNS server to answer on both addresses',
      async () => {
        if (proc.exit) throw new Error(`unbound exited (${JSON.stringify(proc.exit)}): ${proc.output().trim()}`);
        const rs = await Promise.all(addrs.map((a) => dig(lab, 'internet', a, LAB_NAMES.website, { timeoutS: 1 })));
        return rs.every((r) => r.answers.some((x) => x.data === ADDR.website.v4));
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
  } catch (e) {
    await lab.stop(proc).catch(() => {});
    throw e;
  }
  return {
    proc,
    configFile,
    async stop() {
      await lab.stop(proc);
    },
  };
}

/**
 * The router's resolver as OpenWrt runs it: dnsmasq on the LAN addresses,
 * no cache (so every answer in a test is fresh from upstream), upstreams from
 * `resolvFile` (the file aerie-gateway writes; dnsmasq notices when it changes).
 */
export function routerDnsArgv(resolvFile: string): string[] {
  return [
    DNSMASQ,
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-hosts',
    `--resolv-file=${resolvFile}`,
    '--strict-order',
    // Every address of the LAN interfaces, the home's IPv6 from the VM included (added later, hence
    // bind-dynamic): the router's DNS redirect and its announcements may name any of them.
    '--interface=lan0',
    '--interface=lan1',
    '--bind-dynamic',
    '--cache-size=0',
    '--pid-file=',
    '--user=root',
    '--group=root',
    '--log-facility=-',
  ];
}

export async function startRouterDns(lab: Lab, resolvFile: string): Promise<LabProcess> {
  // dnsmasq watches the file's directory (inotify) and refuses to start without it.
  mkdirSync(dirname(resolvFile), { recursive: true, mode: 0o755 });
  const proc = lab.spawn('router', routerDnsArgv(resolvFile), { logFile: 'router-dnsmasq.log' });
  try {
    await waitFor(
      'dnsmasq to listen on the router',
      async () => {
        if (proc.exit) throw new Error(`dnsmasq exited (${JSON.stringify(proc.exit)}): ${proc.output().trim()}`);
        const { stdout } = await lab.run('router', ['ss', '-H', '-l', '-n', '-u']);
        return stdout.includes(`${ADDR.routerLan.v4}:53 `) && stdout.includes(`[${ADDR.routerLan.v6}]:53 `);
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    // It binds its sockets before it checks the rest of its setup, and may still exit.
    await sleep(300);
    if (proc.exit) throw new Error(`dnsmasq exited (${JSON.stringify(proc.exit)}): ${proc.output().trim()}`);
  } catch (e) {
    await lab.stop(proc).catch(() => {});
    throw e;
  }
  return proc;
}

export interface DigOptions {
  /** Query type (default A). */
  type?: string;
  /** +tcp: TCP from the start. */
  tcp?: boolean;
  /** +tls: DNS over TLS (dig does not check the certificate unless told to). */
  tls?: boolean;
  port?: number;
  /** Per-attempt timeout in seconds (default 2); one attempt only. */
  timeoutS?: number;
  /** More dig options, e.g. ['+ignore', '+noedns'] to see a truncated UDP reply as it is. */
  extra?: string[];
}

export interface DnsAnswer {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigResult {
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED…; null when no answer came back. */
  status: string | null;
  answers: DnsAnswer[];
  /** Header flags: qr, aa, tc, rd, ra… */
  flags: string[];
  /** dig's own complaint (";; communications error …", "timed out", …), or null. */
  error: string | null;
  ms: number;
  exitCode: number;
  output: string;
}

export function digArgv(server: string, name: string, opts: DigOptions = {}): string[] {
  const argv = ['dig', `@${server}`, name, opts.type ?? 'A', `+time=${opts.timeoutS ?? 2}`, '+tries=1'];
  argv.push('+noall', '+comments', '+answer');
  if (opts.tcp) argv.push('+tcp');
  if (opts.tls) argv.push('+tls');
  if (opts.port !== undefined) argv.push('-p', String(opts.port));
  argv.push(...(opts.extra ?? []));
  return argv;
}

export function parseDig(stdout: string, stderr: string, exitCode: number, ms: number): DigResult {
  const lines = stdout.split('\n');
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? null;
  const flags = /^;; flags: ([a-z ]+);/m.exec(stdout)?.[1]?.trim().split(/\s+/) ?? [];
  const answers: DnsAnswer[] = [];
  for (const line of lines) {
    if (line === '' || line.startsWith(';')) continue;
    const [name, ttl, , type, ...data] = line.split(/\s+/);
    if (!name || !type) continue;
    answers.push({ name, ttl: Number(ttl), type, data: data.join(' ') });
  }
  const complaint = [...lines, ...stderr.split('\n')].find((l) => /error|timed out|refused|reset|no servers|failed/i.test(l) && !/status:/.test(l));
  return { status, answers, flags, error: complaint?.trim() ?? (exitCode !== 0 ? `dig exited ${exitCode}` : null), ms, exitCode, output: `${stdout}${stderr}` };
}

/** `dig` from the host's namespace; never throws for a failed lookup. */
export async function dig(lab: Lab, host: Host, server: string, name: string, opts: DigOptions = {}): Promise<DigResult> {
  const t0 = Date.now();
  const r = await lab.run(host, digArgv(server, name, opts), { allowFail: true, timeoutMs: ((opts.timeoutS ?? 2) + 5) * 1000 });
  return parseDig(r.stdout, r.stderr, r.code, Date.now() - t0);
}

/** The A (or AAAA) addresses of an answer, sorted. */
export function addressesOf(r: DigResult): string[] {
  return r.answers.filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => a.data).sort();
}

/**
 * The addresses the system resolver gives a program in the host's namespace
 * (getent ahostsv4/ahostsv6: nsswitch, /etc/hosts, then resolv.conf); [] when
 * the name does not resolve.
 */
export async function getentAddresses(lab: Lab, host: Host, name: string, family: 4 | 6): Promise<string[]> {
  const r = await lab.run(host, ['getent', family === 4 ? 'ahostsv4' : 'ahostsv6', name], { allowFail: true, timeoutMs: 30_000 });
  if (r.code !== 0) return [];
  return [...new Set(r.stdout.split('\n').map((l) => l.split(/\s+/)[0] ?? '').filter(Boolean))].sort();
}

/**
 * resolv.conf text: `nameserver` lines, `search` when there are domains, and
 * `options` (resolv.conf(5)), e.g. ['timeout:1', 'attempts:1'] so that a test
 * of a failing lookup does not wait glibc's default 5 s per try and server.
 */
export function resolvConf(servers: readonly string[], search: readonly string[] = [], options: readonly string[] = []): string {
  return [
    ...servers.map((s) => `nameserver ${s}`),
    ...(search.length ? [`search ${search.join(' ')}`] : []),
    ...(options.length ? [`options ${options.join(' ')}`] : []),
    '',
  ].join('\n');
}
