import { familyBits, formatAddress, formatPrefix, hostPrefix, parseAddress, parsePrefix, type Prefix } from '../../shared/cidr.ts';
import { describeInput, ValidationError } from '../../shared/errors.ts';
import type { FirewallPolicy } from '../firewall/desired.ts';

// Checks of what the owner sends for the firewall and the temporary IP:
// each names the field and what was expected.

/** `input` as an object with only the `allowed` keys; anything else is named in the error. */
export function checkFields(input: unknown, allowed: readonly string[], field = 'body'): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError(field, `expected an object with ${allowed.join(', ')}, got ${Array.isArray(input) ? 'an array' : describeInput(input)}`);
  }
  const unknown = Object.keys(input).find((k) => !allowed.includes(k));
  if (unknown !== undefined) throw new ValidationError(unknown.slice(0, 40), `unknown field; expected ${allowed.join(', ')}`);
  return input as Record<string, unknown>;
}

export function checkPort(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535) return value;
  throw new ValidationError(field, `expected a port number from 1 to 65535, got ${typeof value === 'number' ? value : describeInput(value)}`);
}

export function checkProto(value: unknown, field = 'proto'): 'tcp' | 'udp' {
  if (value === 'tcp' || value === 'udp') return value;
  throw new ValidationError(field, `expected "tcp" or "udp", got ${describeInput(value)}`);
}

function checkBoolean(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  throw new ValidationError(field, `expected true or false, got ${describeInput(value)}`);
}

/** A policy change: any of internet, isolated, lanAccess, and at least one. */
export function checkPolicyPatch(input: unknown): Partial<FirewallPolicy> {
  const body = checkFields(input, ['internet', 'isolated', 'lanAccess']);
  const patch: Partial<FirewallPolicy> = {};
  if (body.internet !== undefined) {
    if (body.internet !== 'allow' && body.internet !== 'block') {
      throw new ValidationError('internet', `expected "allow" or "block", got ${describeInput(body.internet)}`);
    }
    patch.internet = body.internet;
  }
  if (body.isolated !== undefined) patch.isolated = checkBoolean(body.isolated, 'isolated');
  if (body.lanAccess !== undefined) patch.lanAccess = checkBoolean(body.lanAccess, 'lanAccess');
  if (Object.keys(patch).length === 0) throw new ValidationError('body', 'expected at least one of internet, isolated, lanAccess');
  return patch;
}

/** A LAN host's address or prefix, canonical; a /32 or /128 is written as the plain address. */
export function checkHostAddress(value: unknown, field = 'address'): { text: string; prefix: Prefix } {
  const expected = 'expected an IP address or prefix of a device behind the router, such as 192.0.2.140 or 192.0.2.144/28';
  if (typeof value !== 'string' || value === '') throw new ValidationError(field, `${expected}, got ${describeInput(value)}`);
  if (value.includes('/')) {
    const prefix = parsePrefix(value, field); // says which network was meant if host bits are set
    const single = prefix.length === familyBits(prefix.family);
    return { text: single ? formatAddress({ family: prefix.family, value: prefix.network }) : formatPrefix(prefix), prefix };
  }
  let address;
  try {
    address = parseAddress(value, field);
  } catch {
    throw new ValidationError(field, `${expected}, got ${describeInput(value)}`);
  }
  return { text: formatAddress(address), prefix: hostPrefix(address) };
}

