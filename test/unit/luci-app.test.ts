import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AERIE_METHODS } from '../../gateway/rpc/aerie-object.ts';
import { ROUTER_OPTIONS } from '../../gateway/rpc/router-options.ts';
import { VM_SETTINGS } from '../../gateway/rpc/vm-settings.ts';
import {
  ACL_FILE,
  checkAcl,
  checkDeclaredOnce,
  checkDeclares,
  checkInitOptions,
  checkMenu,
  checkModuleRuns,
  checkModuleShape,
  checkModuleUses,
  checkParses,
  checkSettingsBindings,
  checkViewShape,
  evaluate,
  INIT_FILE,
  MENU_FILE,
  MODULE_NAME,
  moduleCalls,
  parseInitValidate,
  POT_FILE,
  readInitScript,
  readModule,
  readViews,
  type LuciSource,
} from './luci-checks.ts';
import { checkPot, parsePot, translatable } from './luci-pot.ts';
import { findBoundOptions, findCallFirstArgs, findDeclares, findMemberUses, findTranslated, tokenize } from './luci-js.ts';

// No LuCI runs here: the app (its views and the module `aerie` they share) is
// checked statically, and against the daemon's `aerie` object (AERIE_METHODS),
// the router options and the init script.

const views = readViews();
const shared = readModule();
const sources = [shared, ...views];
const json = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));
const view = (name: string): LuciSource => {
  const v = views.find((x) => x.path === `aerie/${name}`);
  assert.ok(v, `no view aerie/${name}`);
  return v;
};
const declaresOf = (src: string) => findDeclares(tokenize(src));
const none = (problems: string[]) => assert.equal(problems, [], problems.join('\n'));
const some = (problems: string[], pattern: RegExp) =>
  assert.ok(problems.some((p) => pattern.test(p)), `expected a problem matching ${pattern}, got ${JSON.stringify(problems)}`);
/** A copy of `v` with `from` replaced; fails if `from` is not there, so that a doctored copy cannot silently be the original. */
const doctor = (v: LuciSource, from: string, to: string): LuciSource => {
  assert.ok(v.src.includes(from), `${v.file} has no ${JSON.stringify(from)} to doctor`);
  return { ...v, src: v.src.replace(from, to) };
};

test('the four views and the shared module are there, and each parses as LuCI compiles it', () => {
  assert.equal(views.map((v) => v.path), ['aerie/devices', 'aerie/pairing', 'aerie/settings', 'aerie/status']);
  for (const v of sources) none(checkParses(v));
  for (const v of views) none(checkViewShape(v));
  none(checkModuleShape(shared));
});

test('every rpc.declare, in the module or a view, names a method the daemon registers, with its parameter names', () => {
  assert.ok(declaresOf(shared.src).length > 0, `${shared.file} declares nothing`);
  for (const v of sources) none(checkDeclares(v.file, declaresOf(v.src), AERIE_METHODS));
});

test('each method of the aerie object is declared once, all of them, in the module', () => {
  none(checkDeclaredOnce(sources));
  const declared = sources.flatMap((v) => declaresOf(v.src).map((d) => d.options['method']));
  assert.equal([...declared].sort(), Object.keys(AERIE_METHODS).sort());
  assert.equal([...moduleCalls(shared).values()].sort(), Object.keys(AERIE_METHODS).sort(), `${shared.file} offers a call for each method`);
});

test('the tokenizer finds the very declarations the module and the views make when run', () => {
  for (const v of sources) {
    const ran = evaluate(v, v === shared ? 'baseclass' : 'view');
    if (v !== shared) assert.ok(ran.extended && typeof ran.extended['render'] === 'function', `${v.file} returns no view with render()`);
    // Through JSON: arrays made in the source's context have that context's prototypes.
    const pick = (o: Record<string, unknown>) => JSON.stringify([o['object'], o['method'], o['params'] ?? []]);
    assert.equal(declaresOf(v.src).map((d) => pick(d.options)), ran.declares.map((d) => pick(d.options)), v.file);
  }
  none(checkModuleRuns(shared));
});

