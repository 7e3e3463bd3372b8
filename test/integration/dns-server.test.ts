import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createResolver, type DnsClient } from '../../cloud/dns/resolver.ts';
import { serveDns, type DnsServer } from '../../cloud/dns/server.ts';
import { answerTo, blocklist, decode, fakeUpstream, localNames, manyA, packet, query, ZONE } from '../unit/dns-fixtures.ts';

// The resolver behind real UDP and TCP sockets on loopback, IPv4 and IPv6.

const upstream = fakeUpstream({
  'www.example.com A': (q) => answerTo(q, 'NOERROR', { answers: [{ type: 'A', name: 'www.example.com', ttl: 300, data: '192.0.2.80' }] }),
  'big.example A': (q) => answerTo(q, 'NOERROR', { answers: manyA('big.example', 40) }),
});

async function withServer(
  allowed: string[],
  fn: (s: DnsServer) => Promise<void>,
  opts: { tcpIdleMs?: number; maxTcpPipeline?: number; addresses?: string[] } = {},
): Promise<void> {
  const me: DnsClient = { key: 'test', blocking: true };
  const resolver = createResolver({
    zone: ZONE,
    blockMode: 'null',
    upstream,
    identify: (a) => (allowed.includes(a) ? me : null),
    isBlocked: blocklist().isBlocked,
    localNames: localNames(),
  });
  const server = await serveDns(resolver, {
    addresses: opts.addresses ?? ['127.0.0.1', '::1'],
    port: 0,
    ...(opts.tcpIdleMs !== undefined && { tcpIdleMs: opts.tcpIdleMs }),
    ...(opts.maxTcpPipeline !== undefined && { maxTcpPipeline: opts.maxTcpPipeline }),
  });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

function portOf(s: DnsServer, address: string): number {
  const found = s.addresses().find((a) => a.address === address);
  assert.ok(found, `listening on ${address}`);
  return found!.port;
}

/** One UDP query; null when nothing comes back within waitMs. */
function udpAsk(address: string, port: number, msg: Uint8Array, waitMs = 2000): Promise<Buffer | null> {
  const sock = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  return new Promise<Buffer | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), waitMs);
    sock.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    sock.send(msg, port, address);
  }).finally(() => sock.close());
}

const frame = (msg: Uint8Array) => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);

interface TcpClient {
  sock: Socket;
  replies: Buffer[];
  closed: Promise<void>;
  /** Waits until n replies have come (at most waitMs). */
  wait(n: number, waitMs?: number): Promise<Buffer[]>;
}

