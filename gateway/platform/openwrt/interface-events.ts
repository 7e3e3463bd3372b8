import type { UbusClient, UbusTable } from '../../ubus/types.ts';

/**
 * netifd announces every interface change as the ubus event
 * `network.interface` with `{ action, interface }` (action ifup, ifdown,
 * ifupdate, ...). A WAN that comes up on another device, or goes down,
 * changes what the kill switch's include must name, so the daemon listens
 * and runs a reconcile pass: the adapter itself is told nothing incremental.
 */

export interface InterfaceEvent {
  action: string;
  interface: string;
}

export const INTERFACE_EVENT = 'network.interface';

export function parseInterfaceEvent(event: string, data: UbusTable): InterfaceEvent | null {
  if (event !== INTERFACE_EVENT) return null;
  const { action, interface: iface } = data;
  return typeof action === 'string' && typeof iface === 'string' ? { action, interface: iface } : null;
}

/** Calls onEvent for each interface event but those of `ignore` (our own tunnel); returns the unsubscribe. */
export function listenInterfaceEvents(
  client: Pick<UbusClient, 'listen'>,
  onEvent: (e: InterfaceEvent) => void,
  ignore: string[] = [],
): Promise<() => Promise<void>> {
  return client.listen(INTERFACE_EVENT, (event, data) => {
    const e = parseInterfaceEvent(event, data);
    if (e && !ignore.includes(e.interface)) onEvent(e);
  });
}
