// The DNS benchmark's workload, generated from a seed: a blocklist of
// ad/tracker-like names, a zone of "allowed" names for the upstream, and a
// query mix for dnsperf. Files are written in the forms each server reads.
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createRng, createZipf, shuffle, type Rng } from './dns-rng.ts';

export interface WorkloadOptions {
  dir: string;
  seed: number;
  /** Names on the blocklist. */
  blocked: number;
  /** Names the upstream serves (each with A and AAAA). */
  allowed: number;
  /** Lines in dnsperf's query file (dnsperf loops over it). */
  queries: number;
  /** Share of queries for blocked names (0..1). */
  blockedShare: number;
  /** TTL of the upstream's records. */
  ttl: number;
}

export interface AllowedName {
  name: string;
  a: string;
  aaaa: string;
}

export interface Workload {
  /** `address=/NAME/0.0.0.0` lines, for dnsmasq's --conf-file. */
  dnsmasqConf: string;
  /** One domain a line, for `aerie-cloud dns add-list`. */
  domainList: string;
  /** dnsperf's input: `NAME TYPE` a line. */
  queryFile: string;
  /** The upstream's zone. */
  allowed: AllowedName[];
  /** Names to check answers with (not taken from the query file, so checks do not warm a cache for it). */
  samples: { blocked: string; blockedChild: string; allowed: AllowedName };
  counts: { listNames: number; listedParents: number; registrableBlocked: number; registrableAllowed: number; queries: number; blockedQueries: number; distinctQueried: number };
}

const BLOCK_WORDS = [
  'ad', 'ads', 'adserver', 'adsrv', 'adnet', 'track', 'tracker', 'trk', 'pixel', 'metric', 'metrics', 'stat',
  'stats', 'analytics', 'telemetry', 'beacon', 'tag', 'tags', 'click', 'clk', 'imp', 'rtb', 'bid', 'bidder',
  'sync', 'match', 'collect', 'log', 'logs', 'event', 'events', 'px', 'data', 'cdn', 'srv', 'serve', 'media',
  'promo', 'banner', 'affiliate', 'aff', 'push', 'notify', 'survey', 'popup', 'insight', 'audience', 'target',
  'smart', 'native', 'video', 'mobile', 'count', 'counter', 'hit', 'hits', 'visit', 'view', 'lead', 'retarget',
];
const BLOCK_TLDS = ['com', 'net', 'io', 'xyz', 'info', 'biz', 'online', 'site', 'top', 'click', 'co', 'app', 'link', 'space', 'club', 'pro'];
const REGIONS = ['eu', 'us', 'ap', 'us-east-1', 'eu-west-1', 'ap-south-1', 'fra', 'ams', 'lon', 'nyc', 'sjc', 'sin', 'edge', 'gw'];

const ALLOW_WORDS = [
  'news', 'shop', 'mail', 'photo', 'weather', 'bank', 'travel', 'music', 'maps', 'docs', 'cloud', 'home',
  'school', 'city', 'sport', 'recipe', 'garden', 'book', 'health', 'games', 'learn', 'market', 'radio', 'auto',
  'craft', 'pets', 'energy', 'social', 'forum', 'wiki', 'daily', 'local', 'post', 'times', 'journal', 'store',
];
const ALLOW_TLDS = ['com', 'org', 'net', 'de', 'fr', 'nl', 'co.uk', 'eu', 'ch', 'it', 'es', 'se', 'at', 'be'];
const HOST_LABELS = ['www', 'm', 'api', 'static', 'img', 'images', 'assets', 'login', 'app', 'blog', 'help', 'docs', 'shop', 'mail', 'cdn', 'media', 'beta', 'status'];
const CHILD_LABELS = ['www', 'cdn', 'static', 'eu', 'us', 'img', 's', 'm', 'js', 'sdk'];

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
function token(rng: Rng, min: number, max: number): string {
  let s = '';
  const len = min + rng.int(max - min + 1);
  for (let i = 0; i < len; i++) s += ALNUM[rng.int(ALNUM.length)];
  return s;
}

