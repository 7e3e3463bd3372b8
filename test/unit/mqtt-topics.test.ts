import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkTopicFilter, checkTopicName, filterContains, topicMatches } from '../../cloud/core/mqtt-topics.ts';
import { throwsValidation } from './throws-validation.ts';

test('ordinary topic names and filters are accepted as they are, without normalization', () => {
  for (const t of ['home/plug/state', '/leading', 'trailing/', 'a//b', 'Küche/Temperatur', 'space in level', '$SYS/broker/uptime', '\uFEFFbom']) {
    assert.is(checkTopicName(t), t);
    assert.is(checkTopicFilter(t), t);
  }
  for (const f of ['#', '+', '+/+/#', 'home/+/state', '/#', '+/', 'a/+/+/b/#', '$SYS/#']) assert.is(checkTopicFilter(f), f);
});

test('a topic given as UTF-8 bytes is decoded; a byte-order mark is kept (MQTT-1.5.3-3)', () => {
  assert.is(checkTopicName(Buffer.from('home/küche', 'utf8')), 'home/küche');
  assert.is(checkTopicName(Buffer.from([0xef, 0xbb, 0xbf, 0x61])), '\uFEFFa');
});

test('wildcards are refused in topic names (MQTT-4.7.1-1)', () => {
  for (const t of ['home/#', '+', 'a/+/b', 'a+', 'price#1']) throwsValidation(() => checkTopicName(t), 'topic', /wildcards/);
});

test('"#" only as the whole last level, "+" only as a whole level (MQTT-4.7.1-2, -3)', () => {
  for (const f of ['a/#/b', '#/a', 'a#', 'a/b#', '##', '#/#']) throwsValidation(() => checkTopicFilter(f), 'filter', /"#" must be a whole level/);
  for (const f of ['a+', '+a/b', 'a/++', 'a/b+/c']) throwsValidation(() => checkTopicFilter(f), 'filter', /"\+" must be a whole level/);
});

test('hostile text is refused with the field named: empty, NUL, control characters, ill-formed UTF-8', () => {
  throwsValidation(() => checkTopicName(''), 'topic', /at least one character/);
  throwsValidation(() => checkTopicName('a\u0000b'), 'topic', /NUL/);
  throwsValidation(() => checkTopicFilter(Buffer.from([0x61, 0x00])), 'filter', /NUL/);
  throwsValidation(() => checkTopicName('home/plug\nFAKE log line'), 'topic', /control characters/);
  throwsValidation(() => checkTopicName('a\u0085'), 'topic', /control characters/);
  throwsValidation(() => checkTopicName('lone \uD800 surrogate'), 'topic', /UTF-8/);
  throwsValidation(() => checkTopicName('\uDC00'), 'topic', /UTF-8/);
  // A truncated sequence, an overlong "/" and an encoded surrogate (MQTT-1.5.3-1).
  for (const bytes of [[0x61, 0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff]]) {
    throwsValidation(() => checkTopicName(Buffer.from(bytes)), 'topic', /well-formed UTF-8/);
  }
  throwsValidation(() => checkTopicName(42), 'topic', /as text, got number/);
  throwsValidation(() => checkTopicFilter(null, 'prefix'), 'prefix', /got null/);
});

test('a topic may hold 65535 bytes of UTF-8 and not one more (MQTT-4.7.3-3), however it is given', () => {
  const max = 'a'.repeat(65535);
  assert.is(checkTopicName(max, 'topic', { maxLevels: Infinity }).length, 65535);
  throwsValidation(() => checkTopicName(max + 'b'), 'topic', /at most 65535 bytes, got 65536/);
  throwsValidation(() => checkTopicName(Buffer.alloc(65536, 0x61)), 'topic', /at most 65535 bytes, got 65536/);
  // Counted in bytes: 32768 two-byte characters are 65536 bytes.
  throwsValidation(() => checkTopicName('ä'.repeat(32768)), 'topic', /got 65536/);
  // A configured maximum can only be lower than the protocol's.
  throwsValidation(() => checkTopicName('a'.repeat(300), 'topic', { maxBytes: 256 }), 'topic', /at most 256 bytes/);
  throwsValidation(() => checkTopicName(max + 'b', 'topic', { maxBytes: 1e9 }), 'topic', /at most 65535 bytes/);
});

test('the number of levels is bounded (32 by default), also for a topic made of separators', () => {
  assert.ok(checkTopicName('a' + '/a'.repeat(31)));
  throwsValidation(() => checkTopicName('a' + '/a'.repeat(32)), 'topic', /at most 32 levels/);
  throwsValidation(() => checkTopicFilter('/'.repeat(65535)), 'filter', /at most 32 levels/);
  throwsValidation(() => checkTopicFilter('a/b/c/#', 'filter', { maxLevels: 3 }), 'filter', /at most 3 levels/);
});

