// The resolver as the daemon runs it: lists loaded from their last good
// copies, upstreams and resolver built from the stored settings, the server on
// the VM's overlay addresses. Settings and device changes swap the parts that
// depend on them; the sockets stay.
import { overlayPrefixes, vmAddresses, type Overlay } from '../core/addressing.ts';
import { readDnsSettings } from '../core/dns-settings.ts';
import type { Store } from '../store/store.ts';
import { createDnsClients, type DnsClients } from './clients.ts';
import { createDnsControl, ownNames, toListSources, type DnsControl } from './control.ts';
import { createListManager, type ListManager } from './lists/blocklist.ts';
import { createLocalNames } from './local-names.ts';
import { createResolver, type Resolver } from './resolver.ts';
import { serveDns, type DnsServer } from './server.ts';
import { createUpstreams, parseUpstream } from './upstream/upstreams.ts';

export const DNS_PORT = 53;

export interface DnsRuntimeDeps {
  store: Store;
  overlay: Overlay;
  /** Where blocklists keep their last good copies. */
  listsDir: string;
  log: (line: string) => void;
  /** Default 53. */
  port?: number;
  /** For blocklist downloads (tests inject one). */
  fetch?: typeof fetch;
  /** Extra PEM trust anchors for DoT and DoH upstreams. */
  upstreamCa?: string;
  /** Fetch lists at start (default true). */
  updateAtStart?: boolean;
  /** After each list compile (the daemon collects garbage then). */
  onListsCompiled?: () => void;
  /** A DNS setting changed through the control (names as in DnsControlDeps.onChanged). */
  onSettingsChanged?: (keys: string[]) => void;
  /** Each answer to an A or AAAA question, upstream or cached (ResolverOptions.onAddressAnswer). */
  onAddressAnswer?: (name: () => string, answer: Uint8Array) => void | Promise<void>;
}

export interface DnsRuntime {
  control: DnsControl;
  lists: ListManager;
  /** Devices were added, removed or switched: names and clients follow. */
  devicesChanged(): void;
  /** Where the server listens (port 0 in the deps: a free port per address). */
  addresses(): { address: string; port: number }[];
  stop(): Promise<void>;
}

type Upstreams = ReturnType<typeof createUpstreams>;

export async function startDns(deps: DnsRuntimeDeps): Promise<DnsRuntime> {
  const { store, overlay, log } = deps;
  const vm = vmAddresses(overlay);

  const lists = createListManager({
    dir: deps.listsDir,
    sources: toListSources(store.dns.lists()),
    ...ownNames(store),
    log,
    ...(deps.fetch && { fetch: deps.fetch }),
    ...(deps.onListsCompiled && { onCompiled: deps.onListsCompiled }),
  });
  await lists.load();

  let settings = readDnsSettings(store.settings);
  const localNames = createLocalNames(settings.zone, overlayPrefixes(overlay));
  let clients: DnsClients = createDnsClients([], vm);
  const refreshDevices = () => {
    const devices = store.devices.list();
    clients = createDnsClients(devices, vm);
    localNames.set(
      'devices',
      devices.map((d) => ({ name: d.name, addresses: [d.addressV4, d.addressV6] })),
    );
  };
  refreshDevices();

  const buildUpstreams = (): Upstreams =>
    createUpstreams(
      settings.upstreams.map((u, i) => parseUpstream(u, `upstreams[${i}]`)),
      { log, ...(deps.upstreamCa && { ca: deps.upstreamCa }) },
    );
  let upstreams = buildUpstreams();
  // The resolver (counters, cache) lives as long as the daemon; a settings change swaps the upstreams under it.
  const resolver: Resolver = createResolver({
    zone: settings.zone,
    blockMode: settings.blockMode,
    upstream: { exchange: (query, opts) => upstreams.exchange(query, opts) },
    identify: (address) => clients.identify(address),
    isBlocked: (buf, offset) => lists.current().isBlocked(buf, offset),
    localNames,
    ...(deps.onAddressAnswer && { onAddressAnswer: deps.onAddressAnswer }),
  });

  const server: DnsServer = await serveDns(resolver, { addresses: vm, port: deps.port ?? DNS_PORT, log });

  const control = createDnsControl({
    store,
    lists,
    ...(deps.onSettingsChanged && { onChanged: deps.onSettingsChanged }),
    live: {
      resolver,
      upstreams: () => upstreams.health(),
      localNames: () => store.devices.list().map((d) => d.name),
      settingsChanged() {
        const next = { ...readDnsSettings(store.settings), zone: settings.zone }; // the zone is fixed at start
        if (next.upstreams.join() !== settings.upstreams.join()) {
          const old = upstreams;
          settings = next;
          upstreams = buildUpstreams();
          // Queries already sent upstream may still finish on the old set.
          setTimeout(() => void old.close(), 10_000).unref();
        }
        settings = next;
        resolver.setBlockMode(settings.blockMode);
        log(`DNS: upstreams ${settings.upstreams.join(', ')}, blocked names answered ${settings.blockMode === 'null' ? 'with 0.0.0.0 and ::' : 'NXDOMAIN'}`);
      },
      devicesChanged: refreshDevices,
    },
  });

  lists.start();
  if (deps.updateAtStart !== false) control.update(undefined);
  log(
    `DNS on ${vm.map((a) => (a.includes(':') ? `[${a}]` : a)).join(', ')} port ${deps.port ?? DNS_PORT}; ` +
      `zone ${settings.zone}; ${lists.current().names} blocked names; upstreams ${settings.upstreams.join(', ')}`,
  );

  let stopped: Promise<void> | null = null;
  return {
    control,
    lists,
    devicesChanged: refreshDevices,
    addresses: () => server.addresses(),
    stop: () =>
      (stopped ??= (async () => {
        lists.stop();
        await server.close();
        await upstreams.close();
      })()),
  };
}
