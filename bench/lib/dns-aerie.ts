// Aerie's side of the DNS benchmark, set up with the commands a user types:
// `aerie-cloud init … --dns-upstream udp:IP:PORT`, `aerie-cloud dns add-list
// PATH`, `aerie-cloud serve`; the resolver answers on the VM's overlay address.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADDR, PREFIX, type Lab } from '../../test/lab/lib/lab.ts';
import { setUpAerie, type Aerie } from '../../test/lab/lib/aerie.ts';
import type { Endpoint } from './dns-measure.ts';

export const LIST_ID = 'bench';
/** Where the VM's resolver listens: its overlay (tunnel) address. */
export const AERIE_DNS: Endpoint = { address: ADDR.vmTunnel.v4, port: 53 };
/** How long a first start may take to fetch and compile the list before the timed start. */
const PRIME_LIMIT_MS = 120_000;

const firstLines = (text: string) => text.trim().split('\n').slice(0, 3).join(' | ');

type Source = Record<string, unknown> & { id: string };

/** The sources in `aerie-cloud dns lists --json` (an array, or an object holding one). */
async function listSources(aerie: Aerie): Promise<Source[]> {
  const r = await aerie.cloudCli(['dns', 'lists', '--json'], { allowFail: true });
  if (r.code !== 0) throw new Error(`aerie-cloud dns lists --json failed (exit ${r.code}): ${firstLines(r.stderr || r.stdout)}`);
  let data: unknown;
  try {
    data = JSON.parse(r.stdout);
  } catch {
    throw new Error(`\`aerie-cloud dns lists --json\` printed no JSON: ${firstLines(r.stdout)}`);
  }
  const arr = Array.isArray(data) ? data : Object.values((data ?? {}) as Record<string, unknown>).find(Array.isArray);
  if (!Array.isArray(arr)) throw new Error(`\`aerie-cloud dns lists --json\` holds no list of sources: ${firstLines(r.stdout)}`);
  return arr.filter((x): x is Source => typeof x === 'object' && x !== null && typeof (x as { id?: unknown }).id === 'string');
}

const hasGoodCopy = (s: Source | undefined) => s !== undefined && typeof s['updatedAt'] === 'number';

export interface PreparedAerie {
  aerie: Aerie;
  /** Facts for the report: how the list got in, what `dns lists` said. */
  notes: Record<string, unknown>;
}

/**
 * Initializes the VM (the lab's usual init, then init again with the
 * upstream: init keeps existing state and takes the new setting), leaves
 * the benchmark's list as the only one and adds it. When the list has no
 * good copy yet (add-list without a daemon may only register it), one
 * untimed start lets the daemon fetch it: the timed start is then a restart
 * with the list on disk, as dnsmasq's start is with its file.
 */
export async function prepareAerie(lab: Lab, o: { upstream: Endpoint; listFile: string }): Promise<PreparedAerie> {
  const aerie = await setUpAerie(lab);
  const notes: Record<string, unknown> = {};
  const init = await aerie.cloudCli(
    [
      'init',
      '--public-endpoint', ADDR.vm.v4,
      '--wan-interface', 'eth0',
      '--overlay-v4', PREFIX.overlay.v4,
      '--overlay-v6', PREFIX.overlay.v6,
      '--dns-upstream', `udp:${o.upstream.address}:${o.upstream.port}`,
    ],
    { allowFail: true },
  );
  if (init.code !== 0) throw new Error(`aerie-cloud init --dns-upstream failed (exit ${init.code}): ${firstLines(init.stderr || init.stdout)}`);

  // The lab's init added the default sources; the comparison is with this
  // list alone (and the lab has no internet to fetch them from).
  const removed: string[] = [];
  for (const s of await listSources(aerie)) {
    const rm = await aerie.cloudCli(['dns', 'remove-list', s.id], { allowFail: true });
    if (rm.code !== 0) throw new Error(`aerie-cloud dns remove-list ${s.id} failed (exit ${rm.code}): ${firstLines(rm.stderr || rm.stdout)}`);
    removed.push(s.id);
  }
  notes['removedLists'] = removed;

  const t0 = performance.now();
  const add = await aerie.cloudCli(['dns', 'add-list', o.listFile, '--id', LIST_ID], { allowFail: true });
  notes['addListMs'] = Math.round(performance.now() - t0);
  notes['addListExit'] = add.code;
  if (add.code !== 0) notes['addListSaid'] = firstLines(add.stderr || add.stdout);
  let source = (await listSources(aerie)).find((s) => s.id === LIST_ID);
  if (!source) throw new Error(`aerie-cloud dns add-list did not add the list (exit ${add.code}): ${firstLines(add.stderr || add.stdout)}`);

  if (!hasGoodCopy(source)) {
    const t1 = performance.now();
    await aerie.startCloud();
    try {
      const deadline = performance.now() + PRIME_LIMIT_MS;
      for (let i = 0; i < PRIME_LIMIT_MS / 250 && !hasGoodCopy(source) && performance.now() < deadline; i++) {
        await sleep(250);
        source = (await listSources(aerie)).find((s) => s.id === LIST_ID);
      }
    } finally {
      await aerie.stopCloud();
    }
    notes['firstStartFetchedListMs'] = Math.round(performance.now() - t1);
    if (!hasGoodCopy(source)) {
      throw new Error(`the daemon did not fetch the list within ${PRIME_LIMIT_MS / 1000} s: ${JSON.stringify(source ?? null)}`);
    }
  }
  return { aerie, notes };
}

/** What `dns lists --json` says about the list (never fails the run). */
export async function describeList(aerie: Aerie): Promise<Record<string, unknown>> {
  try {
    const source = (await listSources(aerie)).find((s) => s.id === LIST_ID);
    if (!source) return { listsError: `no source with id "${LIST_ID}" in \`dns lists --json\`` };
    const pick = (k: string) => (k in source ? { [k]: source[k] } : {});
    return { list: { ...pick('accepted'), ...pick('rejected'), ...pick('unsupported'), ...pick('error'), ...pick('bytes') } };
  } catch (e) {
    return { listsError: (e as Error).message };
  }
}
