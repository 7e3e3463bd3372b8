import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair, publicKeyFromPrivate } from '../../shared/keys.ts';
import { encodePairingCode, encodeSecret } from '../../shared/pairing-code.ts';
import { createRecordingRunner } from '../../shared/run.ts';
import { generateSelfSignedCert } from '../../cloud/tls-cert.ts';
import { loadConfig, readPrivateKey, writeFileAtomic } from '../../gateway/config.ts';
import { pair, PairError } from '../../gateway/pair.ts';

// The pair client against a real TLS server on loopback with a self-signed certificate.

const cert = generateSelfSignedCert({ host: '127.0.0.1' });
const vmKey = generateKeyPair().publicKey;
const LAN0 = JSON.stringify([
  {
    ifname: 'lan0',
    addr_info: [
      { family: 'inet', local: '192.0.2.129', prefixlen: 25, scope: 'global' },
      { family: 'inet6', local: '2001:db8:1a::1', prefixlen: 64, scope: 'global' },
    ],
  },
]);
const goodAnswer = {
  name: 'home',
  vmPublicKey: vmKey,
  endpoint: '203.0.113.10:51820',
  addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
  overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
  services: { api: ['203.0.113.129', '2001:db8:a0::1'] },
  keepalive: 25,
};

interface Seen {
  tcpConnections: number;
  tlsConnections: number;
  bytes: number;
  requests: { method: string; url: string; contentType: string; body: any }[];
}

type Handler = (body: any) => { status: number; body: string };