test('matching: "+" is one level, "#" is the parent and everything below it', () => {
  const cases: [string, string, boolean][] = [
    ['home/plug/state', 'home/plug/state', true],
    ['home/plug/state', 'home/plug/State', false],
    ['home/+/state', 'home/plug/state', true],
    ['home/+/state', 'home/plug/x/state', false],
    ['home/+', 'home/', true], // an empty level is a level
    ['home/+', 'home', false],
    ['home/#', 'home', true],
    ['home/#', 'home/a/b/c', true],
    ['home/#', 'homes/a', false],
    ['home/plug/#', 'home/plug2/x', false],
    ['#', 'anything/at/all', true],
    ['#', '/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['+/+/#', 'a/b', true],
    ['+/+/#', 'a', false],
    ['a/b', 'a/b/c', false],
  ];
  for (const [f, t, want] of cases) assert.is(topicMatches(f, t), want, `${f} vs ${t}`);
});

test('filters starting with a wildcard never match "$" topics (MQTT-4.7.2-1)', () => {
  assert.not.ok(topicMatches('#', '$SYS/broker/uptime'));
  assert.not.ok(topicMatches('+/broker/uptime', '$SYS/broker/uptime'));
  assert.not.ok(topicMatches('+/#', '$SYS'));
  assert.ok(topicMatches('$SYS/#', '$SYS/broker/uptime'));
  assert.ok(topicMatches('$SYS/+/uptime', '$SYS/broker/uptime'));
  assert.ok(topicMatches('home/#', 'home/$weird'), 'a "$" below the first level is an ordinary character');
});

test('containment: a filter lies within another only if every topic it matches does', () => {
  const cases: [string, string, boolean][] = [
    ['home/plug/#', 'home/plug/#', true],
    ['home/plug/#', 'home/plug', true],
    ['home/plug/#', 'home/plug/+/x', true],
    ['home/plug/#', 'home/+/state', false], // "+" reaches other devices
    ['home/plug/#', 'home/#', false],
    ['home/plug/#', '#', false],
    ['home/plug/#', 'home/plugs/#', false],
    ['home/+/state', 'home/plug/state', true],
    ['home/+/state', 'home/+/state', true],
    ['home/+/state', 'home/+/#', false],
    ['home/+/state', 'home/plug/state/x', false],
    ['a/+/#', 'a/#', false], // "a/#" matches "a", which "a/+/#" does not
    ['a/#', 'a/+/#', true],
    ['+/#', 'a/#', true],
    ['+/#', 'a', true],
    ['#', '+/+/#', true],
    ['#', '/', true],
    ['+', '+/+', false],
    ['a/b', 'a/b/#', false],
    ['a/b/#', 'a/b', true],
  ];
  for (const [outer, inner, want] of cases) assert.is(filterContains(outer, inner), want, `${inner} within ${outer}`);
});

test('containment keeps "$" topics out of reach of leading wildcards (MQTT-4.7.2-1)', () => {
  assert.not.ok(filterContains('#', '$SYS/#'));
  assert.not.ok(filterContains('#', '$SYS'));
  assert.not.ok(filterContains('+/#', '$SYS/broker/+'));
  assert.not.ok(filterContains('+/uptime', '$SYS/uptime'));
  assert.ok(filterContains('#', '+/#'), '"+/#" reaches no "$" topic either');
  assert.ok(filterContains('$SYS/#', '$SYS/broker/+'));
  assert.ok(filterContains('$SYS/#', '$SYS/#'));
  assert.not.ok(filterContains('$SYS/#', '#'));
  assert.not.ok(filterContains('$SYS/#', '+/broker'));
});

test('containment agrees with matching on every topic of a small universe', () => {
  // Brute force: inner ⊆ outer exactly when no topic matches inner but not outer.
  const levels = ['a', 'b', '', '$x'];
  const topics: string[] = [];
  for (let n = 1; n <= 3; n++) {
    const build = (prefix: string[]): void => {
      if (prefix.length === n) return void topics.push(prefix.join('/'));
      for (const l of levels) if (prefix.length === 0 || !l.startsWith('$')) build([...prefix, l]);
    };
    build([]);
  }
  const filters = ['#', '+', '+/#', 'a/#', 'a/+', '+/+', '+/b', 'a', 'a/b', '$x/#', '$x/+', 'a/+/#', '+/+/+', '/#', 'a//b'];
  for (const outer of filters) {
    for (const inner of filters) {
      const expected = topics.every((t) => !topicMatches(inner, t) || topicMatches(outer, t));
      assert.is(filterContains(outer, inner), expected, `${inner} within ${outer}`);
    }
  }
});

test.run();
