import { join } from 'node:path';
import { createApi } from '../../../cloud/api/api.ts';
import { createCore, type Core } from '../../../cloud/core/core.ts';
import { createDnsControl, ownNames, toListSources, type DnsControl } from '../../../cloud/dns/control.ts';
import { createListManager } from '../../../cloud/dns/lists/blocklist.ts';
import type { ApiMethod, ApiReply } from '../../../gateway/vm-api.ts';
import type { VmState } from '../vm-state.ts';

/**
 * The VM's real API app, core and DNS settings on a fresh state directory,
 * driven without sockets: `request` is the router's apiRequest as seen from
 * tunnel address `from` (the identity the tunnel would give it).
 */
export interface VmApp {
  core: Core;
  dns: DnsControl;
  request: (address: string, method: ApiMethod, path: string, body: unknown) => Promise<ApiReply>;
}

export async function vmApp(vm: VmState, from: string, opts: { reachable?: () => boolean; calls?: string[] } = {}): Promise<VmApp> {
  const core = createCore({ store: vm.store, config: vm.state });
  const lists = createListManager({ dir: join(vm.dir, 'lists'), sources: toListSources(vm.store.dns.lists()), ...ownNames(vm.store) });
  await lists.load();
  const dns = createDnsControl({ store: vm.store, lists });
  const app = createApi({ core, dns, logError: () => {} }, (c) => core.identify(c.req.header('x-test-from') ?? ''));
  const request = async (address: string, method: ApiMethod, path: string, body: unknown) => {
    opts.calls?.push(`${method} ${path}`);
    if (opts.reachable && !opts.reachable()) throw new Error(`connect EHOSTUNREACH ${address}:80`);
    const res = await app.request(path, {
      method,
      headers: { 'x-test-from': from, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return { core, dns, request };
}
