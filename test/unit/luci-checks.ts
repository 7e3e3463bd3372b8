// The LuCI app's cross-checks against the daemon, as pure functions over
// in-memory sources (the views and the shared module `aerie`), so that a test
// can also feed them doctored copies. Each returns a list of problems; an
// empty list passes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vm from 'node:vm';
import type { AerieMethodSpec } from '../../gateway/rpc/aerie-object.ts';
import type { RouterOption } from '../../gateway/rpc/router-options.ts';
import { findBoundOptions, findDeclares, findExtendKeys, findMemberUses, findRequires, tokenize, type Declare } from './luci-js.ts';

export const APP_DIR = fileURLToPath(new URL('../../openwrt-feed/luci-app-aerie/', import.meta.url));
export const RESOURCES_DIR = join(APP_DIR, 'htdocs/luci-static/resources');
export const VIEW_DIR = join(RESOURCES_DIR, 'view');
/** The module the views share, loaded by `'require aerie'`. */
export const MODULE_NAME = 'aerie';
export const MODULE_FILE = join(RESOURCES_DIR, `${MODULE_NAME}.js`);
export const MENU_FILE = join(APP_DIR, 'root/usr/share/luci/menu.d/luci-app-aerie.json');
export const ACL_FILE = join(APP_DIR, 'root/usr/share/rpcd/acl.d/luci-app-aerie.json');
export const POT_FILE = join(APP_DIR, 'po/templates/aerie.pot');
export const INIT_FILE = fileURLToPath(new URL('../../openwrt-feed/aerie/files/aerie.init', import.meta.url));
export const ACL_NAME = 'luci-app-aerie';

type Methods = Readonly<Record<string, AerieMethodSpec>>;

/** A LuCI client source: a view or the shared module. */
export interface LuciSource {
  /** What LuCI calls it: a view "aerie/status", as menu.d names it; the module "aerie", as 'require' names it. */
  path: string;
  /** Below htdocs/luci-static/resources: "view/aerie/status.js", "aerie.js". */
  file: string;
  src: string;
}

