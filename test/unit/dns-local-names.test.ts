import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLocalNames, type LocalNames } from '../../cloud/dns/local-names.ts';
import { createQuery, parseQuery } from '../../cloud/dns/wire.ts';
import { decode, packet, query, type Msg, type QType } from './dns-fixtures.ts';
import { throwsValidation } from './throws-validation.ts';

function names(): LocalNames {
  const n = createLocalNames('Aerie.Internal', ['100.64.0.0/10', 'fd00:64::/64'], { ttl: 60 });
  n.set('devices', [
    { name: 'laptop', addresses: ['100.64.0.2', 'fd00:64::2'] },
    { name: 'Phone', addresses: ['100.64.0.3'] },
  ]);
  return n;
}

/** The decoded local answer, or null when the name is not ours. */
function ask(n: LocalNames, name: string, type: QType = 'A'): Msg | null {
  const q = createQuery();
  assert.is(parseQuery(query(name, type, { id: 42 }), q), 0);
  q.limit = 512;
  const r = n.answer(q);
  return r && decode(r);
}

const data = (p: Msg | null) => (p?.answers ?? []).map((a) => (a as packet.StringAnswer).data);

test('NAME.<zone> answers A and AAAA, whatever the case of the question', () => {
  const n = names();
  assert.is(n.zone, 'aerie.internal');
  const r = ask(n, 'LAPTOP.aerie.INTERNAL')!;
  assert.is(r.id, 42);
  assert.is(r.rcode, 'NOERROR');
  assert.ok(r.flags! & packet.AUTHORITATIVE_ANSWER);
  assert.is(r.questions![0]!.name, 'LAPTOP.aerie.INTERNAL');
  assert.is(r.answers![0]!.name, 'LAPTOP.aerie.INTERNAL');
  assert.is(r.answers![0]!.ttl, 60);
  assert.equal(data(r), ['100.64.0.2']);
  assert.equal(data(ask(n, 'laptop.aerie.internal', 'AAAA')), ['fd00:64::2']);
  assert.equal(data(ask(n, 'phone.aerie.internal')), ['100.64.0.3'], 'host names are stored case-folded');
  assert.equal(data(ask(n, 'laptop.aerie.internal', 'ANY')).sort(), ['100.64.0.2', 'fd00:64::2']);
});

test('a known name without that type is NODATA, an unknown one NXDOMAIN, both with the zone SOA', () => {
  const n = names();
  const nodata = ask(n, 'phone.aerie.internal', 'AAAA')!;
  assert.is(nodata.rcode, 'NOERROR');
  assert.is(nodata.answers!.length, 0);
  const s = nodata.authorities![0] as packet.SoaAnswer;
  assert.is(s.type, 'SOA');
  assert.is(s.name, 'aerie.internal');
  assert.is(s.data.mname, 'ns.aerie.internal');
  assert.is(s.data.minimum, 60);
  assert.is(ask(n, 'phone.aerie.internal', 'MX')!.rcode, 'NOERROR');
  for (const name of ['nobody.aerie.internal', 'x.laptop.aerie.internal']) {
    const nx = ask(n, name)!;
    assert.is(nx.rcode, 'NXDOMAIN', name);
    assert.is(nx.authorities![0]!.type, 'SOA');
  }
});

test('the apex answers SOA and NS; names outside the zone are not ours', () => {
  const n = names();
  const s = ask(n, 'aerie.internal', 'SOA')!;
  assert.is(s.answers![0]!.type, 'SOA');
  assert.is((s.answers![0] as packet.SoaAnswer).data.rname, 'hostmaster.aerie.internal');
  assert.equal(data(ask(n, 'aerie.internal', 'NS')), ['ns.aerie.internal']);
  const a = ask(n, 'aerie.internal', 'A')!;
  assert.is(a.rcode, 'NOERROR');
  assert.is(a.answers!.length, 0);
  assert.is(ask(n, 'example.com'), null);
  assert.is(ask(n, 'internal'), null);
  assert.is(ask(n, 'xaerie.internal'), null, 'a label boundary, not a string suffix');
  assert.is(ask(n, 'laptop.aerie.internal.example'), null);
});

