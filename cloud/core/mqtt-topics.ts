import { describeInput, ValidationError } from '../../shared/errors.ts';

// MQTT topic names and topic filters (MQTT v3.1.1 §4.7, v5 §4.7): checking
// what a client sends, matching a name against a filter, and deciding whether
// one filter lies within another (for authorizing a SUBSCRIBE).
//
// Levels are split on "/" and compared byte for byte, with no normalization
// (MQTT-4.7.3-4). Empty levels are ordinary levels: "a//b" has three.

/** The most a UTF-8 string in an MQTT packet can hold (MQTT-4.7.3-3). */
export const MQTT_MAX_TOPIC_BYTES = 65535;

export interface TopicLimits {
  /** Longest topic in UTF-8 bytes; at most (and by default) 65535. */
  maxBytes?: number;
  /** Most levels ("a/b/c" has 3); default 32, which no home device comes near. */
  maxLevels?: number;
}

export const DEFAULT_MAX_LEVELS = 32;

// Lone surrogates cannot be encoded as UTF-8 (MQTT-1.5.3-1).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// NUL is forbidden (MQTT-4.7.3-2); the other C0/C1 controls are a SHOULD NOT
// (MQTT-1.5.3, v5 §1.5.4) that we enforce, since topics end up in log lines.
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A topic name as a client may PUBLISH it: no wildcards (MQTT-4.7.1-1). */
export function checkTopicName(input: unknown, field = 'topic', limits: TopicLimits = {}): string {
  const topic = checkTopicText(input, field, limits);
  if (topic.includes('+') || topic.includes('#')) {
    throw new ValidationError(field, `expected a topic name without the wildcards "+" and "#", got ${describeInput(topic)}`);
  }
  return topic;
}

/** A topic filter as a client may SUBSCRIBE to it. */
export function checkTopicFilter(input: unknown, field = 'filter', limits: TopicLimits = {}): string {
  const filter = checkTopicText(input, field, limits);
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    // "#" alone in the last level (MQTT-4.7.1-2); "+" alone in any level (MQTT-4.7.1-3).
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      throw new ValidationError(field, `"#" must be a whole level and the last one (like "home/#"), got ${describeInput(filter)}`);
    }
    if (level.includes('+') && level !== '+') {
      throw new ValidationError(field, `"+" must be a whole level (like "home/+/state"), got ${describeInput(filter)}`);
    }
  });
  return filter;
}

function checkTopicText(input: unknown, field: string, limits: TopicLimits): string {
  const maxBytes = Math.min(limits.maxBytes ?? MQTT_MAX_TOPIC_BYTES, MQTT_MAX_TOPIC_BYTES);
  const maxLevels = limits.maxLevels ?? DEFAULT_MAX_LEVELS;
  let text: string;
  if (typeof input === 'string') {
    if (LONE_SURROGATE.test(input)) {
      throw new ValidationError(field, 'expected text that can be encoded as UTF-8 (it holds a lone surrogate)');
    }
    text = input;
  } else if (input instanceof Uint8Array) {
    // Check the size first: decoding is not worth it for something we refuse anyway.
    if (input.length > maxBytes) throw tooLong(field, input.length, maxBytes);
    try {
      text = utf8.decode(input);
    } catch {
      throw new ValidationError(field, 'expected well-formed UTF-8 (MQTT v3.1.1 §1.5.3)');
    }
  } else {
    throw new ValidationError(field, `expected a topic as text, got ${describeInput(input)}`);
  }
  if (text.length === 0) throw new ValidationError(field, 'expected a topic of at least one character (MQTT-4.7.3-1)');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw tooLong(field, bytes, maxBytes);
  if (text.includes('\u0000')) throw new ValidationError(field, 'a topic must not contain the NUL character (MQTT-4.7.3-2)');
  if (CONTROL.test(text)) throw new ValidationError(field, 'a topic must not contain control characters');
  // Counting separators instead of splitting: a hostile topic may have tens of thousands.
  let levels = 1;
  for (let i = text.indexOf('/'); i !== -1 && levels <= maxLevels; i = text.indexOf('/', i + 1)) levels++;
  if (levels > maxLevels) throw new ValidationError(field, `expected a topic of at most ${maxLevels} levels`);
  return text;
}

const tooLong = (field: string, bytes: number, max: number) =>
  new ValidationError(field, `expected a topic of at most ${max} bytes, got ${bytes}`);

/**
 * Whether a (checked) topic name matches a (checked) filter. "+" matches one
 * level, "#" the parent level and any below it ("a/#" matches "a"); a filter
 * that starts with a wildcard does not match a name starting with "$"
 * (MQTT-4.7.2-1).
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Whether every topic name that `inner` matches is also matched by `outer`
 * (both checked filters). A client may subscribe to `inner` if some filter it
 * may read contains it. Leading wildcards never reach "$" topics
 * (MQTT-4.7.2-1), so "#" does not contain "$SYS/#".
 */
export function filterContains(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const n = inner.split('/');
  // A literal first level starting with "$" names topics that a leading wildcard of `outer` misses.
  const dollar = n[0]!.startsWith('$');
  for (let i = 0; i < o.length; i++) {
    const oi = o[i]!;
    if (oi === '#') return !(i === 0 && dollar);
    if (i >= n.length) return false; // `inner` stops here; `outer` wants more levels
    const ni = n[i]!;
    if (ni === '#') {
      // `inner` matches any depth from here, so only "#" covers it, or "+/#" at
      // the top: every topic has a first level, so "+/#" matches all that "#" does.
      return i === 0 && oi === '+' && o.length === 2 && o[1] === '#';
    }
    if (oi === '+') {
      if (ni !== '+' && i === 0 && dollar) return false;
      continue;
    }
    if (ni !== oi) return false; // a literal level covers only itself (not "+")
  }
  return o.length === n.length;
}