test('the views use only what the module offers, and call every method of the aerie object', () => {
  none(checkModuleUses(views, shared));
  const calls = moduleCalls(shared);
  const used = new Set(views.flatMap((v) => findMemberUses(tokenize(v.src), MODULE_NAME).flatMap((u) => calls.get(u.name) ?? [])));
  assert.equal([...used].sort(), Object.keys(AERIE_METHODS).sort());
});

test('the ACL grants exactly our methods, read and write apart, and our UCI package', () => {
  none(checkAcl(json(ACL_FILE), AERIE_METHODS));
});

test('the menu: our entries under Services, each view reachable, guarded by our ACL and UCI', () => {
  none(checkMenu(json(MENU_FILE), views.map((v) => v.path)));
});

test('the settings view binds the router options, all of them and nothing else', () => {
  const src = view('settings').src;
  none(checkSettingsBindings(src, ROUTER_OPTIONS));
  assert.equal(findBoundOptions(tokenize(src)).map((b) => b.name).sort(), Object.keys(ROUTER_OPTIONS).sort());
});

test('ROUTER_OPTIONS are what the init script validates', () => {
  const script = readInitScript();
  if (script === null) assert.unreachable(`the init script ${INIT_FILE} does not exist (yet): its uci_load_validate options cannot be compared with ROUTER_OPTIONS`);
  const init = parseInitValidate(script!);
  if (init === null) assert.unreachable(`the init script ${INIT_FILE} has no uci_load_validate line`);
  none(checkInitOptions(init!, ROUTER_OPTIONS));
});

test('the settings view sets every VM switch the daemon knows, and no other', () => {
  const src = view('settings').src;
  const set = [...moduleCalls(shared)].find(([, method]) => method === 'set')?.[0];
  assert.ok(set, `${shared.file} offers a call for aerie.set`);
  const keys = findCallFirstArgs(tokenize(src), set, MODULE_NAME);
  assert.not.ok(keys.includes(null), `${MODULE_NAME}.${set}() is always called with a literal key`);
  assert.equal([...new Set(keys)].sort(), Object.keys(VM_SETTINGS).sort());
});

test('every translated string is in the .pot, and the .pot holds nothing else', () => {
  const wanted = translatable(sources, json(MENU_FILE), json(ACL_FILE));
  assert.ok(wanted.size > 40, 'the views translate their strings');
  none(checkPot(parsePot(readFileSync(POT_FILE, 'utf8')), wanted));
  assert.match(readFileSync(POT_FILE, 'utf8'), /^msgid ""\nmsgstr "Content-Type: text\/plain; charset=UTF-8"\n/);
});

// ---- the checkers catch what they are for: doctored copies, in memory ----------

const declare = (body: string) => `'use strict';\n'require view';\n'require rpc';\nvar c = rpc.declare({ ${body} });\nreturn view.extend({ render: function() {} });\n`;

test('checker: a method the daemon lacks, a wrong parameter name, another object', () => {
  some(checkDeclares('x', declaresOf(declare("object: 'aerie', method: 'reboot'")), AERIE_METHODS), /has no method "reboot"/);
  some(checkDeclares('x', declaresOf(declare("object: 'aerie', method: 'pair', params: [ 'pin' ]")), AERIE_METHODS), /pair params \["pin"\], the daemon takes \["code"\]/);
  some(checkDeclares('x', declaresOf(declare("object: 'aerie', method: 'device_add', params: [ 'role', 'name' ]")), AERIE_METHODS), /device_add params/);
  some(checkDeclares('x', declaresOf(declare("object: 'aerie', method: 'set'")), AERIE_METHODS), /set params \[\]/);
  some(checkDeclares('x', declaresOf(declare("object: 'system', method: 'reboot'")), AERIE_METHODS), /object "system"/);
  none(checkDeclares('x', declaresOf(declare("object: \"aerie\", method: \"set\", params: [\"key\", \"value\",], reject: true, expect: { '': {} }, filter: function(r) { return r; },")), AERIE_METHODS));
});

