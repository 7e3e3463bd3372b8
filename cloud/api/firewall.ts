import type { Context, Env, Hono } from 'hono';
import { CoreError } from '../core/errors.ts';
import type { FirewallCore } from '../core/firewall.ts';
import type { FirewallCounters } from '../firewall/desired.ts';
import { readJson } from './body.ts';
import { HttpError } from './errors.ts';

/** The running daemon's firewall: the ruleset it would apply, its counters, an apply now. */
export interface FirewallLive {
  print(): string;
  stats(): Promise<FirewallCounters>;
  apply(): Promise<void>;
}

export interface MountFirewallOptions {
  bodyLimit?: number;
  /** Absent when the API runs without the daemon: rules, stats and apply answer 503. */
  live?: FirewallLive;
}

/**
 * The owner's firewall policy; every route needs an admin (gateway, owner or
 * root on the control socket). Policy changes are stored here; the daemon
 * renders and applies the ruleset on 'firewall-changed'.
 */
export function mountFirewall<E extends Env>(app: Hono<E>, fw: FirewallCore, admin: (c: Context<E>) => unknown, opts: MountFirewallOptions = {}): void {
  const body = (c: Context<E>) => readJson(c, opts.bodyLimit);
  const live = (): FirewallLive => {
    if (!opts.live) throw new CoreError('unavailable', 'the ruleset, its counters and apply need the running daemon (aerie-cloud serve)');
    return opts.live;
  };
  // A failure of the OS side says why, instead of the bare 500 unknown errors get.
  const failed = (what: string, err: unknown) =>
    err instanceof HttpError || err instanceof CoreError
      ? err
      : new HttpError(500, `${what}_failed`, `${what === 'apply' ? 'the firewall was not applied; the previous ruleset stays in force' : `could not ${what} the firewall`}: ${err instanceof Error ? err.message : String(err)}`);

  app.get('/v1/firewall', (c) => {
    admin(c);
    return c.json({ policies: fw.policies.list(), hosts: fw.hosts.list(), publishes: fw.publishes.list(), settings: fw.settings.get() });
  });

  app.get('/v1/firewall/policies/:name', (c) => (admin(c), c.json(fw.policies.get(c.req.param('name')))));
  app.put('/v1/firewall/policies/:name', async (c) => (admin(c), c.json(fw.policies.set(c.req.param('name'), await body(c)))));

  app.post('/v1/firewall/hosts', async (c) => (admin(c), c.json({ host: fw.hosts.add(await body(c)) }, 201)));
  app.delete('/v1/firewall/hosts/:name', (c) => (admin(c), c.json({ host: fw.hosts.remove(c.req.param('name')) })));

  app.post('/v1/firewall/publishes', async (c) => (admin(c), c.json({ publish: fw.publishes.add(await body(c)) }, 201)));
  app.delete('/v1/firewall/publishes/:name', (c) => (admin(c), c.json({ publish: fw.publishes.remove(c.req.param('name')) })));

  app.patch('/v1/firewall/settings', async (c) => (admin(c), c.json({ settings: fw.settings.set(await body(c)) })));

  app.get('/v1/firewall/rules', (c) => {
    admin(c);
    const fwLive = live();
    try {
      return c.json({ rules: fwLive.print() });
    } catch (err) {
      throw failed('render', err);
    }
  });
  app.get('/v1/firewall/stats', async (c) => {
    admin(c);
    const fwLive = live();
    try {
      return c.json(await fwLive.stats());
    } catch (err) {
      throw failed('read', err);
    }
  });
  app.post('/v1/firewall/apply', async (c) => {
    admin(c);
    const fwLive = live();
    try {
      await fwLive.apply();
    } catch (err) {
      throw failed('apply', err);
    }
    return c.json({ applied: true });
  });
}
