import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError, describeInput } from '../../../shared/errors.ts';
import { MAX_SOURCES } from './compile.ts';
import { CUSTOM_SOURCE } from './matcher.ts';

export interface ListSource {
  /** [a-z0-9-]{1,32}; not "custom" (the owner's own blocks go by that name). */
  id: string;
  /** http(s)://…, file:///abs/path or /abs/path */
  url: string;
  enabled: boolean;
}

/**
 * A well-known pair: StevenBlack's unified hosts (adware and malware, hosts
 * format) and HaGeZi's Multi NORMAL (ads, trackers, malware; domains format).
 * Both are large, maintained and widely used with low false positives.
 */
export const DEFAULT_SOURCES: ListSource[] = Object.freeze([
  Object.freeze({ id: 'stevenblack', url: 'https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts', enabled: true }),
  Object.freeze({ id: 'hagezi-multi', url: 'https://raw.githubusercontent.com/hagezi/dns-blocklists/main/domains/multi.txt', enabled: true }),
]) as unknown as ListSource[];

const ID = /^[a-z0-9-]{1,32}$/;

/** Where a source's data comes from: a URL to fetch, or a local file to copy. */
export type SourceLocation = { kind: 'http'; url: string } | { kind: 'file'; path: string };

export function sourceLocation(url: string, field = 'url'): SourceLocation {
  if (typeof url === 'string') {
    if (url.startsWith('/') && isAbsolute(url) && !url.includes('\0')) return { kind: 'file', path: url };
    if (url.startsWith('file://')) {
      try {
        return { kind: 'file', path: fileURLToPath(url) };
      } catch {
        // described below
      }
    }
    if (/^https?:\/\//i.test(url)) {
      try {
        const u = new URL(url);
        if (u.hostname !== '' && !u.username && !u.password) return { kind: 'http', url: u.href };
      } catch {
        // described below
      }
    }
  }
  throw new ValidationError(field, `expected an http:// or https:// URL, file:///absolute/path or /absolute/path, got ${describeInput(url)}`);
}

export function checkSource(s: unknown, field = 'source'): ListSource {
  if (typeof s !== 'object' || s === null) throw new ValidationError(field, `expected { id, url, enabled }, got ${describeInput(s)}`);
  const { id, url, enabled } = s as Record<string, unknown>;
  if (typeof id !== 'string' || !ID.test(id)) {
    throw new ValidationError(`${field}.id`, `expected 1 to 32 lowercase letters, digits or '-', got ${describeInput(id)}`);
  }
  if (id === CUSTOM_SOURCE) throw new ValidationError(`${field}.id`, `"${CUSTOM_SOURCE}" names the owner's own blocks; choose another id`);
  sourceLocation(url as string, `${field}.url`);
  if (typeof enabled !== 'boolean') throw new ValidationError(`${field}.enabled`, `expected true or false, got ${describeInput(enabled)}`);
  return { id, url: url as string, enabled };
}

export function checkSources(list: unknown, field = 'sources'): ListSource[] {
  if (!Array.isArray(list)) throw new ValidationError(field, `expected a list of sources, got ${describeInput(list)}`);
  if (list.length > MAX_SOURCES) throw new ValidationError(field, `expected at most ${MAX_SOURCES} sources, got ${list.length}`);
  const out = list.map((s, i) => checkSource(s, `${field}[${i}]`));
  const seen = new Set<string>();
  out.forEach((s, i) => {
    if (seen.has(s.id)) throw new ValidationError(`${field}[${i}].id`, `${describeInput(s.id)} is used by another source`);
    seen.add(s.id);
  });
  return out;
}
