import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Options } from 'tsup';
import tsupConfig from '../../../tsup.config.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The router's Node (OpenWrt 24.10 ships Node 20); the gateway bundle must run on it. */
export const NODE20 = '/usr/bin/node';

/** Builds the gateway bundle from the current sources with the project's tsup config; returns its path. */
export async function buildGatewayBundle(outDir: string): Promise<string> {
  const configs = (Array.isArray(tsupConfig) ? tsupConfig : [tsupConfig]) as Options[];
  const gateway = configs.find((c) => c.entry && 'aerie-gateway' in (c.entry as Record<string, string>));
  if (!gateway) throw new Error('tsup.config.ts has no aerie-gateway entry');
  await build({ ...gateway, entry: { 'aerie-gateway': join(ROOT, 'gateway/main.ts') }, outDir, silent: true, config: false });
  return join(outDir, 'aerie-gateway.mjs');
}
