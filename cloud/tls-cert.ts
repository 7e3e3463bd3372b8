import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { ValidationError } from '../shared/errors.ts';

// A self-signed X.509 v3 certificate for the public pairing listener, built with
// node:crypto and the small DER writer below (RFC 5280, X.690). Routers never
// trust it through a CA: they pin it by the SHA-256 fingerprint in the pairing code.

/** DER (X.690) encoders: each returns one complete TLV. */
export const der = {
  tlv(tag: number, content: Uint8Array): Buffer {
    return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
  },
  sequence(...items: Uint8Array[]): Buffer {
    return der.tlv(0x30, Buffer.concat(items));
  },
  set(...items: Uint8Array[]): Buffer {
    return der.tlv(0x31, Buffer.concat(items));
  },
  /** A non-negative INTEGER from big-endian bytes (minimal, with a 0x00 pad when the top bit is set). */
  unsignedInteger(bytes: Uint8Array): Buffer {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    let body = Buffer.from(bytes.subarray(start));
    if (body.length === 0) body = Buffer.from([0]);
    if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
    return der.tlv(0x02, body);
  },
  smallInteger(n: number): Buffer {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`DER integer out of range: ${n}`);
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(n);
    return der.unsignedInteger(bytes);
  },
  oid(dotted: string): Buffer {
    const arcs = dotted.split('.').map((s) => {
      if (!/^\d+$/.test(s)) throw new RangeError(`bad OID: ${dotted}`);
      return BigInt(s);
    });
    if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) throw new RangeError(`bad OID: ${dotted}`);
    const out: number[] = [];
    const pushArc = (arc: bigint) => {
      // base-128, most significant group first, continuation bit on all but the last
      const groups: number[] = [Number(arc & 0x7fn)];
      for (let v = arc >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
      out.push(...groups);
    };
    pushArc(arcs[0]! * 40n + arcs[1]!);
    for (const arc of arcs.slice(2)) pushArc(arc);
    return der.tlv(0x06, Buffer.from(out));
  },
  utf8String(s: string): Buffer {
    return der.tlv(0x0c, Buffer.from(s, 'utf8'));
  },
  bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
    return der.tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
  },
  octetString(bytes: Uint8Array): Buffer {
    return der.tlv(0x04, bytes);
  },
  boolean(v: boolean): Buffer {
    return der.tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
  },
  /** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always UTC with seconds. */
  time(d: Date): Buffer {
    const year = d.getUTCFullYear();
    if (year < 1950 || year > 9999) throw new RangeError(`certificate time out of range: ${d.toISOString()}`);
    const p2 = (n: number) => String(n).padStart(2, '0');
    const rest = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}Z`;
    if (year < 2050) return der.tlv(0x17, Buffer.from(`${p2(year % 100)}${rest}`, 'ascii'));
    return der.tlv(0x18, Buffer.from(`${year}${rest}`, 'ascii'));
  },
  /** Context-specific tag [n]: constructed (EXPLICIT wrapping) or primitive (IMPLICIT). */
  context(n: number, content: Uint8Array, constructed: boolean): Buffer {
    if (n < 0 || n > 30) throw new RangeError(`context tag out of range: ${n}`);
    return der.tlv(0x80 | (constructed ? 0x20 : 0) | n, content);
  },
};

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

export interface SelfSignedCert {
  /** PKCS#8 PEM of the ECDSA P-256 private key. */
  keyPem: string;
  certPem: string;
  /** The certificate in DER form. */
  der: Buffer;
  /** SHA-256 of the DER certificate (what the pairing code carries). */
  fingerprint: Buffer;
}

export interface CertOptions {
  /** Put into subjectAltName: an IPv4/IPv6 address or a DNS name. */
  host?: string;
  commonName?: string;
  now?: Date;
  /** Default 3650 (10 years). */
  validityDays?: number;
}

export function generateSelfSignedCert(opts: CertOptions = {}): SelfSignedCert {
  const now = opts.now ?? new Date();
  const days = opts.validityDays ?? 3650;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = der.sequence(der.set(der.sequence(der.oid(OID.commonName), der.utf8String(opts.commonName ?? 'aerie'))));
  const sigAlg = der.sequence(der.oid(OID.ecdsaWithSha256)); // RFC 5758 3.2: parameters absent
  // Serial: 16 random bytes, positive and non-zero (RFC 5280 4.1.2.2 allows up to 20 octets).
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  // Backdate a little so a client whose clock runs behind still accepts it.
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(now.getTime() + days * 24 * 60 * 60 * 1000);

  const extensions = [
    extension(OID.basicConstraints, true, der.sequence()), // cA FALSE (default, so omitted)
    // digitalSignature only: bit 0 of a one-byte string, 7 unused bits.
    extension(OID.keyUsage, true, der.bitString(Buffer.from([0x80]), 7)),
    extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth))),
  ];
  if (opts.host !== undefined) extensions.push(extension(OID.subjectAltName, false, der.sequence(generalName(opts.host))));

  const tbs = der.sequence(
    der.context(0, der.smallInteger(2), true), // version v3
    der.unsignedInteger(serial),
    sigAlg,
    name,
    der.sequence(der.time(notBefore), der.time(notAfter)),
    name,
    spki,
    der.context(3, der.sequence(...extensions), true),
  );
  const signature = sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const certDer = der.sequence(tbs, sigAlg, der.bitString(signature));
  const b64 = certDer.toString('base64').replace(/.{1,64}/g, '$&\n');
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`,
    der: certDer,
    fingerprint: createHash('sha256').update(certDer).digest(),
  };
}

function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical
    ? der.sequence(der.oid(oid), der.boolean(true), der.octetString(value))
    : der.sequence(der.oid(oid), der.octetString(value));
}

/** GeneralName: iPAddress [7] (4 or 16 octets) or dNSName [2] (IA5String), both IMPLICIT. */
function generalName(host: string): Buffer {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  if (family === 4) return der.context(7, Buffer.from(bare.split('.').map(Number)), false);
  if (family === 6) return der.context(7, ipv6Bytes(bare), false);
  const dns = bare.toLowerCase().replace(/\.$/, '');
  const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
  if (dns.length > 253 || !dns.split('.').every((l) => label.test(l))) {
    throw new ValidationError('host', `expected an IP address or a DNS name, got ${JSON.stringify(host)}`);
  }
  return der.context(2, Buffer.from(dns, 'ascii'), false);
}

function ipv6Bytes(text: string): Buffer {
  let s = text.split('%')[0]!;
  // Embedded IPv4 tail ("::ffff:192.0.2.1") becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    s = `${s.slice(0, v4.index)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** SHA-256 of a PEM certificate's DER form. */
export function certFingerprint(certPem: string): Buffer {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest();
}
