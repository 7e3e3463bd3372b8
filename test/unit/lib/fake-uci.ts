import { UBUS_STATUS, UbusError } from '../../../gateway/ubus/error.ts';
import type { UbusCaller, UbusTable, UbusValue } from '../../../gateway/ubus/types.ts';

/**
 * A fake of what the OpenWrt adapter talks to over ubus: rpcd's `uci` object
 * (semantics read from rpcd's uci.c, reply shapes checked against the
 * recorded traffic in ../shared/ubus-vectors/02-uci-get.jsonl and
 * 03-errors.jsonl) and the few netifd objects it uses. Changes are staged
 * and become the committed store on `commit`, as with rpcd's save directory.
 */

export type FixtureOption = string | string[];
export interface FixtureSection {
  /** Absent: an anonymous section (a `cfgXXXXXX` name is made up for it). */
  name?: string;
  /** An anonymous section with a given name (as recorded traffic shows one). */
  anonymous?: boolean;
  type: string;
  options?: Record<string, FixtureOption>;
}
export type Fixture = Record<string, FixtureSection[]>;

interface Section {
  name: string;
  type: string;
  anonymous: boolean;
  options: Record<string, FixtureOption>;
}
type Store = Map<string, Section[]>;

/** The committed store as plain data, for deep comparison. */
export type Snapshot = Record<string, { name: string; type: string; anonymous: boolean; options: Record<string, FixtureOption> }[]>;

export interface RecordedCall {
  object: string;
  method: string;
  args: UbusTable;
}

export interface NetifdOverride {
  up?: boolean;
  device?: string;
  l3_device?: string;
}

export interface FakeUbusOptions {
  /** netifd's runtime view of interfaces (devices, up), by UCI interface name. */
  netifd?: Record<string, NetifdOverride>;
  /** Returns an error to throw instead of handling a call. */
  fail?: (call: RecordedCall) => UbusError | undefined;
}

const NAME = /^[A-Za-z0-9_]+$/;
const clone = (s: Store): Store => new Map([...s].map(([k, v]) => [k, v.map((x) => ({ ...x, options: structuredClone(x.options) }))]));

function anonymousName(index: number, type: string): string {
  let h = 0;
  for (const c of type) h = (h * 31 + c.charCodeAt(0)) & 0xffff;
  return `cfg${(index & 0xff).toString(16).padStart(2, '0')}${h.toString(16).padStart(4, '0')}`;
}

