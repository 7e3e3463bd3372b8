// The Debian programs the DNS benchmark runs: unbound as the shared upstream,
// dnsmasq as the baseline, dnsperf as the load. Configuration only; starting
// and measuring is the caller's.
import { accessSync, constants, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AllowedName } from './dns-workload.ts';

export const PROGRAMS = {
  unbound: { path: '/usr/sbin/unbound', pkg: 'unbound' },
  dnsmasq: { path: '/usr/sbin/dnsmasq', pkg: 'dnsmasq-base' },
  dnsperf: { path: '/usr/bin/dnsperf', pkg: 'dnsperf' },
} as const;

/** Throws naming the Debian packages to install when a program is missing. */
export function checkPrograms(): void {
  const missing = Object.values(PROGRAMS).filter((p) => {
    try {
      accessSync(p.path, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(`missing ${missing.map((p) => p.path).join(', ')}: apt-get install ${missing.map((p) => p.pkg).join(' ')}`);
  }
}

/**
 * unbound as an authoritative-only stand-in for the internet: everything it
 * knows is local data, every other name is NXDOMAIN at once (a "static" root
 * zone), so it never sends a packet anywhere and never waits on a timeout.
 */
export function writeUnboundConfig(dir: string, o: { address: string; port: number; ttl: number; zone: readonly AllowedName[] }): string {
  const lines = [
    'server:',
    `  interface: ${o.address}@${o.port}`,
    `  port: ${o.port}`,
    '  do-daemonize: no',
    '  chroot: ""',
    '  username: ""',
    '  pidfile: ""',
    `  directory: "${dir}"`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 0',
    '  num-threads: 1',
    '  do-ip6: no',
    '  module-config: "iterator"',
    '  local-zone: "." static',
  ];
  for (const z of o.zone) {
    lines.push(`  local-data: "${z.name}. ${o.ttl} IN A ${z.a}"`, `  local-data: "${z.name}. ${o.ttl} IN AAAA ${z.aaaa}"`);
  }
  lines.push('remote-control:', '  control-enable: no', '');
  const file = join(dir, 'unbound.conf');
  writeFileSync(file, lines.join('\n'), { mode: 0o644 });
  return file;
}

export function unboundArgv(configFile: string): string[] {
  return [PROGRAMS.unbound.path, '-d', '-c', configFile];
}

/**
 * dnsmasq as a router would run it with a blocklist: no resolv.conf, the
 * one upstream, the list as `address=` lines. No /etc/hosts (it is the
 * machine's, not part of the comparison) and logs on stderr.
 */
export function dnsmasqArgv(o: { address: string; port: number; upstream: { address: string; port: number }; confFile: string; cacheSize: number }): string[] {
  return [
    PROGRAMS.dnsmasq.path,
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    `--server=${o.upstream.address}#${o.upstream.port}`,
    `--conf-file=${o.confFile}`,
    `--cache-size=${o.cacheSize}`,
    `--listen-address=${o.address}`,
    '--bind-interfaces',
    `--port=${o.port}`,
    '--pid-file=',
    '--user=root',
    '--log-facility=-',
  ];
}
