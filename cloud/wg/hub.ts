import type { Runner } from '../../shared/run.ts';
import { wireguardGoArgv } from '../../shared/wireguard-go.ts';
import { canonicalAllowedIp, parseWgDump, type WgPeerStats } from '../../shared/wg-conf.ts';
import { wgSyncConf } from '../../shared/wg-syncconf.ts';
import { createSerialQueue } from '../../shared/serial-queue.ts';
import { formatEndpoint, parseEndpoint } from '../../shared/pairing-code.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import { checkHubDesired, type CheckedHub, type CheckedPeer, type HubDesired } from './hub-desired.ts';
import { readLink, syncAddresses, type LinkState } from '../../shared/ip-link.ts';
import { syncRoutes } from './routes.ts';

export type { HubDesired, HubPeer } from './hub-desired.ts';
export { AERIE_ROUTE_PROTO } from './routes.ts';

export interface PeerStats {
  publicKey: string;
  /** "host:port" the peer was last seen at, null before its first handshake. */
  endpoint: string | null;
  /** Unix seconds, 0 for never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface HubOptions {
  /** The interface set(null) and show() act on before the first set(); default "aerie0". */
  interface?: string;
  /** Started when the kernel has no WireGuard; default "wireguard-go" (found on PATH). */
  wireguardGo?: string;
}

export interface Hub {
  /** Makes the interface, its peers, addresses, MTU and routes match d; null removes them all. */
  set(d: HubDesired | null): Promise<void>;
  show(): Promise<PeerStats[]>;
}

interface Dump {
  privateKey: string;
  listenPort: number;
  peers: WgPeerStats[];
}

// wireguard-go's control socket outlives a deleted interface by a moment.
const START_ATTEMPTS = 20;
const START_RETRY_MS = 100;

/**
 * The VM's WireGuard hub. Every set() reads the current state first and issues
 * only the commands that change something, so repeating it is a no-op.
 */
export function createHub(run: Runner, opts: HubOptions = {}): Hub {
  const defaultName = checkInterfaceName(opts.interface ?? 'aerie0', 'interface');
  const wireguardGo = opts.wireguardGo ?? 'wireguard-go';
  // The interface the last successful set() brought up.
  let active: string | null = null;
  const serial = createSerialQueue();

  async function readDump(name: string): Promise<Dump> {
    // The first line holds the private key: compared here, never logged or returned.
    const { stdout } = await run(['wg', 'show', name, 'dump']);
    const head = (stdout.split('\n')[0] ?? '').split('\t');
    return { privateKey: head[0] ?? '', listenPort: Number(head[2]), peers: parseWgDump(stdout) };
  }

  async function createLink(name: string): Promise<LinkState> {
    const kernel = await run(['ip', 'link', 'add', 'dev', name, 'type', 'wireguard'], { allowFail: true });
    if (kernel.code !== 0) {
      const argv = wireguardGoArgv(name, wireguardGo);
      for (let attempt = 1; ; attempt++) {
        const r = await run(argv, { allowFail: true });
        if (r.code === 0) break;
        // It reports errors on stdout; stderr carries a banner. env exits 127 for a missing program.
        const why =
          r.code === 127
            ? 'not installed'
            : (`${r.stdout}\n${r.stderr}`.split('\n').find((l) => /error/i.test(l))?.trim() ?? `exit ${r.code}`);
        if (/socket in use/.test(why) && attempt < START_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, START_RETRY_MS));
          continue;
        }
        const noKernel = kernel.stderr.trim().split('\n')[0] ?? '';
        throw new Error(`${name}: no kernel WireGuard (${noKernel}) and ${wireguardGo} failed: ${why}`);
      }
    }
    const link = await readLink(run, name);
    if (!link) throw new Error(`${name}: the interface did not appear after it was created`);
    return link;
  }

  async function syncWireGuard(want: CheckedHub): Promise<void> {
    if (wgInSync(want, await readDump(want.name))) return;
    await wgSyncConf(run, want.name, want.conf);
    // syncconf leaves a keepalive alone when the config omits it, so turning one off takes wg set.
    const after = await readDump(want.name);
    for (const peer of want.peers) {
      const seen = after.peers.find((p) => p.publicKey === peer.publicKey);
      if (seen && seen.keepalive !== peer.keepalive) {
        await run(['wg', 'set', want.name, 'peer', peer.publicKey, 'persistent-keepalive', String(peer.keepalive)]);
      }
    }
  }

  async function removeLink(name: string): Promise<void> {
    // Deleting the link also ends wireguard-go and drops every route through it.
    if (await readLink(run, name)) await run(['ip', 'link', 'del', 'dev', name]);
  }

  async function apply(d: HubDesired | null): Promise<void> {
    if (d === null) {
      await syncRoutes(run, null, []);
      await removeLink(active ?? defaultName);
      active = null;
      return;
    }
    const want = checkHubDesired(d);
    if (active !== null && active !== want.name) await removeLink(active);
    const link = (await readLink(run, want.name)) ?? (await createLink(want.name));
    await syncWireGuard(want);
    if (link.mtu !== want.mtu) await run(['ip', 'link', 'set', 'dev', want.name, 'mtu', String(want.mtu)]);
    if (!link.up) await run(['ip', 'link', 'set', 'dev', want.name, 'up']);
    await syncAddresses(run, want.name, want.addresses);
    await syncRoutes(run, want.name, want.routes);
    active = want.name;
  }

  return {
    // One change at a time, in the order asked.
    set: (d) => serial(() => apply(d)),
    async show() {
      const name = active ?? defaultName;
      if (!(await readLink(run, name))) return [];
      return (await readDump(name)).peers.map((p) => ({
        publicKey: p.publicKey,
        endpoint: p.endpoint,
        latestHandshake: p.latestHandshake,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
      }));
    },
  };
}

function wgInSync(want: CheckedHub, have: Dump): boolean {
  if (have.privateKey !== want.privateKey || have.listenPort !== want.listenPort) return false;
  if (have.peers.length !== want.peers.length) return false;
  return want.peers.every((w) => {
    const h = have.peers.find((p) => p.publicKey === w.publicKey);
    if (!h || h.keepalive !== w.keepalive || !endpointMatches(w.endpoint, h.endpoint)) return false;
    const allowed = [...new Set(h.allowedIps.map((a) => canonicalAllowedIp(a)))].sort();
    return allowed.join(',') === w.allowedIps.join(',');
  });
}

/**
 * A peer without a configured endpoint may roam anywhere. A DNS name cannot be
 * compared with the address wg shows, so any known endpoint counts as a match.
 */
function endpointMatches(want: CheckedPeer['endpoint'], have: string | null): boolean {
  if (want === null) return true;
  if (have === null) return false;
  if (!want.literal) return true;
  try {
    const { host, port } = parseEndpoint(have);
    return formatEndpoint(host, port) === want.text;
  } catch {
    return false;
  }
}
