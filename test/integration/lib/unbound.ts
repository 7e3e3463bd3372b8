// A real Debian unbound on 127.0.0.1 serving local data, for tests that need a
// genuine DNS server: plain UDP/TCP, optionally DNS over TLS and over HTTPS.
// Everything lives in a fresh temp dir; no chroot, no user change, no pidfile,
// no remote control, so it runs unprivileged as well as as root.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';

export const UNBOUND = '/usr/sbin/unbound';

export interface TlsKeyPair {
  certPem: string;
  keyPem: string;
}

export interface UnboundOptions {
  /** Zones answered from local data only (`local-zone: NAME static`): other names in them are NXDOMAIN. */
  zones?: string[];
  /** Records in unbound's local-data syntax, TTL included: 'www.example.test. 300 IN A 192.0.2.1'. */
  records?: string[];
  /** Serve DNS over TLS (RFC 7858) with this certificate. */
  dot?: TlsKeyPair;
  /** Serve DNS over HTTPS (RFC 8484, HTTP/2, path /dns-query). Unbound has one TLS certificate: same as `dot` if both are given. */
  doh?: TlsKeyPair;
  /** False: TCP only, UDP queries are not answered (default true). */
  udp?: boolean;
}

export interface Unbound {
  /** Plain DNS on 127.0.0.1: UDP (unless udp: false) and TCP. */
  port: number;
  dotPort: number | null;
  dohPort: number | null;
  pid: number;
  /** Unbound's log so far (for failure messages). */
  log(): string;
  /** Kills it by PID and removes its temp dir. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

/** The start of a `server:` clause for an unbound run by a test: in the foreground, in `dir`, no chroot, user or pidfile. */
export function unboundServerBase(dir: string): string[] {
  return [
    'server:',
    '  verbosity: 1',
    '  num-threads: 1',
    `  directory: "${dir}"`,
    '  chroot: ""',
    '  username: ""',
    '  pidfile: ""',
    '  use-syslog: no',
  ];
}

export async function startUnbound(opts: UnboundOptions = {}): Promise<Unbound> {
  if (opts.dot && opts.doh && (opts.dot.certPem !== opts.doh.certPem || opts.dot.keyPem !== opts.doh.keyPem)) {
    throw new Error('unbound serves DoT and DoH with one certificate: pass the same one for both, or start two');
  }
  for (const line of [...(opts.zones ?? []), ...(opts.records ?? [])]) {
    if (/["\n\r]/.test(line)) throw new Error(`unbound local data must not contain quotes or newlines: ${JSON.stringify(line)}`);
  }
  // Ports are picked free and then released for unbound: another process may
  // take one in between, so a failed bind gets one more try with fresh ports.
  try {
    return await startOnce(opts);
  } catch (err) {
    if (!(err instanceof PortClash)) throw err;
    return startOnce(opts);
  }
}

class PortClash extends Error {}

async function startOnce(opts: UnboundOptions): Promise<Unbound> {
  const tls = opts.dot ?? opts.doh;
  const ports = await freePorts(3);
  const port = ports[0]!;
  const dotPort = opts.dot ? ports[1]! : null;
  const dohPort = opts.doh ? ports[2]! : null;
  const dir = mkdtempSync(join(tmpdir(), 'aerie-unbound-'));
  const logFile = join(dir, 'unbound.log');
  const conf = [
    ...unboundServerBase(dir),
    `  logfile: "${logFile}"`,
    '  do-daemonize: no',
    '  so-reuseport: no',
    '  outgoing-range: 64',
    '  num-queries-per-thread: 32',
    '  module-config: "iterator"',
    `  do-udp: ${opts.udp === false ? 'no' : 'yes'}`,
    `  interface: 127.0.0.1@${port}`,
    '  access-control: 127.0.0.0/8 allow',
    '  access-control: ::1 allow',
  ];
  if (tls) {
    writeFileSync(join(dir, 'key.pem'), tls.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'cert.pem'), tls.certPem);
    conf.push(`  tls-service-key: "${join(dir, 'key.pem')}"`, `  tls-service-pem: "${join(dir, 'cert.pem')}"`);
  }
  if (dotPort !== null) conf.push(`  interface: 127.0.0.1@${dotPort}`, `  tls-port: ${dotPort}`);
  if (dohPort !== null) conf.push(`  interface: 127.0.0.1@${dohPort}`, `  https-port: ${dohPort}`, '  http-endpoint: "/dns-query"');
  for (const zone of opts.zones ?? []) conf.push(`  local-zone: "${zone}" static`);
  for (const record of opts.records ?? []) conf.push(`  local-data: "${record}"`);
  conf.push('remote-control:', '  control-enable: no', '');
  const confFile = join(dir, 'unbound.conf');
  writeFileSync(confFile, conf.join('\n'));

  const child = spawn(UNBOUND, ['-d', '-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const log = () => `${stderr}${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`;
  const cleanup = () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Should the test process end without stop(), unbound must not outlive it.
  process.once('exit', cleanup);

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      process.removeListener('exit', cleanup);
      await stopChild(child, exited);
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    await spawned;
    await waitReady(port, [dotPort, dohPort], exited, child);
  } catch (err) {
    const text = log();
    await stop();
    if (/can't bind|address already in use/i.test(text)) throw new PortClash(text);
    throw new Error(`${(err as Error).message}\n--- unbound said:\n${text.trim()}`);
  }
  return { port, dotPort, dohPort, pid: child.pid!, log, stop };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  process.kill(child.pid, 'SIGTERM');
  const timer = new Promise<'slow'>((r) => setTimeout(() => r('slow'), 5000).unref());
  if ((await Promise.race([exited.then(() => 'done' as const), timer])) === 'slow') {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

/** Until unbound answers a query over TCP and accepts connections on its TLS ports; bounded in time. */
async function waitReady(port: number, tlsPorts: (number | null)[], exited: Promise<void>, child: ChildProcess): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`unbound exited at start (status ${child.exitCode ?? child.signalCode})`);
    if ((await tcpQueryWorks(port)) && (await Promise.all(tlsPorts.map((p) => p === null || accepts(p)))).every(Boolean)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`unbound did not answer on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms`);
}

function tcpQueryWorks(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () =>
      socket.write(dnsPacket.streamEncode({ type: 'query', id: 1, questions: [{ type: 'A', class: 'IN', name: 'localhost' }] })),
    );
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) done(true);
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000, () => (socket.destroy(), resolve(false)));
    socket.on('error', () => resolve(false));
    socket.on('connect', () => (socket.destroy(), resolve(true)));
  });
}

/**
 * `n` distinct ports free on 127.0.0.1 for both TCP and UDP at this moment:
 * bound to port 0, read back, then released (all held until all are found).
 */
export async function freePorts(n: number): Promise<number[]> {
  const held: (() => Promise<void>)[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < n && tries < n + 20; tries++) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      held.push(() => new Promise((r) => server.close(() => r())));
      const port = (server.address() as AddressInfo).port;
      const udp = createSocket('udp4');
      const udpOk = await new Promise<boolean>((resolve) => {
        udp.once('error', () => resolve(false));
        udp.bind(port, '127.0.0.1', () => resolve(true));
      });
      held.push(
        () =>
          new Promise((r) => {
            if (!udpOk) return r();
            udp.close(() => r());
          }),
      );
      if (udpOk) ports.push(port);
    }
  } finally {
    await Promise.all(held.map((release) => release()));
  }
  if (ports.length < n) throw new Error(`found only ${ports.length} of ${n} free ports`);
  return ports;
}
