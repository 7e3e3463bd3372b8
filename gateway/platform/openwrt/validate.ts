import { parseAddress, parseInterfaceAddress, parsePrefix } from '../../../shared/cidr.ts';
import { ValidationError } from '../../../shared/errors.ts';
import { checkInterfaceName } from '../../../shared/interface-name.ts';
import { decodeKey } from '../../../shared/keys.ts';
import { parseEndpoint } from '../../../shared/pairing-code.ts';
import { canonicalAllowedIp } from '../../../shared/wg-conf.ts';
import { parseIsolated } from '../isolation.ts';
import type { GatewayDesired } from '../platform.ts';
import { checkResolvFilePath } from '../resolv-file.ts';
import { UCI_NAME } from './uci.ts';

/** Refuses a desired state the adapter cannot realise, before it reads or writes anything. */
export function validateDesired(d: GatewayDesired): void {
  checkInterfaceName(d.interface, 'interface');
  // netifd names the WireGuard device after the interface section, and UCI section names allow no '-' or '.'.
  if (!UCI_NAME.test(d.interface)) {
    throw new ValidationError('interface', `on OpenWrt the tunnel is a UCI section: letters, digits and '_' only, got ${JSON.stringify(d.interface)}`);
  }
  decodeKey(d.privateKey, 'privateKey');
  decodeKey(d.peer.publicKey, 'peer.publicKey');
  if (d.peer.endpoint !== null) parseEndpoint(d.peer.endpoint, undefined, 'peer.endpoint');
  if (!Array.isArray(d.peer.allowedIps)) throw new ValidationError('peer.allowedIps', 'expected a list of prefixes');
  d.peer.allowedIps.forEach((p, i) => canonicalAllowedIp(p, `peer.allowedIps[${i}]`));
  if (!Number.isInteger(d.peer.keepalive) || d.peer.keepalive < 0 || d.peer.keepalive > 65535) {
    throw new ValidationError('peer.keepalive', `expected seconds 0-65535, got ${String(d.peer.keepalive)}`);
  }
  if (!Number.isInteger(d.mtu) || d.mtu < 1280 || d.mtu > 9000) {
    throw new ValidationError('mtu', `expected an integer 1280-9000, got ${String(d.mtu)}`);
  }
  if (!Array.isArray(d.addresses)) throw new ValidationError('addresses', 'expected a list of addresses with prefix length');
  d.addresses.forEach((a, i) => parseInterfaceAddress(a, `addresses[${i}]`));
  if (!Array.isArray(d.overlay)) throw new ValidationError('overlay', 'expected a list of prefixes');
  d.overlay.forEach((p, i) => parsePrefix(p, `overlay[${i}]`));
  if (!Array.isArray(d.lan) || d.lan.length === 0) throw new ValidationError('lan', 'expected at least one LAN interface');
  d.lan.forEach((l, i) => {
    checkInterfaceName(l.interface, `lan[${i}].interface`);
    if (l.interface === d.interface) throw new ValidationError(`lan[${i}].interface`, 'the tunnel cannot also be a LAN interface');
    if (!Array.isArray(l.prefixes)) throw new ValidationError(`lan[${i}].prefixes`, 'expected a list of prefixes');
    l.prefixes.forEach((p, j) => parsePrefix(p, `lan[${i}].prefixes[${j}]`));
  });
  if (!Number.isInteger(d.table) || d.table < 1 || d.table > 0xffffffff || (d.table >= 253 && d.table <= 255)) {
    throw new ValidationError('table', `expected a routing table number other than 253-255, got ${String(d.table)}`);
  }
  if (!Number.isInteger(d.rulePriority) || d.rulePriority < 1 || d.rulePriority > 32765) {
    throw new ValidationError('rulePriority', `expected an integer 1-32765, got ${String(d.rulePriority)}`);
  }
  if (typeof d.killSwitch !== 'boolean') throw new ValidationError('killSwitch', 'expected true or false');
  if (typeof d.dns?.intercept !== 'boolean') throw new ValidationError('dns.intercept', 'expected true or false');
  if (!Array.isArray(d.dns.servers)) throw new ValidationError('dns.servers', 'expected a list of addresses');
  d.dns.servers.forEach((a, i) => parseAddress(a, `dns.servers[${i}]`));
  // Only checked, for the same answers as on Linux: dnsmasq is configured through UCI here (see plan.ts).
  if (d.dns.resolvFile !== null) checkResolvFilePath(d.dns.resolvFile, 'dns.resolvFile');
  parseIsolated(d.isolated);
}
