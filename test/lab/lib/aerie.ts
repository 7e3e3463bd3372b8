// Aerie in the lab: the steps a user takes (init, serve, pair, run, add a
// phone), each as the real command in the right namespace. Used by the lab
// tests, the demo and the benchmarks.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLOUD_MALLOC_ENV, CLOUD_NODE_FLAGS } from '../../../cloud/node-flags.ts';
import { DAEMON_NODE_FLAGS } from '../../../gateway/node-flags.ts';
import { isValidAddress } from '../../../shared/cidr.ts';
import { resolvConf, startRouterDns } from './dns.ts';
import { ADDR, NODE20, NODE24, PREFIX, REPO_ROOT, URLS, WG_IF, waitFor, type Lab, type LabProcess } from './lab.ts';

export const CLOUD = join(REPO_ROOT, 'dist/aerie-cloud.mjs');
export const GATEWAY = join(REPO_ROOT, 'dist/aerie-gateway.mjs');

// OpenWrt's default firewall masquerades the LAN out of the WAN. With it the
// lab's router behaves like a real one, and a leak past the tunnel would show
// the router's WAN address to the website.
const ROUTER_MASQUERADE = `table inet lab_fw4 {
  chain srcnat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
}
`;

export interface Aerie {
  lab: Lab;
  stateDir: string;
  configPath: string;
  cloud: LabProcess | null;
  gateway: LabProcess | null;
  /** The router's resolv file: pairGateway sets it as the gateway's dnsResolvFile. */
  routerResolvFile: string;
  /** The router's dnsmasq, once startRouterDns() ran. */
  routerDns: LabProcess | null;
  cloudCli(args: string[], opts?: { allowFail?: boolean }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** `aerie-gateway ARGS --config PATH` (the router's config unless opts.config names another). */
  gatewayCli(args: string[], opts?: { allowFail?: boolean; config?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  startCloud(): Promise<LabProcess>;
  stopCloud(): Promise<void>;
  startGateway(): Promise<LabProcess>;
  /** `aerie-cloud pair` → the code, one line. */
  pairingCode(): Promise<string>;
  /** `aerie-gateway pair CODE --lan-interface lan0` (or those named), then `dnsResolvFile` set in its config, as a router package would. */
  pairGateway(code: string, lanInterfaces?: string[]): Promise<void>;
  /** dnsmasq in the router, on the LAN addresses, forwarding to what the gateway writes to routerResolvFile. */
  startRouterDns(): Promise<LabProcess>;
  /**
   * `aerie-cloud device add NAME` and `wg-quick up` on the phone with the printed
   * text, except its DNS line: wg-quick would hand that to resolvconf, which the
   * lab lacks, so its servers and search domains go to the phone's own
   * resolv.conf instead (lab.setResolvConf). Returns the printed text.
   */
  addPhone(name?: string, extra?: string[]): Promise<string>;
  /** Resolves when the laptop's traffic reaches the website through the VM. */
  waitLaptopThroughVm(timeoutMs?: number): Promise<void>;
}

export interface AerieOptions {
  /** `--public-endpoint` (default the VM's IPv4 address). */
  publicEndpoint?: string;
  /** `--dns-upstream SPEC` for each, e.g. ['udp:192.0.2.83'] (the lab DNS server, lib/dns.ts). */
  dnsUpstream?: string[];
  /** `--dns-lists default|none`; the lab has no real internet to fetch the default lists from. */
  dnsLists?: 'default' | 'none';
  /** `--home-v6-prefix`: a prefix the lab's internet routes to the VM, for homes' global IPv6. */
  homeV6Prefix?: string;
}

/**
 * A wg-quick config without its DNS line, and what that line said: addresses
 * are servers, anything else a search domain (wg-quick(8)).
 */
export function splitWgQuickDns(text: string): { config: string; servers: string[]; search: string[] } {
  const servers: string[] = [];
  const search: string[] = [];
  const lines = text.split('\n').filter((line) => {
    const m = /^\s*DNS\s*=\s*(.*)$/i.exec(line);
    if (!m) return true;
    for (const item of m[1]!.split(',').map((x) => x.trim()).filter(Boolean)) (isValidAddress(item) ? servers : search).push(item);
    return false;
  });
  return { config: lines.join('\n'), servers, search };
}

/** The lab with the VM initialized (not yet serving) and the router's fw4-like masquerade. */
export async function setUpAerie(lab: Lab, opts: AerieOptions = {}): Promise<Aerie> {
  const stateDir = join(lab.logDir, 'vm-state');
  const configDir = join(lab.logDir, 'router-etc');
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const configPath = join(configDir, 'gateway.json');
  // Where OpenWrt keeps the resolv file its dnsmasq reads is /tmp/resolv.conf.d; here, beside the config.
  const routerResolvFile = join(configDir, 'resolv.conf.d', 'resolv.conf.aerie');
  await lab.run('router', ['nft', '-f', '/dev/stdin'], { input: ROUTER_MASQUERADE });

  const cloudCli: Aerie['cloudCli'] = (args, opts = {}) =>
    lab.run('vm', [NODE24, CLOUD, ...args, '--state-dir', stateDir], { allowFail: opts.allowFail ?? false, timeoutMs: 20_000 });
  // The router's run-time files (radvd's), apart from the machine's own /run/aerie.
  const routerRunDir = join(lab.logDir, 'router-run');
  const gatewayCli: Aerie['gatewayCli'] = (args, opts = {}) =>
    lab.run('router', ['env', `AERIE_RUN_DIR=${routerRunDir}`, NODE20, GATEWAY, ...args, '--config', opts.config ?? configPath], {
      allowFail: opts.allowFail ?? false,
      timeoutMs: 20_000,
    });

  await cloudCli([
    'init',
    '--public-endpoint', opts.publicEndpoint ?? ADDR.vm.v4,
    '--wan-interface', 'eth0',
    '--overlay-v4', PREFIX.overlay.v4,
    '--overlay-v6', PREFIX.overlay.v6,
    ...(opts.dnsUpstream ?? []).flatMap((u) => ['--dns-upstream', u]),
    ...(opts.dnsLists ? ['--dns-lists', opts.dnsLists] : []),
    ...(opts.homeV6Prefix ? ['--home-v6-prefix', opts.homeV6Prefix] : []),
  ]);

  const aerie: Aerie = {
    lab,
    stateDir,
    configPath,
    cloud: null,
    gateway: null,
    routerResolvFile,
    routerDns: null,
    cloudCli,
    gatewayCli,
    async startCloud() {
      const proc = lab.spawn('vm', [NODE24, ...CLOUD_NODE_FLAGS, CLOUD, 'serve', '--state-dir', stateDir], {
        logFile: 'cloud.log',
        env: { ...CLOUD_MALLOC_ENV },
      });
      aerie.cloud = proc;
      await waitFor(
        'the cloud daemon to serve its API',
        async () => {
          if (proc.exit) throw new Error(`aerie-cloud serve exited: ${proc.output().trim().split('\n').pop()}`);
          return (await lab.fetch('vm', `http://${ADDR.vmTunnel.v4}/v1/health`, { timeoutMs: 1000 })).ok;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      return proc;
    },
    async stopCloud() {
      if (aerie.cloud) await lab.stop(aerie.cloud, { timeoutMs: 10_000 });
      aerie.cloud = null;
    },
    async startGateway() {
      const proc = lab.spawn('router', [NODE20, ...DAEMON_NODE_FLAGS, GATEWAY, 'run', '--config', configPath], {
        logFile: 'gateway.log',
        env: { AERIE_RUN_DIR: routerRunDir },
      });
      aerie.gateway = proc;
      return proc;
    },
    async pairingCode() {
      const { stdout } = await cloudCli(['pair']);
      const code = stdout.trim();
      if (!/^AERIE1-[A-Z2-7]+$/.test(code)) throw new Error(`aerie-cloud pair printed no code: ${JSON.stringify(stdout)}`);
      return code;
    },
    async pairGateway(code, lanInterfaces = ['lan0']) {
      await gatewayCli(['pair', code, ...lanInterfaces.flatMap((l) => ['--lan-interface', l]), '--name', 'home']);
      const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      writeFileSync(configPath, `${JSON.stringify({ ...config, dnsResolvFile: routerResolvFile }, null, 2)}\n`);
    },
    async startRouterDns() {
      aerie.routerDns = await startRouterDns(lab, routerResolvFile);
      return aerie.routerDns;
    },
    async addPhone(name = 'phone', extra = []) {
      const { stdout } = await cloudCli(['device', 'add', name, ...extra]);
      const dir = join(lab.logDir, 'phone-etc');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const file = join(dir, `${WG_IF.phone}.conf`);
      const { config, servers, search } = splitWgQuickDns(stdout);
      writeFileSync(file, config, { mode: 0o600 });
      if (servers.length > 0) lab.setResolvConf('phone', resolvConf(servers, search));
      await lab.run('phone', ['wg-quick', 'up', file], { timeoutMs: 20_000 });
      return stdout;
    },
    async waitLaptopThroughVm(timeoutMs = 15_000) {
      await waitFor(
        'the laptop to reach the website through the VM',
        async () => (await lab.fetch('lan', URLS.website4, { timeoutMs: 1000 })).body === ADDR.vm.v4,
        { timeoutMs, intervalMs: 100 },
      );
    },
  };
  return aerie;
}

/** Paired and running: the cloud serves, the router is paired and its daemon has the tunnel up. */
export async function pairedAerie(lab: Lab, opts: { lanInterfaces?: string[] } = {}): Promise<Aerie> {
  const aerie = await setUpAerie(lab);
  await aerie.startCloud();
  await aerie.pairGateway(await aerie.pairingCode(), opts.lanInterfaces);
  await aerie.startGateway();
  await aerie.waitLaptopThroughVm();
  return aerie;
}
