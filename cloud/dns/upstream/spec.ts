import { isIP } from 'node:net';
import { describeInput, ValidationError } from '../../../shared/errors.ts';

// How the owner names an upstream resolver in settings and on the command line:
//   udp:IP[:port]   tcp:IP[:port]   (IPv6 in brackets: udp:[2001:db8::1]:53)
//   dot:HOST@IP[:port]              DNS over TLS (RFC 7858), certificate checked against HOST
//   doh:https://HOST[:port]/PATH    DNS over HTTPS (RFC 8484)

export type UpstreamSpec =
  | { kind: 'udp' | 'tcp'; address: string; port: number }
  | { kind: 'dot'; host: string; address: string; port: number }
  | { kind: 'doh'; url: string };

const FORMS = 'udp:IP[:port], tcp:IP[:port], dot:HOST@IP[:port] or doh:https://HOST/PATH';
const DEFAULT_PORT = { udp: 53, tcp: 53, dot: 853 } as const;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

export function parseUpstream(text: string, field = 'upstream'): UpstreamSpec {
  if (typeof text !== 'string') throw new ValidationError(field, `expected ${FORMS}, got ${describeInput(text)}`);
  const input = text.trim();
  const colon = input.indexOf(':');
  const kind = colon < 0 ? '' : input.slice(0, colon).toLowerCase();
  const rest = input.slice(colon + 1);
  const fail: (what: string) => never = (what) => {
    throw new ValidationError(field, `${what}, got ${describeInput(text)}`);
  };
  switch (kind) {
    case 'udp':
    case 'tcp': {
      const { address, port } = parseEndpoint(rest, DEFAULT_PORT[kind], `${kind}:IP[:port]`, fail);
      return { kind, address, port };
    }
    case 'dot': {
      const at = rest.lastIndexOf('@');
      if (at < 0) fail('expected dot:HOST@IP[:port] (the name on the certificate, then its address)');
      const host = rest.slice(0, at).toLowerCase().replace(/\.$/, '');
      if (!isHostName(host) && isIP(host) === 0) fail('expected dot:HOST@IP[:port] with HOST the DNS name (or IP) on the certificate');
      const { address, port } = parseEndpoint(rest.slice(at + 1), DEFAULT_PORT.dot, 'dot:HOST@IP[:port]', fail);
      return { kind, host, address, port };
    }
    case 'doh': {
      let url: URL | null = null;
      try {
        url = new URL(rest);
      } catch {
        fail('expected doh:https://HOST[:port]/PATH');
      }
      // RFC 8484 §5: DoH is HTTPS only.
      if (!url || url.protocol !== 'https:' || !url.hostname) return fail('expected doh:https://HOST[:port]/PATH (https only)');
      if (url.username || url.password || url.hash) fail('expected doh:https://HOST[:port]/PATH without credentials or #fragment');
      return { kind, url: url.href };
    }
    default:
      return fail(`expected ${FORMS}`);
  }
}

export function formatUpstream(s: UpstreamSpec): string {
  if (s.kind === 'doh') return `doh:${s.url}`;
  const address = s.address.includes(':') ? `[${s.address}]` : s.address;
  const endpoint = s.port === DEFAULT_PORT[s.kind] ? address : `${address}:${s.port}`;
  return s.kind === 'dot' ? `dot:${s.host}@${endpoint}` : `${s.kind}:${endpoint}`;
}

function parseEndpoint(text: string, defaultPort: number, form: string, fail: (what: string) => never): { address: string; port: number } {
  let address = text;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) fail(`expected ${form} with the IPv6 address in brackets`);
    address = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) fail(`expected ${form}: only ":port" may follow "]"`);
      portText = after.slice(1);
    }
    if (isIP(address) !== 6) fail(`expected ${form} with an IPv6 address inside the brackets`);
  } else {
    const parts = text.split(':');
    if (parts.length > 2) fail(`expected ${form}, with an IPv6 address in brackets ([2001:db8::1]:53)`);
    address = parts[0]!;
    portText = parts[1] ?? null;
    if (isIP(address) !== 4) fail(`expected ${form} with IP an IPv4 address or an IPv6 address in brackets`);
  }
  let port = defaultPort;
  if (portText !== null) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) fail(`expected ${form} with port a number from 1 to 65535`);
  }
  // Lowercase hex digits, but not an interface name after "%".
  const zone = address.indexOf('%');
  return { address: zone < 0 ? address.toLowerCase() : address.slice(0, zone).toLowerCase() + address.slice(zone), port };
}

function isHostName(host: string): boolean {
  return host.length > 0 && host.length <= 253 && host.split('.').every((l) => LABEL.test(l)) && !/^[\d.]+$/.test(host);
}
