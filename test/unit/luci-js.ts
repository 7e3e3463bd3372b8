// A small reader of LuCI sources (views and the shared module): a JavaScript
// tokenizer (enough for client-side LuCI code: strings, regex literals,
// comments) and the few constructs the LuCI cross-check needs. No JavaScript
// parser is a dependency of the repo.

export type Token =
  | { kind: 'string'; value: string; line: number }
  | { kind: 'ident'; value: string; line: number }
  | { kind: 'number'; value: string; line: number }
  | { kind: 'punct'; value: string; line: number }
  | { kind: 'regex'; value: string; line: number }
  | { kind: 'template'; value: string; line: number };

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v', '0': '\0' };
// After these, a slash starts a regex literal rather than a division.
const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'case', 'do', 'else', 'in', 'instanceof', 'new', 'delete', 'void', 'throw']);

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const regexAllowed = () => {
    const prev = out[out.length - 1];
    if (!prev) return true;
    if (prev.kind === 'ident') return REGEX_AFTER_WORDS.has(prev.value);
    if (prev.kind === 'punct') return prev.value !== ')' && prev.value !== ']' && prev.value !== '}';
    return false;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (src.startsWith('//', i)) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`line ${line}: unterminated comment`);
      line += src.slice(i, end).split('\n').length - 1;
      i = end + 2;
    } else if (c === "'" || c === '"') {
      const start = line;
      let value = '';
      i++;
      while (src[i] !== c) {
        if (i >= src.length || src[i] === '\n') throw new Error(`line ${start}: unterminated string`);
        if (src[i] === '\\') {
          const e = src[i + 1]!;
          if (e === '\n') line++;
          else if (e === 'x') value += String.fromCharCode(parseInt(src.slice(i + 2, i + 4), 16));
          else if (e === 'u') value += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
          else value += ESCAPES[e] ?? e;
          i += e === 'x' ? 4 : e === 'u' ? 6 : 2;
        } else {
          value += src[i++];
        }
      }
      i++;
      out.push({ kind: 'string', value, line: start });
    } else if (c === '`') {
      const start = line;
      const end = src.indexOf('`', i + 1);
      if (end < 0) throw new Error(`line ${start}: unterminated template`);
      const value = src.slice(i + 1, end);
      line += value.split('\n').length - 1;
      i = end + 1;
      out.push({ kind: 'template', value, line: start });
    } else if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z0-9_$]+/.exec(src.slice(i))!;
      out.push({ kind: 'ident', value: m[0], line });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9a-fA-FxX._]+/.exec(src.slice(i))!;
      out.push({ kind: 'number', value: m[0], line });
      i += m[0].length;
    } else if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && (inClass || src[j] !== '/')) {
        if (src[j] === '\n') throw new Error(`line ${line}: unterminated regex`);
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      j++;
      while (j < src.length && /[a-z]/.test(src[j]!)) j++;
      out.push({ kind: 'regex', value: src.slice(i, j), line });
      i = j;
    } else {
      const m = /^(===|!==|==|!=|<=|>=|&&|\|\||\+\+|--|=>|\.\.\.|[-+*/%=<>!&|^~?:;,.(){}[\]])/.exec(src.slice(i));
      if (!m) throw new Error(`line ${line}: unexpected character ${JSON.stringify(c)}`);
      out.push({ kind: 'punct', value: m[0], line });
      i += m[0].length;
    }
  }
  return out;
}

const is = (t: Token | undefined, value: string) => t !== undefined && (t.kind === 'punct' || t.kind === 'ident') && t.value === value;

/** Index just past the bracket that closes the one at `open`. */
function skipBalanced(toks: Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind !== 'punct') continue;
    if (t.value === '(' || t.value === '[' || t.value === '{') depth++;
    if (t.value === ')' || t.value === ']' || t.value === '}') depth--;
    if (depth === 0) return i + 1;
  }
  throw new Error(`unbalanced bracket from line ${toks[open]?.line}`);
}

/** A literal value the checks can compare; anything else (functions, expressions) is "<expr>". */
export type Literal = string | number | boolean | null | Literal[] | { [key: string]: Literal };

function readLiteral(toks: Token[], i: number): [Literal, number] {
  const t = toks[i];
  if (!t) throw new Error('unexpected end of source');
  if (t.kind === 'string') return [t.value, i + 1];
  if (t.kind === 'number') return [Number(t.value), i + 1];
  if (t.kind === 'ident' && (t.value === 'true' || t.value === 'false')) return [t.value === 'true', i + 1];
  if (t.kind === 'ident' && t.value === 'null') return [null, i + 1];
  if (is(t, '[')) {
    const arr: Literal[] = [];
    let j = i + 1;
    while (!is(toks[j], ']')) {
      const [v, next] = readLiteral(toks, j);
      arr.push(v);
      j = is(toks[next], ',') ? next + 1 : next;
    }
    return [arr, j + 1];
  }
  if (is(t, '{')) return readObject(toks, i);
  // An expression: skip to the next comma or closing bracket at this depth.
  let j = i;
  while (j < toks.length && !is(toks[j], ',') && !is(toks[j], '}') && !is(toks[j], ']') && !is(toks[j], ')')) {
    const tj = toks[j]!;
    j = tj.kind === 'punct' && '([{'.includes(tj.value) ? skipBalanced(toks, j) : j + 1;
  }
  return ['<expr>', j];
}

function readObject(toks: Token[], open: number): [{ [key: string]: Literal }, number] {
  const obj: { [key: string]: Literal } = {};
  let j = open + 1;
  while (!is(toks[j], '}')) {
    const key = toks[j];
    if (!key || (key.kind !== 'ident' && key.kind !== 'string' && key.kind !== 'number') || !is(toks[j + 1], ':')) {
      throw new Error(`line ${key?.line}: expected a "key:" in an object literal`);
    }
    const [v, next] = readLiteral(toks, j + 2);
    obj[key.value] = v;
    j = is(toks[next], ',') ? next + 1 : next;
  }
  return [obj, j + 1];
}

