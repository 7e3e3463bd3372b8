import { connect } from 'node:net';
import type { IClientOptions } from 'mqtt';
// The client class alone: MQTT.js's index also brings WebSocket and TLS transports (about 400 KB of the bundle).
import clientModule from 'mqtt/lib/client';
import { ControlError } from '../control/client.ts';
import { checkTopicFilter } from '../core/mqtt-topics.ts';

/**
 * `aerie-cloud mqtt sub FILTER`: watch the broker from the VM itself. It
 * connects on the daemon's local socket (root only), where the broker knows
 * it as the VM's administrator: it may read every topic and write none
 * (cloud/core/mqtt-access.ts). Retained messages come first, as with any
 * subscriber.
 */

export interface MqttSubOptions {
  socketPath: string;
  filter: string;
  /** Stop after this many messages; undefined: until interrupted. */
  count?: number;
  json: boolean;
  out: (line: string) => void;
  /** Aborting ends the subscription (Ctrl-C). */
  signal?: AbortSignal;
  connectTimeoutMs?: number;
}

/** A payload as text when it is printable UTF-8, else as base64 with a marker. */
export function showPayload(payload: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    return `base64:${Buffer.from(payload).toString('base64')}`;
  }
  return /[\x00-\x08\x0b-\x1f\x7f]/.test(text) ? `base64:${Buffer.from(payload).toString('base64')}` : text;
}

/** Resolves with the number of messages shown, once `count` were shown or the signal aborted. */
export function mqttSub(opts: MqttSubOptions): Promise<number> {
  const filter = checkTopicFilter(opts.filter, 'filter');
  const options: IClientOptions = {
    clientId: `aerie-cli-${process.pid}`,
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
  };
  const client = new clientModule.default(() => connect(opts.socketPath) as never, options);
  let shown = 0;
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      client.end(true, {}, () => (err ? reject(err) : resolve(shown)));
    };
    const onAbort = () => finish();
    if (opts.signal?.aborted) return finish();
    opts.signal?.addEventListener('abort', onAbort);
    client.on('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') finish(new ControlError(503, 'not_running', 'the daemon is not running (start it with `aerie-cloud serve`)'));
      else finish(new ControlError(502, 'broker', `the broker: ${e.message}`));
    });
    // After our own end() this changes nothing; before it, the daemon went away.
    client.on('close', () => finish(new ControlError(502, 'broker', 'the broker closed the connection (is the daemon stopping?)')));
    client.on('connect', () => {
      client.subscribe(filter, { qos: 1 }, (e, granted) => {
        if (e) return finish(new ControlError(502, 'broker', `subscribing to ${filter} failed: ${e.message}`));
        if (granted?.some((g) => g.qos === 128)) finish(new ControlError(403, 'forbidden', `the broker refused the subscription to ${filter}`));
      });
    });
    client.on('message', (topic, payload, packet) => {
      if (settled) return;
      shown++;
      if (opts.json) {
        opts.out(JSON.stringify({ topic, payload: showPayload(payload), qos: packet.qos, retain: packet.retain }));
      } else {
        opts.out(`${topic}${packet.retain ? ' [retained]' : ''} ${showPayload(payload)}`);
      }
      if (opts.count !== undefined && shown >= opts.count) finish();
    });
  });
}
