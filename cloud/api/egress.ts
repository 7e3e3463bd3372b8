import type { Context, Env, Hono } from 'hono';
import type { EgressCore } from '../core/egress.ts';
import { checkFields } from '../core/firewall-checks.ts';
import { readJson } from './body.ts';

/**
 * The temporary egress address; every route needs an admin (gateway, owner or
 * root on the control socket), like /v1/firewall. Changes are stored here;
 * the daemon applies them on 'egress-changed'.
 */
export function mountEgress<E extends Env>(app: Hono<E>, egress: EgressCore, admin: (c: Context<E>) => unknown, bodyLimit?: number): void {
  const body = (c: Context<E>) => readJson(c, bodyLimit);

  app.get('/v1/egress', (c) => (admin(c), c.json(egress.get())));
  app.put('/v1/egress/pool', async (c) => (admin(c), c.json(egress.setPool(await body(c)))));
  // An empty body means everyone.
  app.post('/v1/egress/enable', async (c) => (admin(c), c.json(egress.enable((await body(c)) ?? {}))));
  app.post('/v1/egress/disable', async (c) => (admin(c), c.json(egress.disable((await body(c)) ?? {}))));
  app.post('/v1/egress/rotate', (c) => (admin(c), c.json(egress.rotate())));
  app.put('/v1/egress/schedule', async (c) => (admin(c), c.json(egress.setSchedule(await body(c)))));
  app.get('/v1/egress/exceptions', (c) => (admin(c), c.json(egress.exceptions.list())));
  app.post('/v1/egress/exceptions', async (c) => (admin(c), c.json({ exception: egress.exceptions.add(await body(c)) }, 201)));
  // The value in the body: a prefix's "/" does not fit a path segment.
  app.delete('/v1/egress/exceptions', async (c) => {
    admin(c);
    const { value } = checkFields(await body(c), ['value']);
    return c.json({ exception: egress.exceptions.remove(value) });
  });
}
