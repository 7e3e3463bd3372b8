import { linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { isAlive, sleep, startTime } from './pids.ts';

/** Lock files live beside the namespaces (both are per machine, not per user). */
export const LOCK_DIR = '/run/aerie-lab';

export interface LabLock {
  path: string;
  release(): void;
}

interface Owner {
  pid: number;
  start: string | null;
}

function readOwner(path: string): Owner | null {
  try {
    const [pid, start] = readFileSync(path, 'utf8').trim().split(' ');
    const n = Number(pid);
    return Number.isInteger(n) && n > 0 ? { pid: n, start: start ?? null } : null;
  } catch {
    return null;
  }
}

/** Alive and the same process that wrote the lock (not a reused PID). */
function ownerAlive(o: Owner): boolean {
  return isAlive(o.pid) && (o.start === null || startTime(o.pid) === o.start);
}

/**
 * Takes the lock for one lab prefix: a file created exclusively, holding the
 * owner's PID and start time. A lock whose owner is gone is stale and taken over.
 * Waits at most `waitMs` for a live owner, then throws saying who holds it.
 */
export async function acquireLock(prefix: string, waitMs: number): Promise<LabLock> {
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o755 });
  const path = `${LOCK_DIR}/${prefix}lock`;
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    // Written in full under a private name, then linked into place: link(2)
    // fails if the lock exists, so nobody ever reads a half-written lock.
    const tmp = `${path}.${process.pid}`;
    writeFileSync(tmp, `${process.pid} ${startTime(process.pid) ?? ''}\n`, { mode: 0o644 });
    try {
      linkSync(tmp, path);
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          if (readOwner(path)?.pid === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
    const owner = readOwner(path);
    if (owner === null || !ownerAlive(owner)) {
      // Stale: its owner crashed without cleaning up. Remove and try again.
      try {
        unlinkSync(path);
      } catch {
        // someone else removed it first
      }
      continue;
    }
    if (Date.now() >= deadline) {
      const who = owner.pid === process.pid ? 'this process (destroy the other lab first)' : `PID ${owner.pid}`;
      throw new Error(`lab prefix "${prefix}" is in use by ${who}; lock file ${path}`);
    }
    await sleep(200);
  }
  throw new Error(`could not take the lab lock ${path}`);
}
