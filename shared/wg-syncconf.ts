import { checkInterfaceName } from './interface-name.ts';
import type { Runner } from './run.ts';

/**
 * Makes WireGuard interface `iface` match `conf` (see wg-conf.ts) with
 * `wg syncconf`, which changes only what differs and keeps the sessions of
 * unchanged peers. The config holds the private key, so it reaches wg as the
 * runner's input, read through /dev/stdin, and never through argv.
 */
export async function wgSyncConf(run: Runner, iface: string, conf: string): Promise<void> {
  await run(['wg', 'syncconf', checkInterfaceName(iface, 'interface'), '/dev/stdin'], { input: conf });
}
