import { UbusError } from '../../ubus/error.ts';
import type { UbusCaller, UbusTable } from '../../ubus/types.ts';
import type { UciCall } from './uci-diff.ts';
import type { UciConfigName } from './uci.ts';

/**
 * Changes through rpcd's `uci` object as one transaction per set(): staged
 * (rpcd keeps them in its save directory, /tmp/.uci for calls without a
 * session), then one commit per config, or reverted so that nothing
 * half-applied remains when rpcd refuses a call.
 */
export interface UciTransaction {
  /**
   * A commit takes every staged change of its config, so someone else's
   * uncommitted edits are refused, not committed with ours. Leftovers of our
   * own (a pass that died halfway) are reverted: 'again' asks for a fresh plan.
   */
  check(configs: UciConfigName[], ownedName: (section: string) => boolean): Promise<'clean' | 'again'>;
  /** Issues the calls in order; on an error reverts the configs touched and throws, naming the call. */
  stage(configs: UciConfigName[], calls: Map<UciConfigName, UciCall[]>): Promise<void>;
  /** One commit per config, in order; rpcd then sends procd `config.change`, which fires the reload triggers. */
  commit(configs: UciConfigName[]): Promise<void>;
  revert(configs: UciConfigName[]): Promise<void>;
}

export function createUciTransaction(ubus: UbusCaller, log: (m: string) => void): UciTransaction {
  async function revert(configs: UciConfigName[]): Promise<void> {
    for (const config of configs) {
      await ubus.call('uci', 'revert', { config }).catch((e: unknown) => log(`uci revert ${config} failed: ${describeError(e)}`));
    }
    if (configs.length) log(`reverted the uncommitted changes of ${configs.join(', ')}`);
  }

  async function callUci(c: UciCall): Promise<UbusTable> {
    let reply: UbusTable;
    try {
      reply = await ubus.call('uci', c.method, c.args);
    } catch (e) {
      throw new Error(`uci ${c.method} ${String(c.args.config)}.${String(c.args.section ?? c.args.name)} failed: ${describeError(e)}`);
    }
    // A failed add (a name libuci refuses) gets no section back and status 0 from rpcd.
    if (c.method === 'add' && reply.section !== c.args.name) {
      throw new Error(`uci add ${String(c.args.config)}.${String(c.args.name)} failed: rpcd created no such section`);
    }
    return reply;
  }

  return {
    revert,
    async check(configs, ownedName) {
      const leftovers: UciConfigName[] = [];
      for (const config of configs) {
        const pending = await ubus.call('uci', 'changes', { config });
        const list = Array.isArray(pending.changes) ? pending.changes : [];
        if (list.length === 0) continue;
        // rpcd lists a change as [operation, section, option?, value?].
        if (!list.every((c) => Array.isArray(c) && typeof c[1] === 'string' && ownedName(c[1]))) {
          throw new Error(`UCI ${config} has uncommitted changes that are not Aerie's; commit or revert them first (nothing was changed)`);
        }
        leftovers.push(config);
      }
      if (leftovers.length === 0) return 'clean';
      await revert(leftovers);
      return 'again';
    },
    async stage(configs, calls) {
      const touched: UciConfigName[] = [];
      try {
        for (const config of configs) {
          for (const c of calls.get(config) ?? []) {
            if (!touched.includes(config)) touched.push(config);
            await callUci(c);
          }
        }
      } catch (e) {
        await revert(touched);
        throw e;
      }
    },
    async commit(configs) {
      for (let i = 0; i < configs.length; i++) {
        try {
          await ubus.call('uci', 'commit', { config: configs[i]! });
        } catch (e) {
          const rest = configs.slice(i);
          await revert(rest);
          throw new Error(`uci commit ${configs[i]} failed (${describeError(e)}); reverted ${rest.join(', ')}`);
        }
      }
    },
  };
}

export function describeError(e: unknown): string {
  if (e instanceof UbusError) return `${e.statusName}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