export interface Declare {
  /** The variable the call function is bound to (`var callStatus = rpc.declare(...)`), or null. */
  variable: string | null;
  options: { [key: string]: Literal };
  line: number;
}

export function findDeclares(toks: Token[]): Declare[] {
  const out: Declare[] = [];
  for (let i = 0; i < toks.length; i++) {
    if (!(is(toks[i], 'rpc') && is(toks[i + 1], '.') && is(toks[i + 2], 'declare') && is(toks[i + 3], '('))) continue;
    if (!is(toks[i + 4], '{')) throw new Error(`line ${toks[i]!.line}: rpc.declare without an object literal`);
    const [options] = readObject(toks, i + 4);
    const assigned = is(toks[i - 1], '=') && toks[i - 2]?.kind === 'ident' ? toks[i - 2]!.value : null;
    out.push({ variable: assigned, options, line: toks[i]!.line });
  }
  return out;
}

export interface Translated {
  text: string;
  line: number;
}

/** Every `_('…')`; a `_()` whose first argument is not one string literal is an error (xgettext would miss it). */
export function findTranslated(toks: Token[]): Translated[] {
  const out: Translated[] = [];
  for (let i = 0; i < toks.length; i++) {
    if (!(is(toks[i], '_') && is(toks[i + 1], '(')) || is(toks[i - 1], '.')) continue;
    const s = toks[i + 2];
    if (s?.kind !== 'string' || !(is(toks[i + 3], ')') || is(toks[i + 3], ','))) {
      throw new Error(`line ${toks[i]!.line}: _() needs one string literal as its first argument`);
    }
    out.push({ text: s.value, line: s.line });
  }
  return out;
}

/** Option names bound by `x.option(form.Flag, 'name', …)` or `x.taboption('tab', form.Flag, 'name', …)`. */
export function findBoundOptions(toks: Token[]): { name: string; widget: string; line: number }[] {
  const out: { name: string; widget: string; line: number }[] = [];
  for (let i = 0; i < toks.length; i++) {
    if (!is(toks[i], '.') || !(is(toks[i + 1], 'option') || is(toks[i + 1], 'taboption')) || !is(toks[i + 2], '(')) continue;
    let j = i + 3;
    if (toks[i + 1]!.value === 'taboption') j += 2; // the tab name and its comma
    const ns = toks[j];
    const cls = toks[j + 2];
    const name = toks[j + 4];
    if (ns?.kind !== 'ident' || !is(toks[j + 1], '.') || cls?.kind !== 'ident' || !is(toks[j + 3], ',') || name?.kind !== 'string') {
      throw new Error(`line ${toks[i]!.line}: an option whose class and name are not literal`);
    }
    out.push({ name: name.value, widget: `${ns.value}.${cls.value}`, line: name.line });
  }
  return out;
}

/** `receiver.fn`: a member of a top-level name (not itself a member, as in `x.receiver.fn`). */
const isMember = (toks: Token[], i: number, receiver: string) => is(toks[i - 1], '.') && is(toks[i - 2], receiver) && !is(toks[i - 3], '.');

/** The literal first arguments of every call of `fn(`, or of `receiver.fn(` (e.g. the keys given to aerie.callSet). */
export function findCallFirstArgs(toks: Token[], fn: string, receiver?: string): (string | null)[] {
  const out: (string | null)[] = [];
  for (let i = 0; i < toks.length; i++) {
    if (!is(toks[i], fn) || !is(toks[i + 1], '(')) continue;
    if (receiver === undefined ? is(toks[i - 1], '.') || is(toks[i - 1], 'var') : !isMember(toks, i, receiver)) continue;
    const a = toks[i + 2];
    out.push(a?.kind === 'string' ? a.value : null);
  }
  return out;
}

/** Every `receiver.name` (e.g. what a view takes from the shared module `aerie`), in order, with its line. */
export function findMemberUses(toks: Token[], receiver: string): { name: string; line: number }[] {
  const out: { name: string; line: number }[] = [];
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'ident' && isMember(toks, i, receiver)) out.push({ name: t.value, line: t.line });
  }
  return out;
}

/** The property names of the object in `return base.extend({ … })`: what a LuCI module or view offers; null without one. */
export function findExtendKeys(toks: Token[], base: string): string[] | null {
  for (let i = 0; i < toks.length; i++) {
    if (!(is(toks[i], 'return') && is(toks[i + 1], base) && is(toks[i + 2], '.') && is(toks[i + 3], 'extend') && is(toks[i + 4], '('))) continue;
    if (!is(toks[i + 5], '{')) throw new Error(`line ${toks[i]!.line}: ${base}.extend without an object literal`);
    return Object.keys(readObject(toks, i + 5)[0]);
  }
  return null;
}

/** The `'require x'` / `'require a.b as c'` directives at the top: the names they bind. */
export function findRequires(toks: Token[]): string[] {
  const names: string[] = [];
  for (let i = 0; i < toks.length && toks[i]!.kind === 'string' && is(toks[i + 1], ';'); i += 2) {
    const m = /^require\s+([\w.]+)(?:\s+as\s+(\w+))?$/.exec(toks[i]!.value);
    if (m) names.push(m[2] ?? m[1]!.split('.').pop()!);
  }
  return names;
}

/** xgettext as LuCI's i18n-scan.pl post-processes it: \n and \t become spaces, runs of spaces one. */
export function collapseWhitespace(s: string): string {
  return s.replace(/[\n\t]/g, ' ').replace(/ {2,}/g, ' ').trim();
}
