import { readFile } from 'node:fs/promises';
import { isValidPrefix } from '../shared/cidr.ts';
import { checkInterfaceName } from '../shared/interface-name.ts';
import { createNftTable } from '../shared/nft-table.ts';
import type { Runner } from '../shared/run.ts';
import { DEFAULT_INTERFACE, DEFAULT_MTU } from './config.ts';
import { KILL_SWITCH_TABLE, renderKillSwitch } from './platform/kill-switch.ts';

/**
 * When the config does not load at start (a bad edit, a half-written file),
 * the daemon cannot build its desired state, yet the home must not leak by
 * the WAN: keep the LAN off the WAN with whatever interface names the file
 * still yields. Returns true if a kill switch is in place.
 */
export async function keepLanOffWan(configPath: string, run: Runner): Promise<boolean> {
  let raw: { lanInterfaces?: unknown; interface?: unknown; enabled?: unknown; killSwitch?: unknown; dnsIntercept?: unknown; vm?: unknown };
  try {
    raw = JSON.parse(await readFile(configPath, 'utf8')) as typeof raw;
  } catch {
    return false; // unreadable: there is nothing to know the LAN by
  }
  if (typeof raw !== 'object' || raw === null || raw.enabled === false || raw.killSwitch === false) return false;
  const names = Array.isArray(raw.lanInterfaces) ? raw.lanInterfaces : [];
  const lanInterfaces = names.filter((n, i) => {
    try {
      return checkInterfaceName(n, `lanInterfaces[${i}]`) !== '';
    } catch {
      return false;
    }
  }) as string[];
  if (lanInterfaces.length === 0) return false;
  let tunnel = DEFAULT_INTERFACE;
  try {
    if (raw.interface !== undefined) tunnel = checkInterfaceName(raw.interface, 'interface');
  } catch {
    // keep the default name: a missing tunnel only means nothing may leave
  }
  const table = createNftTable(run, KILL_SWITCH_TABLE);
  // A table from the last good config (the daemon restarted) is better than any we can make now.
  if ((await table.list()) !== null) return true;
  // The overlay prefixes the file still yields: the router's resolver must not ask the VM by the WAN.
  const overlayList = (raw.vm as { overlay?: unknown } | null | undefined)?.overlay;
  const overlay = (Array.isArray(overlayList) ? overlayList : []).filter((p): p is string => typeof p === 'string' && isValidPrefix(p));
  // No LAN prefixes are known: the anti-spoofing rules then drop all LAN traffic into the tunnel too.
  await table.set(
    renderKillSwitch({
      tunnel,
      lanInterfaces,
      lanPrefixes: [],
      killSwitch: true,
      mtu: DEFAULT_MTU,
      dnsIntercept: raw.dnsIntercept !== false,
      overlay,
    }),
  );
  return true;
}
