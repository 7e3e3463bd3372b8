import type { UbusCaller, UbusValue } from '../../ubus/types.ts';
import { optionList, readConfig, type UciConfig, type UciSection } from './uci.ts';

/**
 * What the adapter reads before it plans: the three configs it writes and
 * netifd's view of the interfaces (which device each UCI network is on now).
 */

export interface NetifdInterface {
  interface: string;
  up: boolean;
  /** The configured (layer 2) device, e.g. "br-lan" or "eth1". */
  device?: string;
  /** The device carrying the addresses once up, e.g. "pppoe-wan" for PPPoE on eth1. */
  l3Device?: string;
}

export interface SystemView {
  network: UciConfig;
  firewall: UciConfig;
  /** null on a system without a dhcp config (no dnsmasq managed through UCI). */
  dhcp: UciConfig | null;
  interfaces: NetifdInterface[];
}

export async function readSystemView(ubus: UbusCaller): Promise<SystemView> {
  const network = await readConfig(ubus, 'network');
  if (!network) throw new Error('UCI has no network config: is this OpenWrt?');
  const firewall = await readConfig(ubus, 'firewall');
  if (!firewall) throw new Error('UCI has no firewall config: Aerie needs fw4');
  const dhcp = await readConfig(ubus, 'dhcp');
  const dump = await ubus.call('network.interface', 'dump', {});
  return { network, firewall, dhcp, interfaces: parseInterfaceDump(dump.interface) };
}

/** `ubus call network.interface dump` → its `interface` array. */
export function parseInterfaceDump(list: UbusValue | undefined): NetifdInterface[] {
  if (!Array.isArray(list)) return [];
  const out: NetifdInterface[] = [];
  for (const x of list) {
    if (typeof x !== 'object' || x === null || Array.isArray(x) || typeof x.interface !== 'string') continue;
    out.push({
      interface: x.interface,
      up: x.up === true,
      ...(typeof x.device === 'string' ? { device: x.device } : {}),
      ...(typeof x.l3_device === 'string' ? { l3Device: x.l3_device } : {}),
    });
  }
  return out;
}

export const sectionsOfType = (config: UciConfig, type: string): UciSection[] => config.filter((s) => s.type === type);

/**
 * The devices a UCI network is on: netifd's view first, UCI as the fallback
 * for a network that is down. Before OpenWrt 21.02 a bridge was declared on
 * the interface itself (`option type 'bridge'`), and netifd named it br-NAME.
 */
export function devicesOfNetwork(view: SystemView, net: string): string[] {
  const live = view.interfaces.find((i) => i.interface === net);
  const section = view.network.find((s) => s.type === 'interface' && s.name === net);
  const out = [live?.l3Device, live?.device];
  if (section) {
    if (section.options.type === 'bridge') out.push(`br-${net}`);
    else out.push(...optionList(section.options.device ?? section.options.ifname).slice(0, 1));
  }
  return [...new Set(out.filter((d): d is string => typeof d === 'string' && d !== ''))];
}

/** The UCI network (e.g. "lan") whose device is `device` (e.g. "br-lan"), or null. */
export function networkOfDevice(view: SystemView, device: string): string | null {
  const live = view.interfaces.find((i) => i.l3Device === device) ?? view.interfaces.find((i) => i.device === device);
  if (live) return live.interface;
  for (const s of sectionsOfType(view.network, 'interface')) {
    if (devicesOfNetwork(view, s.name).includes(device)) return s.name;
  }
  return null;
}

/** fw4 zone names whose `network` list holds `net`. */
export function zonesOfNetwork(firewall: UciConfig, net: string): string[] {
  return sectionsOfType(firewall, 'zone')
    .filter((z) => optionList(z.options.network).includes(net))
    .map((z) => zoneName(z))
    .filter((n): n is string => n !== null);
}

export function zoneName(z: UciSection): string | null {
  const n = z.options.name;
  return typeof n === 'string' && n !== '' ? n : null;
}

/**
 * The zones LAN traffic leaves by: the one OpenWrt names `wan`, and any other
 * that masquerades (a second uplink, an LTE modem). Ours and the LAN's are not.
 */
export function upstreamZones(firewall: UciConfig, exclude: string[]): UciSection[] {
  return sectionsOfType(firewall, 'zone').filter((z) => {
    const name = zoneName(z);
    if (name === null || exclude.includes(name)) return false;
    return name === 'wan' || z.options.masq === '1' || z.options.masq6 === '1';
  });
}

/** The devices of the zones given, through their networks and their `device` options. */
export function devicesOfZones(view: SystemView, zones: UciSection[]): string[] {
  const out: string[] = [];
  for (const z of zones) {
    for (const net of optionList(z.options.network)) out.push(...devicesOfNetwork(view, net));
    out.push(...optionList(z.options.device));
  }
  return [...new Set(out)].sort();
}
