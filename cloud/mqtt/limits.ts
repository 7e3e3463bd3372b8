import { ValidationError } from '../../shared/errors.ts';
import { createRateLimiter, rateLimitKey, type RateLimiter } from '../core/rate-limit.ts';

// Limits against misuse that apply before and beside the MQTT handshake:
// they cost the broker nothing per message beyond a few counters.

export interface MqttLimits {
  /** Largest packet (fixed header included) a client may send; a bigger one closes its connection. */
  maxPacketBytes: number;
  /** Open connections at most; more are closed before their CONNECT is read. */
  maxClients: number;
  /** New connections per minute from one address (or IPv6 /64). */
  connectionsPerMinutePerSource: number;
  /** Packets a client may send before its CONNACK (aedes `queueLimit`). */
  queueBeforeConnack: number;
  /** Inbound QoS 2 messages awaiting PUBREL per client (aedes `maxInflightInbound`). */
  maxInflightInbound: number;
  /** Levels of a topic at most (aedes `maxTopicLevels`, at most 100). */
  maxTopicLevels: number;
  /** Time for a client to send CONNECT after connecting. */
  connectTimeoutMs: number;
}

export const DEFAULT_LIMITS: MqttLimits = {
  // Home devices send state and small images; a camera snapshot fits.
  maxPacketBytes: 1024 * 1024,
  maxClients: 1000,
  connectionsPerMinutePerSource: 20,
  queueBeforeConnack: 42,
  maxInflightInbound: 100,
  maxTopicLevels: 32,
  connectTimeoutMs: 10_000,
};

export function resolveLimits(over: Partial<MqttLimits> = {}): MqttLimits {
  const limits = { ...DEFAULT_LIMITS, ...over };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new ValidationError(`limits.${key}`, `expected a positive integer, got ${String(value)}`);
  }
  limits.maxTopicLevels = Math.min(limits.maxTopicLevels, 100);
  return limits;
}

export type GateDecision = { allowed: true } | { allowed: false; reason: string; key: string };

/** Admits new connections: at most `maxClients` open, at most N a minute per source. */
export function createConnectionGate(limits: MqttLimits, now: () => number = Date.now) {
  // The failure limiter counts every connection as a "failure": same sliding window, same memory bound.
  const perSource: RateLimiter = createRateLimiter({ limit: limits.connectionsPerMinutePerSource, windowMs: 60_000, now });
  let open = 0;
  return {
    admit(address: string): GateDecision {
      const key = rateLimitKey(address);
      if (open >= limits.maxClients) return { allowed: false, key, reason: `${limits.maxClients} connections are open, the most allowed` };
      const gate = perSource.check(key);
      if (!gate.allowed) {
        return { allowed: false, key, reason: `more than ${limits.connectionsPerMinutePerSource} connections a minute from ${key}` };
      }
      perSource.fail(key);
      return { allowed: true };
    },
    opened: () => void open++,
    closed: () => void open--,
    get open() {
      return open;
    },
  };
}

/**
 * Whether to log another refusal from `key`: the first in each minute only,
 * so a flood of refused connections cannot flood the log.
 */
export function createLogThrottle(now: () => number = Date.now, windowMs = 60_000, maxKeys = 1000) {
  const last = new Map<string, number>();
  return (key: string): boolean => {
    const t = now();
    const at = last.get(key);
    if (at !== undefined && t - at < windowMs) return false;
    if (last.size >= maxKeys) last.clear();
    last.set(key, t);
    return true;
  };
}

/**
 * Watches the bytes of one connection, packet by packet, and says when a
 * packet announces more than `max` bytes or a malformed length. MQTT v3.1.1
 * §2.2.3: the Remaining Length is 1 to 4 bytes, 7 bits each, low first.
 * Checked before the parser buffers the body, so a client cannot make the
 * broker hold 256 MB by announcing it.
 */
export function createPacketSizeGuard(max: number) {
  // header: reading the type byte (0) or length byte n (1..4); body: bytes left to skip
  let state: 'type' | 'length' | 'body' = 'type';
  let lengthBytes = 0;
  let length = 0;
  let multiplier = 1;
  let left = 0;
  return function feed(chunk: Uint8Array): string | null {
    let i = 0;
    while (i < chunk.length) {
      if (state === 'body') {
        const skip = Math.min(left, chunk.length - i);
        left -= skip;
        i += skip;
        if (left === 0) state = 'type';
        continue;
      }
      const byte = chunk[i++]!;
      if (state === 'type') {
        state = 'length';
        lengthBytes = 0;
        length = 0;
        multiplier = 1;
        continue;
      }
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      lengthBytes++;
      if (byte & 0x80) {
        if (lengthBytes === 4) return 'a Remaining Length longer than 4 bytes (MQTT v3.1.1 §2.2.3)';
        continue;
      }
      // 1 type byte + the length bytes + the body
      if (1 + lengthBytes + length > max) return `a packet of ${1 + lengthBytes + length} bytes, more than the ${max} allowed`;
      left = length;
      state = left === 0 ? 'type' : 'body';
    }
    return null;
  };
}
