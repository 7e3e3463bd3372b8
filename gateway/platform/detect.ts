import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { ValidationError } from '../../shared/errors.ts';

/**
 * Which adapter runs: OpenWrt when the system says it is OpenWrt
 * (/etc/openwrt_release, written by base-files) and ubus answers, since the
 * OpenWrt adapter does everything through ubus; plain Linux otherwise.
 * AERIE_PLATFORM overrides both ways (a Debian router with ubus, a test).
 */

export type PlatformName = 'linux' | 'openwrt';

export interface PlatformProbes {
  openwrtRelease: boolean;
  /** The ubus socket that accepted a connection, or null. */
  ubusSocket: string | null;
  override: PlatformName | null;
}

export interface Detected {
  name: PlatformName;
  reason: string;
}

/** Pure: the same probes always give the same answer. */
export function detectPlatform(p: PlatformProbes): Detected {
  if (p.override) return { name: p.override, reason: `AERIE_PLATFORM=${p.override}` };
  if (p.openwrtRelease && p.ubusSocket) return { name: 'openwrt', reason: `/etc/openwrt_release and ubus at ${p.ubusSocket}` };
  if (p.openwrtRelease) return { name: 'linux', reason: '/etc/openwrt_release but ubus does not answer: using ip, wg and nft' };
  return { name: 'linux', reason: 'not OpenWrt (no /etc/openwrt_release)' };
}

/** libubus's default socket, then the path of releases before 2021 (as the ubus client tries them). */
export const UBUS_SOCKETS = ['/var/run/ubus/ubus.sock', '/var/run/ubus.sock'];

export function parseOverride(value: string | undefined): PlatformName | null {
  if (value === undefined || value === '') return null;
  if (value === 'linux' || value === 'openwrt') return value;
  throw new ValidationError('AERIE_PLATFORM', `expected linux or openwrt, got ${JSON.stringify(value.slice(0, 40))}`);
}

export async function probePlatform(env: NodeJS.ProcessEnv = process.env): Promise<PlatformProbes> {
  const override = parseOverride(env.AERIE_PLATFORM);
  const openwrtRelease = existsSync('/etc/openwrt_release');
  let ubusSocket: string | null = null;
  if (openwrtRelease) {
    for (const path of UBUS_SOCKETS) {
      if (existsSync(path) && (await accepts(path))) {
        ubusSocket = path;
        break;
      }
    }
  }
  return { openwrtRelease, ubusSocket, override };
}

/** A stale socket file (ubusd gone) refuses the connection. */
function accepts(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

let said: string | null = null;

/** Probes and decides; the choice and why are logged once per process, not at every call. */
export async function choosePlatform(log: (m: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<Detected> {
  const d = detectPlatform(await probePlatform(env));
  const line = `platform: ${d.name} (${d.reason})`;
  if (said !== line) log(line);
  said = line;
  return d;
}
