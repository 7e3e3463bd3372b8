import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { encodeKey, publicKeyFromPrivate } from '../../shared/keys.ts';
import { parseWgDump, renderWgConf, type WgConf } from '../../shared/wg-conf.ts';
import { throwsValidation as invalid } from './throws-validation.ts';

// Fixed keys so the golden text is stable.
const key = (fill: number) => encodeKey(new Uint8Array(32).fill(fill));
const PRIV = key(0x40);
const PEER_A = key(0x11);
const PEER_B = key(0x22);

test('renders the wg setconf format (golden)', () => {
  const text = renderWgConf({
    privateKey: PRIV,
    listenPort: 51820,
    peers: [
      { publicKey: PEER_A, allowedIps: ['203.0.113.130/32', '192.0.2.128/25', '2001:DB8:A0::2/128'], keepalive: 25 },
      { publicKey: PEER_B, allowedIps: ['203.0.113.131'], endpoint: '[2001:db8:192::10]:51820' },
    ],
  });
  assert.fixture(
    text,
    [
      '[Interface]',
      `PrivateKey = ${PRIV}`,
      'ListenPort = 51820',
      '',
      '[Peer]',
      `PublicKey = ${PEER_A}`,
      'AllowedIPs = 203.0.113.130/32, 192.0.2.128/25, 2001:db8:a0::2/128',
      'PersistentKeepalive = 25',
      '',
      '[Peer]',
      `PublicKey = ${PEER_B}`,
      'AllowedIPs = 203.0.113.131/32',
      'Endpoint = [2001:db8:192::10]:51820',
      '',
    ].join('\n'),
  );
});

test('optional parts are left out', () => {
  assert.is(renderWgConf({ privateKey: PRIV, peers: [] }), `[Interface]\nPrivateKey = ${PRIV}\n`);
  const text = renderWgConf({ privateKey: PRIV, peers: [{ publicKey: PEER_A, allowedIps: [], keepalive: 0 }] });
  assert.is(text, `[Interface]\nPrivateKey = ${PRIV}\n\n[Peer]\nPublicKey = ${PEER_A}\n`);
  // An endpoint without a port gets WireGuard's usual one; duplicates collapse.
  const t2 = renderWgConf({ privateKey: PRIV, peers: [{ publicKey: PEER_A, allowedIps: ['192.0.2.1', '192.0.2.1/32'], endpoint: '203.0.113.10' }] });
  assert.match(t2, /AllowedIPs = 192\.0\.2\.1\/32\nEndpoint = 203\.0\.113\.10:51820\n$/);
});

test('bad input is refused by field, so no value can add a line', () => {
  const base: WgConf = { privateKey: PRIV, peers: [{ publicKey: PEER_A, allowedIps: ['192.0.2.0/24'] }] };
  const peer = (over: object) => ({ ...base, peers: [{ ...base.peers[0]!, ...over }] });
  const e = invalid(() => renderWgConf({ ...base, privateKey: `${PRIV.slice(0, 43)}\n[Peer]` }), 'privateKey', /WireGuard key/);
  assert.not.ok(e.message.includes(PRIV.slice(0, 20)));
  invalid(() => renderWgConf({ ...base, privateKey: '' }), 'privateKey');
  invalid(() => renderWgConf({ ...base, listenPort: 65536 }), 'listenPort');
  invalid(() => renderWgConf({ ...base, listenPort: 1.5 }), 'listenPort');
  invalid(() => renderWgConf(peer({ publicKey: `${PEER_A}\nEndpoint = 198.51.100.66:1` })), 'peers[0].publicKey');
  invalid(() => renderWgConf(peer({ allowedIps: ['192.0.2.1/24'] })), 'peers[0].allowedIps[0]', /did you mean 192\.0\.2\.0\/24/);
  invalid(() => renderWgConf(peer({ allowedIps: ['192.0.2.0/24', '0.0.0.0/0\nPublicKey = x'] })), 'peers[0].allowedIps[1]');
  invalid(() => renderWgConf(peer({ allowedIps: ['192.0.2.0/24, 10.0.0.0/8'] })), 'peers[0].allowedIps[0]');
  invalid(() => renderWgConf(peer({ allowedIps: '0.0.0.0/0' })), 'peers[0].allowedIps');
  invalid(() => renderWgConf(peer({ endpoint: '203.0.113.10:51820\n[Peer]' })), 'peers[0].endpoint');
  invalid(() => renderWgConf(peer({ endpoint: '203.0.113.10:0' })), 'peers[0].endpoint');
  invalid(() => renderWgConf(peer({ endpoint: '[fe80::1%eth0]:51820' })), 'peers[0].endpoint');
  invalid(() => renderWgConf(peer({ keepalive: 65536 })), 'peers[0].keepalive');
  invalid(() => renderWgConf(peer({ keepalive: -1 })), 'peers[0].keepalive');
  invalid(() => renderWgConf(peer({ keepalive: 2.5 })), 'peers[0].keepalive');
  invalid(() => renderWgConf({ ...base, peers: [...base.peers, { publicKey: PEER_A, allowedIps: [] }] }), 'peers[1].publicKey', /repeats peers\[0\]/);
  invalid(() => renderWgConf({ ...base, peers: [{ publicKey: publicKeyFromPrivate(PRIV), allowedIps: [] }] }), 'peers[0].publicKey', /own public key/);
  invalid(() => renderWgConf({ privateKey: PRIV } as unknown as WgConf), 'peers');
  // One prefix on two peers would silently move to the second; nested prefixes are fine.
  const two = (a: string[], b: string[]) =>
    renderWgConf({ privateKey: PRIV, peers: [{ publicKey: PEER_A, allowedIps: a }, { publicKey: PEER_B, allowedIps: b }] });
  invalid(() => two(['192.0.2.128/25'], ['192.0.2.128/25']), 'peers[1].allowedIps', /192\.0\.2\.128\/25 is already routed to peers\[0\]/);
  invalid(() => two(['2001:db8:1a::/64'], ['2001:DB8:1A:0::/64']), 'peers[1].allowedIps', /already routed/);
  invalid(() => two(['203.0.113.131/32'], ['203.0.113.131']), 'peers[1].allowedIps', /already routed/);
  assert.match(two(['0.0.0.0/0'], ['192.0.2.128/25']), /AllowedIPs = 192\.0\.2\.128\/25/);
});

