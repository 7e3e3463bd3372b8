/**
 * The router's own switches in UCI `/etc/config/aerie`, section `config aerie 'main'`.
 * The init script validates exactly these (uci_load_validate) and the LuCI
 * settings view binds only these; a test holds all three to this list.
 */
export interface RouterOption {
  /** The uci validation type, as uci_load_validate spells it. */
  type: 'bool' | 'list(string)';
  /** The default uci_load_validate fills in when the option is unset. */
  default: string;
}

export const ROUTER_OPTIONS: Readonly<Record<string, RouterOption>> = Object.freeze({
  enabled: { type: 'bool', default: '1' },
  kill_switch: { type: 'bool', default: '1' },
  dns_intercept: { type: 'bool', default: '1' },
  /** Home Assistant discovery of the router's state on the VM's broker. */
  home_assistant: { type: 'bool', default: '1' },
  /** UCI network names (not Linux devices) whose hosts go through the tunnel. */
  lan_network: { type: 'list(string)', default: 'lan' },
});
