import { readFile, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../../atomic-file.ts';
import type { UciConfigName, UciOption, UciSection } from './uci.ts';

/**
 * What the adapter changed in sections that are not its own, with the value
 * each option had before, so that set(null) puts it back, even from a fresh
 * process. Sections are found again by type and options, not by name:
 * anonymous sections get their `cfgXXXXXX` names from a hash of their
 * content each time UCI loads the file, so a name does not survive an edit.
 */

export interface SavedOption {
  config: UciConfigName;
  type: string;
  /** Options the section has (null: the first section of the type). */
  match: Record<string, string> | null;
  option: string;
  /** What it was before we changed it; null: it was not set. */
  previous: UciOption | null;
}

export interface Remembered {
  version: 1;
  /** The netifd interface section we created, named after the tunnel. */
  interface: string | null;
  saved: SavedOption[];
}

export const emptyRemembered = (): Remembered => ({ version: 1, interface: null, saved: [] });

export async function readRemembered(path: string): Promise<Remembered> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyRemembered();
    throw e;
  }
  const v = JSON.parse(text) as Partial<Remembered>;
  if (v.version !== 1 || !Array.isArray(v.saved)) throw new Error(`${path}: not a state file of this version`);
  return { version: 1, interface: typeof v.interface === 'string' ? v.interface : null, saved: v.saved };
}

/** 0600: it holds no secret, but it describes the router's firewall. */
export async function writeRemembered(path: string, r: Remembered): Promise<void> {
  if (r.interface === null && r.saved.length === 0) {
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    return;
  }
  await writeFileAtomic(path, `${JSON.stringify(r, null, 2)}\n`, 0o600);
}

export function matches(s: UciSection, saved: Pick<SavedOption, 'type' | 'match'>): boolean {
  if (s.type !== saved.type) return false;
  return Object.entries(saved.match ?? {}).every(([k, v]) => s.options[k] === v);
}

export const sameTarget = (a: SavedOption, b: Pick<SavedOption, 'config' | 'type' | 'match' | 'option'>) =>
  a.config === b.config && a.type === b.type && a.option === b.option && JSON.stringify(a.match) === JSON.stringify(b.match);
