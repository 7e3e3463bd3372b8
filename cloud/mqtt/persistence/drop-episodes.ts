// One log line when a limit starts dropping messages and one when it stops, not
// one per message: a client offline for a day with a full queue would
// otherwise flood the log with every message it misses.

export class DropEpisodes {
  readonly #log: (line: string) => void;
  /** open episode → messages dropped in it so far */
  readonly #open = new Map<string, number>();

  constructor(log: (line: string) => void) {
    this.#log = log;
  }

  /** Counts a dropped message; logs `firstLine` when this starts an episode. */
  dropped(key: string, firstLine: () => string): void {
    const n = this.#open.get(key);
    if (n === undefined) this.#log(firstLine());
    this.#open.set(key, (n ?? 0) + 1);
  }

  isOpen(key: string): boolean {
    return this.#open.has(key);
  }

  /** Ends an open episode, logging how many messages it dropped. */
  ended(key: string, lastLine: (dropped: number) => string): void {
    const n = this.#open.get(key);
    if (n === undefined) return;
    this.#open.delete(key);
    this.#log(lastLine(n));
  }
}
