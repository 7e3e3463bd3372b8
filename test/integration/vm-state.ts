import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'uvu';
import { generateKeyPair } from '../../shared/keys.ts';
import { decodePairingCode, encodeSecret } from '../../shared/pairing-code.ts';
import { initState, loadState, type CloudState } from '../../cloud/state-dir.ts';
import { openStore, type Store } from '../../cloud/store/store.ts';

export interface VmState {
  dir: string;
  store: Store;
  state: CloudState;
  /** Another store on the same directory (a second process would have one), closed with the rest. */
  openAgain(): Store;
}

/**
 * Fresh VM state directories, initialised with the lab VM's endpoint and
 * overlay, their stores open; all closed and removed after `suite`.
 */
export function vmStates(suite: Test, name: string): () => VmState {
  const roots: string[] = [];
  const stores: Store[] = [];
  suite.after(() => {
    for (const s of stores) s.close();
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });
  return () => {
    const root = mkdtempSync(join(tmpdir(), `aerie-${name}-`));
    roots.push(root);
    const dir = join(root, 'state');
    initState({ stateDir: dir, publicEndpoint: '203.0.113.10', overlayV4: '203.0.113.128/25', overlayV6: '2001:db8:a0::/64', dnsLists: 'none' });
    const open = () => {
      const store = openStore(dir);
      stores.push(store);
      return store;
    };
    const store = open();
    return { dir, store, state: loadState(dir, store), openAgain: open };
  };
}

/** What the router "home" of the lab sends to redeem `code`, with a new key; `over` replaces fields. */
export function pairRequest(code: string, over: Record<string, unknown> = {}) {
  return {
    secret: encodeSecret(decodePairingCode(code).secret),
    publicKey: generateKeyPair().publicKey,
    name: 'home',
    lanPrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'],
    ...over,
  };
}
