import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { formatAddress, nthAddress, parsePrefix } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import type { Runner } from '../../shared/run.ts';
import { writeFileAtomic } from '../atomic-file.ts';

/**
 * IPv6 for the home from the VM (its /64, routed through the tunnel): the
 * router takes the prefix's first address on the LAN interface and announces
 * the prefix with radvd, so devices make their addresses (SLAAC, RFC 4862) and
 * use the router as their IPv6 gateway. What was set up is remembered in a
 * small file, so that set(null) in a fresh process can take it away.
 */

export interface HomeV6Desired {
  /** The LAN interface that gets the prefix. */
  interface: string;
  /** A /64 ("2001:db8:a0:2::/64"). */
  prefix: string;
}

export interface HomeV6 {
  set(desired: HomeV6Desired | null): Promise<void>;
}

export interface HomeV6Options {
  /** Where radvd's config, its pid file and our record go. */
  runDir: string;
  log?: (message: string) => void;
  /** The radvd binary (Debian's path by default). */
  radvd?: string;
}

const STATE_FILE = 'home-v6.json';

/** radvd's config: the prefix on-link and for SLAAC, the router as DNS server (its resolver asks the VM). */
export function radvdConfig(d: HomeV6Desired, routerAddress: string): string {
  return [
    '# Written by aerie-gateway; edits here are overwritten.',
    `interface ${d.interface} {`,
    '\tAdvSendAdvert on;',
    '\tMinRtrAdvInterval 10;',
    '\tMaxRtrAdvInterval 30;',
    `\tprefix ${d.prefix} {`,
    '\t\tAdvOnLink on;',
    '\t\tAdvAutonomous on;',
    // When radvd stops (the prefix changed, Aerie off), its last advertisement deprecates the prefix,
    // so devices stop opening connections from addresses that no longer route.
    '\t\tDeprecatePrefix on;',
    '\t};',
    `\tRDNSS ${routerAddress} {`,
    '\t};',
    '};',
    '',
  ].join('\n');
}

function check(d: HomeV6Desired): { prefix: string; address: string } {
  checkInterfaceName(d.interface, 'homeV6.interface');
  const p = parsePrefix(d.prefix, 'homeV6.prefix');
  if (p.family !== 6 || p.length !== 64) throw new ValidationError('homeV6.prefix', `expected an IPv6 /64, got ${d.prefix}`);
  return { prefix: d.prefix, address: formatAddress(nthAddress(p, 1)) };
}

export function createHomeV6(run: Runner, opts: HomeV6Options): HomeV6 {
  const radvd = opts.radvd ?? '/usr/sbin/radvd';
  const log = opts.log ?? (() => {});
  const stateFile = join(opts.runDir, STATE_FILE);
  const confFile = join(opts.runDir, 'radvd.conf');
  const pidFile = join(opts.runDir, 'radvd.pid');
  let saidNoRadvd = false;

  const recorded = (): { interface: string; address: string } | null => {
    try {
      const r = JSON.parse(readFileSync(stateFile, 'utf8')) as { interface?: unknown; address?: unknown };
      return typeof r.interface === 'string' && typeof r.address === 'string' ? { interface: r.interface, address: r.address } : null;
    } catch {
      return null;
    }
  };

  // The pid file outlives a radvd that crashed, and its number may be another program's by now.
  const radvdPid = (): number | null => {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1) return null;
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'radvd' ? pid : null;
    } catch {
      return null;
    }
  };

  const stopRadvd = async () => {
    const pid = radvdPid();
    if (pid !== null) {
      process.kill(pid, 'SIGTERM');
      // Bounded: radvd sends its final advertisement (router lifetime 0) and exits.
      for (let i = 0; i < 50 && radvdPid() !== null; i++) await new Promise((r) => setTimeout(r, 20));
    }
    rmSync(pidFile, { force: true });
  };

  const hasAddress = async (iface: string, address: string) => {
    const r = await run(['ip', '-j', '-6', 'addr', 'show', 'dev', iface], { allowFail: true });
    if (r.code !== 0) return false;
    const links = JSON.parse(r.stdout || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    return links.some((l) => (l.addr_info ?? []).some((a) => a.local === address && a.prefixlen === 64));
  };

  async function remove(): Promise<void> {
    await stopRadvd();
    const r = recorded();
    if (r && (await hasAddress(r.interface, r.address))) await run(['ip', '-6', 'addr', 'del', `${r.address}/64`, 'dev', r.interface]);
    rmSync(stateFile, { force: true });
    rmSync(confFile, { force: true });
  }

  return {
    async set(desired) {
      if (desired === null) return remove();
      const { address } = check(desired);
      const before = recorded();
      if (before && (before.interface !== desired.interface || before.address !== address)) await remove();
      mkdirSync(opts.runDir, { recursive: true, mode: 0o755 });
      if (before?.interface !== desired.interface || before.address !== address) {
        await writeFileAtomic(stateFile, `${JSON.stringify({ interface: desired.interface, address })}\n`);
      }
      if (!(await hasAddress(desired.interface, address))) {
        await run(['ip', '-6', 'addr', 'add', `${address}/64`, 'dev', desired.interface, 'nodad']);
      }
      const conf = radvdConfig(desired, address);
      let current = '';
      try {
        current = readFileSync(confFile, 'utf8');
      } catch {
        // none yet
      }
      if (current === conf && radvdPid() !== null) return;
      await stopRadvd();
      await writeFileAtomic(confFile, conf);
      const started = await run([radvd, '--config', confFile, '--pidfile', pidFile], { allowFail: true });
      if (started.code !== 0) {
        // The address still works for devices set up by hand; say once why nothing is announced.
        if (!saidNoRadvd) log(`could not start radvd (${started.stderr.trim() || `exit ${started.code}`}): the home's IPv6 prefix is not announced`);
        saidNoRadvd = true;
      }
    },
  };
}
