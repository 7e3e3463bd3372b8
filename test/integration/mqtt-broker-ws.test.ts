import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { normalizeRemoteAddress } from '../../shared/cidr.ts';
import { attachMqttWebSocket } from '../../cloud/mqtt/websocket.ts';
import { connectFrom, inbox, mqttVms, OWNER, portOf, subscribe, within } from './lib/mqtt-broker-env.ts';

// MQTT over WebSocket at /mqtt on an HTTP server (the API's, in the daemon),
// with the same identities and rules as over TCP.

const freshVm = mqttVms(test, 'mqtt-ws');

async function webServer(vm: ReturnType<typeof freshVm>) {
  const broker = await vm.start();
  const server: Server = createServer((_req, res) => res.end('api'));
  attachMqttWebSocket(server, broker, (req) => normalizeRemoteAddress(req.socket.remoteAddress ?? ''));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  vm.track(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { broker, server, port: (server.address() as AddressInfo).port };
}

async function wsClient(vm: ReturnType<typeof freshVm>, url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = await within(5000, `connect to ${url}`, connectAsync(url, { reconnectPeriod: 0, connectTimeout: 4000, ...opts }));
  vm.track(() => client.endAsync(true));
  return client;
}

test('a WebSocket client at ws://…/mqtt is identified by its address like a TCP one, and talks to TCP clients', async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const { broker, port } = await webServer(vm);
  // The phone, by its overlay address (the socket's source).
  const phone = await wsClient(vm, `ws://127.0.0.1:${port}/mqtt`, { clientId: 'phone-ws', wsOptions: { localAddress: OWNER } });
  const box = inbox(phone);
  assert.equal(await subscribe(phone, ['home/#']), [1]);
  // A user from an unknown address (127.0.0.1) needs its password.
  const plug = await wsClient(vm, `ws://127.0.0.1:${port}/mqtt`, { clientId: 'plug-ws', username: 'plug', password });
  await plug.publishAsync('home/plug/state', 'on', { qos: 1 });
  const tcp = await connectFrom(portOf(broker), OWNER, { clientId: 'phone-tcp' });
  await tcp.publishAsync('home/plug/set', 'off', { qos: 1 });
  assert.equal((await box.wait(2)).map((m) => `${m.topic}=${m.payload}`), ['home/plug/state=on', 'home/plug/set=off']);
  assert.equal(
    broker.clients().map((c) => `${c.id} ${c.caller} ${c.address}`).sort(),
    ['phone-tcp owner:phone 127.77.0.3', 'phone-ws owner:phone 127.77.0.3', 'plug-ws user:plug 127.0.0.1'],
  );
  let refused: unknown;
  await wsClient(vm, `ws://127.0.0.1:${port}/mqtt`, { clientId: 'nobody' }).catch((e: unknown) => (refused = e));
  assert.is((refused as { code?: number } | undefined)?.code, 5, 'no credentials from an unknown address');
});

test('other upgrade paths get 404 and are closed; plain HTTP requests still reach the server', async () => {
  const vm = freshVm();
  const { port } = await webServer(vm);
  const upgrade = (path: string) =>
    within(
      3000,
      `upgrade ${path}`,
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': 'mqtt' } });
        req.on('response', (res) => resolve(res.statusCode ?? 0));
        req.on('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      }),
    );
  assert.is(await upgrade('/mqtt'), 101);
  assert.is(await upgrade('/mqtt?x=1'), 101, 'a query string is not part of the path');
  for (const path of ['/', '/mqtt/', '/mqttx', '/v1/mqtt', '/MQTT']) assert.is(await upgrade(path), 404, path);
  const body = await within(
    3000,
    'GET',
    new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/v1/status' }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    }),
  );
  assert.is(body, 'api');
});

test.run();
