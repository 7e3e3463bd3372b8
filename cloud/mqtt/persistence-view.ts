import type { Client } from 'aedes';
import type { SqlitePersistence } from './persistence/sqlite-persistence.ts';

// What aedes (1.2) sees of the sqlite persistence: the same object, with
// two calls changed. Each change names the aedes code it depends on.

type Persistence = SqlitePersistence;
type ClientLike = { clean?: boolean };

export function persistenceView(persistence: Persistence, mayStore: (client: Client, topic: string) => boolean): Persistence {
  const overrides: Partial<Record<keyof Persistence, unknown>> = {
    /**
     * aedes stores every filter of a SUBSCRIBE of a persistent session, the
     * refused ones too (lib/handlers/subscribe.js storeSubscriptions): filter
     * those out, so nothing is queued for a client under a topic it may not read.
     */
    addSubscriptions: ((client, subs) =>
      persistence.addSubscriptions(client, subs.filter((s) => mayStore(client as Client, s.topic)))) satisfies Persistence['addSubscriptions'],

    /**
     * A PUBACK from a clean session (lib/handlers/puback.js): aedes never
     * queues anything for one (lib/client.js publish and deliverQoS skip the
     * persistence when `clean`), and the stale queue of an earlier persistent
     * session with that id is emptied at CONNECT (handlers/connect.js
     * emptyQueue, which passes the queued packet, not a PUBACK). Nothing to
     * delete, so no transaction per acknowledged message.
     */
    outgoingClearMessageId: ((client, packet) =>
      (client as ClientLike).clean === true && (packet as { cmd?: string }).cmd === 'puback'
        ? Promise.resolve(undefined)
        : persistence.outgoingClearMessageId(client, packet)) satisfies Persistence['outgoingClearMessageId'],
  };
  // A plain object rather than a Proxy: aedes reaches the persistence several times per
  // message, and a get trap on each costs more than the call. Methods are bound to the
  // real instance (they use private fields); getters read through to it.
  const proto = Object.getPrototypeOf(persistence) as object;
  const view: Record<PropertyKey, unknown> = {};
  for (const key of Object.getOwnPropertyNames(proto)) {
    const desc = Object.getOwnPropertyDescriptor(proto, key)!;
    if (key === 'constructor') continue;
    if (typeof desc.value === 'function') view[key] = (desc.value as (...a: unknown[]) => unknown).bind(persistence);
    else if (desc.get) Object.defineProperty(view, key, { get: () => desc.get!.call(persistence), enumerable: true });
  }
  Object.assign(view, overrides);
  return view as unknown as Persistence;
}
