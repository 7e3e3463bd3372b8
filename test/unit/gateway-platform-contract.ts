import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GatewayDesired, Platform } from '../../gateway/platform/platform.ts';

/**
 * What every platform adapter promises the reconciler, run against each
 * adapter with a fake of its system (gateway-openwrt-adapter.test.ts,
 * gateway-linux-contract.test.ts).
 */
export interface ContractSubject {
  platform: Platform;
  /** A desired state this fake system can realise, with overrides. */
  desired(over?: Partial<GatewayDesired>): GatewayDesired;
  /** Starts counting changes. */
  mark(): void;
  /** What changed the system since mark(), one line each (reads are not changes). */
  changes(): string[];
  /** What of the adapter's still exists in the fake system. */
  owned(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export function platformContract(name: string, make: () => Promise<ContractSubject>): void {
  const s = suite(`${name}: platform contract`);

  const withSubject = (fn: (x: ContractSubject) => Promise<void>) => async () => {
    const x = await make();
    try {
      await fn(x);
    } finally {
      await x.cleanup();
    }
  };

  s('set is idempotent: a second set with the same state changes nothing', withSubject(async (x) => {
    await x.platform.set(x.desired());
    x.mark();
    await x.platform.set(x.desired());
    assert.equal(x.changes(), []);
  }));

  s('show() reports the kill switch and DNS interception as set', withSubject(async (x) => {
    const d = x.desired({ killSwitch: true });
    await x.platform.set({ ...d, dns: { ...d.dns, intercept: true } });
    let st = await x.platform.show(d.interface);
    assert.is(st.killSwitch, true);
    assert.is(st.dnsIntercept, true);
    await x.platform.set({ ...d, killSwitch: false, dns: { ...d.dns, intercept: false } });
    st = await x.platform.show(d.interface);
    assert.is(st.killSwitch, false);
    assert.is(st.dnsIntercept, false);
    await x.platform.set({ ...d, killSwitch: true, dns: { ...d.dns, intercept: false } });
    st = await x.platform.show(d.interface);
    assert.is(st.killSwitch, true);
    assert.is(st.dnsIntercept, false);
  }));

  s('set(null) removes all that the adapter owns', withSubject(async (x) => {
    await x.platform.set(x.desired());
    assert.ok((await x.owned()).length > 0, 'set made something');
    await x.platform.set(null);
    assert.equal(await x.owned(), []);
    const st = await x.platform.show(x.desired().interface);
    assert.is(st.killSwitch, false);
    assert.is(st.dnsIntercept, false);
  }));

  s('bad desired state is refused before anything changes', withSubject(async (x) => {
    const d = x.desired();
    const bad: GatewayDesired[] = [
      { ...d, table: 254 },
      { ...d, interface: 'a"b' },
      { ...d, privateKey: 'x' },
      { ...d, peer: { ...d.peer, endpoint: 'nope' } },
      { ...d, peer: { ...d.peer, publicKey: '' } },
      { ...d, lan: [] },
      { ...d, dns: { ...d.dns, servers: ['203.0.113.129', 'vm.example'] } },
      { ...d, dns: { ...d.dns, resolvFile: 'resolv.conf' } },
    ];
    x.mark();
    for (const b of bad) {
      let thrown: unknown;
      await x.platform.set(b).catch((e: unknown) => (thrown = e));
      assert.ok(thrown instanceof Error, `refused: ${JSON.stringify(b).slice(0, 80)}`);
    }
    assert.equal(x.changes(), []);
    assert.equal(await x.owned(), []);
  }));

  s.run();
}