function blockedRegistrable(rng: Rng): string {
  const a = rng.pick(BLOCK_WORDS);
  const b = rng.pick(BLOCK_WORDS);
  const stem = [`${a}${b}${rng.int(1000)}`, `${a}-${b}`, `${a}${token(rng, 2, 5)}`, `${token(rng, 3, 7)}${b}`][rng.int(4)]!;
  return `${stem}.${rng.pick(BLOCK_TLDS)}`;
}

function blockedHost(rng: Rng, domain: string): string {
  const w = rng.pick(BLOCK_WORDS);
  switch (rng.int(6)) {
    case 0:
      return `${w}${token(rng, 2, 6)}.${domain}`;
    case 1:
      return `${w}-${token(rng, 3, 8)}.${domain}`;
    case 2:
      return `${token(rng, 4, 10)}.${w}.${domain}`;
    case 3:
      return `${rng.pick(REGIONS)}.${w}${rng.int(100)}.${domain}`;
    case 4:
      return `${token(rng, 6, 16)}.${domain}`;
    default:
      return `${w}${rng.int(10_000)}.${rng.pick(REGIONS)}.${domain}`;
  }
}

function allowedRegistrable(rng: Rng): string {
  const a = rng.pick(ALLOW_WORDS);
  const b = rng.pick(ALLOW_WORDS);
  const stem = [`${a}${b}`, `${a}-${b}`, `${a}${rng.int(1000)}`, `my${a}${b}`][rng.int(4)]!;
  return `${stem}.${rng.pick(ALLOW_TLDS)}`;
}

/** Buffered line writer: 1,000,000-line files without one huge string. */
function lineWriter(path: string) {
  const fd = openSync(path, 'w', 0o644);
  let chunk: string[] = [];
  let size = 0;
  const flush = () => {
    if (chunk.length === 0) return;
    writeSync(fd, chunk.join(''));
    chunk = [];
    size = 0;
  };
  return {
    line(text: string) {
      chunk.push(text, '\n');
      size += text.length + 1;
      if (size >= 1 << 20) flush();
    },
    close() {
      flush();
      closeSync(fd);
    },
  };
}

const v4 = (rng: Rng) => `${rng.pick(['192.0.2', '198.51.100', '203.0.113'])}.${1 + rng.int(254)}`;
const v6 = (rng: Rng) => `2001:db8:${(0xff00 + rng.int(256)).toString(16)}::${(1 + rng.int(0xfffe)).toString(16)}`;

