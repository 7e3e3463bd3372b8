// The VM's typed event bus. Subsystems emit and listen here instead of importing
// each other; main.ts decides who listens to what.

export interface CloudEvents {
  /** A device was added, paired or removed: peers, routes and NAT sources may differ now. */
  'devices-changed': { reason: 'added' | 'paired' | 'removed'; name: string };
  /** A VM-side setting changed (its names, e.g. blockMode, upstreams, lists, blocking). */
  'settings-changed': { keys: string[] };
  /** A pairing code was created or used. */
  'pairing-codes-changed': { reason: 'created' | 'used' };
  /** A firewall policy, LAN host, publish or setting changed: the ruleset must be rendered again. */
  'firewall-changed': { reason: string };
  /** The egress pool, its current addresses, who uses it or its exceptions changed: SNAT rules and WAN addresses follow. */
  'egress-changed': { reason: string };
}

export type CloudEventName = keyof CloudEvents;
export type Listener<K extends CloudEventName> = (payload: CloudEvents[K]) => void;

export interface EventBus {
  /** Returns a function that removes the listener. */
  on<K extends CloudEventName>(name: K, listener: Listener<K>): () => void;
  emit<K extends CloudEventName>(name: K, payload: CloudEvents[K]): void;
}

/**
 * Listeners run synchronously in order. A listener that throws does not stop the
 * others or the emitter: the error goes to `onError` (default: console.error),
 * because the change that caused the event has already been stored.
 */
export function createEventBus(onError: (err: unknown, name: CloudEventName) => void = defaultOnError): EventBus {
  const listeners = new Map<CloudEventName, Set<(payload: never) => void>>();
  return {
    on(name, listener) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      const fn = listener as (payload: never) => void;
      set.add(fn);
      return () => void set.delete(fn);
    },
    emit(name, payload) {
      for (const fn of [...(listeners.get(name) ?? [])]) {
        try {
          (fn as (p: typeof payload) => void)(payload);
        } catch (err) {
          onError(err, name);
        }
      }
    },
  };
}

function defaultOnError(err: unknown, name: CloudEventName): void {
  console.error(`aerie: a listener for ${name} failed:`, err instanceof Error ? err.message : err);
}
