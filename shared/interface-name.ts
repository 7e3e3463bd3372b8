import { ValidationError } from './errors.ts';

// IFNAMSIZ is 16 bytes including the terminating NUL (linux/if.h).
export const MAX_INTERFACE_NAME = 15;

/**
 * Checks a network interface name before it goes into argv, nft text or a
 * config. Stricter than the kernel's dev_valid_name: only letters, digits,
 * '_', '-' and '.', so the name needs no quoting anywhere and holds no nft
 * wildcard; and no leading '-', which ip, wg and nft would read as an option.
 */
export function checkInterfaceName(name: unknown, field: string): string {
  if (typeof name !== 'string' || name === '') {
    throw new ValidationError(field, `expected an interface name, got ${typeof name === 'string' ? 'an empty string' : typeof name}`);
  }
  const shown = JSON.stringify(name.slice(0, 40));
  if (name.length > MAX_INTERFACE_NAME) {
    throw new ValidationError(field, `interface name ${shown} is longer than ${MAX_INTERFACE_NAME} characters`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
    throw new ValidationError(field, `interface name ${shown} may hold only letters, digits, '_', '-' and '.'`);
  }
  if (name.startsWith('-')) {
    throw new ValidationError(field, `interface name ${shown} must not start with '-' (commands would read it as an option)`);
  }
  return name;
}
