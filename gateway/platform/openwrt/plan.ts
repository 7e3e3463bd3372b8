import { formatAddress, nthAddress, parseAddress, parsePrefix } from '../../../shared/cidr.ts';
import { ValidationError } from '../../../shared/errors.ts';
import type { GatewayDesired } from '../platform.ts';
import { renderForwardInclude } from './forward-include.ts';
import { planFirewall, ZONE } from './plan-firewall.ts';
import { planNetwork } from './plan-network.ts';
import { matches, sameTarget, type Remembered, type SavedOption } from './remembered.ts';
import {
  devicesOfZones,
  networkOfDevice,
  sectionsOfType,
  upstreamZones,
  zoneName,
  zonesOfNetwork,
  type SystemView,
} from './system-view.ts';
import type { OptionEdit, SectionSpec } from './uci-diff.ts';
import { sameOption, type UciConfigName, type UciOption, type UciSection } from './uci.ts';

/**
 * The whole UCI state Aerie wants, rendered from the desired state and what
 * the router has. Every section we create is named, `aerie_*` (and the
 * interface, named after the tunnel), so that we find our own again and
 * touch nothing else by mistake:
 *
 * network:  interface IFACE (proto wireguard: netifd's proto/wireguard.sh makes
 *           device IFACE, ip4table/ip6table put its routes, the allowed-ips
 *           default routes among them, in our table);
 *           wireguard_IFACE aerie_peer (the VM);
 *           rule/rule6 aerie_rule[6]_I (in LAN network → lookup table);
 *           route/route6 aerie_lan_I_J (home prefixes stay at home, in our table);
 *           route/route6 aerie_overlay_K (the router reaches the overlay through
 *           the tunnel, main table) and aerie_guard_K (unreachable behind it,
 *           so the router's own packets to the overlay never take the WAN);
 *           route/route6 aerie_unreachable[6] (kill switch: LAN traffic meets
 *           this, not the main table, while the tunnel is down).
 * firewall: zone aerie_zone ('aerie', MSS clamped); forwarding aerie_fwd_Z
 *           (LAN zone → aerie) and aerie_back_Z (aerie → LAN zone);
 *           redirect aerie_dns_Z and rule aerie_dot_Z (DNS interception);
 *           rules aerie_iso4_svc_Z, aerie_iso4_Z (and 6) for isolated devices;
 *           include aerie_forward (anti-spoofing always, kill switch when on,
 *           isolated devices: forward-include.ts).
 * Options in sections that are not ours: `enabled '0'` on the LAN's
 * forwardings to the WAN zones (kill switch) and `server`/`noresolv` of the
 * first dnsmasq section; their old values are remembered (remembered.ts).
 */

const PREFIX = 'aerie_';

export interface UciPlan {
  owned: Record<UciConfigName, Map<string, SectionSpec>>;
  edits: Record<UciConfigName, OptionEdit[]>;
  remembered: Remembered;
  /** The forward include's nft text, or null when there is none (Aerie off). */
  include: string | null;
  /** What could not be restored, for the log. */
  lost: SavedOption[];
}

export interface PlanInput {
  desired: GatewayDesired | null;
  view: SystemView;
  remembered: Remembered;
  /** Where the forward include file is. */
  includePath: string;
  /** The interface set(null) removes when nothing is remembered (Ownership.interface). */
  ownInterface: string;
}

/** Sections in `config` that are ours: the aerie_* namespace and the interface we created. */
export function isOwnedSection(s: UciSection, ownedInterface: string | null): boolean {
  return isOwnedName(s.name, ownedInterface) && (s.name.startsWith(PREFIX) || s.type === 'interface');
}

export const isOwnedName = (name: string, ownedInterface: string | null) => name.startsWith(PREFIX) || name === ownedInterface;

/** The interface section of ours in this network config, or null. */
export function ownedInterfaceName(input: Pick<PlanInput, 'view' | 'remembered' | 'ownInterface'>, wanted: string | null): string | null {
  if (input.remembered.interface !== null) return input.remembered.interface;
  // Nothing remembered (a first run, or a lost state file): the configured name is ours when it is a WireGuard interface.
  for (const name of new Set([wanted, input.ownInterface])) {
    const s = input.view.network.find((x) => x.name === name && x.type === 'interface');
    if (s && s.options.proto === 'wireguard') return s.name;
  }
  return null;
}

