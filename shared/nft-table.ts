import { CommandError, type Runner } from './run.ts';

export interface NftTable {
  /** `nft list table` of it, or null when it does not exist. */
  list(): Promise<string | null>;
  /** Makes the table exactly `text` (a whole `table …` definition); null deletes it. */
  set(text: string | null): Promise<void>;
}

/**
 * One nftables table of ours, `table` like "inet aerie", replaced whole in one
 * `nft -f` transaction. Declaring the table before deleting it makes the
 * delete succeed whether or not it exists, and the kernel swaps old rules for
 * new at commit, so there is never a moment without rules.
 */
export interface NftTableOptions {
  /** List without counter values (`nft -s`): a table whose rules count would otherwise never list the same twice. */
  stateless?: boolean;
}

export function createNftTable(run: Runner, table: string, opts: NftTableOptions = {}): NftTable {
  // What we applied and how nft listed it right after: when both still match, there is nothing to do.
  let applied: { text: string; listing: string } | null = null;

  async function list(): Promise<string | null> {
    const argv = ['nft', ...(opts.stateless ? ['-s'] : []), 'list', 'table', ...table.split(' ')];
    const r = await run(argv, { allowFail: true });
    if (r.code === 0) return r.stdout;
    if (/No such file or directory|does not exist/i.test(r.stderr)) return null;
    throw new CommandError(argv, r.code, r.stderr);
  }

  const replace = (body: string) =>
    run(['nft', '-f', '/dev/stdin'], { input: `table ${table}\ndelete table ${table}\n${body}` });

  return {
    list,
    async set(text) {
      if (text === null) {
        applied = null;
        if ((await list()) !== null) await replace('');
        return;
      }
      if (applied?.text === text && (await list()) === applied.listing) return;
      applied = null;
      await replace(text);
      applied = { text, listing: (await list()) ?? '' };
    },
  };
}
