import type { Context, Env, Hono } from 'hono';
import { CoreError } from '../core/errors.ts';
import type { Mqtt } from '../core/mqtt.ts';
import { readJson } from './body.ts';

/** The TCP port of MQTT without TLS (IANA registry: "mqtt", 1883). */
export const MQTT_PORT = 1883;

/** Where devices reach the broker: the VM's overlay addresses. */
export interface MqttBrokerAddress {
  hosts: string[];
  port: number;
}

/** Who is connected to the running broker. */
export interface MqttLive {
  clients(): { id: string; caller: string; address: string; since: number }[];
  stats(): { clients: number; deniedPublishes: number; deniedSubscriptions: number; refusedConnections: number };
}

export interface MountMqttOptions {
  bodyLimit?: number;
  /** The running broker; absent when the API runs without the daemon. */
  live?: MqttLive;
  /** Added to a new user's reply, so whoever configures the device knows where to point it. */
  broker?: MqttBrokerAddress;
}

/**
 * MQTT users (devices behind the router, by password) and the owner's topic
 * grants; every route needs an admin (gateway, owner or root on the control
 * socket). A grant is revoked with DELETE and the same JSON body as POST, not
 * a query: "+" in a query string reads as a space, and filters are full of it.
 */
export function mountMqtt<E extends Env>(app: Hono<E>, mqtt: Mqtt, admin: (c: Context<E>) => unknown, opts: MountMqttOptions = {}): void {
  const body = (c: Context<E>) => readJson(c, opts.bodyLimit);

  app.get('/v1/mqtt/users', (c) => (admin(c), c.json({ users: mqtt.users.list() })));
  app.post('/v1/mqtt/users', async (c) => {
    admin(c);
    const { user, password } = await mqtt.users.add(await body(c));
    // The password exists only in this reply: no cache may keep it.
    c.header('Cache-Control', 'no-store');
    return c.json({ user, password, ...(opts.broker && { broker: opts.broker }) }, 201);
  });
  app.delete('/v1/mqtt/users/:name', (c) => (admin(c), c.json({ user: mqtt.users.remove(c.req.param('name')) })));

  app.get('/v1/mqtt/clients', (c) => {
    admin(c);
    if (!opts.live) throw new CoreError('unavailable', 'who is connected needs the running daemon (aerie-cloud serve)');
    const clients = opts.live.clients().map((x) => ({ ...x, since: new Date(x.since).toISOString() }));
    return c.json({ clients, stats: opts.live.stats() });
  });

  app.get('/v1/mqtt/grants', (c) => (admin(c), c.json({ grants: mqtt.grants.list(c.req.query('name')) })));
  // Granting what exists already changes nothing, so 200 either way.
  app.post('/v1/mqtt/grants', async (c) => (admin(c), c.json({ grant: mqtt.grants.grant(await body(c)) })));
  app.delete('/v1/mqtt/grants', async (c) => (admin(c), c.json({ grant: mqtt.grants.revoke(await body(c)) })));
}
