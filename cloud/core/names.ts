import type { Store } from '../store/store.ts';
import { CoreError } from './errors.ts';

/** What a name belongs to: devices, MQTT users and LAN hosts share one name space. */
export type NameHolder = 'device' | 'MQTT user' | 'LAN host';

const withArticle = (h: NameHolder) => `${h === 'MQTT user' ? 'an' : 'a'} ${h}`;

/**
 * Refuses `name` for a new `wanted` when anything holds it already: a topic
 * prefix, a grant and a firewall policy name one subject, never two.
 */
export function refuseTakenName(store: Store, name: string, wanted: NameHolder): void {
  const holder: NameHolder | null = store.devices.get(name)
    ? 'device'
    : store.mqtt.user(name)
      ? 'MQTT user'
      : store.firewall.host(name)
        ? 'LAN host'
        : null;
  if (holder === null) return;
  if (holder === wanted) throw new CoreError('conflict', `${withArticle(holder)} named "${name}" already exists; remove it first or pick another name`);
  throw new CoreError('conflict', `"${name}" is already ${withArticle(holder)}'s name; ${withArticle(wanted)} needs a name of its own`);
}
