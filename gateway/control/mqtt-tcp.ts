import { createConnection } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
// The client class alone: MQTT.js's connect() also pulls in WebSocket, SOCKS
// and TLS transports the router never uses, about 250 KB of the bundle.
import clientModule from 'mqtt/lib/client';
import { describeInput, ValidationError } from '../../shared/errors.ts';

export const MQTT_PORT = 1883;

/**
 * MQTT.js's connect() for plain TCP only: "mqtt://host[:port]", an IPv6
 * host in brackets. The broker is reached through the tunnel, which is the
 * encryption and the authentication (the broker knows us by our tunnel address).
 */
export function connectMqtt(url: string, opts: IClientOptions): MqttClient {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError('url', `expected mqtt://host:port, got ${describeInput(url)}`);
  }
  if (parsed.protocol !== 'mqtt:' || parsed.hostname === '') {
    throw new ValidationError('url', `expected mqtt://host:port, got ${describeInput(url)}`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = parsed.port ? Number(parsed.port) : MQTT_PORT;
  // The CommonJS module's exports object; the class is its default export.
  const MqttClientClass = clientModule.default;
  // MQTT.js types its streams as readable-stream's Duplex; a net.Socket is Node's own.
  return new MqttClientClass(() => createConnection({ host, port }) as never, opts);
}
