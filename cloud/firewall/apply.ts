import { CommandError, type Runner } from '../../shared/run.ts';
import { FIREWALL_FAMILY, FIREWALL_TABLE, renderFirewall, type FirewallDesired } from './render.ts';

export interface Firewall {
  /** Makes `table inet aerie` match d (validated first; nothing applied on bad input); null deletes it. */
  set(d: FirewallDesired | null): Promise<void>;
}

const TABLE = [FIREWALL_FAMILY, FIREWALL_TABLE] as const;

/**
 * Applies the rendered table in one `nft -f` transaction. Declaring the table
 * before deleting it makes the delete succeed whether or not it exists, and
 * the kernel swaps old rules for new at commit, so there is never a moment
 * without rules.
 */
export function createFirewall(run: Runner): Firewall {
  // What we applied and how nft listed it right after: when both still match, there is nothing to do.
  let applied: { text: string; listing: string } | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  async function list(): Promise<string | null> {
    const argv = ['nft', 'list', 'table', ...TABLE];
    const r = await run(argv, { allowFail: true });
    if (r.code === 0) return r.stdout;
    if (/No such file or directory/.test(r.stderr)) return null;
    throw new CommandError(argv, r.code, r.stderr);
  }

  const replace = (body: string) =>
    run(['nft', '-f', '/dev/stdin'], { input: `table ${TABLE.join(' ')}\ndelete table ${TABLE.join(' ')}\n${body}` });

  async function apply(d: FirewallDesired | null): Promise<void> {
    if (d === null) {
      applied = null;
      if ((await list()) !== null) await replace('');
      return;
    }
    const text = renderFirewall(d);
    if (applied?.text === text && (await list()) === applied.listing) return;
    applied = null;
    await replace(text);
    applied = { text, listing: (await list()) ?? '' };
  }

  return {
    set(d) {
      // One change at a time, in the order asked.
      const next = queue.then(() => apply(d));
      queue = next.catch(() => {});
      return next;
    },
  };
}
