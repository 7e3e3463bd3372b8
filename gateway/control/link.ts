import type { IClientOptions, MqttClient } from 'mqtt';
import type { LoadedConfig } from '../config.ts';
import { createSerialQueue } from '../../shared/serial-queue.ts';
import { createControlChannel, type ControlChannel, type ControlChannelDeps } from './channel.ts';
import { MQTT_PORT } from './mqtt-tcp.ts';

/**
 * Keeps one control channel for the config in force: none while the router
 * is not paired or Aerie is disabled (no tunnel, so no broker), a new one when
 * pairing changes the name or the VM, and Home Assistant discovery following
 * the config's switch.
 */

export interface ControlLinkDeps extends Omit<ControlChannelDeps, 'url' | 'name' | 'discovery' | 'connect'> {
  load: () => Promise<LoadedConfig | null>;
  connect: (url: string, opts: IClientOptions) => MqttClient;
  port?: number;
}

export interface ControlLink {
  /** Looks at the config and opens, replaces or closes the channel to match. */
  check(): Promise<void>;
  /** The state may have changed. */
  update(): void;
  /** "off" while there is no channel (not paired, disabled). */
  state(): 'connected' | 'connecting' | 'off';
  close(): Promise<void>;
}

/** mqtt://<the VM's first API address>:1883, an IPv6 address in brackets. */
export function brokerUrl(config: LoadedConfig['config'], port = MQTT_PORT): string | null {
  const address = config.vm.api[0];
  if (!address) return null;
  return `mqtt://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export function createControlLink(deps: ControlLinkDeps): ControlLink {
  const { load, port, ...channelDeps } = deps;
  let open: { channel: ControlChannel; key: string } | null = null;
  let closed = false;
  // The timer and SIGHUP both check: one at a time, or two channels could open for one name.
  const serial = createSerialQueue();

  async function replace(next: { channel: ControlChannel; key: string } | null): Promise<void> {
    const old = open;
    open = next;
    await old?.channel.close();
  }

  return {
    check: () =>
      serial(async () => {
        if (closed) return;
        const loaded = await load().catch(() => null);
        const config = loaded?.config;
        const url = config?.enabled ? brokerUrl(config, port) : null;
        if (!config || !url) {
          if (open) await replace(null);
          return;
        }
        const key = `${config.name} ${url}`;
        if (open?.key !== key) {
          await replace(null);
          if (closed) return;
          open = { key, channel: createControlChannel({ ...channelDeps, url, name: config.name, discovery: config.homeAssistant }) };
        } else {
          open.channel.setDiscovery(config.homeAssistant);
        }
      }),
    update: () => open?.channel.update(),
    state: () => (open ? (open.channel.connected() ? 'connected' : 'connecting') : 'off'),
    async close() {
      closed = true;
      await replace(null);
    },
  };
}
