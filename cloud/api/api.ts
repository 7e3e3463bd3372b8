import { Hono, type Context } from 'hono';
import type { Core } from '../core/core.ts';
import { vmAddresses } from '../core/addressing.ts';
import { toDeviceInfo } from '../core/devices.ts';
import type { DnsControl } from '../dns/control.ts';
import { readJson } from './body.ts';
import { mountDns } from './dns.ts';
import { mountEgress } from './egress.ts';
import { mountFirewall, type FirewallLive } from './firewall.ts';
import { mountMqtt, MQTT_PORT, type MqttLive } from './mqtt.ts';
import { errorResponse, HttpError, toHttpError } from './errors.ts';
import { checkHostAndOrigin, requireJsonBody } from './request-guard.ts';
import { isAdmin, type Caller, type Identify } from './identify.ts';

export interface ApiDeps {
  core: Core;
  /** Largest accepted request body in bytes (default 8 KiB). */
  bodyLimit?: number;
  /** Where unexpected (500) errors are reported; default console.error. */
  logError?: (err: unknown) => void;
  /**
   * The names the API is reached by (the VM's overlay addresses, plain or
   * bracketed); a request with another Host is refused (DNS rebinding). Unset
   * on the control socket, which no browser can reach.
   */
  allowedHosts?: readonly string[];
  /** The DNS settings, lists and counters (absent: no /v1/dns routes). */
  dns?: DnsControl;
  /** The running MQTT broker (absent: /v1/mqtt/clients answers 503). */
  mqtt?: MqttLive;
  /** The daemon's firewall (absent: /v1/firewall/rules, stats and apply answer 503). */
  firewall?: FirewallLive;
}

type Env = { Variables: { caller: Caller | null } };

/**
 * The API served on the overlay address (identify = identifyOverlay(core)) and
 * on the control socket (identify = identifyLocal). No transport in here.
 */
export function createApi(deps: ApiDeps, identify: Identify): Hono<Env> {
  const { core } = deps;
  const app = new Hono<Env>();
  const logError = deps.logError ?? ((err) => console.error('aerie api:', err instanceof Error ? err.message : err));

  app.onError((err, c) => {
    const http = toHttpError(err);
    if (http.status >= 500) logError(err);
    return errorResponse(c, http);
  });
  app.notFound((c) => errorResponse(c, new HttpError(404, 'not_found', `no such endpoint: ${c.req.method} ${c.req.path}`)));

  // Before anything else, so a web page learns and changes nothing (see request-guard.ts).
  app.use('*', checkHostAndOrigin(deps.allowedHosts));
  app.use('*', requireJsonBody());

  app.get('/v1/health', (c) => c.json({ ok: true }));

  app.use('/v1/*', async (c, next) => {
    c.set('caller', await identify(c));
    await next();
  });

  const known = (c: Context<Env>): Caller => {
    const caller = c.get('caller');
    if (!caller) throw new HttpError(401, 'unauthorized', 'this address is not a known Aerie device');
    return caller;
  };
  const admin = (c: Context<Env>): Caller => {
    const caller = known(c);
    if (!isAdmin(caller)) {
      throw new HttpError(403, 'forbidden', `"${caller.name}" (role ${caller.role}) may not do this: it needs a gateway or owner`);
    }
    return caller;
  };

  app.get('/v1/whoami', (c) => c.json(known(c)));

  app.get('/v1/status', async (c) => {
    admin(c);
    return c.json(await core.status());
  });

  app.get('/v1/devices', async (c) => {
    admin(c);
    return c.json({ devices: (await core.status()).peers });
  });

  app.post('/v1/devices', async (c) => {
    admin(c);
    const { device, config } = core.devices.add(await readJson(c, deps.bodyLimit));
    // The config may hold a private key: it must not be kept by any cache.
    c.header('Cache-Control', 'no-store');
    return c.json(config === undefined ? { device: toDeviceInfo(device) } : { device: toDeviceInfo(device), config }, 201);
  });

  app.delete('/v1/devices/:name', (c) => {
    admin(c);
    return c.json({ device: toDeviceInfo(core.devices.remove(c.req.param('name'))) });
  });

  app.post('/v1/pairing-codes', async (c) => {
    admin(c);
    const body = await readJson(c, deps.bodyLimit);
    c.header('Cache-Control', 'no-store');
    return c.json(core.pairing.createCode(body ?? {}), 201);
  });

  if (deps.dns) mountDns(app, deps.dns, admin, deps.bodyLimit);
  mountMqtt(app, core.mqtt, admin, {
    bodyLimit: deps.bodyLimit,
    broker: { hosts: vmAddresses(core.config.overlay), port: MQTT_PORT },
    ...(deps.mqtt && { live: deps.mqtt }),
  });
  mountFirewall(app, core.firewall, admin, { bodyLimit: deps.bodyLimit, ...(deps.firewall && { live: deps.firewall }) });
  mountEgress(app, core.egress, admin, deps.bodyLimit);

  return app;
}