async function vm(handler: Handler, maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): Promise<{ server: Server; port: number; seen: Seen }> {
  const seen: Seen = { tcpConnections: 0, tlsConnections: 0, bytes: 0, requests: [] };
  const server = createHttpsServer({ key: cert.keyPem, cert: cert.certPem, maxVersion }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: any = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = Buffer.concat(chunks).toString('utf8');
      }
      seen.requests.push({ method: req.method!, url: req.url!, contentType: String(req.headers['content-type']), body });
      const reply = handler(body);
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(reply.body);
    });
  });
  server.on('connection', () => seen.tcpConnections++);
  // Every byte the client sends after the TLS handshake, request or not.
  server.on('secureConnection', (s: TLSSocket) => {
    seen.tlsConnections++;
    s.on('data', (d: Buffer) => (seen.bytes += d.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

const close = (s: Server | TcpServer) => new Promise<void>((r) => s.close(() => r()));

function codeFor(port: number, fingerprint: Uint8Array = cert.fingerprint, secret = new Uint8Array(randomBytes(16))) {
  return { code: encodePairingCode({ host: '127.0.0.1', port, fingerprint, secret }), secret };
}

async function withDir<T>(fn: (dir: string, configPath: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'aerie-gw-pair-'));
  try {
    return await fn(dir, join(dir, 'gateway.json'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const lanRunner = () => createRecordingRunner({ 'ip -j addr show dev lan0': { stdout: LAN0 } }).run;

async function pairFails(opts: Parameters<typeof pair>[0], message: RegExp): Promise<void> {
  try {
    await pair(opts);
  } catch (e) {
    assert.instance(e, PairError);
    assert.match((e as Error).message, message);
    assert.not.match((e as Error).message, /\n/);
    return;
  }
  assert.unreachable('pairing should have failed');
}

test('good pairing: key made here, request pinned and complete, config and 0600 key written', async () => {
  const { server, port, seen } = await vm(() => ({ status: 200, body: JSON.stringify(goodAnswer) }));
  try {
    await withDir(async (dir, configPath) => {
      const { code, secret } = codeFor(port);
      const result = await pair({ code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], name: 'home' });
      assert.is(seen.requests.length, 1);
      const req = seen.requests[0]!;
      assert.is(req.method, 'POST');
      assert.is(req.url, '/v1/pair');
      assert.is(req.contentType, 'application/json');
      assert.equal(req.body, {
        secret: encodeSecret(secret),
        publicKey: result.publicKey,
        name: 'home',
        lanPrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'],
      });

      const keyFile = join(dir, 'gateway.key');
      assert.is((await stat(keyFile)).mode & 0o777, 0o600);
      const privateKey = (await readFile(keyFile, 'utf8')).trim();
      assert.is(publicKeyFromPrivate(privateKey), req.body.publicKey, 'the key on disk is the one whose public half was sent');
      assert.not.ok((await readFile(configPath, 'utf8')).includes(privateKey), 'no private key in the config');

      const config = (await loadConfig(configPath))!;
      assert.is(config.name, 'home');
      assert.is(config.vm.publicKey, vmKey);
      assert.is(config.vm.endpoint, '203.0.113.10:51820');
      assert.equal(config.vm.api, ['203.0.113.129', '2001:db8:a0::1']);
      assert.equal(config.lanInterfaces, ['lan0']);
      assert.equal(config.lanPrefixes, [
        { prefix: '192.0.2.128/25', interface: 'lan0' },
        { prefix: '2001:db8:1a::/64', interface: 'lan0' },
      ]);
      assert.is(config.killSwitch, true);
      assert.is(config.privateKeyFile, keyFile);
    });
  } finally {
    await close(server);
  }
});

test('wrong fingerprint: the handshake happens, then not one byte is sent, nothing written', async () => {
  // With TLS 1.2 the server completes its side of the handshake before the client can check the
  // certificate, so the server surely saw the whole handshake; with TLS 1.3 the client may close first.
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    const { server, port, seen } = await vm(() => ({ status: 200, body: JSON.stringify(goodAnswer) }), version);
    try {
      await withDir(async (dir, configPath) => {
        const other = new Uint8Array(randomBytes(32));
        await pairFails(
          { code: codeFor(port, other).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'] },
          /certificate of 127\.0\.0\.1:\d+ does not match the pairing code .*nothing was sent/,
        );
        // Give the server a moment to see anything that might still be in flight.
        await new Promise((r) => setTimeout(r, 150));
        assert.is(seen.tcpConnections, 1, `${version}: the client did connect`);
        if (version === 'TLSv1.2') assert.is(seen.tlsConnections, 1, 'and completed the handshake');
        assert.is(seen.bytes, 0, `${version}: no application data`);
        assert.is(seen.requests.length, 0);
        assert.equal(await readdir(dir), []);
      });
    } finally {
      await close(server);
    }
  }
});

test('refused (403: used or expired code), server error, garbage: one-line error, nothing written', async () => {
  const cases: [number, string, RegExp][] = [
    [403, JSON.stringify({ error: { code: 'forbidden', message: 'this pairing code was already used' } }), /the VM refused the pairing code: this pairing code was already used/],
    [403, '', /the VM refused the pairing code \(a code works once and expires/],
    [500, 'oops', /the VM answered HTTP 500$/],
    [200, 'this is not json', /the VM's answer is malformed \(it is not JSON\)/],
    [200, JSON.stringify({ ...goodAnswer, vmPublicKey: 'short' }), /malformed \(vmPublicKey: expected a base64 WireGuard key/],
    [200, JSON.stringify({ name: 'home' }), /malformed \(vmPublicKey: is required but missing\)/],
    [200, JSON.stringify({ ...goodAnswer, addresses: [] }), /cannot be used: vm\.addresses: expected at least one tunnel address/],
    [200, JSON.stringify({ ...goodAnswer, endpoint: 'vm' }), /malformed \(endpoint: /],
  ];
  for (const [status, body, message] of cases) {
    const { server, port, seen } = await vm(() => ({ status, body }));
    try {
      await withDir(async (dir, configPath) => {
        await pairFails({ code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'] }, message);
        assert.is(seen.requests.length, 1);
        assert.equal(await readdir(dir), [], `nothing written after HTTP ${status} ${body.slice(0, 30)}`);
      });
    } finally {
      await close(server);
    }
  }
});

test('unreachable VM: a silent port times out within the bound, a closed port fails at once', async () => {
  const held: Socket[] = [];
  const silent = createTcpServer((s) => held.push(s)); // accepts, never answers the TLS hello
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  try {
    await withDir(async (dir, configPath) => {
      const port = (silent.address() as AddressInfo).port;
      const t0 = Date.now();
      await pairFails(
        { code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], timeoutMs: 400 },
        new RegExp(`no answer from 127\\.0\\.0\\.1:${port} within`),
      );
      const took = Date.now() - t0;
      assert.ok(took >= 350 && took < 3000, `timed out after ${took} ms`);
      assert.equal(await readdir(dir), []);
    });
  } finally {
    for (const s of held) s.destroy();
    await close(silent);
  }

  const probe = createTcpServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const closedPort = (probe.address() as AddressInfo).port;
  await close(probe);
  await withDir(async (dir, configPath) => {
    await pairFails(
      { code: codeFor(closedPort).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], timeoutMs: 2000 },
      new RegExp(`cannot reach 127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED`),
    );
    assert.equal(await readdir(dir), []);
  });
});

test('already paired: refused without spending the code; --force pairs again', async () => {
  const { server, port, seen } = await vm(() => ({ status: 200, body: JSON.stringify(goodAnswer) }));
  try {
    await withDir(async (_dir, configPath) => {
      await pair({ code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], name: 'home' });
      const before = await readFile(configPath, 'utf8');
      const connections = seen.tlsConnections;
      await pairFails(
        { code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'] },
        /already paired as home with the VM at 203\.0\.113\.10:51820; use --force/,
      );
      assert.is(seen.tlsConnections, connections, 'the VM was not contacted');
      assert.is(await readFile(configPath, 'utf8'), before);

      // The router's own DNS settings (its resolver's file, interception off) outlive pairing again.
      const edited = { ...JSON.parse(before), dnsIntercept: false, dnsResolvFile: '/tmp/resolv.conf.d/resolv.conf.aerie' };
      await writeFile(configPath, JSON.stringify(edited));
      const again = await pair({ code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], force: true });
      assert.is(seen.requests.length, 2);
      assert.is(seen.requests[1]!.body.publicKey, again.publicKey);
      assert.is.not(seen.requests[0]!.body.publicKey, again.publicKey, 'a fresh key pair');
      assert.is(again.config.dnsIntercept, false);
      assert.is(again.config.dnsResolvFile, '/tmp/resolv.conf.d/resolv.conf.aerie');
      assert.is(JSON.parse(await readFile(configPath, 'utf8')).dnsResolvFile, '/tmp/resolv.conf.d/resolv.conf.aerie');
    });
  } finally {
    await close(server);
  }
});

test('bad code or bad LAN: error before any connection', async () => {
  const { server, port, seen } = await vm(() => ({ status: 200, body: JSON.stringify(goodAnswer) }));
  try {
    await withDir(async (dir, configPath) => {
      const { code } = codeFor(port);
      await pairFails({ code: code.slice(0, -4), configPath, run: lanRunner() }, /mistyped|truncated/);
      await pairFails({ code, configPath, run: lanRunner(), lanInterfaces: ['br-lan'] }, /LAN interface br-lan/);
      await pairFails({ code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], name: 'Bad Name' }, /^--name: /);
      assert.is(seen.tlsConnections, 0);
      assert.equal(await readdir(dir), []);
    });
  } finally {
    await close(server);
  }
});

test('relative --config: the stored key path works from the config and from another directory', async () => {
  const { server, port } = await vm(() => ({ status: 200, body: JSON.stringify(goodAnswer) }));
  const cwd = process.cwd();
  try {
    await withDir(async (dir) => {
      process.chdir(dir);
      const result = await pair({ code: codeFor(port).code, configPath: 'gw/gateway.json', run: lanRunner(), lanInterfaces: ['lan0'], name: 'home' });
      assert.is(result.keyFile, join(dir, 'gw', 'gateway.key'));
      const config = (await loadConfig('gw/gateway.json'))!;
      const key = await readPrivateKey('gw/gateway.json', config);
      assert.is(publicKeyFromPrivate(key), result.publicKey);
      process.chdir(cwd);
      assert.is(await readPrivateKey(join(dir, 'gw', 'gateway.json'), config), key, 'the same key with an absolute --config');
    });
  } finally {
    process.chdir(cwd);
    await close(server);
  }
});

test('--force: the old key goes only after the new config is written; a failed config write keeps the old pair', async () => {
  const { server, port } = await vm(() => ({ status: 200, body: JSON.stringify(goodAnswer) }));
  try {
    await withDir(async (dir, configPath) => {
      const first = await pair({ code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], name: 'home' });
      const oldConfigText = await readFile(configPath, 'utf8');
      const oldKeyText = await readFile(first.keyFile, 'utf8');

      // The config write fails (a full disk, say): the old config and key stay, no new key is left behind.
      const failing = async (path: string, data: string, mode: number) => {
        if (path === configPath) throw new Error('ENOSPC: no space left on device');
        await writeFileAtomic(path, data, mode);
      };
      try {
        await pair({ code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], force: true, writeFile: failing });
        assert.unreachable('the config write should have failed');
      } catch (e) {
        assert.match((e as Error).message, /ENOSPC/);
      }
      assert.is(await readFile(configPath, 'utf8'), oldConfigText);
      assert.is(await readFile(first.keyFile, 'utf8'), oldKeyText);
      assert.equal((await readdir(dir)).sort(), ['gateway.json', 'gateway.key']);
      const kept = (await loadConfig(configPath))!;
      assert.is(publicKeyFromPrivate(await readPrivateKey(configPath, kept)), first.publicKey);

      // Succeeding: the config names the new key, which loads; the old key is gone.
      const again = await pair({ code: codeFor(port).code, configPath, run: lanRunner(), lanInterfaces: ['lan0'], force: true });
      assert.is.not(again.keyFile, first.keyFile);
      const config = (await loadConfig(configPath))!;
      assert.is(config.privateKeyFile, again.keyFile);
      assert.is(publicKeyFromPrivate(await readPrivateKey(configPath, config)), again.publicKey);
      assert.is((await stat(again.keyFile)).mode & 0o777, 0o600);
      assert.equal((await readdir(dir)).filter((f) => f.endsWith('.key')), [again.keyFile.slice(dir.length + 1)]);
    });
  } finally {
    await close(server);
  }
});

test.run();
