import { lower } from './hash.ts';
import { copyName, idnToAscii, MAX_NAME } from './names.ts';

// Line parser for blocklists, working on bytes: a list of a million lines is
// never turned into a million strings. Each line is recognised on its own, so
// mixed files work:
//
//   hosts      0.0.0.0 ads.example tracker.example  # comment   (also 127.0.0.1, ::, ::1)
//   domains    ads.example
//   Adblock    ||ads.example^   (also ||ads.example^| and $important)
//   dnsmasq    address=/ads.example/tracker.example/0.0.0.0   server=/ads.example/   local=/ads.example/
//
// A name is accepted once per occurrence (duplicates are merged when the lists
// are compiled). A line that cannot be a blocking rule is rejected; a rule
// that means something DNS cannot express (Adblock exceptions, modifiers,
// paths, regexes, cosmetic filters; hosts entries that map a name to a real
// address; dnsmasq rules that forward or rewrite) is counted as unsupported.
// Names from lists need two labels or more: a broken list must not block a
// whole top-level domain.

export interface ParseCounts {
  /** Names accepted (a hosts or dnsmasq line may carry several). */
  accepted: number;
  /** Lines that are not a rule (junk, invalid names, IP addresses as names). */
  rejected: number;
  /** Rules DNS blocking cannot express. */
  unsupported: number;
}

/** Receives each accepted name as lowercase ASCII in name[0, length); the bytes are reused after the call. */
export type NameSink = (name: Uint8Array, length: number) => void;

export interface ListParser {
  push(chunk: Uint8Array): void;
  /** Parses the last line (one without a final newline) and returns the counts. */
  end(): ParseCounts;
  readonly counts: Readonly<ParseCounts>;
}

/** Longer lines are rejected unread (no rule is that long; a binary file has no newlines). */
export const MAX_LINE = 16 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const TAB = 0x09;
const SPACE = 0x20;
const HASH = 0x23;
const DOLLAR = 0x24;
const PERCENT = 0x25;
const STAR = 0x2a;
const DOT = 0x2e;
const SLASH = 0x2f;
const COLON = 0x3a;
const QUESTION = 0x3f;
const AT = 0x40;
const LBRACKET = 0x5b;
const CARET = 0x5e;
const PIPE = 0x7c;
const BANG = 0x21;

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const ADDRESS = ascii('address=/');
const SERVER = ascii('server=/');
const LOCAL = ascii('local=/');
const IMPORTANT = ascii('important');
/** Addresses that mean "blocked" in a hosts file or a dnsmasq address= rule. */
const NULL_ADDRESSES = ['0.0.0.0', '127.0.0.1', '::', '::1', '0:0:0:0:0:0:0:0', '0:0:0:0:0:0:0:1'].map(ascii);

function isNullAddress(b: Uint8Array, s: number, e: number): boolean {
  // The common case first, without a loop over the others.
  const zero = 0x30;
  if (e - s === 7 && b[s] === zero && b[s + 2] === zero && b[s + 4] === zero && b[s + 6] === zero && b[s + 1] === DOT && b[s + 3] === DOT && b[s + 5] === DOT) {
    return true;
  }
  for (const a of NULL_ADDRESSES) if (equals(b, s, e, a)) return true;
  return false;
}
/** Names every hosts file maps for the machine itself: expected, neither blocked nor rejected. */
const LOCAL_NAMES = new Set([
  'localhost',
  'localhost.localdomain',
  'localhost4',
  'localhost4.localdomain4',
  'localhost6',
  'localhost6.localdomain6',
  'local',
  'broadcasthost',
  'ip6-localhost',
  'ip6-loopback',
  'ip6-localnet',
  'ip6-mcastprefix',
  'ip6-allnodes',
  'ip6-allrouters',
  'ip6-allhosts',
  '0.0.0.0',
]);

/** Space, tab, CR, VT, FF. */
const space = (c: number) => c === SPACE || (c <= CR && c >= TAB && c !== LF);