test('checker: the tokenizer is not fooled by comments, strings and regex literals', () => {
  const src = [
    "'use strict';",
    "'require rpc';",
    "// var a = rpc.declare({ object: 'aerie', method: 'reboot' });",
    "/* rpc.declare({ object: 'x' }) */",
    "var s = \"rpc.declare({ object: 'y' })\";",
    "var re = /['\"\\/]rpc\\.declare\\(/g;",
    "var q = x / 2 / y;",
    "var b = rpc.declare({ object: 'aerie', method: 'status' });",
    "var t = _('It\\'s %d') + _(\"two \\\"words\\\"\");",
  ].join('\n');
  assert.equal(declaresOf(src).map((d) => [d.variable, d.options['method'], d.line]), [['b', 'status', 8]]);
  assert.equal(findTranslated(tokenize(src)).map((t) => t.text), ["It's %d", 'two "words"']);
  assert.throws(() => findTranslated(tokenize("_(message);")), /string literal/);
  assert.throws(() => tokenize("var s = 'unterminated;\n"), /unterminated string/);
});

test('checker: a view that does not parse, lacks view.extend or a require', () => {
  const bad = (src: string): LuciSource => ({ path: 'bad', file: 'bad.js', src });
  some(checkParses(bad(declare("object: 'aerie', method: 'status'").replace('});', '}'))), /does not parse/);
  some(checkViewShape(bad("'use strict';\n'require view';\nreturn { render: function() {} };\n")), /no "return view.extend/);
  some(checkViewShape(bad(declare("object: 'aerie', method: 'status'").replace("'require rpc';\n", ''))), /uses rpc\. without 'require rpc'/);
  some(checkViewShape(doctor(view('status'), "'require aerie';\n", '')), /uses aerie\. without 'require aerie'/);
});

test('checker: a module that does not parse, is no baseclass, lacks a require or requires itself', () => {
  some(checkParses(doctor(shared, 'return baseclass.extend({', 'return baseclass.extend(')), /aerie\.js: does not parse/);
  some(checkModuleShape(doctor(shared, 'return baseclass.extend(', 'return view.extend(')), /no "return baseclass\.extend/);
  some(checkModuleShape(doctor(shared, "'require rpc';\n", '')), /uses rpc\. without 'require rpc'/);
  some(checkModuleShape(doctor(shared, "'require ui';\n", "'require ui';\n'require aerie';\n")), /requires itself/);
});

test('checker: a method declared twice, a view using what the module lacks, a call offered under another name', () => {
  const again = { ...view('pairing'), src: declare("object: 'aerie', method: 'pair', params: [ 'code' ]") };
  some(checkDeclaredOnce([shared, again]), /aerie\.pair is declared 2 times \(aerie\.js:\d+, view\/aerie\/pairing\.js:4\)/);

  const typo = doctor(view('pairing'), 'aerie.callUnpair', 'aerie.callUnPair');
  some(checkModuleUses([typo], shared), /pairing\.js:\d+: uses aerie\.callUnPair, which aerie\.js does not offer/);

  const swapped = doctor(shared, 'callSet: callSet', 'callSet: callPair');
  some(checkModuleRuns(swapped), /callSet is not the call rpc\.declare made for set/);
  const hidden = doctor(shared, '\tcallDeviceRemove: callDeviceRemove,\n', '');
  assert.not.ok([...moduleCalls(hidden).values()].includes('device_remove'), 'a declared call the module does not offer is no call of the app');
  some(checkModuleUses([view('devices')], hidden), /uses aerie\.callDeviceRemove, which aerie\.js does not offer/);
});

test('checker: an ACL that misses a method, puts a write under read, or grants more', () => {
  const acl = () => json(ACL_FILE) as { 'luci-app-aerie': { read: Record<string, unknown>; write: Record<string, unknown> } };
  const dropRemove = acl();
  (dropRemove['luci-app-aerie'].write['ubus'] as Record<string, string[]>)['aerie'] = ['pair', 'unpair', 'set', 'device_add'];
  some(checkAcl(dropRemove, AERIE_METHODS), /does not grant aerie\.device_remove/);

  const writeAsRead = acl();
  (writeAsRead['luci-app-aerie'].read['ubus'] as Record<string, string[]>)['aerie']!.push('set');
  some(checkAcl(writeAsRead, AERIE_METHODS), /read grants aerie\.set, a write method/);

  const unknown = acl();
  (unknown['luci-app-aerie'].write['ubus'] as Record<string, string[]>)['aerie']!.push('reboot');
  some(checkAcl(unknown, AERIE_METHODS), /aerie\.reboot, which the daemon does not register/);

  const more = acl();
  (more['luci-app-aerie'].write['ubus'] as Record<string, string[]>)['system'] = ['reboot'];
  more['luci-app-aerie'].read['uci'] = ['aerie', 'network'];
  more['luci-app-aerie'].read['file'] = { '/etc/aerie/*': ['read'] };
  const problems = checkAcl(more, AERIE_METHODS);
  some(problems, /object "system"/);
  some(problems, /read\.uci must be \["aerie"\]/);
  some(problems, /read grants "file"/);

  some(checkAcl({ 'luci-app-other': {} }, AERIE_METHODS), /exactly one group, "luci-app-aerie"/);
});

test('checker: a menu with a missing view, an entry elsewhere, no ACL dependency', () => {
  const paths = views.map((v) => v.path);
  const menu = () => json(MENU_FILE) as Record<string, { action: { path?: string }; depends?: { acl?: string[] } }>;
  const missing = menu();
  missing['admin/services/aerie/devices']!.action.path = 'aerie/phones';
  some(checkMenu(missing, paths), /opens view "aerie\/phones", which does not exist/);
  some(checkMenu(missing, paths), /view aerie\/devices has no menu entry/);

  const elsewhere = menu();
  elsewhere['admin/system/aerie'] = { action: { path: 'aerie/status' } } as never;
  some(checkMenu(elsewhere, paths), /"admin\/system\/aerie" is not under admin\/services\/aerie/);

  const open = menu();
  delete open['admin/services/aerie']!.depends;
  some(checkMenu(open, paths), /does not depend on the ACL "luci-app-aerie"/);
});

test('checker: a settings view binding an option the init script does not know', () => {
  const src = view('settings').src.replace("'dns_intercept'", "'log_level'");
  some(checkSettingsBindings(src, ROUTER_OPTIONS), /binds "log_level", which is not a router option/);
  some(checkSettingsBindings(view('settings').src.replace("form.Map('aerie'", "form.Map('network'"), ROUTER_OPTIONS), /UCI config "aerie"/);
});

test('checker: the init script options, read across continued lines, compared both ways', () => {
  const script = [
    'start_service() {',
    '\tuci_load_validate aerie aerie "main" start_aerie \\',
    "\t\t'enabled:bool:1' \\",
    "\t\t'kill_switch:bool:1' \\",
    "\t\t'dns_intercept:bool:0' \\",
    "\t\t'lan_network:list(string):lan' \\",
    "\t\t'log_level:uinteger:3'",
    '}',
  ].join('\n');
  const init = parseInitValidate(script)!;
  assert.equal(init['lan_network'], { type: 'list(string)', default: 'lan' });
  const problems = checkInitOptions(init, ROUTER_OPTIONS);
  some(problems, /"dns_intercept": the init script says bool:0, ROUTER_OPTIONS says bool:1/);
  some(problems, /validates "log_level", which ROUTER_OPTIONS lacks/);
  some(checkInitOptions({ enabled: { type: 'bool', default: '1' } }, ROUTER_OPTIONS), /does not validate "kill_switch"/);
  assert.is(parseInitValidate('#!/bin/sh /etc/rc.common\nSTART=99\n'), null);
});

test('checker: a string missing from the .pot, and one left over', () => {
  const wanted = translatable(sources, json(MENU_FILE), json(ACL_FILE));
  const pot = parsePot(readFileSync(POT_FILE, 'utf8'));
  const problems = checkPot([...pot.filter((id) => id !== 'Kill switch'), 'An old string'], wanted);
  some(problems, /not in the \.pot: "Kill switch"/);
  some(problems, /in the \.pot but used nowhere: "An old string"/);
  assert.equal(parsePot('msgid ""\nmsgstr "x"\n\nmsgid ""\n"two "\n"lines"\nmsgstr ""\n'), ['two lines']);
});

test.run();
