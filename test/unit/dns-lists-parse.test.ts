import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createListParser, MAX_LINE, parseList } from '../../cloud/dns/lists/parse.ts';
import { normalizeDomain } from '../../cloud/dns/lists/names.ts';
import { throwsValidation } from './throws-validation.ts';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/lists', name));
const LONG_LABEL = 'a'.repeat(64);

test('hosts file: null addresses block, the machine’s own names are skipped, mappings and junk are counted', () => {
  const { names, counts } = parseList(fixture('hosts.txt'));
  assert.equal(names, [
    'ads.example.com',
    'tabbed.example.net',
    'spaced.example.org',
    'tracker.example.com',
    'v6null.example',
    'one.example',
    'two.example',
    'three.example',
    'ads.example.com', // duplicates are merged by the compiler, not here
    'trailing-dot.example',
    '_underscore.example',
    'ad_server.example',
    'xn--bcher-kva.example', // bücher.example
  ]);
  // 0.0.0.0 198.51.100.7, the 64-character label, bad!name, a single label, "0.0.0.0" and "1.2.3.4" alone
  assert.is(counts.rejected, 6);
  // 192.0.2.10 nas.example maps a name to an address: not a block
  assert.is(counts.unsupported, 1);
  assert.is(counts.accepted, names.length);
});

test('domain list with a byte order mark, CRLF, tabs, IDN, uppercase and no final newline', () => {
  const { names, counts } = parseList(fixture('domains-crlf-bom.txt'));
  assert.equal(names, [
    'first.example', // right after the BOM
    'ads.example',
    'tracker.example.net',
    'indented.example',
    'ads.example',
    'xn--mnchen-3ya.example', // münchen.example in UTF-8
    'xn--mnchen-3ya.example', // the same, already in punycode
    'sub.ads.example',
    'dot.example',
    'last.example',
  ]);
  // an IPv4 address, two words, "-", an empty label, a 64-character label, a leading dot
  assert.is(counts.rejected, 6);
  assert.is(counts.unsupported, 1, '*.wild.example is a pattern');
});

test('Adblock rules: ||name^ is a block; exceptions, modifiers, paths, regexes and cosmetic rules are unsupported', () => {
  const { names, counts } = parseList(fixture('adblock.txt'));
  assert.equal(names, ['ads.example', 'upper.example', 'pipe-end.example', 'important.example', 'plain-end.example', 'xn--e1afmkfd.xn--p1ai']);
  assert.is(counts.unsupported, 11);
  assert.is(counts.rejected, 2, '||bad?.example^ and ||^');
});

test('dnsmasq rules: address= to a null address or none, server= and local= without a server', () => {
  const { names, counts } = parseList(fixture('dnsmasq.conf'));
  assert.equal(names, [
    'ads.example',
    'a.example',
    'b.example',
    'nx.example',
    'hash.example',
    'v6.example',
    'upper.example',
    'x.example',
    'local-only.example',
    'ok.example',
  ]);
  // server=/fwd.example/192.0.2.53 forwards, address=/rewrite.example/192.0.2.1 rewrites, /#/ is every name
  assert.is(counts.unsupported, 3);
  assert.is(counts.rejected, 3);
});

test('one line at a time: each format is recognised on its own line in a mixed file', () => {
  const { names, counts } = parseList(
    ['0.0.0.0 a.example', 'b.example', '||c.example^', 'address=/d.example/0.0.0.0', '@@||e.example^', 'example.com##.ad'].join('\n'),
  );
  assert.equal(names, ['a.example', 'b.example', 'c.example', 'd.example']);
  assert.equal(counts, { accepted: 4, rejected: 0, unsupported: 2 });
});

test('names are checked like DNS does: label and name lengths, characters, numeric top-level labels', () => {
  const ok = (line: string) => parseList(line).names;
  assert.equal(ok(`${'a'.repeat(63)}.example`), [`${'a'.repeat(63)}.example`]);
  assert.equal(ok(`${LONG_LABEL}.example`), []);
  const name253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  assert.is(name253.length, 253);
  assert.equal(ok(name253), [name253]);
  assert.equal(ok(`e${name253}`), [], '254 characters do not fit in 255 wire octets');
  assert.equal(ok('host.198'), [], 'no top-level domain is numeric');
  assert.equal(ok('198.51.100.7.example'), ['198.51.100.7.example'], 'digits in other labels are fine');
  assert.equal(ok('x-1.example'), ['x-1.example']);
  assert.equal(ok('a b.example'), []);
  assert.equal(ok('a*b.example'), []);
  assert.equal(ok('ads.example..'), []);
});

test('lines split across chunks parse the same as whole ones', () => {
  const text = Buffer.from(fixture('hosts.txt'));
  const whole = parseList(text);
  for (const size of [1, 2, 3, 7, 64]) {
    const names: string[] = [];
    const p = createListParser((n, len) => names.push(Buffer.from(n.subarray(0, len)).toString('latin1')));
    for (let s = 0; s < text.length; s += size) p.push(text.subarray(s, s + size));
    assert.equal({ names, counts: p.end() }, whole, `chunks of ${size}`);
  }
});

test('an overlong line (a binary file, say) is rejected without being kept', () => {
  const big = new Uint8Array(MAX_LINE * 4).fill(0x61);
  const names: string[] = [];
  const p = createListParser((n, len) => names.push(Buffer.from(n.subarray(0, len)).toString('latin1')));
  for (let s = 0; s < big.length; s += 1000) p.push(big.subarray(s, s + 1000));
  p.push(Buffer.from('\nafter.example\n'));
  assert.equal(p.end(), { accepted: 1, rejected: 1, unsupported: 0 });
  assert.equal(names, ['after.example']);
});

test('normalizeDomain: what a person types becomes the stored form', () => {
  assert.is(normalizeDomain('  Ads.Example.COM. '), 'ads.example.com');
  assert.is(normalizeDomain('Bücher.example'), 'xn--bcher-kva.example');
  assert.is(normalizeDomain('zip'), 'zip', 'a whole top-level domain may be blocked on purpose');
  assert.is(normalizeDomain('_dmarc.example'), '_dmarc.example');
  throwsValidation(() => normalizeDomain('*.ads.example', 'block[0]'), 'block[0]', /wildcard/);
  throwsValidation(() => normalizeDomain('https://ads.example/x'), 'name', /domain name/);
  throwsValidation(() => normalizeDomain(''), 'name');
  throwsValidation(() => normalizeDomain(`${LONG_LABEL}.example`), 'name');
  throwsValidation(() => normalizeDomain('198.51.100.7'), 'name');
  throwsValidation(() => normalizeDomain(42 as unknown as string), 'name');
});

test.run();
