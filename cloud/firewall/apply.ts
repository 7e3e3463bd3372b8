import { createNftTable } from '../../shared/nft-table.ts';
import type { Runner } from '../../shared/run.ts';
import { createSerialQueue } from '../../shared/serial-queue.ts';
import { FIREWALL_FAMILY, FIREWALL_TABLE, renderFirewall, type FirewallDesired } from './render.ts';

export interface Firewall {
  /** Makes `table inet aerie` match d (validated first; nothing applied on bad input); null deletes it. */
  set(d: FirewallDesired | null): Promise<void>;
}

/** The VM's firewall: the rendered table, applied whole in one `nft -f` transaction (see nft-table.ts). */
export function createFirewall(run: Runner): Firewall {
  const table = createNftTable(run, `${FIREWALL_FAMILY} ${FIREWALL_TABLE}`);
  // One change at a time, in the order asked.
  const serial = createSerialQueue();
  return {
    set: (d) => serial(() => table.set(d === null ? null : renderFirewall(d))),
  };
}
