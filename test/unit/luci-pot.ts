// The translation template of the LuCI app: what LuCI's i18n-scan.pl would
// extract (`_()` in the views and the shared module, menu titles, ACL
// descriptions) against what po/templates/aerie.pot holds.
import { readFileSync } from 'node:fs';
import { ACL_FILE, isObject, MENU_FILE, readModule, readViews, type LuciSource } from './luci-checks.ts';
import { collapseWhitespace, findTranslated, tokenize } from './luci-js.ts';

function unquotePo(s: string): string {
  return s.replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t', '"': '"', '\\': '\\' })[c] ?? c);
}

/** The msgids of a .pot (the header's empty msgid left out); continuation lines joined. */
export function parsePot(text: string): string[] {
  const ids: string[] = [];
  let current: string | null = null;
  let inId = false;
  const flush = () => {
    if (current !== null && current !== '') ids.push(current);
    current = null;
  };
  for (const line of text.split('\n')) {
    const id = /^msgid "(.*)"$/.exec(line);
    const cont = /^"(.*)"$/.exec(line);
    if (id) {
      flush();
      current = unquotePo(id[1]!);
      inId = true;
    } else if (cont && inId) {
      current += unquotePo(cont[1]!);
    } else {
      inId = false;
    }
  }
  flush();
  return ids;
}

/** What LuCI's i18n-scan.pl would put in the template: `_()` of every client source (views, module), menu titles, ACL descriptions. */
export function translatable(sources: LuciSource[], menu: unknown, acl: unknown): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (text: string, where: string) => {
    const t = collapseWhitespace(text);
    if (t !== '') found.set(t, [...(found.get(t) ?? []), where]);
  };
  for (const v of sources) for (const t of findTranslated(tokenize(v.src))) add(t.text, `${v.file}:${t.line}`);
  if (isObject(menu)) for (const [p, e] of Object.entries(menu)) if (isObject(e) && typeof e['title'] === 'string') add(e['title'], `menu ${p}`);
  if (isObject(acl)) for (const [g, e] of Object.entries(acl)) if (isObject(e) && typeof e['description'] === 'string') add(e['description'], `acl ${g}`);
  return found;
}

export function checkPot(potIds: string[], wanted: Map<string, string[]>): string[] {
  const problems: string[] = [];
  const pot = new Set(potIds);
  for (const [text, where] of wanted) if (!pot.has(text)) problems.push(`not in the .pot: ${JSON.stringify(text)} (${where.join(', ')})`);
  for (const id of pot) if (!wanted.has(id)) problems.push(`in the .pot but used nowhere: ${JSON.stringify(id)}`);
  if (pot.size !== potIds.length) problems.push('the .pot lists a msgid twice');
  return problems;
}

function byFileThenLine(a: string, b: string): number {
  const [fa, la] = [a.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(a)?.[1])];
  const [fb, lb] = [b.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(b)?.[1])];
  return fa < fb ? -1 : fa > fb ? 1 : la - lb;
}

function quotePo(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

/**
 * The template as i18n-scan.pl lays it out (header, then msgids in C order with
 * their locations; menu and ACL strings by the path they are installed at). To rewrite it after changing a view or the module:
 *   node -e "import('./test/unit/luci-pot.ts').then((m) => process.stdout.write(m.renderPot()))" > openwrt-feed/luci-app-aerie/po/templates/aerie.pot
 */
export function renderPot(): string {
  const wanted = translatable([...readViews(), readModule()], JSON.parse(readFileSync(MENU_FILE, 'utf8')), JSON.parse(readFileSync(ACL_FILE, 'utf8')));
  const menuLine = (text: string, file: string) => readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(JSON.stringify(text))) + 1;
  const entries = [...wanted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let out = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8"\n';
  for (const [text, where] of entries) {
    const refs = where.map((w) => {
      if (w.startsWith('menu ')) return `usr/share/luci/menu.d/luci-app-aerie.json:${menuLine(text, MENU_FILE)}`;
      if (w.startsWith('acl ')) return `usr/share/rpcd/acl.d/luci-app-aerie.json:${menuLine(text, ACL_FILE)}`;
      return `luci-app-aerie/htdocs/luci-static/resources/${w}`;
    });
    out += `\n${[...new Set(refs)].sort(byFileThenLine).map((r) => `#: ${r}`).join('\n')}\nmsgid "${quotePo(text)}"\nmsgstr ""\n`;
  }
  return out;
}
