// The LuCI app's cross-checks against the daemon, as pure functions over
// in-memory sources, so that a test can also feed them doctored copies. Each
// returns a list of problems; an empty list passes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vm from 'node:vm';
import type { AerieMethodSpec } from '../../gateway/rpc/aerie-object.ts';
import type { RouterOption } from '../../gateway/rpc/router-options.ts';
import { findBoundOptions, findDeclares, findRequires, tokenize, type Declare } from './luci-js.ts';

export const APP_DIR = fileURLToPath(new URL('../../openwrt-feed/luci-app-aerie/', import.meta.url));
export const VIEW_DIR = join(APP_DIR, 'htdocs/luci-static/resources/view');
export const MENU_FILE = join(APP_DIR, 'root/usr/share/luci/menu.d/luci-app-aerie.json');
export const ACL_FILE = join(APP_DIR, 'root/usr/share/rpcd/acl.d/luci-app-aerie.json');
export const POT_FILE = join(APP_DIR, 'po/templates/aerie.pot');
export const INIT_FILE = fileURLToPath(new URL('../../openwrt-feed/aerie/files/aerie.init', import.meta.url));
export const ACL_NAME = 'luci-app-aerie';

type Methods = Readonly<Record<string, AerieMethodSpec>>;

export interface ViewSource {
  /** "aerie/status", as menu.d names it. */
  path: string;
  src: string;
}

export function readViews(dir = VIEW_DIR): ViewSource[] {
  const out: ViewSource[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.js')) out.push({ path: relative(dir, join(d, e.name)).replace(/\.js$/, ''), src: readFileSync(join(d, e.name), 'utf8') });
    }
  };
  walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** LuCI compiles a view as a function body (its `return view.extend(...)` is the result): parse it so. */
export function checkParses(v: ViewSource): string[] {
  try {
    new vm.Script(`(function () {\n${v.src}\n})`, { filename: `${v.path}.js` });
    return [];
  } catch (e) {
    return [`${v.path}: does not parse: ${(e as Error).message}`];
  }
}

/** The shape LuCI's loader expects, and a 'require' for every LuCI module the view uses. */
export function checkViewShape(v: ViewSource): string[] {
  const toks = tokenize(v.src);
  const problems: string[] = [];
  const at = (i: number) => toks[i]?.value;
  if (at(0) !== 'use strict') problems.push(`${v.path}: does not start with 'use strict'`);
  if (!toks.some((_t, i) => at(i) === 'return' && at(i + 1) === 'view' && at(i + 2) === '.' && at(i + 3) === 'extend')) {
    problems.push(`${v.path}: has no "return view.extend(...)"`);
  }
  const required = new Set(findRequires(toks));
  const modules = ['view', 'rpc', 'form', 'ui', 'poll', 'dom', 'uci', 'fs', 'network', 'widgets'];
  for (const m of modules) {
    const used = toks.some((t, i) => t.kind === 'ident' && t.value === m && at(i + 1) === '.' && at(i - 1) !== '.');
    if (used && !required.has(m)) problems.push(`${v.path}: uses ${m}. without 'require ${m}'`);
  }
  return problems;
}

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
  declares: { [key: string]: unknown }[];
  view: { [key: string]: unknown } | null;
}

/**
 * Runs a view's top level in a fresh context the way LuCI's loader does (its
 * 'require' names as parameters), with rpc.declare recording what it is given:
 * a check on the tokenizer that reads the same declarations from the text.
 */
export function evaluateView(v: ViewSource): Evaluated {
  const declares: { [key: string]: unknown }[] = [];
  let extended: { [key: string]: unknown } | null = null;
  const names = findRequires(tokenize(v.src));
  const modules: Record<string, unknown> = {
    view: { extend: (o: { [key: string]: unknown }) => (extended = o) },
    rpc: { declare: (o: { [key: string]: unknown }) => (declares.push(o), () => Promise.resolve({})) },
  };
  const context = vm.createContext({ E: standIn(), L: standIn(), _: (s: string) => s, N_: (_n: number, s: string) => s });
  const fn = vm.runInContext(`(function (${names.join(', ')}) {\n${v.src}\n})`, context, { filename: `${v.path}.js` }) as (...a: unknown[]) => unknown;
  fn(...names.map((n) => modules[n] ?? standIn()));
  return { declares, view: extended };
}
