import { readFile, unlink } from 'node:fs/promises';
import { checkInterfaceName } from '../../../shared/interface-name.ts';
import type { Runner } from '../../../shared/run.ts';
import { createSerialQueue } from '../../../shared/serial-queue.ts';
import { parseWgDump } from '../../../shared/wg-conf.ts';
import { writeFileAtomic } from '../../atomic-file.ts';
import { UBUS_STATUS, UbusError } from '../../ubus/error.ts';
import type { UbusCaller, UbusTable } from '../../ubus/types.ts';
import type { GatewayDesired, Ownership, Platform, TunnelState } from '../platform.ts';
import { dnsInterceptConfigured, killSwitchConfigured } from './plan-firewall.ts';
import { isOwnedName, isOwnedSection, ownedInterfaceName, planUci } from './plan.ts';
import { readRemembered, sameTarget, writeRemembered, type Remembered } from './remembered.ts';
import { readSystemView } from './system-view.ts';
import { diffConfig, type UciCall } from './uci-diff.ts';
import { createUciTransaction } from './uci-transaction.ts';
import { readConfig, type UciConfigName, type UciSection } from './uci.ts';
import { validateDesired } from './validate.ts';

/**
 * The OpenWrt adapter: the desired state realised in UCI through rpcd's `uci`
 * object, so that it is the router's own configuration (visible in LuCI,
 * kept across reboots, applied by netifd and fw4), committed once per changed
 * config so that procd's reload triggers fire (rpcd sends `config.change` to
 * procd on every commit).
 *
 * Each set() reads the three configs and netifd's interfaces, renders the
 * whole UCI state it wants (plan.ts), and issues only the calls that differ:
 * a second set() with the same state makes no change.
 */

export interface OpenwrtPlatformOptions {
  /** rpcd's `uci`, netifd's `network` and `network.interface.*`. */
  ubus: UbusCaller;
  /** Only for `wg show IF dump`. */
  run: Runner;
  own: Ownership;
  /** A JSON file (0600) where the adapter remembers what it changed, so set(null) restores it even in a fresh process. */
  stateFile: string;
  /**
   * fw4's include `aerie_forward` (forward-include.ts): the anti-spoofing rules, and the
   * kill switch's while it is on. On flash, so that fw4 loads them at boot before the
   * daemon runs: netifd brings the tunnel up from UCI on its own.
   */
  forwardFile?: string;
  log?: (message: string) => void;
}

export const DEFAULT_FORWARD_FILE = '/etc/aerie/forward.nft';

/** Staged and committed in this order: the firewall (the kill switch) before the routing that sends LAN traffic away. */
const CONFIGS: UciConfigName[] = ['firewall', 'network', 'dhcp'];

