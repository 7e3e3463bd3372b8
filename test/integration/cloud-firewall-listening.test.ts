// The VM's listening sockets as a publish check sees them: real sockets of
// this process, read back from the kernel's tables in /proc/net.
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseProcNet, portInUseCheck, readListening } from '../../cloud/firewall/listening.ts';
import { parsePrefix } from '../../shared/cidr.ts';

const OVERLAY = { v4: parsePrefix('203.0.113.128/25'), v6: parsePrefix('2001:db8:a0::/64') };
const servers: Server[] = [];
const sockets: Socket[] = [];

test.after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const s of sockets) s.close();
});

const tcp = (host: string) =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    servers.push(s);
    s.once('error', reject);
    s.listen(0, host, () => resolve((s.address() as AddressInfo).port));
  });
const udp = (host: string, connectTo?: number) =>
  new Promise<number>((resolve, reject) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    sockets.push(s);
    s.once('error', reject);
    s.bind(0, host, () => {
      const port = s.address().port;
      if (connectTo === undefined) resolve(port);
      else s.connect(connectTo, host, () => resolve(port));
    });
  });

test('sockets on every address are in use for a publish; loopback ones are not; both families, TCP and UDP', async () => {
  const check = portInUseCheck(OVERLAY);
  const anyTcp4 = await tcp('0.0.0.0');
  const anyTcp6 = await tcp('::');
  const anyUdp6 = await udp('::');
  const loTcp = await tcp('127.0.0.1');
  const loTcp6 = await tcp('::1');
  const loUdp = await udp('127.0.0.1');
  assert.is(check('tcp', anyTcp4), `a program on the VM listens on every address port ${anyTcp4}/tcp`);
  assert.is(check('tcp', anyTcp6), `a program on the VM listens on every address port ${anyTcp6}/tcp`);
  assert.is(check('udp', anyUdp6), `a program on the VM listens on every address port ${anyUdp6}/udp`);
  assert.is(check('udp', anyTcp4), null, 'the other protocol is free');
  for (const [proto, port] of [['tcp', loTcp], ['tcp', loTcp6], ['udp', loUdp]] as const) {
    assert.is(check(proto, port), null, `loopback ${proto} ${port}: the internet never reaches it`);
  }
  const listed = readListening();
  assert.ok(listed.some((s) => s.proto === 'tcp' && s.address === '127.0.0.1' && s.port === loTcp), 'read from the kernel as they are');
  assert.ok(listed.some((s) => s.proto === 'tcp' && s.address === '::1' && s.port === loTcp6));
});

test('a connected UDP socket or a TCP connection receives from nobody else: not in use', async () => {
  const peer = await udp('127.0.0.1');
  const connected = await udp('127.0.0.1', peer);
  assert.not.ok(readListening().some((s) => s.proto === 'udp' && s.port === connected), 'a connected UDP socket is not listed');
});

test("the overlay's own services (API, DNS, MQTT) are left to the tunnel: a publish does not take them", () => {
  const list = () => [
    { proto: 'tcp' as const, address: '203.0.113.129', port: 80 },
    { proto: 'udp' as const, address: '2001:db8:a0::1', port: 53 },
    { proto: 'tcp' as const, address: '::ffff:203.0.113.129', port: 1883 },
    { proto: 'tcp' as const, address: '198.51.100.10', port: 443 },
  ];
  const check = portInUseCheck(OVERLAY, list);
  assert.is(check('tcp', 80), null);
  assert.is(check('udp', 53), null);
  assert.is(check('tcp', 1883), null, 'a v4-mapped tunnel address is the tunnel address');
  assert.is(check('tcp', 443), 'a program on the VM listens on 198.51.100.10 port 443/tcp');
});

test('malformed table lines are skipped, not thrown', () => {
  const text = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
    '   1: nonsense',
    '   2: 0100007F:ZZZZ 00000000:0000 0A',
    '   3: 01007F:0035 00000000:0000 0A',
    '   4: 0100007F:0000 00000000:0000 0A',
    '',
  ].join('\n');
  const parsed = parseProcNet(text, 'tcp');
  assert.is(parsed.length, 1);
  assert.is(parsed[0]!.port, 53);
});

test.run();
