import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { MqttBroker } from './broker.ts';

// MQTT over WebSocket (MQTT v3.1.1 §6) at /mqtt on the API's HTTP server, for
// browsers and phone apps. Every other upgrade request gets a 404.

export const MQTT_WEBSOCKET_PATH = '/mqtt';

export function attachMqttWebSocket(server: Server, broker: MqttBroker, identify: (req: IncomingMessage) => string): void {
  // A WebSocket message may carry several MQTT packets; the broker checks each packet's size.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: broker.limits.maxPacketBytes + 8,
    perMessageDeflate: false,
    // §6: the server selects "mqtt" when offered (older clients offer "mqttv3.1").
    handleProtocols: (offered) => (offered.has('mqtt') ? 'mqtt' : offered.has('mqttv3.1') ? 'mqttv3.1' : false),
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    if (pathOf(req.url) !== MQTT_WEBSOCKET_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      broker.handle(stream, identify(req));
    });
  });
  server.once('close', () => wss.close());
}

function pathOf(url: string | undefined): string {
  const q = (url ?? '').indexOf('?');
  return q === -1 ? (url ?? '') : (url ?? '').slice(0, q);
}