export function generateWorkload(o: WorkloadOptions): Workload {
  const rng = createRng(o.seed);

  // Registrable domains: a few thousand for trackers, fewer for sites, never shared,
  // so an allowed name can never sit under a blocked one.
  const blockedDomains = new Set<string>();
  const registrableBlocked = Math.max(10, Math.min(4_000, Math.ceil(o.blocked / 250)));
  for (let i = 0; i < registrableBlocked * 10 && blockedDomains.size < registrableBlocked; i++) blockedDomains.add(blockedRegistrable(rng));
  const allowedDomains = new Set<string>();
  const registrableAllowed = Math.max(10, Math.min(2_500, Math.ceil(o.allowed / 8)));
  for (let i = 0; i < registrableAllowed * 10 && allowedDomains.size < registrableAllowed; i++) {
    const d = allowedRegistrable(rng);
    if (!blockedDomains.has(d)) allowedDomains.add(d);
  }
  const bDomains = shuffle([...blockedDomains], rng);
  const aDomains = shuffle([...allowedDomains], rng);

  // The blocklist. A few registrable domains are listed themselves (as real
  // lists do), the rest are hosts under them; popular tracker domains have
  // many. The listed ones are picked regardless of popularity, so the hosts
  // their entries make redundant stay a small share, as in real lists.
  const listed = new Set<string>();
  const listedParents = Math.max(1, Math.round(bDomains.length / 100));
  for (const d of shuffle([...bDomains], rng).slice(0, listedParents)) listed.add(d);
  const domainOf = createZipf(bDomains.length, 0.8, rng);
  for (let i = 0; i < o.blocked * 4 && listed.size < o.blocked; i++) listed.add(blockedHost(rng, bDomains[domainOf()]!));
  if (listed.size < o.blocked) throw new Error(`could only generate ${listed.size} distinct blocked names`);
  const names = shuffle([...listed], rng);
  listed.clear();

  const dnsmasqConf = join(o.dir, 'dnsmasq-blocklist.conf');
  const domainList = join(o.dir, 'blocklist.txt');
  const conf = lineWriter(dnsmasqConf);
  const list = lineWriter(domainList);
  list.line('# benchmark blocklist: generated ad/tracker-like names');
  for (const n of names) {
    conf.line(`address=/${n}/0.0.0.0`);
    list.line(n);
  }
  conf.close();
  list.close();

  // The upstream's zone.
  const allowedSet = new Set<string>();
  for (let i = 0; i < o.allowed * 10 && allowedSet.size < o.allowed; i++) {
    const d = aDomains[rng.int(aDomains.length)]!;
    const r = rng.int(10);
    allowedSet.add(r === 0 ? d : r < 7 ? `${rng.pick(HOST_LABELS)}.${d}` : `${rng.pick(HOST_LABELS)}${1 + rng.int(20)}.${d}`);
  }
  const allowed = shuffle([...allowedSet], rng).map((name) => ({ name, a: v4(rng), aaaa: v6(rng) }));

  // Who gets asked for: popularity ranks are random positions, so popular
  // blocked names are spread over the list and not all at its start.
  const blockedPop: string[] = [];
  const popSize = Math.min(names.length, 50_000);
  for (let i = 0; i < popSize; i++) {
    const n = names[rng.int(names.length)]!;
    // A subdomain of a listed name: blocked by its parent's entry.
    blockedPop.push(rng.next() < 0.25 ? `${rng.pick(CHILD_LABELS)}.${n}` : n);
  }
  const pickBlocked = createZipf(blockedPop.length, 0.9, rng);
  // The checks use names the query file never asks for, so checking does not warm a cache.
  const checkAllowed = allowed.pop()!;
  const pickAllowed = createZipf(allowed.length, 1.0, rng);

  const queryFile = join(o.dir, 'queries.txt');
  const q = lineWriter(queryFile);
  const distinct = new Set<string>();
  let blockedQueries = 0;
  for (let i = 0; i < o.queries; i++) {
    const isBlocked = rng.next() < o.blockedShare;
    if (isBlocked) blockedQueries++;
    const name = isBlocked ? blockedPop[pickBlocked()]! : allowed[pickAllowed()]!.name;
    const type = rng.next() < 0.5 ? 'A' : 'AAAA';
    distinct.add(`${name} ${type}`);
    q.line(`${name} ${type}`);
  }
  q.close();

  // Listed names the query file never asks for (nor their children).
  const queried = new Set(blockedPop);
  const unasked = (from: number, step: number) => {
    for (let i = from; i >= 0 && i < names.length; i += step) {
      const n = names[i]!;
      if (!queried.has(n) && !CHILD_LABELS.some((c) => queried.has(`${c}.${n}`))) return n;
    }
    throw new Error('every listed name is in the query mix: use a larger list');
  };
  const sample = unasked(0, 1);
  const child = unasked(names.length - 1, -1);
  return {
    dnsmasqConf,
    domainList,
    queryFile,
    allowed: [...allowed, checkAllowed],
    samples: { blocked: sample, blockedChild: `tracking.${child}`, allowed: checkAllowed },
    counts: {
      listNames: names.length,
      listedParents,
      registrableBlocked: bDomains.length,
      registrableAllowed: aDomains.length,
      queries: o.queries,
      blockedQueries,
      distinctQueried: distinct.size,
    },
  };
}
