import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** Fields of /proc/PID/stat after the command name (which may contain spaces). */
function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** True while the process exists and is not a zombie (a zombie holds no namespace). */
export function isAlive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[0] !== 'Z' && fields[0] !== 'X';
}

/** Clock ticks since boot when the process started: with the PID, tells a reused PID apart. */
export function startTime(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until none of the PIDs is alive, at most `timeoutMs`. Returns those still alive. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** SIGTERM, a bounded wait, then SIGKILL. Returns PIDs that survived even that. */
export async function terminate(pids: readonly number[], graceMs: number): Promise<number[]> {
  for (const pid of pids) signal(pid, 'SIGTERM');
  const left = await waitGone(pids, graceMs);
  for (const pid of left) signal(pid, 'SIGKILL');
  return waitGone(left, 2_000);
}

/** PIDs of processes inside a named network namespace (empty if it does not exist). */
export function namespacePids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

/** Names of the existing network namespaces. */
export function namespaceNames(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}
