import { ValidationError } from '../shared/errors.ts';

// IFNAMSIZ (linux/if.h) is 16 bytes with the terminating NUL.
const MAX_LENGTH = 15;

/**
 * Accepts an interface name that is safe in argv and inside nft string
 * literals: letters, digits, '_', '-', '.'. No '*', which nft would read as a
 * wildcard, and no quotes.
 */
export function checkInterfaceName(name: unknown, field: string): string {
  if (typeof name !== 'string' || name === '') {
    throw new ValidationError(field, `expected an interface name, got ${typeof name === 'string' ? 'an empty string' : typeof name}`);
  }
  if (name.length > MAX_LENGTH) {
    throw new ValidationError(field, `interface name ${JSON.stringify(name.slice(0, 40))} is longer than ${MAX_LENGTH} characters`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
    throw new ValidationError(field, `interface name ${JSON.stringify(name)} may hold only letters, digits, '_', '-' and '.'`);
  }
  return name;
}
