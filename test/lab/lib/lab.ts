/**
 * The lab: the topology of topology.ts in network namespaces, processes
 * started inside them and tracked by PID, and a teardown that leaves nothing
 * behind, also after a failed test, a crash of an earlier run, or SIGINT/SIGTERM.
 *
 *   await withLab(async (lab) => {
 *     const r = await lab.fetch('lan', URLS.website4);
 *     assert.is(r.body, ADDR.routerWan.v4);
 *   });
 */
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { createRunner, type RunOptions, type RunResult, type Runner } from '../../../shared/run.ts';
import { curlArgv, parseCurl, type FetchOptions, type FetchResult } from './curl.ts';
import { acquireLock, type LabLock } from './lock.ts';
import { netnsEtc, type NetnsEtc } from './netns-etc.ts';
import { isAlive, namespacePids, signal } from './pids.ts';
import { sweepNamespaces, sweepNamespacesSync } from './sweep.ts';
import { HOSTS, URLS, findLink, interfaceConfigCommands, linkInterfaces, topologyCommands, type Host } from './topology.ts';
import { waitFor } from './wait.ts';

export * from './topology.ts';
export { waitFor, type WaitOptions } from './wait.ts';
export type { FetchOptions, FetchResult } from './curl.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
/** Runs the cloud bundle, the lab's servers and the tests. */
export const NODE24 = join(REPO_ROOT, 'node_modules/.bin/node');
/** The machine's Node 20: the router's Node (OpenWrt 24.10 ships 20). */
export const NODE20 = '/usr/bin/node';

export interface LabOptions {
  /** Namespace name prefix (default "aerie-"): namespaces are PREFIX + host. */
  prefix?: string;
  /** Start the website and the laptop's web server (default true). */
  servers?: boolean;
  /** How long to wait for another lab with the same prefix to finish (default 10 s). */
  lockWaitMs?: number;
  /** Print every command run (default: env AERIE_LAB_TRACE=1). */
  trace?: boolean;
  /** Where process logs go (default a fresh directory under the OS temp dir, removed by destroy). */
  logDir?: string;
}

