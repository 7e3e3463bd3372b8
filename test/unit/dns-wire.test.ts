import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emptyReply, synthReply, type OwnRecord } from '../../cloud/dns/wire-reply.ts';
import { scanAnswer } from '../../cloud/dns/wire-scan.ts';
import { checkName, createQuery, nameToText, nameToWire, parseQuery, Q_DROP, Q_OK, RCODE, TYPE } from '../../cloud/dns/wire.ts';
import { answerTo, decode, optOf, packet, query, soa } from './dns-fixtures.ts';
import { throwsValidation } from './throws-validation.ts';

const parse = (buf: Uint8Array) => {
  const q = createQuery();
  const status = parseQuery(buf, q);
  return { q, status };
};

/** A query with a hand-made question name (wire bytes) and optional extra bytes after the question. */
function rawQuery(name: number[], opts: { counts?: number[]; tail?: number[]; flags?: number } = {}): Uint8Array {
  const [qd, an, ns, ar] = opts.counts ?? [1, 0, 0, 0];
  const flags = opts.flags ?? 0x0100;
  return Uint8Array.from([0xab, 0xcd, flags >> 8, flags & 0xff, 0, qd!, 0, an!, 0, ns!, 0, ar!, ...name, 0, 1, 0, 1, ...(opts.tail ?? [])]);
}

const label = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];

test('a query is read: ID, type, class, EDNS size, version and DO bit', () => {
  const { q, status } = parse(query('www.Example.com', 'AAAA', { id: 0xbeef, edns: 1400, dnssecOk: true }));
  assert.is(status, Q_OK);
  assert.is(q.id, 0xbeef);
  assert.is(q.qtype, TYPE.AAAA);
  assert.is(q.qclass, 1);
  assert.is(q.labels, 3);
  assert.is(q.nameEnd, 12 + 17);
  assert.is(q.end, 12 + 17 + 4);
  assert.ok(q.edns);
  assert.is(q.ednsSize, 1400);
  assert.is(q.ednsVersion, 0);
  assert.ok(q.ednsDo);
  assert.is(nameToText(q.buf, 12), 'www.Example.com', 'the name as sent, case kept');

  const plain = parse(query('example.com', 'A')).q;
  assert.not.ok(plain.edns);
  assert.is(parse(query('x.example', 'A', { edns: 100 })).q.ednsSize, 512, 'a size below 512 counts as 512');
});

test('names differing only in case hash alike; other names do not', () => {
  const h = (n: string) => parse(query(n)).q.hash;
  assert.is(h('WWW.Example.COM'), h('www.example.com'));
  assert.is.not(h('www.example.com'), h('www.example.org'));
  assert.is.not(h('ab.c'), h('a.bc'), 'label boundaries count');
});

test('question names: pointers, extended label types, over-long names are FORMERR', () => {
  const ok = parse(rawQuery([...label('a'), 0]));
  assert.is(ok.status, Q_OK);
  // A pointer in the question (to offset 12 itself: a loop).
  const pointer = parse(rawQuery([...label('a'), 0xc0, 12]));
  assert.is(pointer.status, RCODE.FORMERR);
  assert.is(pointer.q.end, 0, 'the question was not readable');
  for (const bad of [0x40, 0x80, 0xbf]) assert.is(parse(rawQuery([bad, ...new Array(bad & 0x3f).fill(0x61), 0])).status, RCODE.FORMERR);
  // 255 octets is the most a name may have (RFC 1035 §3.1): 4 labels of 62 + 1 of 1 + root = 255.
  const longest = [...label('x'.repeat(62)), ...label('x'.repeat(62)), ...label('x'.repeat(62)), ...label('x'.repeat(62)), ...label('x'), 0];
  assert.is(longest.length, 255);
  assert.is(parse(rawQuery(longest)).status, Q_OK);
  const tooLong = [...label('x'.repeat(62)), ...label('x'.repeat(62)), ...label('x'.repeat(62)), ...label('x'.repeat(62)), ...label('xy'), 0];
  assert.is(parse(rawQuery(tooLong)).status, RCODE.FORMERR);
  assert.is(parse(rawQuery([...label('a')])).status, RCODE.FORMERR, 'no root label');
  assert.is(parse(rawQuery([...label('abc'), 0]).subarray(0, 20)).status, RCODE.FORMERR, 'cut in the question');
});

test('header problems: short or response messages are dropped; bad counts and opcodes are answered', () => {
  assert.is(parse(new Uint8Array(11)).status, Q_DROP);
  assert.is(parse(rawQuery([0], { flags: 0x8100 })).status, Q_DROP, 'QR=1');
  assert.is(parse(rawQuery([0], { flags: 0x1000 })).status, RCODE.NOTIMP, 'opcode STATUS');
  assert.is(parse(rawQuery([0], { counts: [0, 0, 0, 0] })).status, RCODE.FORMERR);
  assert.is(parse(rawQuery([0], { counts: [2, 0, 0, 0] })).status, RCODE.FORMERR);
});

