import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { formatAddress, parseAddress } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { writeFileAtomic } from '../atomic-file.ts';

/**
 * The router's own resolver learns where the VM's resolver is from a resolv
 * file: dnsmasq started with `--resolv-file=PATH` reads its `nameserver`
 * lines and reads them again whenever the file changes. Written atomically
 * (readers see the old file or the new, never a part) and only when its text
 * changes, so a reconcile pass that changes nothing does not touch it.
 *
 * Nothing removes it: with Aerie stopped or disabled the resolver keeps
 * asking the VM, gets no answer, and DNS fails closed until the owner points
 * the resolver elsewhere.
 */

export function checkResolvFilePath(path: unknown, field: string): string {
  // A newline or NUL would not survive as one path in a config line or syscall.
  if (typeof path !== 'string' || !isAbsolute(path) || /[\0\n\r]/.test(path) || path.endsWith('/')) {
    throw new ValidationError(field, `expected an absolute file path, got ${JSON.stringify(path)}`);
  }
  return path;
}

export function renderResolvFile(servers: string[]): string {
  const lines = servers.map((s, i) => `nameserver ${formatAddress(parseAddress(s, `dns.servers[${i}]`))}`);
  return [
    "# Written by aerie-gateway: the VM's resolver, reached through the tunnel. Edits are overwritten.",
    ...new Set(lines),
    '',
  ].join('\n');
}

/** Makes the file hold `text`; returns true when it had to be written. */
export async function syncResolvFile(path: string, servers: string[]): Promise<boolean> {
  const text = renderResolvFile(servers);
  const have = await readFile(checkResolvFilePath(path, 'dns.resolvFile'), 'utf8').catch(() => null);
  if (have === text) return false;
  await writeFileAtomic(path, text, 0o644);
  return true;
}
