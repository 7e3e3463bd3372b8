import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { MqttBroker } from './broker.ts';

// MQTT over WebSocket (MQTT v3.1.1 §6) at /mqtt on the API's HTTP server, for
// browsers and phone apps. Every other upgrade request gets a 404.

export const MQTT_WEBSOCKET_PATH = '/mqtt';

/** Why an upgrade is refused (an HTTP status and a message), or null to accept it. */
export type UpgradeCheck = (req: IncomingMessage) => { status: number; message: string } | null;

/**
 * `check` runs before anything else: identity is the tunnel address, so a web
 * page in an owner's browser must not open a connection with the owner's
 * authority (the API's Host and Origin rules apply here too).
 */
export function attachMqttWebSocket(server: Server, broker: MqttBroker, identify: (req: IncomingMessage) => string, check?: UpgradeCheck): void {
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
    if (pathOf(req.url) !== MQTT_WEBSOCKET_PATH) return refuse(socket, 404, 'Not Found');
    const problem = check?.(req);
    if (problem) return refuse(socket, problem.status, problem.message);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      broker.handle(stream, identify(req));
    });
  });
  server.once('close', () => wss.close());
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = `${message.replace(/[\r\n]/g, ' ')}\n`;
  socket.end(`HTTP/1.1 ${status} Refused\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  socket.destroy();
}

function pathOf(url: string | undefined): string {
  const q = (url ?? '').indexOf('?');
  return q === -1 ? (url ?? '') : (url ?? '').slice(0, q);
}
