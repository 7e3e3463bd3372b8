import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { normalizeRemoteAddress } from '../../shared/cidr.ts';
import type { Core } from '../core/core.ts';
import type { Identity } from '../core/identity.ts';

/** Whoever makes a request: a device by its tunnel address, or root on the control socket. */
export type Caller = Identity | LocalRoot;
export interface LocalRoot {
  name: 'root';
  role: 'local';
  address: 'control-socket';
}

export type Identify = (c: Context) => Caller | null | Promise<Caller | null>;

/** Root on the VM, reached through the control socket (mode 0600 in a 0700 directory). */
export const LOCAL_ROOT: LocalRoot = { name: 'root', role: 'local', address: 'control-socket' };

export const identifyLocal: Identify = () => LOCAL_ROOT;

/** The peer address of the TCP connection behind `c` (needs @hono/node-server). */
export function remoteAddress(c: Context): string {
  return normalizeRemoteAddress(getConnInfo(c).remote.address ?? '');
}

/** For the overlay API: WireGuard binds source addresses to keys, so the address is the identity. */
export function identifyOverlay(core: Pick<Core, 'identify'>): Identify {
  return (c) => core.identify(remoteAddress(c));
}

export function isAdmin(caller: Caller): boolean {
  return caller.role === 'local' || caller.role === 'gateway' || caller.role === 'owner';
}
