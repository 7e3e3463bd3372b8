// The test runner behind `make test`: every *.test.ts file runs as its own
// process on Node 24 with a time limit; uvu's summary of each is added up and
// the last line of output is the one summary "N passed, N failed[, N skipped]".
//
//   node test/run.ts [unit|integration|lab]... [path/to/file.test.ts]...
//
// No group and no file means all three groups. Exit status 0 only when nothing
// failed and at least one test ran.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const GROUPS = ['unit', 'integration', 'lab'] as const;
type Group = (typeof GROUPS)[number];

/** Per-file limits; AERIE_TEST_TIMEOUT (seconds) overrides them all. */
const TIMEOUT_S: Record<Group, number> = { unit: 60, integration: 120, lab: 300 };
/** After SIGTERM, time for a file to tear its lab down before SIGKILL. */
const GRACE_MS = 20_000;

interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

interface Job {
  file: string;
  group: Group | null;
}

function findTests(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

function groupOf(file: string): Group | null {
  const rel = relative(join(ROOT, 'test'), file).split('/')[0];
  return GROUPS.find((g) => g === rel) ?? null;
}

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** uvu's final summary, or null if the file never printed one. */
function parseUvuSummary(output: string): Tally | null {
  const text = stripAnsi(output);
  const last = (re: RegExp) => {
    const all = [...text.matchAll(re)];
    const m = all[all.length - 1];
    return m ? Number(m[1]) : null;
  };
  const total = last(/^\s*Total:\s+(\d+)\s*$/gm);
  const passed = last(/^\s*Passed:\s+(\d+)\s*$/gm);
  const skipped = last(/^\s*Skipped:\s+(\d+)\s*$/gm);
  if (total === null || passed === null) return null;
  return { passed, failed: Math.max(0, total - passed), skipped: skipped ?? 0 };
}

function summaryLine(t: Tally): string {
  return `${t.passed} passed, ${t.failed} failed${t.skipped > 0 ? `, ${t.skipped} skipped` : ''}`;
}

let current: { pid: number; done: Promise<unknown> } | null = null;
let interrupted = false;

/** Signals the file's whole process group (it runs detached, as its group's leader). */
function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

async function runFile(job: Job, timeoutS: number): Promise<{ tally: Tally; note: string | null }> {
  const rel = relative(ROOT, job.file);
  process.stdout.write(`\n── ${rel}\n`);
  const env = { ...process.env };
  if (process.stdout.isTTY && env['NO_COLOR'] === undefined) env['FORCE_COLOR'] = '1';
  const child = spawn(NODE, [job.file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString('utf8');
    process.stdout.write(d);
  });
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d));

  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    process.stderr.write(`\n${rel}: timed out after ${timeoutS} s, stopping it\n`);
    signalGroup(child.pid ?? 0, 'SIGTERM');
    killTimer = setTimeout(() => signalGroup(child.pid ?? 0, 'SIGKILL'), GRACE_MS);
  }, timeoutS * 1000);

  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>((res) => {
    child.on('error', (e) => res({ code: null, signal: null, error: e.message }));
    child.on('close', (code, signal) => res({ code, signal }));
  });
  current = { pid: child.pid ?? 0, done };
  const end = await done;
  current = null;
  clearTimeout(timer);
  clearTimeout(killTimer);

  const parsed = parseUvuSummary(output);
  const how = end.error ?? (end.signal ? `killed by ${end.signal}` : `exit status ${end.code}`);
  if (timedOut) return { tally: addFailure(parsed), note: `timed out after ${timeoutS} s (${how})` };
  if (!parsed) return { tally: { passed: 0, failed: 1, skipped: 0 }, note: `no test summary (${how})` };
  if (end.code !== 0 && parsed.failed === 0) return { tally: addFailure(parsed), note: `${how} after all tests passed` };
  return { tally: parsed, note: parsed.failed > 0 ? `${parsed.failed} failed` : null };
}

/** A file that ended badly counts as one more failure on top of what it reported. */
function addFailure(t: Tally | null): Tally {
  return t ? { ...t, failed: t.failed + 1 } : { passed: 0, failed: 1, skipped: 0 };
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: node test/run.ts [unit|integration|lab]... [FILE.test.ts]...\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const groups: Group[] = [];
  const files: string[] = [];
  for (const a of args) {
    if ((GROUPS as readonly string[]).includes(a)) groups.push(a as Group);
    else if (a.endsWith('.test.ts') && existsSync(a)) files.push(resolve(a));
    else usage(`unknown group or test file: ${a}`);
  }
  if (groups.length === 0 && files.length === 0) groups.push(...GROUPS);

  const jobs: Job[] = [];
  for (const g of groups) for (const file of findTests(join(ROOT, 'test', g))) jobs.push({ file, group: g });
  for (const file of files) if (!jobs.some((j) => j.file === file)) jobs.push({ file, group: groupOf(file) });

  const total: Tally = { passed: 0, failed: 0, skipped: 0 };
  const problems: string[] = [];
  const isRoot = process.getuid?.() === 0;
  const labJobs = jobs.filter((j) => j.group === 'lab');
  if (!isRoot && (groups.includes('lab') || labJobs.length > 0)) {
    // Not skipped: a run that silently leaves out the lab must not look green.
    const n = Math.max(1, labJobs.length);
    process.stderr.write(
      `\nlab tests need root (they create network namespaces): run \`make test\` as root, or \`make test-unit\` without root.` +
        ` Counting ${n} lab file(s) as failed.\n`,
    );
    total.failed += n;
    problems.push(`lab: not run, needs root (${n} failed)`);
  }
  const runnable = jobs.filter((j) => isRoot || j.group !== 'lab');
  for (const g of groups) if (!jobs.some((j) => j.group === g)) process.stdout.write(`(no test files in test/${g})\n`);

  const envTimeout = Number(process.env['AERIE_TEST_TIMEOUT']);
  for (const job of runnable) {
    if (interrupted) break;
    const timeoutS = envTimeout > 0 ? envTimeout : TIMEOUT_S[job.group ?? 'integration'];
    const { tally, note } = await runFile(job, timeoutS);
    total.passed += tally.passed;
    total.failed += tally.failed;
    total.skipped += tally.skipped;
    if (note) problems.push(`${relative(ROOT, job.file)}: ${note}`);
  }
  if (interrupted) {
    total.failed += 1;
    problems.push('interrupted');
  }

  process.stdout.write('\n');
  for (const p of problems) process.stdout.write(`FAILED ${p}\n`);
  if (total.passed + total.failed === 0) process.stdout.write('no tests ran\n');
  process.stdout.write(`${summaryLine(total)}\n`);
  return total.failed === 0 && total.passed > 0 ? 0 : 1;
}

// Ctrl-C: let the running file tear its lab down (it gets SIGTERM), then report.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) {
      if (current) signalGroup(current.pid, 'SIGKILL');
      process.exit(130);
    }
    interrupted = true;
    if (current) signalGroup(current.pid, 'SIGTERM');
  });
}

process.exitCode = await main();
