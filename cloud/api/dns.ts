import type { Context, Env, Hono } from 'hono';
import type { DnsControl } from '../dns/control.ts';
import { readJson } from './body.ts';

/** The DNS routes; every one needs an admin (gateway, owner or root on the control socket). */
export function mountDns<E extends Env>(app: Hono<E>, dns: DnsControl, admin: (c: Context<E>) => unknown, bodyLimit?: number): void {
  const body = (c: Context<E>) => readJson(c, bodyLimit);

  app.get('/v1/dns', (c) => (admin(c), c.json(dns.overview())));
  app.patch('/v1/dns', async (c) => (admin(c), c.json(dns.setSettings(await body(c)))));

  app.get('/v1/dns/lists', (c) => (admin(c), c.json(dns.lists())));
  app.post('/v1/dns/lists', async (c) => (admin(c), c.json({ list: await dns.addList(await body(c)) }, 201)));
  app.post('/v1/dns/lists/update', async (c) => (admin(c), c.json(dns.update(await body(c)), 202)));
  app.patch('/v1/dns/lists/:id', async (c) => (admin(c), c.json({ list: await dns.setListEnabled(c.req.param('id'), await body(c)) })));
  app.delete('/v1/dns/lists/:id', async (c) => (admin(c), c.json({ list: await dns.removeList(c.req.param('id')) })));

  app.put('/v1/dns/names/:name', async (c) => (admin(c), c.json(dns.setName(c.req.param('name'), await body(c)))));
  app.delete('/v1/dns/names/:name', (c) => (admin(c), c.json(dns.removeName(c.req.param('name')))));

  app.get('/v1/dns/test/:name', (c) => (admin(c), c.json(dns.test(c.req.param('name')))));
  app.get('/v1/dns/stats', (c) => (admin(c), c.json(dns.stats())));

  app.get('/v1/dns/devices/:name', (c) => (admin(c), c.json(dns.deviceBlocking(c.req.param('name')))));
  app.put('/v1/dns/devices/:name', async (c) => (admin(c), c.json(dns.setDeviceBlocking(c.req.param('name'), await body(c)))));
  app.get('/v1/dns/recent', (c) => (admin(c), c.json(dns.recent())));
  app.put('/v1/dns/recent', async (c) => (admin(c), c.json(dns.setRecent(await body(c)))));
}