export function planUci(input: PlanInput): UciPlan {
  const { desired: d, view } = input;
  const owned: UciPlan['owned'] = { network: new Map(), firewall: new Map(), dhcp: new Map() };
  const edits: UciPlan['edits'] = { network: [], firewall: [], dhcp: [] };
  const oldInterface = ownedInterfaceName(input, d?.interface ?? null);
  const saved: SavedOption[] = [];
  const lost: SavedOption[] = [];

  // Our option edits in sections that are not ours: the first change records the old value.
  const edit = (config: UciConfigName, s: UciSection, locator: Pick<SavedOption, 'type' | 'match'>, option: string, value: UciOption | null) => {
    const target = { config, ...locator, option };
    if (!saved.some((r) => sameTarget(r, target))) {
      const known = input.remembered.saved.find((r) => sameTarget(r, target));
      const previous = s.options[option] ?? null;
      if (known) saved.push(known);
      else if (!sameOption(previous ?? undefined, value ?? undefined)) saved.push({ ...target, previous });
    }
    edits[config].push({ section: s.name, option, value });
  };

  let include: string | null = null;
  if (d) {
    const existing = view.network.find((s) => s.name === d.interface);
    if (existing && existing.name !== oldInterface) {
      throw new Error(`network.${d.interface} exists and is not Aerie's; choose another tunnel interface name`);
    }
    const nets = d.lan.map((l, i) => {
      const net = networkOfDevice(view, l.interface);
      if (net === null) throw new ValidationError(`lan[${i}].interface`, `no UCI network is on device ${l.interface}`);
      return net;
    });
    const lanZones = [...new Set(nets.flatMap((net, i) => {
      const zones = zonesOfNetwork(view.firewall, net).filter((z) => z !== ZONE);
      if (zones.length === 0) throw new ValidationError(`lan[${i}].interface`, `network ${net} is in no firewall zone`);
      return zones;
    }))];
    const foreignZone = sectionsOfType(view.firewall, 'zone').find((z) => zoneName(z) === ZONE && !z.name.startsWith(PREFIX));
    if (foreignZone) throw new Error(`firewall zone '${ZONE}' exists and is not Aerie's`);
    planNetwork(d, nets, view, owned.network);
    planFirewall(d, lanZones, input.includePath, owned.firewall);

    const upstream = upstreamZones(view.firewall, [...lanZones, ZONE]);
    const upstreamNames = upstream.map((z) => zoneName(z)!);
    if (d.killSwitch) {
      for (const f of sectionsOfType(view.firewall, 'forwarding')) {
        const src = f.options.src;
        const dest = f.options.dest;
        if (f.name.startsWith(PREFIX) || typeof src !== 'string' || typeof dest !== 'string') continue;
        if (lanZones.includes(src) && upstreamNames.includes(dest)) {
          edit('firewall', f, { type: 'forwarding', match: { src, dest } }, 'enabled', '0');
        }
      }
    }
    include = renderForwardInclude({
      tunnel: d.interface,
      lanDevices: d.lan.map((l) => l.interface),
      lanPrefixes: d.lan.flatMap((l) => l.prefixes),
      wanDevices: d.killSwitch ? devicesOfZones(view, upstream) : null,
      isolated: d.isolated ?? [],
    });
    // dnsmasq forwards to the VM's resolver. The Linux adapter's resolvFile has no use here:
    // OpenWrt configures dnsmasq through UCI (its init script writes the real config from it).
    const dnsmasq = view.dhcp ? sectionsOfType(view.dhcp, 'dnsmasq')[0] : undefined;
    if (dnsmasq && d.dns.servers.length > 0) {
      const servers = [...new Set(d.dns.servers.map((a) => formatAddress(parseAddress(a))))];
      edit('dhcp', dnsmasq, { type: 'dnsmasq', match: null }, 'server', servers);
      edit('dhcp', dnsmasq, { type: 'dnsmasq', match: null }, 'noresolv', '1');
    }
    // The home's IPv6 /64 from the VM: its first address on the LAN network, and odhcpd
    // announcing it (router advertisements, so devices make their addresses by SLAAC).
    const home = d.homeV6;
    const homeNet = home ? nets[d.lan.findIndex((l) => l.interface === home.interface)] : undefined;
    const netSection = homeNet ? view.network.find((s) => s.name === homeNet && s.type === 'interface') : undefined;
    const device = netSection?.options.device;
    if (home && homeNet && netSection && typeof device === 'string') {
      const address = `${formatAddress(nthAddress(parsePrefix(home.prefix, 'homeV6.prefix'), 1))}/64`;
      // Beside the network's own static addresses (as they were before our first edit), not instead of them.
      const locator = { type: 'interface', match: { device } };
      const known = input.remembered.saved.find((r) => sameTarget(r, { config: 'network', ...locator, option: 'ip6addr' }));
      const original = known ? known.previous : (netSection.options.ip6addr ?? null);
      const own = original === null ? [] : Array.isArray(original) ? original : [original];
      edit('network', netSection, locator, 'ip6addr', [...own.filter((a) => a !== address), address]);
      const dhcpLan = view.dhcp ? sectionsOfType(view.dhcp, 'dhcp').find((s) => s.options.interface === homeNet) : undefined;
      if (dhcpLan) edit('dhcp', dhcpLan, { type: 'dhcp', match: { interface: homeNet } }, 'ra', 'server');
    }
  }

  // What we changed before and no longer want changed goes back as it was.
  for (const r of input.remembered.saved) {
    if (saved.some((x) => sameTarget(x, r))) continue;
    const config = r.config === 'network' ? view.network : r.config === 'firewall' ? view.firewall : view.dhcp;
    const found = (config ?? []).filter((s) => matches(s, r));
    if (found.length === 0) lost.push(r);
    for (const s of found) edits[r.config].push({ section: s.name, option: r.option, value: r.previous });
  }

  return {
    owned,
    edits,
    remembered: { version: 1, interface: d ? d.interface : null, saved },
    include,
    lost,
  };
}
