import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCounters } from '../../cloud/firewall/desired.ts';

// Shaped like `nft -j list table inet aerie` from nftables 1.0 (the integration test parses a real one).
const listing = {
  nftables: [
    { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
    { table: { family: 'inet', name: 'aerie', handle: 1 } },
    { counter: { family: 'inet', name: 'sent-tablet', table: 'aerie', handle: 7, comment: 'what tablet sends through the VM', packets: 12, bytes: 1008 } },
    { counter: { family: 'inet', name: 'dropped-tablet', table: 'aerie', handle: 8, packets: 3, bytes: 252 } },
    { counter: { family: 'inet', name: 'dropped-camera', table: 'aerie', handle: 5, packets: 1, bytes: 84 } },
    { counter: { family: 'inet', name: 'sent-camera', table: 'aerie', handle: 4, packets: 0, bytes: 0 } },
    { map: { family: 'inet', name: 'sent4', table: 'aerie', type: 'ipv4_addr', handle: 9, map: 'counter', flags: ['interval'], elem: [['203.0.113.132', 'sent-tablet']] } },
    { chain: { family: 'inet', table: 'aerie', name: 'refused', handle: 2 } },
    {
      rule: {
        family: 'inet', table: 'aerie', chain: 'refused', handle: 12, comment: 'counted for the IPv4 subject it came from',
        expr: [
          { counter: { map: { key: { payload: { protocol: 'ip', field: 'saddr' } }, data: '@dropped4' } } },
          { counter: { packets: 3, bytes: 252 } },
        ],
      },
    },
    {
      rule: {
        family: 'inet', table: 'aerie', chain: 'refused', handle: 14, comment: 'refused by the firewall policy',
        expr: [{ counter: { packets: 4, bytes: 336 } }, { drop: null }],
      },
    },
    // A rule someone added by hand: no counter, no comment.
    { rule: { family: 'inet', table: 'aerie', chain: 'input', handle: 30, expr: [{ accept: null }] } },
    { rule: { family: 'inet', table: 'aerie', chain: 'input', handle: 31, expr: [{ counter: { packets: 1, bytes: 2 } }, { accept: null }] } },
  ],
};

test('rules: every counted rule by chain and comment, in listing order; the map reference is not a count', () => {
  assert.equal(parseCounters(listing).rules, [
    { chain: 'refused', comment: 'counted for the IPv4 subject it came from', packets: 3, bytes: 252 },
    { chain: 'refused', comment: 'refused by the firewall policy', packets: 4, bytes: 336 },
    { chain: 'input', comment: '', packets: 1, bytes: 2 },
  ]);
});

test('subjects: sent and dropped counters joined by name, sorted by name', () => {
  const { subjects } = parseCounters(listing);
  assert.equal(Object.keys(subjects), ['camera', 'tablet']);
  assert.equal(subjects.tablet, { outPackets: 12, outBytes: 1008, droppedPackets: 3, droppedBytes: 252 });
  assert.equal(subjects.camera, { outPackets: 0, outBytes: 0, droppedPackets: 1, droppedBytes: 84 });
});

test('the text of the listing works as well as the parsed object', () => {
  assert.equal(parseCounters(JSON.stringify(listing)), parseCounters(listing));
});

test('an empty table has no counters', () => {
  assert.equal(parseCounters({ nftables: [{ metainfo: {} }, { table: { family: 'inet', name: 'aerie' } }] }), { rules: [], subjects: {} });
});

test('something that is not an nft listing is an error, not empty counters', () => {
  assert.throws(() => parseCounters({ rules: [] }), /nftables/);
  assert.throws(() => parseCounters(null), /nftables/);
  assert.throws(() => parseCounters('Error: syntax error'));
});

test.run();