async function tcpClient(address: string, port: number): Promise<TcpClient> {
  const sock = connect({ host: address, port });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => {});
  const replies: Buffer[] = [];
  let pending = Buffer.alloc(0);
  let wake = () => {};
  sock.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const len = pending.readUInt16BE(0);
      replies.push(pending.subarray(2, 2 + len));
      pending = pending.subarray(2 + len);
    }
    wake();
  });
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  closed.then(() => wake());
  return {
    sock,
    replies,
    closed,
    async wait(n, waitMs = 3000) {
      const deadline = Date.now() + waitMs;
      while (replies.length < n && !sock.destroyed && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      return replies;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when p settles within ms. */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() => clearTimeout(timer));
}

test('answers over UDP and TCP on IPv4 and IPv6 loopback, on a port chosen for each address', async () => {
  await withServer(['127.0.0.1', '::1'], async (s) => {
    assert.is(s.addresses().length, 2);
    for (const address of ['127.0.0.1', '::1']) {
      const port = portOf(s, address);
      assert.ok(port > 0);
      const u = decode((await udpAsk(address, port, query('www.example.com', 'A', { id: 11 })))!);
      assert.is(u.id, 11);
      assert.is((u.answers![0] as packet.StringAnswer).data, '192.0.2.80');
      const c = await tcpClient(address, port);
      try {
        c.sock.write(frame(query('laptop.aerie.internal', 'A', { id: 12 })));
        const [t] = await c.wait(1);
        assert.ok(t, `a TCP answer on ${address}`);
        assert.is(decode(t!).id, 12);
        assert.is((decode(t!).answers![0] as packet.StringAnswer).data, '100.64.0.2');
      } finally {
        c.sock.destroy();
      }
    }
  });
});

test('a UDP answer that does not fit sets TC; the same query over TCP gets it all', async () => {
  await withServer(['127.0.0.1'], async (s) => {
    const port = portOf(s, '127.0.0.1');
    const plain = decode((await udpAsk('127.0.0.1', port, query('big.example')))!);
    assert.ok(plain.flags! & packet.TRUNCATED_RESPONSE, 'over 512 bytes without EDNS');
    assert.is(plain.answers!.length, 0);
    const small = decode((await udpAsk('127.0.0.1', port, query('big.example', 'A', { edns: 700 })))!);
    assert.ok(small.flags! & packet.TRUNCATED_RESPONSE, 'over the 700 bytes the client offered');
    const large = await udpAsk('127.0.0.1', port, query('big.example', 'A', { edns: 1232 }));
    assert.is(decode(large!).answers!.length, 40);
    assert.ok(large!.length > 700 && large!.length <= 1232);
    const c = await tcpClient('127.0.0.1', port);
    try {
      c.sock.write(frame(query('big.example')));
      const [t] = await c.wait(1);
      const d = decode(t!);
      assert.is(d.flags! & packet.TRUNCATED_RESPONSE, 0);
      assert.is(d.answers!.length, 40);
    } finally {
      c.sock.destroy();
    }
  });
});

test('pipelined TCP queries in one write are all answered; a length prefix split across writes is reassembled', async () => {
  await withServer(['127.0.0.1'], async (s) => {
    const c = await tcpClient('127.0.0.1', portOf(s, '127.0.0.1'));
    try {
      const ids = [101, 102, 103, 104];
      c.sock.write(
        Buffer.concat([
          frame(query('www.example.com', 'A', { id: 101 })),
          frame(query('ads.example', 'A', { id: 102 })),
          frame(query('tv.aerie.internal', 'A', { id: 103 })),
          frame(query('big.example', 'A', { id: 104 })),
        ]),
      );
      const replies = await c.wait(4);
      assert.equal(replies.map((r) => decode(r).id).sort(), ids, 'four answers, in any order');
      const ads = replies.map((r) => decode(r)).find((d) => d.id === 102)!;
      assert.is((ads.answers![0] as packet.StringAnswer).data, '0.0.0.0');

      const msg = frame(query('www.example.com', 'A', { id: 200 }));
      c.sock.write(msg.subarray(0, 1));
      await sleep(50);
      c.sock.write(msg.subarray(1, 9));
      await sleep(50);
      c.sock.write(msg.subarray(9));
      const all = await c.wait(5);
      assert.is(all.length, 5);
      assert.is(decode(all[4]!).id, 200);
    } finally {
      c.sock.destroy();
    }
  });
});

test('a TCP client with many queries waiting upstream, reading slowly, gets every answer', async () => {
  await withServer(
    ['127.0.0.1'],
    async (s) => {
      const c = await tcpClient('127.0.0.1', portOf(s, '127.0.0.1'));
      try {
        const n = 20_000;
        c.sock.pause(); // not reading: the server must stop reading too, not buffer without bound
        const frames: Buffer[] = [];
        // Every 10th name is new (a miss waiting on the upstream), the rest are answered at once.
        for (let i = 0; i < n; i++) frames.push(frame(query(i % 10 === 0 ? `n${i}.example` : 'tv.aerie.internal', 'A', { id: i & 0xffff })));
        c.sock.write(Buffer.concat(frames));
        await sleep(300);
        c.sock.resume();
        const replies = await c.wait(n, 15_000);
        assert.is(replies.length, n);
        assert.is(new Set(replies.map((r) => decode(r).id)).size, n);
      } finally {
        c.sock.destroy();
      }
    },
    { maxTcpPipeline: 4 },
  );
});

test('a TCP client that stops reading makes the server stop reading; once it reads again, it gets everything', async () => {
  await withServer(['127.0.0.1'], async (s) => {
    const c = await tcpClient('127.0.0.1', portOf(s, '127.0.0.1'));
    try {
      // Enough answers (about 16 MB) to fill the kernel's socket buffers both ways.
      const n = 300_000;
      const one = frame(query('tv.aerie.internal', 'A', { id: 5 }));
      c.sock.pause();
      c.sock.write(Buffer.concat(new Array<Buffer>(n).fill(one)));
      await sleep(300);
      c.sock.resume();
      assert.is((await c.wait(n, 15_000)).length, n);
    } finally {
      c.sock.destroy();
    }
  });
});

test('an idle TCP connection is closed after the idle timeout; a busy one is not', async () => {
  await withServer(
    ['127.0.0.1'],
    async (s) => {
      const port = portOf(s, '127.0.0.1');
      const idle = await tcpClient('127.0.0.1', port);
      const started = Date.now();
      const closedInTime = await within(idle.closed, 3000);
      assert.ok(closedInTime, 'closed by the server');
      assert.ok(Date.now() - started >= 250, `not before the timeout (${Date.now() - started} ms)`);

      const busy = await tcpClient('127.0.0.1', port);
      try {
        for (let i = 0; i < 4; i++) {
          busy.sock.write(frame(query('www.example.com', 'A', { id: i })));
          await sleep(150);
        }
        assert.is((await busy.wait(4)).length, 4);
        assert.not.ok(busy.sock.destroyed, 'queries every 150 ms keep it open');
        assert.ok(await within(busy.closed, 3000), 'then it idles out');
      } finally {
        busy.sock.destroy();
      }
    },
    { tcpIdleMs: 300 },
  );
});

test('a source that is not ours gets nothing, over UDP or TCP', async () => {
  await withServer(['127.0.0.1'], async (s) => {
    const port6 = portOf(s, '::1');
    assert.is(await udpAsk('::1', port6, query('www.example.com'), 300), null);
    const c = await tcpClient('::1', port6);
    try {
      c.sock.write(frame(query('www.example.com')));
      const closed = await within(c.closed, 2000);
      assert.ok(closed, 'the connection is closed');
      assert.is(c.replies.length, 0);
    } finally {
      c.sock.destroy();
    }
    assert.ok(await udpAsk('127.0.0.1', portOf(s, '127.0.0.1'), query('www.example.com')), 'allowed sources are answered');
  });
});

test('garbage does not stop the server; close() releases the ports', async () => {
  let port = 0;
  await withServer(['127.0.0.1'], async (s) => {
    port = portOf(s, '127.0.0.1');
    for (const junk of [Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.alloc(600, 0xff)]) await udpAsk('127.0.0.1', port, junk, 100);
    const c = await tcpClient('127.0.0.1', port);
    c.sock.write(Buffer.from([0, 3, 1, 2, 3]));
    await c.closed;
    assert.ok(await udpAsk('127.0.0.1', port, query('www.example.com')));
  });
  const refused = await new Promise<boolean>((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(true));
  });
  assert.ok(refused, 'no TCP listener after close');
});

test.run();
