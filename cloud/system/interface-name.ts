import { ValidationError } from '../../shared/errors.ts';

// IFNAMSIZ is 16 bytes including the terminating NUL (linux/if.h).
export const MAX_INTERFACE_NAME = 15;

/**
 * Checks a network interface name before it goes into argv or nft text.
 * Stricter than the kernel's dev_valid_name: only letters, digits, '_', '-'
 * and '.', so the name needs no quoting anywhere and holds no nft wildcard.
 */
export function checkInterfaceName(name: unknown, field: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ValidationError(field, 'expected an interface name, got ' + (typeof name === 'string' ? 'an empty string' : typeof name));
  }
  if (name.length > MAX_INTERFACE_NAME) {
    throw new ValidationError(field, `interface name ${JSON.stringify(name.slice(0, 40))} is longer than ${MAX_INTERFACE_NAME} characters`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
    throw new ValidationError(field, `interface name ${JSON.stringify(name)} may hold only letters, digits, '_', '-' and '.'`);
  }
  return name;
}