export function readViews(dir = VIEW_DIR): LuciSource[] {
  const out: LuciSource[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.js')) {
        const path = relative(dir, join(d, e.name)).replace(/\.js$/, '');
        out.push({ path, file: `view/${path}.js`, src: readFileSync(join(d, e.name), 'utf8') });
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

export function readModule(): LuciSource {
  return { path: MODULE_NAME, file: `${MODULE_NAME}.js`, src: readFileSync(MODULE_FILE, 'utf8') };
}

/** LuCI compiles a view or module as a function body (its `return x.extend(...)` is the result): parse it so. */
export function checkParses(v: LuciSource): string[] {
  try {
    new vm.Script(`(function () {\n${v.src}\n})`, { filename: v.file });
    return [];
  } catch (e) {
    return [`${v.file}: does not parse: ${(e as Error).message}`];
  }
}

/** What a source hands LuCI's loader: a view extends `view`, the shared module `baseclass`. */
export type LuciBase = 'view' | 'baseclass';

/** The shape LuCI's loader expects, and a 'require' for every LuCI module (ours included) the source uses. */
export function checkShape(v: LuciSource, base: LuciBase): string[] {
  const toks = tokenize(v.src);
  const problems: string[] = [];
  const at = (i: number) => toks[i]?.value;
  if (at(0) !== 'use strict') problems.push(`${v.file}: does not start with 'use strict'`);
  if (!toks.some((_t, i) => at(i) === 'return' && at(i + 1) === base && at(i + 2) === '.' && at(i + 3) === 'extend')) {
    problems.push(`${v.file}: has no "return ${base}.extend(...)"`);
  }
  const required = new Set(findRequires(toks));
  if (base === 'baseclass' && required.has(MODULE_NAME)) problems.push(`${v.file}: requires itself`);
  const modules = ['view', 'baseclass', 'rpc', 'form', 'ui', 'poll', 'dom', 'uci', 'fs', 'network', 'widgets', MODULE_NAME];
  for (const m of modules) {
    const used = toks.some((t, i) => t.kind === 'ident' && t.value === m && at(i + 1) === '.' && at(i - 1) !== '.');
    if (used && !required.has(m)) problems.push(`${v.file}: uses ${m}. without 'require ${m}'`);
  }
  return problems;
}

export const checkViewShape = (v: LuciSource) => checkShape(v, 'view');
export const checkModuleShape = (v: LuciSource) => checkShape(v, 'baseclass');

/** Every rpc.declare names our object, a method it registers, with its exact parameter names. */
export function checkDeclares(path: string, declares: Declare[], methods: Methods, object = 'aerie'): string[] {
  const problems: string[] = [];
  for (const d of declares) {
    const where = `${path}:${d.line}`;
    const { object: o, method: m, params } = d.options;
    if (o !== object) {
      problems.push(`${where}: rpc.declare object ${JSON.stringify(o)}, not "${object}"`);
      continue;
    }
    if (typeof m !== 'string' || !Object.hasOwn(methods, m)) {
      problems.push(`${where}: the daemon's ${object} object has no method ${JSON.stringify(m)}`);
      continue;
    }
    const want = Object.keys(methods[m]!.args);
    const got = params === undefined ? [] : params;
    if (!Array.isArray(got) || JSON.stringify(got) !== JSON.stringify(want)) {
      problems.push(`${where}: ${m} params ${JSON.stringify(got)}, the daemon takes ${JSON.stringify(want)}`);
    }
  }
  return problems;
}

/** Each method is declared in one place only (the shared module), so no two declarations can drift apart. */
export function checkDeclaredOnce(sources: LuciSource[]): string[] {
  const where = new Map<string, string[]>();
  for (const v of sources) {
    for (const d of findDeclares(tokenize(v.src))) {
      const key = `${String(d.options['object'])}.${String(d.options['method'])}`;
      where.set(key, [...(where.get(key) ?? []), `${v.file}:${d.line}`]);
    }
  }
  return [...where].filter(([, at]) => at.length > 1).map(([key, at]) => `${key} is declared ${at.length} times (${at.join(', ')}); declare it once, in ${MODULE_NAME}.js`);
}

/** The module's call functions, by the name it offers them under (`callSet: callSet`) → the ubus method they call. */
export function moduleCalls(module: LuciSource): Map<string, string> {
  const toks = tokenize(module.src);
  const offered = new Set(findExtendKeys(toks, 'baseclass') ?? []);
  const out = new Map<string, string>();
  for (const d of findDeclares(toks)) {
    if (d.variable !== null && offered.has(d.variable) && typeof d.options['method'] === 'string') out.set(d.variable, d.options['method']);
  }
  return out;
}

/** Every `aerie.x` a view uses is something the module offers (else the view throws in the browser). */
export function checkModuleUses(views: LuciSource[], module: LuciSource): string[] {
  const offered = findExtendKeys(tokenize(module.src), 'baseclass');
  if (offered === null) return [`${module.file}: offers nothing (no "return baseclass.extend({...})")`];
  const problems: string[] = [];
  for (const v of views) {
    for (const u of findMemberUses(tokenize(v.src), MODULE_NAME)) {
      if (!offered.includes(u.name)) problems.push(`${v.file}:${u.line}: uses ${MODULE_NAME}.${u.name}, which ${module.file} does not offer (${offered.join(', ')})`);
    }
  }
  return problems;
}

export const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** rpcd's acl.d shape; read grants only read methods, write only write methods, each exactly once; our UCI package only. */
export function checkAcl(acl: unknown, methods: Methods, object = 'aerie', uciPackage = 'aerie'): string[] {
  const problems: string[] = [];
  if (!isObject(acl) || Object.keys(acl).length !== 1 || !isObject(acl[ACL_NAME])) {
    return [`the ACL file must hold exactly one group, "${ACL_NAME}"`];
  }
  const group = acl[ACL_NAME];
  if (typeof group['description'] !== 'string' || group['description'] === '') problems.push('the ACL group has no description');
  for (const k of Object.keys(group)) if (!['description', 'read', 'write'].includes(k)) problems.push(`the ACL group has an unknown key "${k}"`);
  const granted = new Map<string, string>();
  for (const access of ['read', 'write'] as const) {
    const part = group[access];
    if (!isObject(part)) {
      problems.push(`the ACL has no "${access}" part`);
      continue;
    }
    for (const k of Object.keys(part)) if (k !== 'ubus' && k !== 'uci') problems.push(`${access} grants "${k}", which the app does not need`);
    const uci = part['uci'];
    if (!Array.isArray(uci) || uci.length !== 1 || uci[0] !== uciPackage) problems.push(`${access}.uci must be ["${uciPackage}"], got ${JSON.stringify(uci)}`);
    const ubus = part['ubus'];
    if (!isObject(ubus)) {
      problems.push(`${access}.ubus is not an object`);
      continue;
    }
    for (const [obj, list] of Object.entries(ubus)) {
      if (obj !== object) {
        problems.push(`${access}.ubus grants object "${obj}"`);
        continue;
      }
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
        problems.push(`${access}.ubus.${obj} is not a list of method names`);
        continue;
      }
      for (const m of list as string[]) {
        const spec = Object.hasOwn(methods, m) ? methods[m] : undefined;
        if (!spec) problems.push(`${access} grants ${obj}.${m}, which the daemon does not register`);
        else if (spec.access !== access) problems.push(`${access} grants ${obj}.${m}, a ${spec.access} method`);
        if (granted.has(m)) problems.push(`${obj}.${m} is granted twice`);
        granted.set(m, access);
      }
    }
  }
  for (const [m, spec] of Object.entries(methods)) {
    if (!granted.has(m)) problems.push(`the ACL does not grant ${object}.${m} (a ${spec.access} method)`);
  }
  return problems;
}

/** LuCI's menu.d shape: our entries under admin/services/aerie, views that exist, the parent depending on our ACL and UCI. */
export function checkMenu(menu: unknown, viewPaths: readonly string[]): string[] {
  if (!isObject(menu)) return ['the menu file is not a JSON object'];
  const problems: string[] = [];
  const root = 'admin/services/aerie';
  if (!isObject(menu[root])) problems.push(`the menu has no "${root}" entry`);
  const targets = new Set<string>();
  for (const [path, entry] of Object.entries(menu)) {
    if (path !== root && !path.startsWith(`${root}/`)) problems.push(`menu entry "${path}" is not under ${root}`);
    if (!isObject(entry)) {
      problems.push(`menu entry "${path}" is not an object`);
      continue;
    }
    if (typeof entry['title'] !== 'string' || entry['title'] === '') problems.push(`menu entry "${path}" has no title`);
    if (entry['order'] !== undefined && typeof entry['order'] !== 'number') problems.push(`menu entry "${path}" has an order that is not a number`);
    const action = entry['action'];
    if (!isObject(action) || typeof action['type'] !== 'string') {
      problems.push(`menu entry "${path}" has no action type`);
      continue;
    }
    if (action['type'] === 'view') {
      const p = action['path'];
      if (typeof p !== 'string' || !viewPaths.includes(p)) problems.push(`menu entry "${path}" opens view ${JSON.stringify(p)}, which does not exist`);
      else targets.add(p);
    } else if (!['firstchild', 'alias'].includes(action['type'])) {
      problems.push(`menu entry "${path}" has action type "${action['type']}"`);
    }
  }
  const depends = isObject(menu[root]) ? menu[root]['depends'] : undefined;
  const acl = isObject(depends) ? depends['acl'] : undefined;
  const uci = isObject(depends) ? depends['uci'] : undefined;
  if (!Array.isArray(acl) || !acl.includes(ACL_NAME)) problems.push(`"${root}" does not depend on the ACL "${ACL_NAME}"`);
  if (!isObject(uci) || uci['aerie'] !== true) problems.push(`"${root}" does not depend on UCI config "aerie"`);
  for (const v of viewPaths) if (!targets.has(v)) problems.push(`view ${v} has no menu entry`);
  return problems;
}

/** The settings view binds only router options, of `form.Map('aerie')` section `main`. */
export function checkSettingsBindings(src: string, options: Readonly<Record<string, RouterOption>>): string[] {
  const toks = tokenize(src);
  const problems: string[] = [];
  const bound = findBoundOptions(toks);
  if (bound.length === 0) problems.push('settings binds no UCI option');
  for (const b of bound) {
    if (!Object.hasOwn(options, b.name)) problems.push(`settings.js:${b.line}: binds "${b.name}", which is not a router option (${Object.keys(options).join(', ')})`);
  }
  const mapConfigs = toks.flatMap((t, i) => (t.value === 'Map' && toks[i - 2]?.value === 'form' && toks[i + 1]?.value === '(' ? [toks[i + 2]?.value] : []));
  if (mapConfigs.length === 0 || mapConfigs.some((c) => c !== 'aerie')) problems.push(`settings.js: form.Map must edit UCI config "aerie", got ${JSON.stringify(mapConfigs)}`);
  return problems;
}

/** The options and defaults the init script hands uci_load_validate ('name:type:default'). */
export function parseInitValidate(script: string): Record<string, RouterOption> | null {
  const joined = script.replace(/\\\n/g, ' ');
  const lines = joined.split('\n').filter((l) => /^\s*uci_load_validate\s/.test(l));
  if (lines.length === 0) return null;
  const out: Record<string, RouterOption> = {};
  for (const l of lines) {
    for (const m of l.matchAll(/['"]([a-z_][a-z0-9_]*):([a-z]+(?:\([^)]*\))?)(?::([^'"]*))?['"]/g)) {
      out[m[1]!] = { type: m[2] as RouterOption['type'], default: m[3] ?? '' };
    }
  }
  return out;
}

export function checkInitOptions(init: Record<string, RouterOption>, options: Readonly<Record<string, RouterOption>>): string[] {
  const problems: string[] = [];
  for (const [name, o] of Object.entries(options)) {
    const i = init[name];
    if (!i) problems.push(`the init script does not validate "${name}"`);
    else if (i.type !== o.type || i.default !== o.default) {
      problems.push(`"${name}": the init script says ${i.type}:${i.default}, ROUTER_OPTIONS says ${o.type}:${o.default}`);
    }
  }
  for (const name of Object.keys(init)) if (!Object.hasOwn(options, name)) problems.push(`the init script validates "${name}", which ROUTER_OPTIONS lacks`);
  return problems;
}

export function readInitScript(): string | null {
  return existsSync(INIT_FILE) ? readFileSync(INIT_FILE, 'utf8') : null;
}

/** A do-nothing stand-in for any LuCI module: every property is a function returning the stand-in. */
function standIn(): unknown {
  const fn = function () {};
  const proxy: unknown = new Proxy(fn, { get: (_t, k) => (k === 'then' ? undefined : proxy), apply: () => proxy, construct: () => proxy as object });
  return proxy;
}

export interface Evaluated {
  /** What each rpc.declare was given, and the call function it handed back. */
  declares: { options: { [key: string]: unknown }; call: () => Promise<unknown> }[];
  /** The object given to `view.extend` or `baseclass.extend`. */
  extended: { [key: string]: unknown } | null;
}

/**
 * Runs a view's or the module's top level in a fresh context the way LuCI's
 * loader does (its 'require' names as parameters), with rpc.declare recording
 * what it is given: a check on the tokenizer that reads the same declarations
 * from the text.
 */
export function evaluate(v: LuciSource, base: LuciBase): Evaluated {
  const declares: Evaluated['declares'] = [];
  let extended: { [key: string]: unknown } | null = null;
  const names = findRequires(tokenize(v.src));
  const modules: Record<string, unknown> = {
    [base]: { extend: (o: { [key: string]: unknown }) => (extended = o) },
    rpc: {
      declare: (options: { [key: string]: unknown }) => {
        const call = () => Promise.resolve({});
        declares.push({ options, call });
        return call;
      },
    },
  };
  const context = vm.createContext({ E: standIn(), L: standIn(), _: (s: string) => s, N_: (_n: number, s: string) => s });
  const fn = vm.runInContext(`(function (${names.join(', ')}) {\n${v.src}\n})`, context, { filename: v.file }) as (...a: unknown[]) => unknown;
  fn(...names.map((n) => modules[n] ?? standIn()));
  return { declares, extended };
}

/** The module, run: it offers each declared call under the name of its variable, the very function rpc.declare returned. */
export function checkModuleRuns(module: LuciSource): string[] {
  const ran = evaluate(module, 'baseclass');
  if (!ran.extended) return [`${module.file}: returns no baseclass.extend({...})`];
  const offered = ran.extended;
  const problems: string[] = [];
  for (const [name, method] of moduleCalls(module)) {
    const d = ran.declares.find((x) => x.options['method'] === method);
    if (!d || offered[name] !== d.call) problems.push(`${module.file}: ${name} is not the call rpc.declare made for ${method}`);
  }
  return problems;
}
