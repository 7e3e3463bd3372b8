import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateSelfSignedCert, type SelfSignedCert } from '../../cloud/tls-cert.ts';

async function withServer(cert: SelfSignedCert, fn: (port: number) => Promise<void>) {
  const server = createServer({ key: cert.keyPem, cert: cert.certPem }, (s) => s.end('aerie\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn((server.address() as AddressInfo).port);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

function read(socket: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
  });
}

test('a TLS client pinning the SHA-256 of the DER certificate connects', async () => {
  const cert = generateSelfSignedCert({ host: '127.0.0.1' });
  await withServer(cert, async (port) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const got = new Promise<Buffer>((resolve, reject) => {
      socket.once('secureConnect', () => resolve(createHash('sha256').update(socket.getPeerX509Certificate()!.raw).digest()));
      socket.once('error', reject);
    });
    const text = read(socket);
    assert.ok((await got).equals(cert.fingerprint), 'the pin matches');
    assert.is(socket.authorizationError, 'DEPTH_ZERO_SELF_SIGNED_CERT', 'not trusted by any CA: only the pin vouches for it');
    assert.is(await text, 'aerie\n');
  });
});

test('the certificate also works as its own trust anchor, and another certificate does not', async () => {
  const cert = generateSelfSignedCert({ host: '127.0.0.1' });
  await withServer(cert, async (port) => {
    const trusted = connect({ host: '127.0.0.1', port, ca: cert.certPem });
    assert.is(await read(trusted), 'aerie\n');
    assert.ok(trusted.authorized, 'hostname 127.0.0.1 matches the IP SAN');
    const other = generateSelfSignedCert({ host: '127.0.0.1' });
    const stranger = connect({ host: '127.0.0.1', port, ca: other.certPem });
    try {
      await read(stranger);
      assert.unreachable('a different certificate must not be trusted');
    } catch (err) {
      assert.match((err as Error).message, /self[- ]signed|unable to verify|certificate/i);
    }
  });
});

test.run();