test('sources are merged and replaced one at a time', () => {
  const n = names();
  n.set('lan:home', [{ name: 'printer', addresses: ['192.168.1.20'] }, { name: 'laptop', addresses: ['192.168.1.30', '100.64.0.2'] }]);
  assert.equal(data(ask(n, 'printer.aerie.internal')), ['192.168.1.20']);
  assert.equal(data(ask(n, 'laptop.aerie.internal')), ['100.64.0.2', '192.168.1.30'], 'addresses merged, no duplicate');
  n.set('devices', [{ name: 'tablet', addresses: ['100.64.0.9'] }]);
  assert.equal(data(ask(n, 'laptop.aerie.internal')), ['192.168.1.30', '100.64.0.2'], 'what lan:home says remains');
  assert.is(ask(n, 'phone.aerie.internal')!.rcode, 'NXDOMAIN');
  n.set('lan:home', []);
  assert.equal(n.names(), ['tablet']);
});

test('PTR for addresses inside the reverse prefixes, NXDOMAIN for unknown ones there, the rest is not ours', () => {
  const n = names();
  const v4 = ask(n, '2.0.64.100.in-addr.arpa', 'PTR')!;
  assert.equal(data(v4), ['laptop.aerie.internal']);
  assert.ok(v4.flags! & packet.AUTHORITATIVE_ANSWER);
  const nibbles = 'fd00:0064:0000:0000:0000:0000:0000:0002'.replace(/:/g, '').split('').reverse().join('.');
  assert.equal(data(ask(n, `${nibbles}.IP6.ARPA`, 'PTR')), ['laptop.aerie.internal']);

  const unknown = ask(n, '99.0.64.100.in-addr.arpa', 'PTR')!;
  assert.is(unknown.rcode, 'NXDOMAIN');
  assert.is(unknown.authorities![0]!.name, '64.100.in-addr.arpa', 'the SOA owner covers the /10 at a label boundary');
  assert.is(ask(n, `1.${nibbles.slice(2)}.ip6.arpa`, 'PTR')!.rcode, 'NXDOMAIN');
  assert.is(ask(n, '2.0.64.100.in-addr.arpa', 'A')!.rcode, 'NOERROR', 'a known address, another type: NODATA');
  assert.is(ask(n, '0.64.100.in-addr.arpa', 'PTR')!.rcode, 'NOERROR', 'a name above addresses exists, empty');
  assert.is(ask(n, 'x.0.64.100.in-addr.arpa', 'PTR')!.rcode, 'NXDOMAIN');
  assert.is(ask(n, '1.2.0.64.100.in-addr.arpa', 'PTR')!.rcode, 'NXDOMAIN', 'more labels than an address');
  assert.is(ask(n, '02.0.64.100.in-addr.arpa', 'PTR')!.rcode, 'NXDOMAIN', 'no leading zeros');

  assert.is(ask(n, '1.2.0.192.in-addr.arpa', 'PTR'), null, 'outside the prefixes: forwarded');
  assert.is(ask(n, '100.in-addr.arpa', 'PTR'), null, 'wider than the /10: not ours');
  assert.is(ask(n, '2.0.128.100.in-addr.arpa', 'PTR'), null, '100.128.0.2 is outside 100.64.0.0/10');
  assert.is(ask(n, 'in-addr.arpa', 'SOA'), null);
  assert.is(ask(n, 'example.arpa', 'SOA'), null);
});

test('bad zone, prefixes and hosts are refused with the field named', () => {
  throwsValidation(() => createLocalNames('bad..zone', []), 'zone');
  throwsValidation(() => createLocalNames('.', []), 'zone', /not the root$/);
  throwsValidation(() => createLocalNames('aerie.internal', ['100.64.0.1/10']), 'reverse[0]', /host bits/);
  const n = names();
  throwsValidation(() => n.set('devices', [{ name: 'a.b', addresses: [] }]), 'hosts[0].name', /single DNS label/);
  throwsValidation(() => n.set('devices', [{ name: 'ok', addresses: ['100.64.0.2', 'nope'] }]), 'hosts[0].addresses[1]');
  assert.equal(data(ask(n, 'laptop.aerie.internal')), ['100.64.0.2'], 'a refused set changes nothing');
});

test.run();
