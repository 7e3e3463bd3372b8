import type { UbusTable } from '../../ubus/types.ts';
import { sameOption, type UciConfig, type UciConfigName, type UciOption, type UciSection } from './uci.ts';

/**
 * From the whole UCI state we want to the fewest rpcd `uci` calls that reach
 * it. The semantics are rpcd's (uci.c): `add` with a name creates a named
 * section (a list value is added item by item); `set` replaces an option, and
 * an array replaces a list whole; `delete` drops options or a section.
 */

export interface SectionSpec {
  type: string;
  options: Record<string, UciOption>;
}

/** An option of a section that is not ours; null deletes it. */
export interface OptionEdit {
  section: string;
  option: string;
  value: UciOption | null;
}

export interface UciCall {
  method: 'add' | 'set' | 'delete';
  args: UbusTable;
}

export function diffConfig(
  config: UciConfigName,
  current: UciConfig,
  want: Map<string, SectionSpec>,
  isOwned: (s: UciSection) => boolean,
  edits: OptionEdit[] = [],
): UciCall[] {
  const calls: UciCall[] = [];
  const byName = new Map(current.map((s) => [s.name, s]));
  for (const [name, spec] of want) {
    const have = byName.get(name);
    if (have && have.type !== spec.type) calls.push({ method: 'delete', args: { config, section: name } });
    if (!have || have.type !== spec.type) {
      calls.push({ method: 'add', args: { config, type: spec.type, name, values: { ...spec.options } } });
      continue;
    }
    const stale = Object.keys(have.options).filter((k) => !(k in spec.options));
    const changed = Object.entries(spec.options).filter(([k, v]) => !sameOption(have.options[k], v));
    if (changed.length) calls.push({ method: 'set', args: { config, section: name, values: Object.fromEntries(changed) } });
    if (stale.length) calls.push({ method: 'delete', args: { config, section: name, options: stale } });
  }
  for (const s of current) {
    if (!want.has(s.name) && isOwned(s)) calls.push({ method: 'delete', args: { config, section: s.name } });
  }
  // One set and one delete per section, however many options change in it.
  const sets = new Map<string, Record<string, UciOption>>();
  const deletes = new Map<string, string[]>();
  for (const e of edits) {
    const have = byName.get(e.section)?.options[e.option];
    if (e.value === null) {
      if (have !== undefined) deletes.set(e.section, [...(deletes.get(e.section) ?? []), e.option]);
    } else if (!sameOption(have, e.value)) {
      sets.set(e.section, { ...sets.get(e.section), [e.option]: e.value });
    }
  }
  for (const [section, values] of sets) calls.push({ method: 'set', args: { config, section, values } });
  for (const [section, options] of deletes) calls.push({ method: 'delete', args: { config, section, options } });
  return calls;
}
