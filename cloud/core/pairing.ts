import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parsePrefix, prefixesOverlap, type Prefix } from '../../shared/cidr.ts';
import { decodeSecret, encodePairingCode, formatEndpoint } from '../../shared/pairing-code.ts';
import {
  CreatePairingCodeRequest,
  PairRequest,
  parseWith,
  type CreatePairingCodeResponse,
  type PairResponse,
} from '../../shared/schemas.ts';
import type { DeviceRecord } from '../store/devices.ts';
import type { PairingCodeRecord } from '../store/pairing-codes.ts';
import { homeV6At, homeV6Space, interfaceAddressesAt, overlayPrefixes, vmAddresses } from './addressing.ts';
import { KEEPALIVE_SECONDS } from './config.ts';
import { insertDevice, type DeviceDeps } from './devices.ts';
import { CoreError } from './errors.ts';
import { checkLanPrefixes } from './lan-prefixes.ts';

const withHomeV6 = (homeV6: string | null) => (homeV6 ? { homeV6 } : {});

export const DEFAULT_CODE_TTL_SECONDS = 15 * 60;
/** Used and expired codes are kept this long, so a late attempt hears "used"/"expired", not "unknown". */
const KEEP_OLD_CODES_MS = 7 * 24 * 60 * 60 * 1000;
const SECRET_BYTES = 16;

export interface Pairing {
  /** A new single-use code; `input` is checked against CreatePairingCodeRequest. */
  createCode(input?: unknown): CreatePairingCodeResponse;
  /**
   * Redeems a code for a gateway: `input` is checked against PairRequest. On
   * any error nothing is stored; on success the gateway exists and the code is
   * used, both in one transaction.
   */
  redeem(input: unknown): PairResponse;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

export interface PairingDeps extends DeviceDeps {
  /** The VM's own networks outside the tunnel (see CoreDeps.localPrefixes). */
  localPrefixes?: () => readonly string[];
}

const within = (p: Prefix, outer: Prefix) => p.family === outer.family && p.length >= outer.length && prefixesOverlap(p, outer);

export function createPairing(deps: PairingDeps): Pairing {
  const { store, config, events, now } = deps;

  /** Compares against every stored code, without stopping at a match, in constant time per code. */
  const findCode = (secret: Uint8Array): PairingCodeRecord | undefined => {
    const hash = sha256(secret);
    let match: PairingCodeRecord | undefined;
    for (const code of store.pairingCodes.all()) {
      if (code.secretHash.length === hash.length && timingSafeEqual(hash, code.secretHash)) match = code;
    }
    return match;
  };

  const used = () => new CoreError('invalid_code', 'this pairing code has already been used; create a new one with "aerie-cloud pair"');

  /** Checks the code, then the request against the state, then stores; call inside a transaction. */
  /**
   * The /64 the router's index names (homeV6At), or, when that one is beyond the
   * prefix or already another home's, the first free one: a /60 serves 15 routers
   * whatever their indexes. null when none is left (the home gets no IPv6 from the VM).
   */
  const homeV6For = (index: number, gateways: readonly DeviceRecord[]): string | null => {
    const routed = config.homeV6Prefix ?? null;
    const taken = gateways.flatMap((g) => g.lanPrefixes.map((t) => parsePrefix(t)));
    const free = (text: string | null) => text !== null && !taken.some((p) => prefixesOverlap(p, parsePrefix(text)));
    const mine = homeV6At(config.overlay, index, routed);
    if (free(mine)) return mine;
    const slots = routed ? Math.min(2 ** (64 - routed.length), 0x10000) : 0x10000;
    for (let k = 1; k < slots; k++) {
      const candidate = homeV6At(config.overlay, k, routed);
      if (free(candidate)) return candidate;
    }
    return null;
  };

  // The /64 the last addGateway gave (the answer names it).
  let homeV6: string | null = null;
  const addGateway = (req: PairRequest, secret: Uint8Array): DeviceRecord => {
    homeV6 = null;
    const t = now();
    // The code first: without a valid one, nobody learns which names or prefixes exist.
    const code = findCode(secret);
    if (!code) {
      throw new CoreError('invalid_code', 'this pairing code is not valid; check it, or create a new one with "aerie-cloud pair"');
    }
    if (code.usedAt !== null) throw used();
    if (t >= code.expiresAt) {
      throw new CoreError(
        'invalid_code',
        `this pairing code expired at ${new Date(code.expiresAt).toISOString()}; create a new one with "aerie-cloud pair"`,
      );
    }
    const gateways = store.devices.list().filter((d) => d.role === 'gateway');
    // A router paired before reports the /64 the VM gave it then: the VM hands those out, not the router.
    const space = homeV6Space(config.overlay, config.homeV6Prefix ?? null);
    const handedOut = (p: Prefix) => within(p, space) && !prefixesOverlap(p, config.overlay.v6);
    const reported = req.lanPrefixes.filter((t) => !handedOut(parsePrefix(t)));
    checkLanPrefixes(reported, {
      overlay: config.overlay,
      gateways,
      publicHost: config.publicHost,
      localPrefixes: deps.localPrefixes?.() ?? [],
    });
    // The home also gets an IPv6 /64 from the VM, routed like the prefixes it reported (NATed unless from homeV6Prefix).
    const lanPrefixes = (index: number) => {
      homeV6 = homeV6For(index, gateways);
      return homeV6 ? [...reported, homeV6] : reported;
    };
    const d = insertDevice(deps, { name: req.name, role: 'gateway', publicKey: req.publicKey, lanPrefixes });
    if (!store.pairingCodes.markUsed(code.id, t, d.name)) throw used();
    return d;
  };

  return {
    createCode(input = {}) {
      const req = parseWith(CreatePairingCodeRequest, input);
      const t = now();
      const secret = randomBytes(SECRET_BYTES);
      const expiresAt = t + (req.ttlSeconds ?? DEFAULT_CODE_TTL_SECONDS) * 1000;
      const code = encodePairingCode({
        host: config.publicHost,
        port: config.pairingPort,
        fingerprint: config.tls.fingerprint,
        secret,
      });
      store.transaction(() => {
        store.pairingCodes.pruneExpired(t - KEEP_OLD_CODES_MS);
        store.pairingCodes.insert({ secretHash: sha256(secret), createdAt: t, expiresAt });
      });
      secret.fill(0);
      events.emit('pairing-codes-changed', { reason: 'created' });
      return { code, expiresAt: new Date(expiresAt).toISOString() };
    },

    redeem(input) {
      const req = parseWith(PairRequest, input);
      const secret = decodeSecret(req.secret);
      let device: DeviceRecord;
      try {
        device = store.transaction(() => addGateway(req, secret));
      } finally {
        secret.fill(0);
      }
      events.emit('devices-changed', { reason: 'paired', name: device.name });
      events.emit('pairing-codes-changed', { reason: 'used' });
      return {
        name: device.name,
        vmPublicKey: config.publicKey,
        endpoint: formatEndpoint(config.publicHost, config.publicPort),
        addresses: interfaceAddressesAt(config.overlay, device.hostIndex),
        overlay: overlayPrefixes(config.overlay),
        services: { api: vmAddresses(config.overlay) },
        keepalive: KEEPALIVE_SECONDS,
        ...withHomeV6(homeV6),
      };
    },
  };
}
