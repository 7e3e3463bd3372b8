// Where the DNS benchmark's servers and clients run: inside one lab
// namespace (the real setting: the VM), or on this machine's loopback (to
// try the dnsmasq half without a lab). Processes are tracked by PID and
// stopped by PID.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRunner, type RunOptions, type RunResult } from '../../shared/run.ts';
import type { Host, Lab, LabProcess, ProcessExit } from '../../test/lab/lib/lab.ts';

export interface Proc {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly logFile: string;
  /** null while it runs. */
  exit: ProcessExit | null;
  readonly exited: Promise<ProcessExit>;
  output(): string;
}

export interface Place {
  /** For the report: "the lab's vm namespace" or "loopback". */
  readonly label: string;
  /** `logName` is a file name; the place decides the directory. `env` is added to this process's environment. */
  spawn(argv: readonly string[], logName: string, env?: Record<string, string>): Proc;
  /** SIGTERM, a bounded wait, then SIGKILL. */
  stop(proc: Proc): Promise<void>;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

export function labPlace(lab: Lab, host: Host): Place {
  const mine = new WeakMap<Proc, LabProcess>();
  return {
    label: `the lab's ${host} namespace (${lab.ns[host]})`,
    spawn(argv, logName, env) {
      const p = lab.spawn(host, argv, { logFile: logName, ...(env && { env }) });
      mine.set(p, p);
      return p;
    },
    stop: async (proc) => {
      const p = mine.get(proc);
      if (!p) throw new Error(`PID ${proc.pid} was not started here`);
      await lab.stop(p, { timeoutMs: 5_000 });
    },
    run: (argv, opts) => lab.run(host, argv, opts),
  };
}

const readText = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** Processes on this machine; `stopAll` is for the caller's finally, `killAll` for a signal handler. */
export function localPlace(logDir: string): Place & { stopAll(): Promise<void>; killAll(): void } {
  const live = new Set<Proc>();
  const run = createRunner();
  const stop = async (proc: Proc) => {
    if (proc.exit) return;
    const waitExit = (ms: number) =>
      Promise.race([proc.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    try {
      process.kill(proc.pid, 'SIGTERM');
    } catch {
      return;
    }
    if (await waitExit(5_000)) return;
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      return;
    }
    if (!(await waitExit(3_000))) throw new Error(`PID ${proc.pid} (${proc.argv[0]}) survived SIGKILL`);
  };
  return {
    label: 'loopback (no lab)',
    spawn(argv, logName, env) {
      const logFile = isAbsolute(logName) ? logName : join(logDir, logName);
      const fd = openSync(logFile, 'a');
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], ...(env && { env: { ...process.env, ...env } }) });
      closeSync(fd);
      let resolveExit: (e: ProcessExit) => void = () => {};
      const exited = new Promise<ProcessExit>((r) => (resolveExit = r));
      const proc: Proc = { pid: child.pid ?? -1, argv: [...argv], logFile, exit: null, exited, output: () => readText(logFile) };
      const finish = (e: ProcessExit) => {
        if (proc.exit) return;
        proc.exit = e;
        live.delete(proc);
        resolveExit(e);
      };
      child.on('error', (e) => {
        process.stderr.write(`could not start ${argv[0]}: ${e.message}\n`);
        finish({ code: 127, signal: null });
      });
      child.on('exit', (code, sig) => finish({ code, signal: sig }));
      if (proc.pid > 0) live.add(proc);
      return proc;
    },
    stop,
    run: (argv, opts) => run(argv, opts),
    async stopAll() {
      await Promise.allSettled([...live].map(stop));
    },
    killAll() {
      for (const p of live) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

/** Waits until the process printed `text`; throws when it exits first or after `timeoutMs`. */
export async function waitForOutput(proc: Proc, text: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (proc.exit) throw new Error(`${proc.argv[0]} exited: ${proc.output().trim().slice(-300)}`);
    if (performance.now() > deadline) throw new Error(`${proc.argv[0]} did not print "${text}" within ${timeoutMs} ms`);
    await sleep(10);
  }
}