test('the additional section: one OPT owned by the root, options filling its RDATA', () => {
  const opt = (owner: number[], rdata: number[]) => [...owner, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, rdata.length, ...rdata];
  const withOpt = (...records: number[][]) => parse(rawQuery([...label('a'), 0], { counts: [1, 0, 0, records.length], tail: records.flat() }));
  assert.is(withOpt(opt([0], [])).status, Q_OK);
  assert.is(withOpt(opt([0], [0, 10, 0, 2, 1, 2])).q.ednsSize, 4096);
  assert.is(withOpt(opt([0], []), opt([0], [])).status, RCODE.FORMERR, 'two OPT records');
  assert.is(withOpt(opt(label('a').concat(0), [])).status, RCODE.FORMERR, 'OPT not owned by the root');
  assert.is(withOpt(opt([0], [0, 10, 0, 9, 1])).status, RCODE.FORMERR, 'an option longer than RDATA');
  assert.is(withOpt(opt([0], [0, 10, 0])).status, RCODE.FORMERR, 'half an option');
  const cut = withOpt([0, 0, 41, 0x10]);
  assert.is(cut.status, RCODE.FORMERR, 'a record cut short');
  assert.ok(cut.q.end > 0, 'the question was readable: FORMERR can echo it');
  assert.is(parse(rawQuery([0], { counts: [1, 200, 0, 0] })).status, RCODE.FORMERR, 'counts beyond the message');
});

test('compressed names: only backward pointers, at most 255 octets expanded', () => {
  // "a" at 0, then a name at 3 that points back to it.
  const buf = Uint8Array.from([1, 0x61, 0, 1, 0x62, 0xc0, 0]);
  assert.is(checkName(buf, 0, buf.length), 3);
  assert.is(checkName(buf, 3, buf.length), 7, 'in place the name ends after the pointer');
  assert.is(checkName(Uint8Array.from([0xc0, 0]), 0, 2), -1, 'a pointer to itself');
  assert.is(checkName(Uint8Array.from([0xc0, 2, 0]), 0, 3), -1, 'a pointer forwards');
  assert.is(checkName(Uint8Array.from([1, 0x61, 0xc0, 0]), 0, 4), -1, 'a loop through a label');
  assert.is(checkName(Uint8Array.from([0xc0]), 0, 1), -1, 'half a pointer');
  // 4 × 64 octets through pointers: 257 > 255.
  const parts: number[] = [...label('x'.repeat(63)), 0];
  const chain = [0];
  for (let i = 0; i < 3; i++) {
    chain.push(parts.length);
    parts.push(...label('y'.repeat(63)), 0xc0, chain[i]!);
  }
  assert.is(checkName(Uint8Array.from(parts), chain[2]!, parts.length), chain[3]!, '3 × 64 + 1 octets is fine');
  assert.is(checkName(Uint8Array.from(parts), chain[3]!, parts.length), -1);
});

test('names to text escape dots, backslashes and odd bytes; names to wire are checked', () => {
  const buf = Uint8Array.from([3, 0x61, 0x2e, 0x5c, 2, 0x00, 0x41, 0]);
  assert.is(nameToText(buf, 0), 'a\\.\\\\.\\000A');
  assert.is(nameToText(Uint8Array.from([0]), 0), '.');
  assert.equal([...nameToWire('Aerie.Internal.')], [5, ...Buffer.from('aerie'), 8, ...Buffer.from('internal'), 0]);
  throwsValidation(() => nameToWire('bad..name', 'zone'), 'zone', /domain name/);
  throwsValidation(() => nameToWire('-x.example'), 'name');
  throwsValidation(() => nameToWire(`${'a'.repeat(64)}.example`), 'name');
  throwsValidation(() => nameToWire(Array(130).fill('ab').join('.')), 'name', /255/);
});

test('error replies echo ID, opcode, RD and the question as sent; OPT when the client sent one', () => {
  const { q } = parse(query('MiXeD.example', 'A', { id: 7, edns: 1232 }));
  const r = decode(emptyReply(q, RCODE.REFUSED));
  assert.is(r.id, 7);
  assert.is(r.rcode, 'REFUSED');
  assert.ok(r.flags! & packet.RECURSION_DESIRED);
  assert.is(r.questions![0]!.name, 'MiXeD.example');
  assert.is(optOf(r)?.udpPayloadSize, 1232);

  const noRd = parse(query('x.example', 'A', { rd: false })).q;
  const r2 = decode(emptyReply(noRd, RCODE.SERVFAIL));
  assert.is(r2.flags! & packet.RECURSION_DESIRED, 0);
  assert.is(optOf(r2), undefined);

  // BADVERS is 16: 0 in the header, 1 in the OPT's upper rcode bits (RFC 6891 §6.1.3).
  const v1 = parse(query('x.example', 'A', { edns: 1232, ednsVersion: 1 })).q;
  const bad = emptyReply(v1, RCODE.BADVERS);
  assert.is(bad[3]! & 0x0f, 0);
  const opt = optOf(decode(bad))!;
  assert.is(opt.extendedRcode, 1);
  assert.is(opt.ednsVersion, 0);

  const header = parse(rawQuery([0xc0, 12])).q;
  const formerr = decode(emptyReply(header, RCODE.FORMERR));
  assert.is(formerr.id, 0xabcd);
  assert.is(formerr.questions!.length, 0, 'an unreadable question is not echoed');
});

