import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a command printed and how it ended. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's standard input (secrets go here, never in argv). */
  input?: string;
  /** Resolve with the result instead of throwing when the exit status is not 0. */
  allowFail?: boolean;
  /** Kill the command after this long (default 15 s). */
  timeoutMs?: number;
}

/** Runs one command given as an argv array. Never a shell string. */
export type Runner = (argv: readonly string[], opts?: RunOptions) => Promise<RunResult>;

export class CommandError extends Error {
  readonly argv: readonly string[];
  readonly code: number;
  readonly stderr: string;
  constructor(argv: readonly string[], code: number, stderr: string) {
    super(`${argv.join(' ')} failed (exit ${code})${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`);
    this.name = 'CommandError';
    this.argv = argv;
    this.code = code;
    this.stderr = stderr;
  }
}

export interface RunnerOptions {
  /** Prepended to every argv, e.g. ['ip', 'netns', 'exec', 'lab-router']. */
  prefix?: readonly string[];
  /** Called with each argv before it runs (for debugging; argv never holds secrets). */
  trace?: (argv: readonly string[]) => void;
  env?: NodeJS.ProcessEnv;
}

/** How long output may keep arriving after the command has exited. */
const EXIT_GRACE_MS = 500;

export function createRunner(options: RunnerOptions = {}): Runner {
  const prefix = options.prefix ?? [];
  return (argv, opts = {}) => {
    const full = [...prefix, ...argv];
    options.trace?.(full);
    const [cmd, ...args] = full;
    if (!cmd) return Promise.reject(new Error('empty command'));
    let stdin: number | 'ignore' = 'ignore';
    if (opts.input !== undefined) {
      try {
        stdin = inputFile(opts.input);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, {
        stdio: [stdin, 'pipe', 'pipe'],
        env: options.env ?? process.env,
        timeout: opts.timeoutMs ?? 15_000,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => err.push(d));
      let settled = false;
      let grace: ReturnType<typeof setTimeout> | undefined;
      const settle = (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(grace);
        const result: RunResult = {
          code: code ?? (signal ? 128 : 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        };
        if (result.code !== 0 && !opts.allowFail) reject(new CommandError(full, result.code, result.stderr));
        else resolve(result);
      };
      child.on('error', (e) => {
        settled = true;
        clearTimeout(grace);
        reject(new CommandError(full, 127, e.message));
      });
      // 'close' waits for every holder of our pipes; a daemon's forked child may
      // keep them open for good, so after 'exit' the output gets a moment to drain.
      child.on('exit', (code, signal) => {
        grace = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          settle(code, signal);
        }, EXIT_GRACE_MS);
      });
      child.on('close', (code, signal) => settle(code, signal));
      if (typeof stdin === 'number') closeSync(stdin); // the child holds its own copy
    });
  };
}

// Memory-backed where the system has it, so a secret never reaches a disk.
const INPUT_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
let inputSeq = 0;

/**
 * Standard input as an unlinked 0600 file rather than a pipe: Node's pipes are
 * sockets, and tools that open "/dev/stdin" by name (`wg setconf IF /dev/stdin`)
 * cannot open a socket. A file opened before its unlink is readable by name
 * through /proc/self/fd/0 and nowhere else.
 */
function inputFile(input: string): number {
  const path = join(INPUT_DIR, `.aerie-in-${process.pid}-${++inputSeq}`);
  const fd = openSync(path, 'wx+', 0o600);
  try {
    unlinkSync(path);
    writeSync(fd, input, 0, 'utf8');
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * A runner for unit tests: records every argv (and input) and answers from a
 * table of canned results keyed by the joined argv; anything else succeeds empty.
 */
export function createRecordingRunner(answers: Record<string, Partial<RunResult>> = {}) {
  const calls: { argv: string[]; input?: string }[] = [];
  const run: Runner = async (argv, opts = {}) => {
    calls.push(opts.input === undefined ? { argv: [...argv] } : { argv: [...argv], input: opts.input });
    const a = answers[argv.join(' ')];
    const result: RunResult = { code: a?.code ?? 0, stdout: a?.stdout ?? '', stderr: a?.stderr ?? '' };
    if (result.code !== 0 && !opts.allowFail) throw new CommandError(argv, result.code, result.stderr);
    return result;
  };
  return { run, calls };
}
