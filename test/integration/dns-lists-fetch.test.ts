import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchSource } from '../../cloud/dns/lists/fetch.ts';
import { createListManager, type ListManager, type SourceStatus } from '../../cloud/dns/lists/manager.ts';

// The list fetcher against a real HTTP server on 127.0.0.1 (a random port):
// conditional requests, failures that must keep the last good copy,
// progress, local files and the refresh schedule.

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let base = '';
let handler: Handler = (_req, res) => res.end();
const requests: { url: string; headers: IncomingMessage['headers'] }[] = [];
const dirs: string[] = [];
const managers: ListManager[] = [];

test.before(async () => {
  server = createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after(async () => {
  for (const m of managers) m.stop();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.before.each(() => {
  requests.length = 0;
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'aerie-lists-fetch-'));
  dirs.push(d);
  return d;
}

const LIST = '# a list\n0.0.0.0 ads.example\n0.0.0.0 tracker.example\n0.0.0.0 more.example\njunk line here\n';

/** A manager with one HTTP source at `path` on the test server. */
function manager(path = '/list', opts: { refreshEveryMs?: number; log?: (l: string) => void } = {}) {
  const dir = join(tempDir(), 'lists');
  const mgr = createListManager({ dir, sources: [{ id: 'web', url: `${base}${path}`, enabled: true }], allow: [], block: [], ...opts });
  managers.push(mgr);
  return { mgr, dir, copy: join(dir, 'web.list') };
}

const status = (s: SourceStatus[]) => s.find((x) => x.id === 'web')!;
const isBlocked = (mgr: ListManager, name: string) => mgr.current().explain(name).blocked;

/** Serves LIST with an ETag; answers 304 to a matching If-None-Match. */
function serveWithEtag(etag: string, body = LIST): Handler {
  return (req, res) => {
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    res.writeHead(200, { etag, 'content-type': 'text/plain' });
    res.end(body);
  };
}

test('first fetch stores the copy; ETag → 304 leaves the copy, the counts and the Blocklist as they were', async () => {
  let now = 1_000_000;
  const dir = join(tempDir(), 'lists');
  const mgr = createListManager({ dir, sources: [{ id: 'web', url: `${base}/list`, enabled: true }], allow: [], block: [], now: () => now });
  handler = serveWithEtag('"v1"');
  const first = status(await mgr.update());
  assert.equal(
    { accepted: first.accepted, rejected: first.rejected, unsupported: first.unsupported, error: first.error, updatedAt: first.updatedAt },
    { accepted: 3, rejected: 1, unsupported: 0, error: null, updatedAt: 1_000_000 },
  );
  assert.is(first.bytes, LIST.length);
  assert.is(readFileSync(join(dir, 'web.list'), 'utf8'), LIST);
  assert.is(statSync(dir).mode & 0o777, 0o700);
  const meta = JSON.parse(readFileSync(join(dir, 'web.json'), 'utf8'));
  assert.is(meta.etag, '"v1"');
  assert.ok(isBlocked(mgr, 'x.ads.example'));
  const bl = mgr.current();

  now += 60_000;
  const second = status(await mgr.update());
  assert.is(requests[1]?.headers['if-none-match'], '"v1"');
  assert.is(second.updatedAt, 1_000_000, 'the copy is the same one');
  assert.is(second.checkedAt, 1_060_000);
  assert.is(second.accepted, 3);
  assert.is(second.error, null);
  assert.is(mgr.current(), bl, 'nothing recompiled');

  // force: no validators, a full download
  await mgr.update({ force: true });
  assert.is(requests[2]?.headers['if-none-match'], undefined);

  // After a restart, update() alone (a 304) puts the copy on disk to use.
  const restarted = createListManager({ dir, sources: [{ id: 'web', url: `${base}/list`, enabled: true }], allow: [], block: [] });
  assert.not.ok(isBlocked(restarted, 'ads.example'));
  await restarted.update();
  assert.is(requests[3]?.headers['if-none-match'], '"v1"');
  assert.ok(isBlocked(restarted, 'ads.example'));
});

test('Last-Modified → If-Modified-Since → 304 likewise', async () => {
  const lastModified = 'Wed, 21 Oct 2025 07:28:00 GMT';
  handler = (req, res) => {
    if (req.headers['if-modified-since'] === lastModified) {
      res.writeHead(304);
      res.end();
      return;
    }
    res.writeHead(200, { 'last-modified': lastModified });
    res.end(LIST);
  };
  const { mgr } = manager();
  const first = status(await mgr.update());
  const bl = mgr.current();
  const second = status(await mgr.update());
  assert.is(requests[1]?.headers['if-modified-since'], lastModified);
  assert.is(second.accepted, first.accepted);
  assert.is(second.updatedAt, first.updatedAt);
  assert.is(mgr.current(), bl);
});

/** A manager that already has a good copy of LIST. */
async function withGoodCopy() {
  handler = serveWithEtag('"good"');
  const m = manager();
  await m.mgr.update();
  assert.ok(isBlocked(m.mgr, 'ads.example'));
  return m;
}

async function assertKeptAfter(bad: Handler, error: RegExp) {
  const { mgr, copy } = await withGoodCopy();
  const before = status(mgr.sources());
  handler = bad;
  const after = status(await mgr.update({ force: true }));
  assert.match(after.error ?? '', error);
  assert.is(after.accepted, before.accepted);
  assert.is(after.updatedAt, before.updatedAt);
  assert.is(readFileSync(copy, 'utf8'), LIST, 'the last good copy is untouched');
  assert.ok(isBlocked(mgr, 'ads.example'), 'and still in use');
  // A reload from disk (a restart) still has it, and the error is remembered.
  const again = createListManager({ dir: join(copy, '..'), sources: [{ id: 'web', url: `${base}/list`, enabled: true }], allow: [], block: [] });
  await again.load();
  assert.ok(isBlocked(again, 'ads.example'));
  assert.match(status(again.sources()).error ?? '', error);
  // And the next good answer clears the error.
  handler = serveWithEtag('"good"');
  assert.is(status(await mgr.update()).error, null);
}

test('HTTP 500 keeps the last good copy and reports the error', async () => {
  await assertKeptAfter((_req, res) => {
    res.writeHead(500);
    res.end('oops');
  }, /HTTP 500/);
});

test('a connection reset in the middle of the body keeps the last good copy', async () => {
  await assertKeptAfter((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('0.0.0.0 half.example\n'.repeat(1000));
    setTimeout(() => res.socket?.resetAndDestroy(), 20);
  }, /broke off|terminated|reset|closed/i);
});

test('a body shorter than its Content-Length keeps the last good copy', async () => {
  await assertKeptAfter((_req, res) => {
    const body = '0.0.0.0 short.example\n'.repeat(50);
    res.writeHead(200, { 'content-length': String(body.length * 2) });
    res.write(body);
    setTimeout(() => res.socket?.end(), 20);
  }, /broke off|cut short|terminated|closed/i);
});

test('an HTML page (a captive portal, an error page) keeps the last good copy', async () => {
  await assertKeptAfter((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('\n<!DOCTYPE html>\n<html><body>ads.example</body></html>\n');
  }, /HTML/);
});

test('a list that suddenly has no names keeps the last good copy', async () => {
  await assertKeptAfter((_req, res) => {
    res.writeHead(200);
    res.end('# nothing here any more\n');
  }, /no names found \(the last good copy has 3\)/);
});

test('a server that is gone keeps the last good copy', async () => {
  const { mgr, copy } = await withGoodCopy();
  // A port that was just free: nothing listens there.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await mgr.setSources([{ id: 'web', url: `http://127.0.0.1:${port}/list`, enabled: true }]);
  // A new URL is another list: the old copy is dropped, and the failure is reported.
  const s = status(await mgr.update());
  assert.match(s.error ?? '', /ECONNREFUSED/);
  assert.not.ok(existsSync(copy));
  assert.not.ok(isBlocked(mgr, 'ads.example'));
});

test('progress arrives while a list downloads, with the total when it is known', async () => {
  const body = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `0.0.0.0 n${i}.example\n`).join(''));
  handler = (_req, res) => {
    res.writeHead(200, { 'content-length': String(body.length) });
    let at = 0;
    const next = () => {
      if (at >= body.length) return res.end();
      res.write(body.subarray(at, at + 64 * 1024), next);
      at += 64 * 1024;
    };
    next();
  };
  const { mgr } = manager();
  const events: { received: number; total: number | null }[] = [];
  let seenInStatus: SourceStatus['downloading'] = null;
  const s = status(
    await mgr.update({
      onProgress: (p) => {
        assert.is(p.id, 'web');
        events.push({ received: p.received, total: p.total });
        seenInStatus ??= status(mgr.sources()).downloading;
      },
    }),
  );
  assert.ok(events.length >= 3, `${events.length} progress events`);
  assert.equal(events[events.length - 1], { received: body.length, total: body.length });
  assert.ok(events.every((e, i) => i === 0 || e.received >= events[i - 1]!.received));
  assert.ok(seenInStatus !== null, 'sources() shows the download');
  assert.is(s.downloading, null);
  assert.is(s.accepted, 60_000);
  assert.ok(isBlocked(mgr, 'n59999.example'));
});

test('the size cap and the idle timeout end a download', async () => {
  const dir = tempDir();
  const source = { id: 'web', url: `${base}/big`, enabled: true };
  handler = (_req, res) => {
    res.writeHead(200);
    res.end('0.0.0.0 x.example\n'.repeat(10_000));
  };
  const big = await fetchSource(source, null, { dir, fetch, now: Date.now, maxBytes: 50_000 });
  assert.match(big.meta.error ?? '', /too big/);
  assert.not.ok(big.changed);

  handler = (_req, res) => {
    res.writeHead(200);
    res.write('0.0.0.0 slow.example\n'); // and then nothing
  };
  const t = Date.now();
  const slow = await fetchSource(source, null, { dir, fetch, now: Date.now, idleTimeoutMs: 300 });
  assert.match(slow.meta.error ?? '', /timed out: no data for 0.3 s/);
  assert.ok(Date.now() - t < 5_000);
  assert.not.ok(existsSync(join(dir, 'web.list')));
});

test('file:// and absolute-path sources are copied, and copied again only when the file changes', async () => {
  const dir = tempDir();
  const file = join(dir, 'my list.txt');
  writeFileSync(file, 'mine.example\n||adblock.example^\n');
  const mgr = createListManager({
    dir: join(dir, 'lists'),
    sources: [
      { id: 'url', url: pathToFileURL(file).href, enabled: true },
      { id: 'path', url: file, enabled: true },
    ],
    allow: [],
    block: [],
    fetch: () => Promise.reject(new Error('no network for files')),
  });
  const first = await mgr.update();
  assert.equal(
    first.map((s) => [s.id, s.accepted, s.error]),
    [
      ['url', 2, null],
      ['path', 2, null],
    ],
  );
  assert.ok(isBlocked(mgr, 'a.adblock.example'));
  assert.equal(mgr.current().explain('mine.example').list, 'url');
  const bl = mgr.current();
  const second = await mgr.update();
  assert.equal(
    second.map((s) => s.updatedAt),
    first.map((s) => s.updatedAt),
  );
  assert.is(mgr.current(), bl, 'unchanged files: nothing recompiled');

  writeFileSync(file, 'other.example\n');
  utimesSync(file, new Date(), new Date(Date.now() + 5_000));
  await mgr.update();
  assert.ok(isBlocked(mgr, 'other.example'));
  assert.not.ok(isBlocked(mgr, 'mine.example'));

  rmSync(file);
  const gone = await mgr.update();
  assert.match(gone[0]!.error ?? '', /ENOENT/);
  assert.ok(isBlocked(mgr, 'other.example'), 'the last good copy stays');
});

test('the schedule fetches on its own, and stop() ends it', async () => {
  handler = serveWithEtag('"s"');
  const { mgr } = manager('/scheduled', { refreshEveryMs: 100 });
  mgr.start();
  const deadline = Date.now() + 10_000;
  while (requests.length < 3 && Date.now() < deadline) await sleep(20);
  mgr.stop();
  assert.ok(requests.length >= 3, `${requests.length} scheduled fetches`);
  assert.ok(requests.slice(1).every((r) => r.headers['if-none-match'] === '"s"'), 'scheduled checks are conditional');
  assert.ok(isBlocked(mgr, 'ads.example'));
  await sleep(50); // a check already running when stop() came may still finish
  const after = requests.length;
  await sleep(400);
  assert.is(requests.length, after, 'no fetch after stop()');
});

test('update({ only }) fetches one source; an unknown id is a ValidationError', async () => {
  handler = serveWithEtag('"o"');
  const { mgr } = manager();
  await mgr.update({ only: 'web' });
  assert.is(requests.length, 1);
  let err: unknown;
  try {
    await mgr.update({ only: 'nope' });
  } catch (e) {
    err = e;
  }
  assert.instance(err, Error);
  assert.is((err as { field?: string }).field, 'only');
});

test.run();