export function createOpenwrtPlatform(opts: OpenwrtPlatformOptions): Platform {
  const { ubus, run } = opts;
  const log = opts.log ?? (() => {});
  const includePath = opts.forwardFile ?? DEFAULT_FORWARD_FILE;
  const serial = createSerialQueue();
  const tx = createUciTransaction(ubus, log);
  // The peer generation last applied; undefined in a fresh process, where nothing is restarted.
  let generation: number | undefined;

  async function apply(d: GatewayDesired | null): Promise<void> {
    if (d) validateDesired(d);
    // A second pass only after dropping leftovers of our own, which the first pass had planned against.
    if ((await pass(d)) === 'again') await pass(d);
  }

  async function pass(d: GatewayDesired | null): Promise<'done' | 'again'> {
    const remembered = await readRemembered(opts.stateFile);
    const view = await readSystemView(ubus);
    const plan = planUci({ desired: d, view, remembered, includePath, ownInterface: opts.own.interface });
    const oldInterface = ownedInterfaceName({ view, remembered, ownInterface: opts.own.interface }, d?.interface ?? null);
    const owned = (s: UciSection) => isOwnedSection(s, oldInterface);

    const calls = new Map<UciConfigName, UciCall[]>();
    for (const config of CONFIGS) {
      const current = config === 'network' ? view.network : config === 'firewall' ? view.firewall : view.dhcp;
      if (current === null) continue;
      const c = diffConfig(config, current, plan.owned[config], owned, plan.edits[config]);
      if (c.length) calls.set(config, c);
    }
    const includeNow = await readFile(includePath, 'utf8').catch(() => null);
    const writeInclude = plan.include !== null && includeNow !== plan.include;
    const changed = CONFIGS.filter((c) => calls.has(c) || (c === 'firewall' && writeInclude));

    // netifd does not re-read a wireguard_X section on reload: a changed peer, or a new generation
    // (a stale session to discard), takes the interface down and up, which re-runs proto/wireguard.sh:
    // it deletes and re-creates the device, so the handshake starts afresh.
    const existed = d !== null && oldInterface === d.interface;
    const peerChanged = (calls.get('network') ?? []).some((c) => c.args.section === 'aerie_peer' || c.args.name === 'aerie_peer');
    const restart = existed && (peerChanged || (generation !== undefined && generation !== d.peer.generation));

    for (const r of plan.lost) log(`cannot restore ${r.config} ${r.type} option ${r.option}: the section is gone`);
    if (changed.length > 0) {
      if ((await tx.check(changed, (name) => isOwnedName(name, oldInterface))) === 'again') return 'again';
      // Remembered before anything changes, so that a crash after the commit still knows the old values.
      await writeRemembered(opts.stateFile, mergeRemembered(remembered, plan.remembered));
      const undo = async (e: unknown, staged: boolean) => {
        if (staged) await tx.revert(changed);
        await writeRemembered(opts.stateFile, remembered);
        throw e;
      };
      await tx.stage(changed, calls).catch((e: unknown) => undo(e, false)); // stage reverts what it staged
      // Before the commit: fw4 reads the file when the commit makes it reload.
      if (writeInclude) await writeFileAtomic(includePath, plan.include!, 0o644).catch((e: unknown) => undo(e, true));
      await tx.commit(changed);
      if (changed.includes('network')) await ubus.call('network', 'reload', {});
      log(`UCI: ${changed.map((c) => `${c} (${(calls.get(c) ?? []).length} changes)`).join(', ')} committed`);
    }
    if (restart) {
      log(`restarting ${d.interface} so that the tunnel handshakes afresh`);
      await ubus.call(`network.interface.${d.interface}`, 'down', {});
      await ubus.call(`network.interface.${d.interface}`, 'up', {});
    }
    if (plan.include === null && includeNow !== null) await unlink(includePath).catch(() => {});
    if (JSON.stringify(plan.remembered) !== JSON.stringify(remembered)) await writeRemembered(opts.stateFile, plan.remembered);
    generation = d?.peer.generation;
    return 'done';
  }

  return {
    name: 'openwrt',
    set(desired) {
      return serial(() => apply(desired));
    },
    async show(iface) {
      checkInterfaceName(iface, 'interface');
      let status: UbusTable | null = null;
      try {
        status = await ubus.call(`network.interface.${iface}`, 'status', {});
      } catch (e) {
        if (!(e instanceof UbusError && e.status === UBUS_STATUS.NOT_FOUND)) throw e;
      }
      const r = await run(['wg', 'show', iface, 'dump'], { allowFail: true });
      const peers = r.code === 0 ? parseWgDump(r.stdout) : [];
      const firewall = (await readConfig(ubus, 'firewall')) ?? [];
      const network = (await readConfig(ubus, 'network')) ?? [];
      return {
        present: r.code === 0 || status?.up === true,
        up: status?.up === true,
        killSwitch: killSwitchConfigured({ firewall, network }),
        dnsIntercept: dnsInterceptConfigured({ firewall }),
        peers: peers.map(({ publicKey, endpoint, latestHandshake, rxBytes, txBytes }) => ({ publicKey, endpoint, latestHandshake, rxBytes, txBytes })),
      } satisfies TunnelState;
    },
  };
}

/** Old records and new ones, for the time between staging and commit. */
function mergeRemembered(before: Remembered, after: Remembered): Remembered {
  return {
    version: 1,
    interface: after.interface ?? before.interface,
    saved: [...before.saved, ...after.saved.filter((r) => !before.saved.some((b) => sameTarget(b, r)))],
  };
}