test('synthesized answers point at the question name (0xC00C) and carry an SOA when asked', () => {
  const { q } = parse(query('Ads.Example', 'A', { edns: 4096, dnssecOk: true }));
  q.limit = 4096;
  const zero: OwnRecord[] = [{ type: TYPE.A, rdata: new Uint8Array(4) }];
  const soaBytes = nameToWire('ns.aerie.internal');
  const fakeSoa = new Uint8Array([...soaBytes, ...nameToWire('hostmaster.aerie.internal'), ...new Array(20).fill(0)]);
  fakeSoa[fakeSoa.length - 1] = 10;
  const reply = synthReply(q, RCODE.NOERROR, true, zero, 10, fakeSoa, 12, 10);
  const answerAt = q.end;
  assert.equal([reply[answerAt], reply[answerAt + 1]], [0xc0, 0x0c]);
  const d = decode(reply);
  assert.is(d.answers![0]!.name, 'Ads.Example');
  assert.is((d.answers![0] as packet.StringAnswer).data, '0.0.0.0');
  assert.is(d.answers![0]!.ttl, 10);
  assert.ok(d.flags! & packet.AUTHORITATIVE_ANSWER);
  assert.is(d.authorities![0]!.type, 'SOA');
  assert.is((d.authorities![0] as packet.SoaAnswer).data.minimum, 10);
  assert.is(optOf(d)!.flags! & packet.DNSSEC_OK, packet.DNSSEC_OK, 'DO copied back');

  q.limit = 40;
  const cut = decode(synthReply(q, RCODE.NOERROR, true, zero, 10, fakeSoa, 12, 10));
  assert.ok(cut.flags! & packet.TRUNCATED_RESPONSE, 'too big: TC and no records');
  assert.is(cut.answers!.length, 0);
});

test('upstream answers: TTL positions, negative TTL, OPT dropped, other questions refused', () => {
  const { q } = parse(query('www.example.com', 'A'));
  const name = nameToWire('www.example.com');
  const sent = query('WWW.example.com', 'A');
  const a = answerTo(sent, 'NOERROR', {
    answers: [{ type: 'A', name: 'WWW.example.com', ttl: 300, data: '192.0.2.1' }],
    additionals: [{ type: 'A', name: 'x.example.com', ttl: 5, data: '192.0.2.9' }],
  });
  const s = scanAnswer(a, name, TYPE.A)!;
  assert.ok(s);
  assert.ok(s.answered);
  assert.is(s.additional, 1, 'the record before OPT is kept');
  assert.is(s.ttls.length, 4);
  assert.is(s.ttls[1], 300);
  assert.is(s.ttls[3], 5);
  assert.ok(s.keep < a.length, 'OPT cut off');
  assert.is(a.readUInt32BE(s.ttls[0]!), 300);

  const nx = answerTo(sent, 'NXDOMAIN', { authorities: [soa('example.com', 900, 300)] });
  const sn = scanAnswer(nx, name, TYPE.A)!;
  assert.not.ok(sn.answered);
  assert.is(sn.negativeTtl, 300);
  assert.is(sn.rcode, RCODE.NXDOMAIN);

  assert.is(scanAnswer(a, nameToWire('www.example.org'), TYPE.A), null, 'another name');
  assert.is(scanAnswer(a, name, TYPE.AAAA), null, 'another type');
  assert.is(scanAnswer(a.subarray(0, a.length - 20), name, TYPE.A), null, 'cut short');
  assert.is(q.qtype, TYPE.A);

  // Hand-made answers whose CNAME target loops: through a label, or a pointer to itself.
  const withCname = (rdata: (rdStart: number) => number[]) => {
    const head = [...sent.subarray(0, sent.length)];
    head[2] = 0x81;
    head[3] = 0x80;
    head[7] = 1; // ANCOUNT
    const rdStart = head.length + 12;
    const rd = rdata(rdStart);
    return Uint8Array.from([...head, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, rd.length, ...rd]);
  };
  const fine = withCname(() => [1, 0x61, 0xc0, 12]);
  assert.ok(scanAnswer(fine, name, TYPE.A), 'a.www.example.com is a fine target');
  assert.is(scanAnswer(withCname((at) => [1, 0x61, 0xc0, at]), name, TYPE.A), null);
  assert.is(scanAnswer(withCname((at) => [0xc0, at]), name, TYPE.A), null);
});

test.run();
