import { ValidationError } from './errors.ts';
import { decodeKey } from './keys.ts';
import { formatAddress, formatInterfaceAddress, familyBits, parseAddress, parseInterfaceAddress } from './cidr.ts';
import { parseWith, DeviceName } from './schemas.ts';
import { renderPeer } from './wg-conf.ts';

/**
 * A wg-quick(8) configuration, the format the WireGuard apps import (file or
 * QR code). Unlike `wg setconf` input it carries Address, DNS and MTU.
 */
export interface WgQuickConf {
  name: string;
  privateKey: string;
  addresses: string[];
  dns?: string[];
  /** Search domains, written after the servers on the DNS line (wg-quick(8) tells them apart). */
  dnsSearch?: string[];
  mtu?: number;
  peer: { publicKey: string; endpoint: string; allowedIps: string[]; keepalive?: number };
}

/** "192.0.2.1/24" stays, a bare address gets its host length (/32 or /128). */
function interfaceAddress(text: string, field: string): string {
  if (typeof text === 'string' && !text.includes('/')) {
    const a = parseAddress(text, field);
    return formatInterfaceAddress(a, familyBits(a.family));
  }
  const { address, prefix } = parseInterfaceAddress(text, field);
  return formatInterfaceAddress(address, prefix.length);
}

// RFC 1123 §2.1 host names: letters, digits and hyphens, labels of 1-63, at most 253 in all.
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function searchDomain(text: unknown, field: string): string {
  if (typeof text !== 'string' || text.length > 253 || !text.split('.').every((l) => LABEL.test(l))) {
    throw new ValidationError(field, `expected a domain name such as aerie.internal, got ${JSON.stringify(text)}`);
  }
  return text;
}

export function renderWgQuick(conf: WgQuickConf): string {
  // The name goes into a comment line, so it must be a plain device name.
  const name = parseWith(DeviceName, conf.name, 'name');
  decodeKey(conf.privateKey, 'privateKey');
  if (!Array.isArray(conf.addresses) || conf.addresses.length === 0) {
    throw new ValidationError('addresses', 'expected at least one interface address');
  }
  const addresses = conf.addresses.map((a, i) => interfaceAddress(a, `addresses[${i}]`));
  const lines = [`# Aerie device: ${name}`, '[Interface]', `PrivateKey = ${conf.privateKey}`];
  lines.push(`Address = ${addresses.join(', ')}`);
  if (conf.dns !== undefined) {
    if (!Array.isArray(conf.dns)) throw new ValidationError('dns', 'expected a list of addresses');
    const dns = conf.dns.map((d, i) => formatAddress(parseAddress(d, `dns[${i}]`)));
    const search = (conf.dnsSearch ?? []).map((d, i) => searchDomain(d, `dnsSearch[${i}]`));
    if (dns.length > 0) lines.push(`DNS = ${[...dns, ...search].join(', ')}`);
  }
  if (conf.mtu !== undefined) {
    // 1280 is the least IPv6 allows (RFC 8200 §5), and the tunnel carries IPv6.
    if (!Number.isInteger(conf.mtu) || conf.mtu < 1280 || conf.mtu > 65535) {
      throw new ValidationError('mtu', `expected an MTU of 1280-65535, got ${String(conf.mtu)}`);
    }
    lines.push(`MTU = ${conf.mtu}`);
  }
  if (!conf.peer || typeof conf.peer.endpoint !== 'string') {
    throw new ValidationError('peer.endpoint', 'expected the endpoint (host:port) of the VM');
  }
  lines.push('', ...renderPeer(conf.peer, 'peer'));
  return `${lines.join('\n')}\n`;
}
