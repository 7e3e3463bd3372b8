import { readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { isAlive, namespaceNames, namespacePids, signal, terminate } from './pids.ts';

/** wireguard-go keeps its control socket here, shared by every namespace. */
const WG_SOCKET_DIR = '/var/run/wireguard';

/** The interface name of a wireguard-go process, from its command line. */
function wireguardGoInterface(pid: number): string | null {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    if (!(argv[0] ?? '').endsWith('wireguard-go')) return null;
    const ifname = argv[argv.length - 1] ?? '';
    return /^[A-Za-z0-9_.-]{1,15}$/.test(ifname) ? ifname : null;
  } catch {
    return null;
  }
}

/** A wireguard-go that had to be SIGKILLed leaves its socket behind; remove it. */
function removeWireguardSockets(ifnames: readonly string[]): void {
  for (const ifname of ifnames) rmSync(`${WG_SOCKET_DIR}/${ifname}.sock`, { force: true });
}

/**
 * Ends every process inside the given namespaces (by PID: SIGTERM, bounded
 * wait, SIGKILL) and deletes the namespaces. Returns what could not be cleaned.
 */
export async function sweepNamespaces(names: readonly string[], graceMs = 3_000): Promise<string[]> {
  const problems: string[] = [];
  const present = new Set(namespaceNames());
  const ours = names.filter((n) => present.has(n));
  // Bounded rounds: a process may start another while we are killing it.
  for (let round = 0; round < 3; round++) {
    const pids = ours.flatMap(namespacePids);
    if (pids.length === 0) break;
    const wg = pids.map((pid) => ({ pid, ifname: wireguardGoInterface(pid) }));
    await terminate(pids, graceMs);
    removeWireguardSockets(wg.flatMap((w) => (w.ifname !== null && !isAlive(w.pid) ? [w.ifname] : [])));
  }
  const survivors = ours.flatMap(namespacePids);
  if (survivors.length > 0) problems.push(`processes survived SIGKILL: ${survivors.join(' ')}`);
  for (const ns of ours) {
    const r = spawnSync('ip', ['netns', 'delete', ns], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) problems.push(`ip netns delete ${ns}: ${(r.stderr ?? '').trim() || `exit ${r.status}`}`);
  }
  const left = new Set(namespaceNames());
  for (const ns of ours) if (left.has(ns)) problems.push(`namespace ${ns} still exists`);
  return problems;
}

/** The same, synchronously and without grace: for the process 'exit' hook. */
export function sweepNamespacesSync(names: readonly string[], pids: readonly number[]): void {
  for (const pid of pids) if (isAlive(pid)) signal(pid, 'SIGKILL');
  const present = new Set(namespaceNames());
  for (const ns of names) {
    if (!present.has(ns)) continue;
    for (const pid of namespacePids(ns)) signal(pid, 'SIGKILL');
    spawnSync('ip', ['netns', 'delete', ns], { timeout: 10_000 });
  }
}