export interface SpawnOptions {
  /** Added to the test's own environment. */
  env?: Record<string, string>;
  /** stdout+stderr go here; relative names are inside lab.logDir. */
  logFile?: string;
  /** Working directory (default the repository root). */
  cwd?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LabProcess {
  readonly host: Host;
  readonly argv: readonly string[];
  readonly pid: number;
  readonly logFile: string;
  /** null while it runs. */
  exit: ProcessExit | null;
  /** Resolves when it exits; never rejects. */
  readonly exited: Promise<ProcessExit>;
  /** Everything it printed so far. */
  output(): string;
}

export interface Lab {
  readonly prefix: string;
  /** Namespace name per host, e.g. ns.router === "aerie-router". */
  readonly ns: Readonly<Record<Host, string>>;
  readonly logDir: string;
  /** The website (internet) and laptop (lan) servers; null with servers: false. */
  readonly servers: { website: LabProcess; laptop: LabProcess } | null;
  /** A shared/run.ts Runner that runs inside the host's namespace. */
  runner(host: Host): Runner;
  run(host: Host, argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a long-running process in the namespace; tracked by PID until it exits. */
  spawn(host: Host, argv: readonly string[], opts?: SpawnOptions): LabProcess;
  /** SIGTERM, wait up to timeoutMs (default 5 s), then SIGKILL. */
  stop(proc: LabProcess, opts?: { timeoutMs?: number }): Promise<ProcessExit>;
  /** SIGKILL, as a crash would. */
  kill9(proc: LabProcess): Promise<ProcessExit>;
  /** An HTTP request made with curl inside the namespace. Never throws for network errors. */
  fetch(host: Host, url: string, opts?: FetchOptions): Promise<FetchResult>;
  setLink(host: Host, ifname: string, state: 'up' | 'down'): Promise<void>;
  /**
   * The host's own /etc/resolv.conf from now on (for commands started after
   * this call): /etc/netns/NS/resolv.conf, which `ip netns exec` bind-mounts
   * over it. Removed by destroy().
   */
  setResolvConf(host: Host, text: string): void;
  /** PIDs of every process in the host's namespace, ours or not (wireguard-go daemonizes). */
  pids(host: Host): number[];
  /** Processes started with spawn() that are still running. */
  processes(): LabProcess[];
  /** Stops everything, deletes the namespaces; idempotent. Throws if something could not be cleaned. */
  destroy(): Promise<void>;
}

const PREFIX_RE = /^[a-z][a-z0-9-]{0,15}$/;
const READY_MS = 10_000;

/** Labs not yet destroyed, for the signal and exit hooks. */
const live = new Set<{ destroy(): Promise<void>; emergency(): void }>();

function onExit(): void {
  for (const lab of live) lab.emergency();
}

let stopping = false;
function onSignal(sig: NodeJS.Signals): void {
  const code = 128 + (sig === 'SIGINT' ? 2 : 15);
  if (stopping) {
    process.exit(code); // second signal: the exit hook still kills and deletes
  }
  stopping = true;
  process.stderr.write(`\n${sig}: tearing the lab down\n`);
  const force = setTimeout(() => process.exit(code), 30_000);
  void Promise.allSettled([...live].map((l) => l.destroy())).then(() => {
    clearTimeout(force);
    process.exit(code);
  });
}

function register(lab: { destroy(): Promise<void>; emergency(): void }): void {
  if (live.size === 0) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
  }
  live.add(lab);
}

function unregister(lab: { destroy(): Promise<void>; emergency(): void }): void {
  live.delete(lab);
  if (live.size === 0) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
}

/** The promise's value, or null after `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Log directories of earlier runs with this prefix whose process is gone (killed, so it could not clean up). */
function removeStaleLogDirs(prefix: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of entries) {
    const m = name.startsWith(`${prefix}lab-`) ? /^(\d+)-\d+$/.exec(name.slice(prefix.length + 4)) : null;
    if (m && !isAlive(Number(m[1]))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/** A readable log name: the script's name when the program is node. */
function logName(argv: readonly string[]): string {
  const script = argv.slice(1).find((a) => /\.(ts|mjs|js)$/.test(a));
  return basename(script ?? argv[0] ?? 'process').replace(/\.(ts|mjs|js)$/, '');
}

export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const prefix = options.prefix ?? 'aerie-';
  if (!PREFIX_RE.test(prefix)) {
    throw new Error(`lab prefix: expected lowercase letters, digits and dashes (max 16), got "${prefix}"`);
  }
  if (process.getuid?.() !== 0) {
    throw new Error('the lab needs root (it creates network namespaces): run it as root');
  }
  const ns = Object.fromEntries(HOSTS.map((h) => [h, `${prefix}${h}`])) as Record<Host, string>;
  const names = HOSTS.map((h) => ns[h]);
  const traceOn = options.trace ?? process.env['AERIE_LAB_TRACE'] === '1';
  const trace = traceOn ? (argv: readonly string[]) => process.stderr.write(`[lab] ${argv.join(' ')}\n`) : undefined;

  const lock: LabLock = await acquireLock(prefix, options.lockWaitMs ?? 10_000);
  const ownLogDir = options.logDir === undefined;
  const logDir = options.logDir ?? join(tmpdir(), `${prefix}lab-${process.pid}-${Date.now()}`);

  const procs = new Set<LabProcess>();
  let etc: NetnsEtc | null = null;
  const runners = new Map<Host, Runner>();
  let destroying: Promise<void> | null = null;
  let spawned = 0;

  const rootRun = createRunner(trace ? { trace } : {});
  const runner = (host: Host): Runner => {
    let r = runners.get(host);
    if (!r) {
      r = createRunner({ prefix: ['ip', 'netns', 'exec', ns[host]], ...(trace ? { trace } : {}) });
      runners.set(host, r);
    }
    return r;
  };

  const spawnIn = (host: Host, argv: readonly string[], opts: SpawnOptions = {}): LabProcess => {
    if (destroying) throw new Error('lab.spawn: the lab is being destroyed');
    if (argv.length === 0) throw new Error('lab.spawn: argv is empty');
    spawned++;
    const name = opts.logFile ?? `${host}-${logName(argv)}-${spawned}.log`;
    const logFile = isAbsolute(name) ? name : join(logDir, name);
    const fd = openSync(logFile, 'a');
    const full = ['ip', 'netns', 'exec', ns[host], ...argv];
    trace?.(full);
    // `ip netns exec` execs the program, so the PID we get is the program's own.
    const child = spawn(full[0] as string, full.slice(1), {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? REPO_ROOT,
    });
    closeSync(fd);
    let resolveExit: (e: ProcessExit) => void = () => {};
    const exited = new Promise<ProcessExit>((r) => (resolveExit = r));
    const proc: LabProcess = {
      host,
      argv: [...argv],
      pid: child.pid ?? -1,
      logFile,
      exit: null,
      exited,
      output: () => readText(logFile),
    };
    const finish = (e: ProcessExit) => {
      if (proc.exit) return;
      proc.exit = e;
      procs.delete(proc);
      resolveExit(e);
    };
    child.on('error', (e) => {
      process.stderr.write(`[lab] could not start ${argv.join(' ')}: ${e.message}\n`);
      finish({ code: 127, signal: null });
    });
    child.on('exit', (code, sig) => finish({ code, signal: sig }));
    // A forgotten destroy() must not keep the test alive: the exit hook cleans up.
    child.unref();
    if (proc.pid > 0) procs.add(proc);
    return proc;
  };

  const stop = async (proc: LabProcess, opts: { timeoutMs?: number } = {}): Promise<ProcessExit> => {
    if (proc.exit) return proc.exit;
    signal(proc.pid, 'SIGTERM');
    const first = await within(proc.exited, opts.timeoutMs ?? 5_000);
    if (first) return first;
    if (!proc.exit) signal(proc.pid, 'SIGKILL');
    const second = await within(proc.exited, 3_000);
    if (second) return second;
    throw new Error(`lab.stop: PID ${proc.pid} (${proc.argv.join(' ')}) survived SIGKILL`);
  };

  const kill9 = async (proc: LabProcess): Promise<ProcessExit> => {
    if (proc.exit) return proc.exit;
    signal(proc.pid, 'SIGKILL');
    const e = await within(proc.exited, 3_000);
    if (e) return e;
    throw new Error(`lab.kill9: PID ${proc.pid} (${proc.argv.join(' ')}) did not exit`);
  };

  const destroy = (): Promise<void> => {
    destroying ??= (async () => {
      const problems: string[] = [];
      const results = await Promise.allSettled([...procs].map((p) => stop(p, { timeoutMs: 3_000 })));
      for (const r of results) if (r.status === 'rejected') problems.push(String(r.reason));
      problems.push(...(await sweepNamespaces(names)));
      etc?.cleanup();
      unregister(handle);
      lock.release();
      if (ownLogDir) {
        if (process.env['AERIE_LAB_KEEP_LOGS'] === '1') process.stderr.write(`[lab] logs kept in ${logDir}\n`);
        else rmSync(logDir, { recursive: true, force: true });
      }
      if (problems.length > 0) throw new Error(`lab teardown incomplete:\n  ${problems.join('\n  ')}`);
    })();
    return destroying;
  };

  const handle = {
    destroy,
    emergency() {
      sweepNamespacesSync(names, [...procs].map((p) => p.pid));
      etc?.cleanup();
      lock.release();
      if (ownLogDir && process.env['AERIE_LAB_KEEP_LOGS'] !== '1') rmSync(logDir, { recursive: true, force: true });
    },
  };
  register(handle);

  // A router needs its link-local address to send neighbour solicitations for
  // packets it forwards, and the kernel adds that address only once it has
  // processed the carrier event, up to a second after "link up". Until then
  // forwarded IPv6 stalls, so wait for it.
  const waitForLinkLocal = async (targets: readonly { host: Host; ifname: string }[]) => {
    await waitFor(
      `IPv6 link-local addresses on ${targets.map((t) => `${t.host}/${t.ifname}`).join(' ')}`,
      async () => {
        for (const host of new Set(targets.map((t) => t.host))) {
          const r = await rootRun(['ip', '-n', ns[host], '-6', '-o', 'address', 'show', 'scope', 'link']);
          const ready = new Set(
            r.stdout
              .split('\n')
              .filter((l) => !/tentative/.test(l))
              .map((l) => (l.split(/\s+/)[1] ?? '').replace(/@.*$/, '')),
          );
          if (!targets.every((t) => t.host !== host || ready.has(t.ifname))) return false;
        }
        return true;
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    );
  };
  const allLinks = Object.entries(linkInterfaces()).flatMap(([host, ifs]) =>
    ifs.map((ifname) => ({ host: host as Host, ifname })),
  );

  try {
    // Leftovers of an earlier run that crashed (this prefix only, exact names only).
    const stale = await sweepNamespaces(names);
    if (stale.length > 0) throw new Error(`could not remove an earlier lab:\n  ${stale.join('\n  ')}`);
    removeStaleLogDirs(prefix);
    etc = netnsEtc(names);
    mkdirSync(logDir, { recursive: true });
    for (const argv of topologyCommands(ns)) await rootRun(argv);
    await waitForLinkLocal(allLinks);
  } catch (e) {
    await destroy().catch(() => {});
    throw e;
  }

  const fetchIn = async (host: Host, url: string, opts: FetchOptions = {}): Promise<FetchResult> => {
    const r = await runner(host)(curlArgv(url, opts), {
      allowFail: true,
      timeoutMs: (opts.timeoutMs ?? 5_000) + 5_000,
      ...(opts.body !== undefined ? { input: opts.body } : {}),
    });
    return parseCurl(r);
  };

  let servers: Lab['servers'] = null;
  if (options.servers ?? true) {
    try {
      const website = spawnIn('internet', [NODE24, join(REPO_ROOT, 'test/lab/servers/website.ts')]);
      const laptop = spawnIn('lan', [NODE24, join(REPO_ROOT, 'test/lab/servers/laptop.ts')]);
      servers = { website, laptop };
      const ready = async (proc: LabProcess, host: Host, urls: string[]) => {
        await waitFor(
          `${logName(proc.argv)} to answer in ${ns[host]}`,
          async () => {
            if (proc.exit) throw new Error(`it exited (${JSON.stringify(proc.exit)}): ${proc.output().trim()}`);
            const rs = await Promise.all(urls.map((u) => fetchIn(host, u, { timeoutMs: 1_000 })));
            return rs.every((r) => r.ok);
          },
          { timeoutMs: READY_MS, intervalMs: 100 },
        );
      };
      await Promise.all([
        ready(website, 'internet', [URLS.website4, URLS.website6]),
        ready(laptop, 'lan', [URLS.laptop4, URLS.laptop6]),
      ]);
    } catch (e) {
      await destroy().catch(() => {});
      throw e;
    }
  }

  return {
    prefix,
    ns,
    logDir,
    servers,
    runner,
    run: (host, argv, opts) => runner(host)(argv, opts),
    spawn: spawnIn,
    stop,
    kill9,
    fetch: fetchIn,
    async setLink(host, ifname, state) {
      await rootRun(['ip', '-n', ns[host], 'link', 'set', 'dev', ifname, state]);
      const link = findLink(host, ifname);
      if (state === 'down' || !link) return;
      // "down" dropped the routes through this link: put the topology's back.
      for (const end of [link.end, link.peer]) for (const argv of interfaceConfigCommands(ns, end)) await rootRun(argv);
      await waitForLinkLocal([link.end, link.peer]);
    },
    setResolvConf(host, text) {
      etc!.write(ns[host], 'resolv.conf', text);
    },
    pids: (host) => namespacePids(ns[host]),
    processes: () => [...procs].filter((p) => isAlive(p.pid)),
    destroy,
  };
}

/** Prints the end of every process log: what a failed test needs to be understood. */
function printLogTails(lab: Lab, lines = 20): void {
  let files: string[] = [];
  try {
    files = readdirSync(lab.logDir).filter((f) => f.endsWith('.log')).sort();
  } catch {
    return;
  }
  for (const file of files) {
    const tail = readText(join(lab.logDir, file)).trimEnd().split('\n').slice(-lines).join('\n');
    if (tail) process.stderr.write(`--- ${file} (last ${lines} lines)\n${tail}\n`);
  }
}

/**
 * Creates a lab, runs `fn` with it and always destroys it. When `fn` throws,
 * the end of each process log is printed and fn's error is the one that
 * propagates (a teardown problem is then only printed).
 */
export async function withLab<T>(fn: (lab: Lab) => Promise<T>, options: LabOptions = {}): Promise<T> {
  const lab = await createLab(options);
  let result: T;
  try {
    result = await fn(lab);
  } catch (e) {
    printLogTails(lab);
    await lab.destroy().catch((d: unknown) => process.stderr.write(`[lab] ${String(d)}\n`));
    throw e;
  }
  await lab.destroy();
  return result;
}