export function createFakeUbus(fixture: Fixture, options: FakeUbusOptions = {}) {
  let counter = 0;
  const load = (f: Fixture): Store =>
    new Map(
      Object.entries(f).map(([config, sections]) => [
        config,
        sections.map((s) => {
          counter++;
          return { name: s.name ?? anonymousName(counter, s.type), type: s.type, anonymous: s.anonymous ?? s.name === undefined, options: structuredClone(s.options ?? {}) };
        }),
      ]),
    );
  let committed = load(fixture);
  let staged = clone(committed);
  const deltas = new Map<string, UbusValue[][]>();
  const calls: RecordedCall[] = [];
  const events: string[] = [];
  const netifd = new Map(Object.entries(options.netifd ?? {}).map(([k, v]) => [k, { ...v }]));

  const fail = (status: number, message: string) => new UbusError(status, message);
  const str = (v: UbusValue | undefined) => (typeof v === 'string' ? v : undefined);

  function config(args: UbusTable, store = staged): Section[] {
    const name = str(args.config);
    const c = name === undefined ? undefined : store.get(name);
    if (!c) throw fail(UBUS_STATUS.NOT_FOUND, `no config ${String(name)}`);
    return c;
  }

  /** Plain names, and rpcd's extended "@type[index]" (negative from the end). */
  function lookup(sections: Section[], name: string): Section | undefined {
    const ext = /^@([A-Za-z0-9_]+)\[(-?\d+)\]$/.exec(name);
    if (!ext) return sections.find((s) => s.name === name);
    const ofType = sections.filter((s) => s.type === ext[1]);
    const i = Number(ext[2]);
    return ofType[i < 0 ? ofType.length + i : i];
  }

  /** rpcd's rpc_uci_format_blob: what a blobmsg value becomes in UCI, or undefined (skipped). */
  function format(v: UbusValue): string | undefined {
    if (typeof v === 'string') return v === '' ? undefined : v;
    if (typeof v === 'boolean') return v ? '1' : '0';
    if (typeof v === 'number' && Number.isInteger(v)) return String(v >>> 0);
    if (typeof v === 'bigint') return String(BigInt.asUintN(64, v));
    return undefined;
  }

  /** rpcd's rpc_uci_match_section. */
  function matchSection(s: Section, type: string | undefined, match: UbusValue | undefined): boolean {
    if (type !== undefined && s.type !== type) return false;
    if (typeof match !== 'object' || match === null || Array.isArray(match)) return true;
    let matched = false;
    let empty = true;
    for (const [k, v] of Object.entries(match)) {
      const want = format(v);
      if (want === undefined) continue;
      const have = s.options[k];
      if (have !== undefined) {
        const ok = Array.isArray(have) ? have.includes(want) : have.split(/[ \t]+/).includes(want);
        if (!ok) return false;
        matched = true;
      }
      empty = false;
    }
    return empty || matched;
  }

  function dumpSection(s: Section, index: number | null): UbusTable {
    const out: UbusTable = { '.anonymous': s.anonymous, '.type': s.type, '.name': s.name };
    if (index !== null) out['.index'] = index;
    for (const [k, v] of Object.entries(s.options)) out[k] = Array.isArray(v) ? [...v] : v;
    return out;
  }

  const delta = (cfg: string, entry: UbusValue[]) => {
    const list = deltas.get(cfg) ?? [];
    list.push(entry);
    deltas.set(cfg, list);
  };

  function setOption(cfg: string, s: Section, key: string, v: UbusValue): void {
    if (!NAME.test(key)) return;
    if (Array.isArray(v)) {
      if (s.options[key] !== undefined) {
        delete s.options[key];
        delta(cfg, ['remove', s.name, key]);
      }
      const items = v.map(format).filter((x): x is string => x !== undefined);
      if (items.length) {
        s.options[key] = items; // appended: a list re-created by rpcd goes to the end of the section
        for (const x of items) delta(cfg, ['list-add', s.name, key, x]);
      }
      return;
    }
    const value = format(v);
    if (Array.isArray(s.options[key])) {
      delete s.options[key];
      delta(cfg, ['remove', s.name, key]);
    }
    if (value !== undefined && s.options[key] !== value) {
      s.options[key] = value;
      delta(cfg, ['set', s.name, key, value]);
    }
  }

  const uci: Record<string, (args: UbusTable) => UbusTable> = {
    configs: () => ({ configs: [...staged.keys()].sort() }),
    get(args): UbusTable {
      if (args.config === undefined) throw fail(UBUS_STATUS.INVALID_ARGUMENT, 'config missing');
      const sections = config(args);
      const section = str(args.section);
      if (section === undefined) {
        const values: UbusTable = {};
        sections.forEach((s, i) => {
          if (matchSection(s, str(args.type), args.match)) values[s.name] = dumpSection(s, i);
        });
        return { values };
      }
      // A missing section or option: rpcd sends no data and status 0 (the lookup is incomplete, not an error).
      const s = lookup(sections, section);
      if (!s) return {};
      const option = str(args.option);
      if (option === undefined) return { values: dumpSection(s, null) };
      const v = s.options[option];
      return v === undefined ? {} : { value: Array.isArray(v) ? [...v] : v };
    },
    add(args): UbusTable {
      if (args.config === undefined || str(args.type) === undefined) throw fail(UBUS_STATUS.INVALID_ARGUMENT, 'config or type missing');
      const sections = config(args);
      const cfg = str(args.config)!;
      const type = str(args.type)!;
      const name = str(args.name);
      // libuci refuses a bad name or type; rpcd then replies with no data and status 0.
      if (!NAME.test(type) || (name !== undefined && !NAME.test(name))) return {};
      let s = name === undefined ? undefined : lookup(sections, name);
      if (s) {
        s.type = type;
      } else {
        s = { name: name ?? anonymousName(++counter, type), type, anonymous: name === undefined, options: {} };
        sections.push(s);
      }
      delta(cfg, ['add', s.name, type]);
      const values = args.values;
      if (typeof values === 'object' && values !== null && !Array.isArray(values)) {
        for (const [k, v] of Object.entries(values)) {
          if (!NAME.test(k)) continue;
          if (Array.isArray(v)) {
            const items = v.map(format).filter((x): x is string => x !== undefined);
            const had = s.options[k];
            if (items.length) s.options[k] = [...(had === undefined ? [] : Array.isArray(had) ? had : [had]), ...items];
            for (const x of items) delta(cfg, ['list-add', s.name, k, x]);
          } else {
            const value = format(v);
            if (value !== undefined) {
              s.options[k] = value;
              delta(cfg, ['set', s.name, k, value]);
            }
          }
        }
      }
      return { section: s.name };
    },
    set(args) {
      if (args.config === undefined || args.values === undefined || (args.section === undefined && args.type === undefined && args.match === undefined)) {
        throw fail(UBUS_STATUS.INVALID_ARGUMENT, 'config, values or section missing');
      }
      const sections = config(args);
      const cfg = str(args.config)!;
      const targets = str(args.section) !== undefined
        ? [lookup(sections, str(args.section)!)].filter((s): s is Section => s !== undefined)
        : sections.filter((s) => matchSection(s, str(args.type), args.match));
      const values = args.values;
      if (typeof values !== 'object' || values === null || Array.isArray(values)) return {};
      for (const s of targets) for (const [k, v] of Object.entries(values)) setOption(cfg, s, k, v);
      return {};
    },
    delete(args) {
      if (args.config === undefined || (args.section === undefined && args.type === undefined && args.match === undefined)) {
        throw fail(UBUS_STATUS.INVALID_ARGUMENT, 'config or section missing');
      }
      const sections = config(args);
      const cfg = str(args.config)!;
      const targets = str(args.section) !== undefined
        ? [lookup(sections, str(args.section)!)].filter((s): s is Section => s !== undefined)
        : sections.filter((s) => matchSection(s, str(args.type), args.match));
      for (const s of targets) {
        const names = Array.isArray(args.options)
          ? args.options.filter((x): x is string => typeof x === 'string')
          : str(args.option) !== undefined ? [str(args.option)!] : null;
        if (names === null) {
          sections.splice(sections.indexOf(s), 1);
          delta(cfg, ['remove', s.name]);
          continue;
        }
        for (const n of names) {
          if (s.options[n] === undefined) continue;
          delete s.options[n];
          delta(cfg, ['remove', s.name, n]);
        }
      }
      return {};
    },
    changes(args) {
      if (args.config !== undefined) {
        config(args);
        return { changes: [...(deltas.get(str(args.config)!) ?? [])] };
      }
      return { changes: Object.fromEntries([...deltas].filter(([, v]) => v.length > 0)) };
    },
    revert(args) {
      if (args.config === undefined) throw fail(UBUS_STATUS.INVALID_ARGUMENT, 'config missing');
      const cfg = str(args.config)!;
      config(args);
      staged.set(cfg, clone(new Map([[cfg, committed.get(cfg)!]])).get(cfg)!);
      deltas.delete(cfg);
      return {};
    },
    commit(args) {
      if (args.config === undefined) throw fail(UBUS_STATUS.INVALID_ARGUMENT, 'config missing');
      const cfg = str(args.config)!;
      config(args);
      committed.set(cfg, clone(new Map([[cfg, staged.get(cfg)!]])).get(cfg)!);
      deltas.delete(cfg);
      // rpcd tells procd ("config.change"), whose reload triggers restart the services of the config.
      events.push(cfg);
      return {};
    },
  };

  /** netifd's interfaces: those of the committed network config, with the runtime overrides. */
  function interfaces(): UbusTable[] {
    return (committed.get('network') ?? [])
      .filter((s) => s.type === 'interface')
      .map((s) => {
        const o = netifd.get(s.name) ?? {};
        const proto = typeof s.options.proto === 'string' ? s.options.proto : 'none';
        const device = o.device ?? (typeof s.options.device === 'string' ? s.options.device : proto === 'wireguard' ? s.name : undefined);
        const up = o.up ?? true;
        const l3 = o.l3_device ?? (up ? device : undefined);
        return {
          interface: s.name,
          up,
          pending: false,
          available: true,
          autostart: true,
          proto,
          ...(device !== undefined ? { device } : {}),
          ...(l3 !== undefined ? { l3_device: l3 } : {}),
        };
      });
  }

  const ubus: UbusCaller = {
    async call(object, method, args = {}) {
      const call: RecordedCall = { object, method, args: structuredClone(args) };
      calls.push(call);
      const injected = options.fail?.(call);
      if (injected) throw injected;
      if (object === 'uci') {
        const m = uci[method];
        if (!m) throw fail(UBUS_STATUS.METHOD_NOT_FOUND, method);
        return m(args);
      }
      if (object === 'network' && method === 'reload') return {};
      if (object === 'network.interface' && method === 'dump') return { interface: interfaces() };
      const iface = /^network\.interface\.(.+)$/.exec(object);
      if (iface) {
        const entry = interfaces().find((i) => i.interface === iface[1]);
        // ubus finds no such object: the lookup fails with NOT_FOUND.
        if (!entry) throw fail(UBUS_STATUS.NOT_FOUND, `no object ${object}`);
        if (method === 'status') return entry;
        if (method === 'down' || method === 'up') {
          netifd.set(iface[1]!, { ...netifd.get(iface[1]!), up: method === 'up' });
          return {};
        }
        throw fail(UBUS_STATUS.METHOD_NOT_FOUND, method);
      }
      throw fail(UBUS_STATUS.NOT_FOUND, `no object ${object}`);
    },
  };

  return {
    ubus,
    calls,
    /** Configs committed, in order (each a config.change for procd). */
    events,
    snapshot(): Snapshot {
      return Object.fromEntries(
        [...committed].map(([k, v]) => [k, v.map((s) => ({ name: s.name, type: s.type, anonymous: s.anonymous, options: structuredClone(s.options) }))]),
      );
    },
    /** Staged changes not committed, by config. */
    pending(): Record<string, number> {
      return Object.fromEntries([...deltas].filter(([, v]) => v.length > 0).map(([k, v]) => [k, v.length]));
    },
    setNetifd(name: string, o: NetifdOverride) {
      netifd.set(name, { ...netifd.get(name), ...o });
    },
    reset(f: Fixture) {
      committed = load(f);
      staged = clone(committed);
      deltas.clear();
    },
  };
}

export type FakeUbus = ReturnType<typeof createFakeUbus>;

/** Calls that change something (uci add/set/delete/commit/revert, interface down/up, reload). */
export function writes(calls: RecordedCall[]): RecordedCall[] {
  return calls.filter((c) => !(['get', 'changes', 'configs', 'dump', 'status'] as string[]).includes(c.method));
}
