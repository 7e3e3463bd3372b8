import type { GatewayConfig } from './config.ts';
import type { GatewayDesired } from './platform/platform.ts';

/** What the config cannot say: facts of the running process. */
export interface RuntimeFacts {
  privateKey: string;
  /** The VM's endpoint with its name resolved ("ip:port"), or null while it does not resolve. */
  endpoint: string | null;
  /** Bumped by the reconciler to make the platform re-create the peer. */
  generation: number;
  /** The home devices the VM's owner isolated (the router's copy of the VM's view). */
  isolated?: string[];
}

/** The VM is our exit to the internet, so it may send us packets from anywhere. */
export const FULL_TUNNEL = ['0.0.0.0/0', '::/0'];

/** The one desired state for the platform; null when Aerie is disabled (remove everything). */
export function buildDesired(config: GatewayConfig, facts: RuntimeFacts): GatewayDesired | null {
  if (!config.enabled) return null;
  const home = config.lanInterfaces[0];
  const homeV6 = config.vm.homeV6 && home ? { interface: home, prefix: config.vm.homeV6 } : null;
  return {
    interface: config.interface,
    privateKey: facts.privateKey,
    addresses: [...config.vm.addresses],
    mtu: config.mtu,
    peer: {
      publicKey: config.vm.publicKey,
      endpoint: facts.endpoint,
      allowedIps: [...FULL_TUNNEL],
      keepalive: config.vm.keepalive,
      generation: facts.generation,
    },
    overlay: [...config.vm.overlay],
    // Every LAN interface is a source of policy-routed traffic, even one without a prefix of its own.
    lan: config.lanInterfaces.map((name) => ({
      interface: name,
      prefixes: [
        ...config.lanPrefixes.filter((p) => p.interface === name).map((p) => p.prefix),
        ...(homeV6?.interface === name ? [homeV6.prefix] : []),
      ],
    })),
    homeV6,
    table: config.routing.table,
    rulePriority: config.routing.priority,
    killSwitch: config.killSwitch,
    isolated: [...(facts.isolated ?? [])],
    // The VM's resolver listens on its overlay addresses, the same as its API.
    dns: { intercept: config.dnsIntercept, servers: [...config.vm.api], resolvFile: config.dnsResolvFile ?? null },
  };
}
