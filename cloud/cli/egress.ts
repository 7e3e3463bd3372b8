// `aerie-cloud egress …`: the temporary egress address through the same API the daemon serves.
import type { ControlClient } from '../control/client.ts';
import type { EgressInfo, EgressRotation } from '../core/egress.ts';
import type { EgressException } from '../egress/exceptions.ts';
import { DnsUsageError } from './dns.ts';

export const EGRESS_USAGE = `  aerie-cloud egress [--json]               the temporary address: mode, pool, current addresses, schedule, exceptions
  aerie-cloud egress pool [--v6-prefix PREFIX|off] [--v4 ADDRESS|off]...
                                            where temporary addresses come from: random ones in a routed IPv6
                                            prefix of the VM, extra IPv4 addresses of its WAN (round robin)
  aerie-cloud egress on|off [--device NAME] new connections leave with the temporary address (everyone, or one device or LAN host)
  aerie-cloud egress rotate                 pick new temporary addresses now; open connections keep theirs
  aerie-cloud egress schedule [30m|1h|1d|off]
                                            rotate on a schedule (at least every 5 minutes)
  aerie-cloud egress except add|remove DOMAIN|PREFIX
                                            destinations that keep the VM's main address (a domain covers its subdomains)
  aerie-cloud egress except list [--json]`;

/** main reports every DnsUsageError as a usage error (message, then a pointer to --help). */
export class EgressUsageError extends DnsUsageError {}

export interface EgressCliContext {
  api: ControlClient;
  json: boolean;
  out: (text: string) => void;
}

export interface EgressFlags {
  device?: string;
  v6Prefix?: string;
  v4?: string[];
}

function modeLine(e: EgressInfo): string {
  if (e.mode === 'global') return 'Temporary address: on for every device and LAN host.';
  if (e.mode === 'devices') return `Temporary address: on for ${e.devices.join(', ')}.`;
  return "Temporary address: off; websites see the VM's main address.";
}

export function egressText(e: EgressInfo): string {
  const pool = [e.pool.v6Prefix && `IPv6 ${e.pool.v6Prefix}`, e.pool.v4.length > 0 && `IPv4 ${e.pool.v4.join(', ')}`].filter(Boolean);
  const current = [e.current.v4, e.current.v6].filter(Boolean);
  const lines = [
    modeLine(e),
    `Pool: ${pool.length > 0 ? pool.join('; ') : 'none (set one with `aerie-cloud egress pool`)'}`,
    `Current: ${current.length > 0 ? `${current.join(', ')}${e.rotatedAt ? ` (picked ${e.rotatedAt})` : ''}` : 'none'}`,
    `Rotation: ${e.schedule === 'off' ? 'by hand (`aerie-cloud egress rotate`)' : `every ${e.schedule}${e.nextRotationAt ? `, next at ${e.nextRotationAt}` : ''}`}`,
    `Exceptions: ${exceptionsText(e.exceptions)}`,
  ];
  return lines.join('\n');
}

function exceptionsText(x: EgressInfo['exceptions']): string {
  const all = [...x.domains, ...x.prefixes];
  return all.length > 0 ? all.join(', ') : 'none';
}

function none(args: string[], what: string): void {
  if (args.length > 0) throw new EgressUsageError(`${what} takes no argument, got ${args[0]}`);
}

export async function runEgress(ctx: EgressCliContext, sub: string | undefined, args: string[], flags: EgressFlags): Promise<void> {
  const { api, out } = ctx;
  const show = (e: EgressInfo) => out(ctx.json ? JSON.stringify(e, null, 2) : egressText(e));
  const poolFlags = flags.v6Prefix !== undefined || flags.v4 !== undefined;
  if (poolFlags && sub !== 'pool') throw new EgressUsageError('--v6-prefix and --v4 go with egress pool only');
  if (flags.device !== undefined && sub !== 'on' && sub !== 'off') throw new EgressUsageError('--device goes with egress on and egress off only');
  switch (sub) {
    case undefined:
    case 'show':
      none(args, 'egress');
      return show(await api.request<EgressInfo>('GET', '/v1/egress'));
    case 'pool': {
      none(args, 'egress pool');
      const now = await api.request<EgressInfo>('GET', '/v1/egress');
      if (!poolFlags) return show(now);
      // What is not given stays as it is; "off" clears that part.
      const v6Prefix = flags.v6Prefix === undefined ? now.pool.v6Prefix : flags.v6Prefix === 'off' ? null : flags.v6Prefix;
      const v4 = flags.v4 === undefined ? now.pool.v4 : flags.v4.length === 1 && flags.v4[0] === 'off' ? [] : flags.v4;
      return show(await api.request<EgressInfo>('PUT', '/v1/egress/pool', { v6Prefix, v4 }));
    }
    case 'on':
    case 'off': {
      none(args, `egress ${sub}`);
      const body = flags.device === undefined ? {} : { device: flags.device };
      return show(await api.request<EgressInfo>('POST', sub === 'on' ? '/v1/egress/enable' : '/v1/egress/disable', body));
    }
    case 'rotate': {
      none(args, 'egress rotate');
      const r = await api.request<EgressRotation>('POST', '/v1/egress/rotate');
      if (ctx.json) return out(JSON.stringify(r, null, 2));
      return out(`New connections now leave with ${[r.v4, r.v6].filter(Boolean).join(' and ')}; open ones keep their address.`);
    }
    case 'schedule': {
      if (args.length > 1) throw new EgressUsageError('expected: egress schedule [30m|1h|1d|off]');
      if (args[0] === undefined) return show(await api.request<EgressInfo>('GET', '/v1/egress'));
      return show(await api.request<EgressInfo>('PUT', '/v1/egress/schedule', { every: args[0] }));
    }
    case 'except': {
      const [verb, ...rest] = args;
      if (verb === 'list') {
        none(rest, 'egress except list');
        const x = await api.request<EgressInfo['exceptions']>('GET', '/v1/egress/exceptions');
        return out(ctx.json ? JSON.stringify(x, null, 2) : `Exceptions: ${exceptionsText(x)}`);
      }
      if (verb !== 'add' && verb !== 'remove') throw new EgressUsageError('egress except needs add, remove or list');
      if (rest.length !== 1 || !rest[0]) throw new EgressUsageError(`expected: egress except ${verb} DOMAIN|PREFIX`);
      const { exception } = await api.request<{ exception: EgressException }>(verb === 'add' ? 'POST' : 'DELETE', '/v1/egress/exceptions', { value: rest[0] });
      if (ctx.json) return out(JSON.stringify(exception, null, 2));
      const what = exception.kind === 'domain' ? `${exception.value} and its subdomains` : exception.value;
      return out(verb === 'add' ? `${what} will see the VM's main address.` : `${what} is no longer an exception.`);
    }
    default:
      throw new EgressUsageError(`unknown egress command: ${sub}`);
  }
}