const DUMP = [
  `${PRIV}\t${publicKeyFromPrivate(PRIV)}\t51820\toff`,
  `${PEER_A}\t(none)\t198.51.100.2:41234\t203.0.113.130/32,192.0.2.128/25,2001:db8:a0::2/128\t1714564800\t123456\t654321\t25`,
  `${PEER_B}\t(none)\t(none)\t(none)\t0\t0\t0\toff`,
  `${key(0x33)}\t(none)\t[2001:db8:192::10]:51820\t2001:db8:a0::3/128\t0\t9007199254740991\t0\toff`,
  '',
].join('\n');

test('parses wg show dump, skipping the interface line', () => {
  assert.equal(parseWgDump(DUMP), [
    {
      publicKey: PEER_A,
      endpoint: '198.51.100.2:41234',
      allowedIps: ['203.0.113.130/32', '192.0.2.128/25', '2001:db8:a0::2/128'],
      latestHandshake: 1714564800,
      rxBytes: 123456,
      txBytes: 654321,
      keepalive: 25,
    },
    { publicKey: PEER_B, endpoint: null, allowedIps: [], latestHandshake: 0, rxBytes: 0, txBytes: 0, keepalive: 0 },
    {
      publicKey: key(0x33),
      endpoint: '[2001:db8:192::10]:51820',
      allowedIps: ['2001:db8:a0::3/128'],
      latestHandshake: 0,
      rxBytes: 9007199254740991,
      txBytes: 0,
      keepalive: 0,
    },
  ]);
  assert.equal(parseWgDump(''), []);
  assert.is(parseWgDump(DUMP.replaceAll('\n', '\r\n')).length, 3);
  assert.equal(parseWgDump(DUMP.split('\n')[0]!), []);
});

test('a malformed dump is refused without echoing the private key', () => {
  const withLine = (line: string) => `${DUMP.split('\n')[0]}\n${line}\n`;
  for (const bad of [
    `${PRIV}\t${PEER_A}\t51820\toff\textra`, // looks like an interface line, must not be echoed
    `${PEER_A}\t(none)\t(none)\t(none)\t0\t0\t0`,
    `${PEER_A} (none) (none) (none) 0 0 0 off`,
    `${PEER_A}\t(none)\t(none)\t(none)\tsoon\t0\t0\toff`,
    `${PEER_A}\t(none)\t(none)\t(none)\t0\t-1\t0\toff`,
    `${PEER_A}\t(none)\t(none)\t(none)\t0\t0\t0\tnever`,
    `nope\t(none)\t(none)\t(none)\t0\t0\t0\toff`,
    `${PEER_A}\t(none)\t(none)\t(none)\t0\t${'9'.repeat(400)}\t0\toff`,
  ]) {
    let thrown: unknown;
    try {
      parseWgDump(withLine(bad));
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof ValidationError, `accepted ${bad}`);
    assert.not.ok(thrown.message.includes(PRIV.slice(0, 20)), 'private key in the message');
  }
});

test.run();
