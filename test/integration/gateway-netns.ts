import { spawnSync } from 'node:child_process';
import { createRunner, type Runner } from '../../shared/run.ts';

/**
 * Network namespaces for the gateway's integration tests: created by the
 * test, named after its PID, removed again (processes killed by PID first)
 * even when a test fails, and synchronously, so it also works from an
 * 'exit' handler.
 */

export interface Netns {
  name: string;
  /** Runs argv inside the namespace. */
  run: Runner;
  /** `ip -n NAME …` */
  ip: (...args: string[]) => Promise<string>;
}

const host = createRunner();

export class NetnsSet {
  readonly prefix: string;
  private readonly names: string[] = [];
  private cleaned = false;

  constructor(prefix = `aerie-t-gw-${process.pid}`) {
    this.prefix = prefix;
    process.once('exit', () => this.cleanup());
  }

  async add(role: string): Promise<Netns> {
    const name = `${this.prefix}-${role}`;
    await host(['ip', 'netns', 'add', name]);
    this.names.push(name);
    const ns: Netns = {
      name,
      run: createRunner({ prefix: ['ip', 'netns', 'exec', name] }),
      ip: async (...args) => (await host(['ip', '-n', name, ...args])).stdout,
    };
    // No duplicate address detection: addresses (link-local ones too) are usable at once.
    await ns.run(['sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** PIDs of every process in our namespaces (wireguard-go, servers, pings). */
  pids(): number[] {
    return this.names.flatMap((n) => {
      const r = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' });
      return (r.stdout ?? '').split(/\s+/).filter(Boolean).map(Number);
    });
  }

  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (let round = 0; round < 20; round++) {
      const pids = this.pids();
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, round < 5 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          // gone already
        }
      }
      spawnSync('sleep', ['0.1']);
    }
    for (const n of this.names) spawnSync('ip', ['netns', 'del', n]);
  }
}

/** A veth pair between two namespaces. */
export async function link(a: Netns, aName: string, b: Netns, bName: string): Promise<void> {
  await a.ip('link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b.name);
  await a.ip('link', 'set', aName, 'up');
  await b.ip('link', 'set', bName, 'up');
}

/** Adds addresses; IPv6 without duplicate address detection, so it is usable at once. */
export async function addresses(ns: Netns, dev: string, ...cidrs: string[]): Promise<void> {
  for (const c of cidrs) {
    await ns.ip(...(c.includes(':') ? ['-6', 'addr', 'add', c, 'dev', dev, 'nodad'] : ['addr', 'add', c, 'dev', dev]));
  }
}

/** One ping, one second to answer: true when the reply came. */
export async function pings(ns: Netns, address: string): Promise<boolean> {
  const r = await ns.run(['ping', ...(address.includes(':') ? ['-6'] : []), '-c', '1', '-W', '1', '-n', '-q', address], {
    allowFail: true,
    timeoutMs: 5000,
  });
  return r.code === 0;
}

/** Pings until one reply comes, at most `tries` times: for paths that are still settling (neighbour discovery). */
export async function eventuallyPings(ns: Netns, address: string, tries = 5): Promise<boolean> {
  for (let i = 0; i < tries; i++) if (await pings(ns, address)) return true;
  return false;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