function startsWith(b: Uint8Array, s: number, e: number, prefix: Uint8Array): boolean {
  if (e - s < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (lower(b[s + i]!) !== prefix[i]) return false;
  return true;
}

function equals(b: Uint8Array, s: number, e: number, word: Uint8Array): boolean {
  return e - s === word.length && startsWith(b, s, e, word);
}

/**
 * Where an Adblock cosmetic marker (##, #@#, #?#, #$#, #%#, #@?#, #@$#, #@%#)
 * starting at b[i] = '#' ends, or -1.
 */
function cosmeticEnd(b: Uint8Array, i: number): number {
  const c1 = b[i + 1];
  if (c1 === HASH) return i + 2;
  if (c1 === QUESTION || c1 === DOLLAR || c1 === PERCENT) return b[i + 2] === HASH ? i + 3 : -1;
  if (c1 === AT) {
    if (b[i + 2] === HASH) return i + 3;
    const c3 = b[i + 3];
    const c2 = b[i + 2];
    if ((c2 === QUESTION || c2 === DOLLAR || c2 === PERCENT) && c3 === HASH) return i + 4;
  }
  return -1;
}

/** A cosmetic marker followed by a selector (not a "## comment" line). */
function cosmeticAt(b: Uint8Array, i: number, e: number): boolean {
  const end = cosmeticEnd(b, i);
  return end > 0 && end < e && !space(b[end]!) && b[end] !== HASH;
}

function isIPv4(b: Uint8Array, s: number, e: number): boolean {
  let dots = 0;
  let digits = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === DOT) {
      if (digits === 0) return false;
      dots++;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return dots === 3 && digits > 0;
}

export function createListParser(onName: NameSink): ListParser {
  const counts: ParseCounts = { accepted: 0, rejected: 0, unsupported: 0 };
  const name = new Uint8Array(MAX_NAME + 2);
  const ascii = new Uint8Array(MAX_NAME + 2);
  const utf8 = new TextDecoder();
  let carry = new Uint8Array(1024);
  let carryLen = 0;
  let overlong = false;
  let first = true;

  /** Copies the name in b[s, e) lowercased, checks it and hands it on; false if it is not a name. */
  function emit(b: Uint8Array, s: number, e: number): boolean {
    if (e > s && b[e - 1] === DOT) e--;
    let len = e - s;
    let labels = copyName(b, s, e, name);
    if (labels < 0) {
      // Not ASCII: maybe an IDN in UTF-8 (rare, slower). Its punycode can be
      // longer than its UTF-8, or shorter.
      if (len > 4 * MAX_NAME) return false;
      const text = idnToAscii(utf8.decode(b.subarray(s, e)));
      if (text === '' || text.length > MAX_NAME + 1) return false;
      len = text.length;
      for (let i = 0; i < len; i++) ascii[i] = text.charCodeAt(i);
      if (ascii[len - 1] === DOT) len--;
      labels = copyName(ascii, 0, len, name);
    }
    if (labels < 2) return false;
    onName(name, len);
    counts.accepted++;
    return true;
  }

  /** `||name^`, with s just after the `||`. */
  function adblock(b: Uint8Array, s: number, e: number): void {
    let i = s;
    while (i < e) {
      const c = b[i]!;
      if (c === CARET || c === DOLLAR || c === SLASH || c === STAR || c === PIPE || c === COLON || space(c)) break;
      i++;
    }
    if (i === e || b[i] === CARET) {
      const j = i + 1;
      const plain = i === e || j === e || (b[j] === PIPE && j + 1 === e) || (b[j] === DOLLAR && equals(b, j + 1, e, IMPORTANT));
      if (!plain) {
        // ||name^$third-party, ||name^*, ||name^/path: more than "this name"
        counts.unsupported++;
        return;
      }
      if (!emit(b, s, i)) counts.rejected++;
      return;
    }
    if (i > s || b[i] === STAR) counts.unsupported++; // ||name$modifier, ||name/path, ||*.name^, ||name:port
    else counts.rejected++;
  }

  /**
   * dnsmasq: s just after `address=/` (or server=/, local=/). Domains between
   * slashes, the value after the last one: address= must map to a null
   * address (or '' or '#': NXDOMAIN or 0.0.0.0 and ::), server= and local=
   * must have no server (an answer from nowhere). Anything else forwards or
   * rewrites, which is not blocking.
   */
  function dnsmasq(b: Uint8Array, s: number, e: number, address: boolean): void {
    let last = e - 1;
    while (last >= s && b[last] !== SLASH) last--;
    if (last < s) {
      counts.rejected++;
      return;
    }
    const v = last + 1;
    const blocking = v === e || (address && ((e - v === 1 && b[v] === HASH) || isNullAddress(b, v, e)));
    if (!blocking) {
      counts.unsupported++;
      return;
    }
    let bad = false;
    let unsupported = false;
    let any = false;
    let d = s;
    for (let i = s; i <= last; i++) {
      if (b[i] !== SLASH) continue;
      if (i === d) bad = true;
      else if (b[d] === HASH || b[d] === STAR) unsupported = true; // /#/ is every domain; *.name a wildcard
      else if (emit(b, d, i)) any = true;
      else bad = true;
      d = i + 1;
    }
    if (bad || (!any && !unsupported)) counts.rejected++;
    if (unsupported) counts.unsupported++;
  }

  /** A hosts line or a plain domain; e is where a comment starts, if any. */
  function hostsOrPlain(b: Uint8Array, s: number, e: number): void {
    while (e > s && space(b[e - 1]!)) e--;
    // The first word, and whether it is an address: IPv4 digits and dots, or anything with a colon (IPv6, maybe with %zone).
    let t = s;
    let colon = false;
    let numeric = true;
    for (; t < e; t++) {
      const c = b[t]!;
      if (space(c)) break;
      if (c === COLON) colon = true;
      else if (c !== DOT && (c < 0x30 || c > 0x39)) numeric = false;
    }
    if (!colon && !(numeric && isIPv4(b, s, t))) {
      if (t < e) counts.rejected++; // several words
      else if (b[s] === STAR) counts.unsupported++; // *.name: a wildcard pattern
      else if (!emit(b, s, t)) counts.rejected++;
      return;
    }
    const blocking = isNullAddress(b, s, t);
    let any = false;
    let bad = false;
    let unsupported = false;
    for (let i = t; i < e; ) {
      while (i < e && space(b[i]!)) i++;
      if (i === e) break;
      let j = i;
      while (j < e && !space(b[j]!)) j++;
      any = true;
      if (isLocalName(b, i, j)) {
        // the machine's own names, in every hosts file
      } else if (!blocking) {
        unsupported = true; // 192.0.2.1 nas.example maps a name, it does not block it
      } else if (!emit(b, i, j)) {
        bad = true;
      }
      i = j;
    }
    if (bad || !any) counts.rejected++;
    if (unsupported) counts.unsupported++;
  }

  function isLocalName(b: Uint8Array, s: number, e: number): boolean {
    if (e - s > 23) return false;
    const c = b[s]! | 0x20;
    if (c !== 0x6c && c !== 0x62 && c !== 0x69 && c !== 0x30) return false; // l, b, i, 0
    let text = '';
    for (let i = s; i < e; i++) text += String.fromCharCode(lower(b[i]!));
    return LOCAL_NAMES.has(text);
  }

  function line(b: Uint8Array, s: number, e: number): void {
    if (first) {
      first = false;
      if (b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) s += 3; // UTF-8 byte order mark
    }
    while (s < e && space(b[s]!)) s++;
    while (e > s && space(b[e - 1]!)) e--;
    if (s === e) return;
    const c = b[s]!;
    if (c === BANG || c === LBRACKET) return; // Adblock comment, [Adblock Plus 2.0] header
    if (c === HASH) {
      if (cosmeticAt(b, s, e)) counts.unsupported++; // ##.banner
      return; // a comment
    }
    if (c === AT) {
      if (b[s + 1] === AT) counts.unsupported++; // @@||name^: an exception
      else counts.rejected++;
      return;
    }
    if (c === PIPE) {
      if (b[s + 1] === PIPE) adblock(b, s + 2, e);
      else counts.unsupported++; // |https://…: a URL rule
      return;
    }
    if (c === SLASH) {
      counts.unsupported++; // /regex/ or a path rule
      return;
    }
    let hash = s + 1;
    while (hash < e && b[hash] !== HASH) hash++;
    if (hash < e && !space(b[hash - 1]!) && cosmeticAt(b, hash, e)) {
      counts.unsupported++; // name##.banner
      return;
    }
    if (c === 0x61 || c === 0x73 || c === 0x6c) {
      // a, s, l: maybe dnsmasq, where '#' is part of the rule
      if (startsWith(b, s, e, ADDRESS)) return dnsmasq(b, s + ADDRESS.length, e, true);
      if (startsWith(b, s, e, SERVER)) return dnsmasq(b, s + SERVER.length, e, false);
      if (startsWith(b, s, e, LOCAL)) return dnsmasq(b, s + LOCAL.length, e, false);
    }
    hostsOrPlain(b, s, hash);
  }

  function appendCarry(b: Uint8Array, s: number, e: number): void {
    if (overlong) return;
    const need = carryLen + e - s;
    if (need > MAX_LINE) {
      overlong = true;
      return;
    }
    if (need > carry.length) {
      const bigger = new Uint8Array(Math.min(MAX_LINE, Math.max(need, carry.length * 2)));
      bigger.set(carry.subarray(0, carryLen));
      carry = bigger;
    }
    carry.set(b.subarray(s, e), carryLen);
    carryLen = need;
  }

  function flushCarry(): void {
    if (overlong) counts.rejected++;
    else line(carry, 0, carryLen);
    carryLen = 0;
    overlong = false;
  }

  return {
    counts,
    push(input) {
      // One array type through the hot functions (a Buffer is a Uint8Array subclass: two shapes would slow every byte read).
      const chunk = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      let s = 0;
      if (carryLen > 0 || overlong) {
        const nl = chunk.indexOf(LF);
        if (nl < 0) {
          appendCarry(chunk, 0, chunk.length);
          return;
        }
        appendCarry(chunk, 0, nl);
        flushCarry();
        s = nl + 1;
      }
      for (;;) {
        const nl = chunk.indexOf(LF, s);
        if (nl < 0) break;
        if (nl - s > MAX_LINE) counts.rejected++;
        else line(chunk, s, nl);
        s = nl + 1;
      }
      if (s < chunk.length) appendCarry(chunk, s, chunk.length);
    },
    end() {
      if (carryLen > 0 || overlong) flushCarry();
      return { ...counts };
    },
  };
}

/** Every accepted name of a whole list, as strings: for tests and small inputs, not for big lists. */
export function parseList(data: Uint8Array | string): { names: string[]; counts: ParseCounts } {
  const names: string[] = [];
  const p = createListParser((n, len) => names.push(Buffer.from(n.buffer, n.byteOffset, len).toString('latin1')));
  p.push(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  return { names, counts: p.end() };
}
