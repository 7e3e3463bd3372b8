import { existsSync, mkdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Per-namespace files in /etc/netns/NAME/: `ip netns exec NAME` bind-mounts
 * each one over the file of the same name in /etc, so a namespace can have a
 * resolv.conf of its own (what resolvconf would write on a real machine).
 * Only directories named exactly after the lab's namespaces are touched.
 */

const ETC_NETNS = '/etc/netns';

export interface NetnsEtc {
  /** Writes /etc/netns/NS/FILE. */
  write(ns: string, file: string, text: string): void;
  /** Removes /etc/netns/NS for every lab namespace, and /etc/netns when the lab made it and it is empty. */
  cleanup(): void;
}

/** Also removes what a crashed earlier run with the same namespace names left. */
export function netnsEtc(names: readonly string[]): NetnsEtc {
  for (const ns of names) rmSync(join(ETC_NETNS, ns), { recursive: true, force: true });
  const existed = existsSync(ETC_NETNS);
  return {
    write(ns, file, text) {
      if (!names.includes(ns)) throw new Error(`netns-etc: ${ns} is not a namespace of this lab`);
      if (!/^[a-z0-9._-]+$/i.test(file)) throw new Error(`netns-etc: bad file name ${JSON.stringify(file)}`);
      mkdirSync(join(ETC_NETNS, ns), { recursive: true, mode: 0o755 });
      writeFileSync(join(ETC_NETNS, ns, file), text, { mode: 0o644 });
    },
    cleanup() {
      for (const ns of names) rmSync(join(ETC_NETNS, ns), { recursive: true, force: true });
      if (!existed) {
        try {
          rmdirSync(ETC_NETNS); // fails, and is meant to, when anything else is in it
        } catch {
          // not empty or already gone
        }
      }
    },
  };
}
