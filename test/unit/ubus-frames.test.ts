import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UbusError, UBUS_STATUS } from '../../gateway/ubus/error.ts';
import { decodeMessage, encodeMessage, FrameReader, MAX_FRAME, MSG } from '../../gateway/ubus/message.ts';
import { loadVectors } from './ubus-vectors.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

function throwsParse(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, UbusError);
    assert.is((e as UbusError).status, UBUS_STATUS.PARSE_ERROR);
    assert.match((e as Error).message, message);
    return;
  }
  assert.unreachable(`expected a parse error matching ${message}`);
}

test('header and attributes: big-endian, NUL-terminated strings, padded to 4 (ubusmsg.h)', () => {
  assert.is(hex(encodeMessage({ type: MSG.HELLO, seq: 0, peer: 0xa5cd97be })), '00000000a5cd97be00000004');
  assert.is(hex(encodeMessage({ type: MSG.LOOKUP, seq: 1, peer: 0 }, { objpath: 'uci' })), '00040001000000000000000c0200000875636900');
  const long = encodeMessage({ type: MSG.LOOKUP, seq: 1, peer: 0 }, { objpath: 'nosuchobject' });
  assert.is(hex(long.subarray(12, 16)), '02000011', 'raw length 17');
  assert.is(long.length, 12 + 20, 'padded to 20');
  const sub = encodeMessage({ type: MSG.STATUS, seq: 4, peer: 0xfdfbb5d9 }, { objid: 0xfdfbb5d9, subscribers: [0x63d896b1], status: 0 });
  assert.is(hex(sub), '00010004fdfbb5d90000002003000008fdfbb5d90b00000c0000000863d896b10100000800000000');
  const m = decodeMessage(sub);
  assert.equal(m.attrs, { objid: 0xfdfbb5d9, subscribers: [0x63d896b1], status: 0 });
  assert.equal(Object.keys(m.attrs), ['objid', 'subscribers', 'status'], 'wire order kept');
  assert.is(decodeMessage(encodeMessage({ type: MSG.NOTIFY, seq: 1, peer: 0 }, { objid: 5, active: true })).attrs.active, true);
});

test('the frame reader handles partial and coalesced reads', () => {
  const { frames } = loadVectors();
  const stream = frames.filter((f) => f.file.startsWith('06') && f.conn === 0 && f.dir === 's2c').map((f) => f.bytes);
  const all = Buffer.concat(stream);
  assert.equal(new FrameReader().push(all).map(hex), stream.map(hex), 'one read with every frame');
  const r = new FrameReader();
  const out: Uint8Array[] = [];
  for (let i = 0; i < all.length; i++) out.push(...r.push(all.subarray(i, i + 1)));
  assert.equal(out.map(hex), stream.map(hex), 'one byte at a time');
  assert.is(r.buffered, 0);
  // Uneven chunks that split headers and bodies alike.
  const r2 = new FrameReader();
  const out2: Uint8Array[] = [];
  for (let off = 0, n = 1; off < all.length; off += n, n = (n * 7 + 3) % 97 + 1) out2.push(...r2.push(all.subarray(off, off + n)));
  assert.equal(out2.map(hex), stream.map(hex));
  const r3 = new FrameReader();
  assert.equal(r3.push(all.subarray(0, 11)), []);
  assert.is(r3.buffered, 11, 'an incomplete header is kept');
});

test('frames are copies: a read buffer reused afterwards does not change them', () => {
  const frame = encodeMessage({ type: MSG.STATUS, seq: 7, peer: 9 }, { status: 4 });
  const pool = Buffer.alloc(frame.length + 64);
  pool.set(frame, 32);
  const [out] = new FrameReader().push(pool.subarray(32, 32 + frame.length));
  pool.fill(0xff);
  assert.is(hex(out!), hex(frame));
  assert.equal(decodeMessage(out!).attrs, { status: 4 });
});

test('frames over 1 MiB are refused, from the header alone; 1 MiB exactly is fine', () => {
  const big = new Uint8Array(12);
  new DataView(big.buffer).setUint32(8, MAX_FRAME - 8 + 1);
  throwsParse(() => new FrameReader().push(big), /over the 1 MiB ubus limit/);
  throwsParse(() => decodeMessage(big), /over the 1 MiB/);
  const data = new Uint8Array(MAX_FRAME - 12 - 4);
  const max = encodeMessage({ type: MSG.DATA, seq: 1, peer: 0 }, { data });
  assert.is(max.length, MAX_FRAME);
  const [frame] = new FrameReader().push(max);
  assert.is(decodeMessage(frame!).attrs.data!.length, data.length);
  try {
    encodeMessage({ type: MSG.DATA, seq: 1, peer: 0 }, { data: new Uint8Array(MAX_FRAME) });
    assert.unreachable('a too large message must not be built');
  } catch (e) {
    assert.is((e as UbusError).status, UBUS_STATUS.INVALID_ARGUMENT);
    assert.match((e as Error).message, /over the 1 MiB ubus limit/);
  }
});

test('malformed frames are refused with a clear error, never read past the frame', () => {
  throwsParse(() => decodeMessage(bytes('0000000000000000')), /shorter than the 12-byte header/);
  throwsParse(() => decodeMessage(bytes('000000000000000000000002')), /below its 4-byte header/);
  throwsParse(() => decodeMessage(bytes('00000000000000000000000400000000')), /header says 12 bytes, got 16/);
  throwsParse(() => decodeMessage(bytes('00000000000000000000000c')), /header says 20 bytes, got 12/);
  // An OBJPATH whose length runs into bytes after the frame: the frame ends where its header says.
  const withTail = bytes('00040001000000000000000c02000010756369000000000000000000');
  throwsParse(() => decodeMessage(withTail.subarray(0, 20)), /length 16, past the end/);
  throwsParse(() => decodeMessage(bytes('00020001000000000000000c0300000700000000')), /objid: expected 4 bytes, got 3/);
  throwsParse(() => decodeMessage(bytes('00040001000000000000000c0200000875636978')), /objpath: string is not NUL-terminated/);
  throwsParse(() => decodeMessage(bytes('000a0001000000000000000c0900000600000000')), /active: expected 1 byte, got 2/);
  throwsParse(() => decodeMessage(bytes('00010001000000000000000c0b00000800000005')), /subscribers: attribute at byte 0 has length 5, past the end/);
});

test('unknown attribute ids are skipped, as libubus does', () => {
  const m = decodeMessage(bytes('000100010000000000000014' + '1400000800000001' + '0100000800000002'));
  assert.equal(m.attrs, { status: 2 });
});

test.run();
