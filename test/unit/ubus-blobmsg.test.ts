import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BLOBMSG, decodeNodes, decodeTable, encodeNodes, encodeTable, MAX_DEPTH, valueToNode } from '../../gateway/ubus/blobmsg.ts';
import { UbusError, UBUS_STATUS } from '../../gateway/ubus/error.ts';
import type { UbusTable } from '../../gateway/ubus/types.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const typeOf = (v: unknown) => valueToNode('x', v).type;

/** Asserts that fn throws a UbusError with this status whose message matches. */
function throwsUbus(fn: () => unknown, status: number, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, UbusError);
    assert.is((e as UbusError).status, status, (e as Error).message);
    assert.match((e as Error).message, message);
    return;
  }
  assert.unreachable(`expected a UbusError matching ${message}`);
}
const malformed = (h: string, message: RegExp) => throwsUbus(() => decodeTable(bytes(h)), UBUS_STATUS.PARSE_ERROR, message);

test('every type has its wire form: header, name, NUL, padding, big-endian value', () => {
  // The README's example: "f": false is 87000009 0001 6600 00 000000.
  assert.is(hex(encodeTable({ f: false })), '870000090001660000000000');
  assert.is(hex(encodeTable({ t: true })), '870000090001740001000000');
  assert.is(hex(encodeTable({ a: 1 })), '8500000c0001610000000001');
  assert.is(hex(encodeTable({ big: 4294967296 })), '840000140003626967000000' + '0000000100000000');
  assert.is(hex(encodeTable({ neg: -1 })), '8500001000036e6567000000ffffffff');
  assert.is(hex(encodeTable({ d: 2.5 })), '88000010000164004004000000000000');
  assert.is(hex(encodeTable({ n: null })), '8000000800016e00');
  assert.is(hex(encodeTable({ s: '' })), '830000090001730000000000');
  assert.is(hex(encodeTable({ x: 'ab' })), '8300000b0001780061620000');
  assert.is(hex(encodeNodes([{ type: BLOBMSG.INT16, name: 'h', value: -2 }])), '8600000a00016800fffe0000');
  // Arrays: members without names (name area 0000 00 00); tables count their members' padding.
  assert.is(hex(encodeTable({ b: [true, 'x'] })), '81000020000162008700000900000000010000008300000a0000000078000000');
  assert.is(hex(encodeTable({ c: { d: 2.5 } })), '820000180001630088000010000164004004000000000000');
  assert.is(hex(encodeTable({ e: [] })), '8100000800016500');
});

test('JS values choose their type: bool INT8, int32 range INT32, other integers INT64, the rest DOUBLE', () => {
  assert.is(typeOf(true), BLOBMSG.INT8);
  assert.is(typeOf(0), BLOBMSG.INT32);
  assert.is(typeOf(-0), BLOBMSG.INT32);
  assert.is(typeOf(2147483647), BLOBMSG.INT32);
  assert.is(typeOf(-2147483648), BLOBMSG.INT32);
  assert.is(typeOf(2147483648), BLOBMSG.INT64);
  assert.is(typeOf(-2147483649), BLOBMSG.INT64);
  assert.is(typeOf(Number.MAX_SAFE_INTEGER), BLOBMSG.INT64);
  assert.is(typeOf(2 ** 60), BLOBMSG.DOUBLE, 'an unsafe integer is not exact, so it stays a double');
  assert.is(typeOf(1.5), BLOBMSG.DOUBLE);
  assert.is(typeOf(Number.NaN), BLOBMSG.DOUBLE);
  assert.is(typeOf(5n), BLOBMSG.INT64, 'a bigint is always INT64');
  assert.is(typeOf('1'), BLOBMSG.STRING);
  assert.is(typeOf(null), BLOBMSG.UNSPEC);
  assert.is(typeOf([]), BLOBMSG.ARRAY);
  assert.is(typeOf({}), BLOBMSG.TABLE);
  throwsUbus(() => encodeTable({ x: 1n << 63n }), UBUS_STATUS.INVALID_ARGUMENT, /x: bigint outside the int64 range/);
  throwsUbus(() => encodeTable({ x: -(1n << 63n) - 1n }), UBUS_STATUS.INVALID_ARGUMENT, /int64/);
});

test('decoding: INT64 is a number when safe and a bigint beyond; INT8 is a boolean; INT16 is signed', () => {
  const t = decodeTable(encodeNodes([
    { type: BLOBMSG.INT64, name: 'small', value: 300n },
    { type: BLOBMSG.INT64, name: 'huge', value: 1n << 62n },
    { type: BLOBMSG.INT64, name: 'low', value: -(1n << 63n) },
    { type: BLOBMSG.INT8, name: 'two', value: 2 },
    { type: BLOBMSG.INT8, name: 'zero', value: 0 },
    { type: BLOBMSG.INT16, name: 'h', value: -300 },
    { type: BLOBMSG.INT32, name: 'i', value: -7 },
    { type: BLOBMSG.DOUBLE, name: 'd', value: -0.125 },
  ]));
  assert.equal(t, { small: 300, huge: 1n << 62n, low: -(1n << 63n), two: true, zero: false, h: -300, i: -7, d: -0.125 });
});

test('values survive a round trip, nested in tables and arrays', () => {
  const v: UbusTable = {
    i32: 42, neg: -7, i64: 8589934592, negi64: -8589934592, big: 1n << 62n, dbl: 2.5, t: true, f: false,
    s: 'str', empty: '', utf8: 'ünïcödé 🙂', n: null,
    arr: [1, 'two', [3], { four: 4 }, true, null, 1.5, []],
    tbl: { x: { y: [] }, z: {} },
  };
  assert.equal(decodeTable(encodeTable(v)), v);
  assert.equal(decodeTable(encodeTable({})), {});
  assert.is(encodeTable({}).length, 0);
});

test('padding: every attribute and every container ends on a 4-byte boundary', () => {
  for (let n = 1; n <= 9; n++) {
    const name = 'k'.repeat(n);
    for (let s = 0; s <= 9; s++) {
      const buf = encodeTable({ [name]: 'v'.repeat(s), tail: [name] });
      assert.is(buf.length % 4, 0);
      const raw = new DataView(buf.buffer).getUint32(0) & 0xffffff;
      assert.is(raw, 4 + ((2 + n + 1 + 3) & ~3) + s + 1, 'the length counts header, padded name and value, not the padding');
      assert.equal(decodeTable(buf), { [name]: 'v'.repeat(s), tail: [name] });
    }
  }
});

test('names: UTF-8, kept as plain keys (even __proto__), never empty in a table', () => {
  const t = decodeTable(encodeTable(JSON.parse('{"__proto__": {"polluted": true}, "ü": 1}') as UbusTable));
  assert.is(Object.getPrototypeOf(t), Object.prototype);
  assert.equal(Object.keys(t), ['__proto__', 'ü']);
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  throwsUbus(() => encodeTable({ '': 1 }), UBUS_STATUS.INVALID_ARGUMENT, /non-empty name/);
  malformed('8500000c00000000' + '00000001', /table member without a name/);
  // Array members may carry names; libubox ignores them, and so do we.
  assert.equal(decodeTable(bytes('81000014000161008500000c0001780000000001')), { a: [1] });
});

test('values that cannot be sent are refused with the path of the value', () => {
  throwsUbus(() => encodeTable({ a: { b: 'x\0y' } }), UBUS_STATUS.INVALID_ARGUMENT, /NUL/);
  throwsUbus(() => encodeTable({ a: [new Date()] } as never), UBUS_STATUS.INVALID_ARGUMENT, /a\[0\]: only plain objects/);
  throwsUbus(() => encodeTable({ f: (() => 1) } as never), UBUS_STATUS.INVALID_ARGUMENT, /f: a function cannot be sent/);
  throwsUbus(() => encodeTable([] as never), UBUS_STATUS.INVALID_ARGUMENT, /expected a table/);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  throwsUbus(() => encodeTable(cyclic as UbusTable), UBUS_STATUS.INVALID_ARGUMENT, /deeper than 64/);
  assert.equal(decodeTable(encodeTable({ a: 1, gone: undefined } as never)), { a: 1 }, 'undefined members are left out, as in JSON');
});

test('malformed input: truncated, overlong, bad padding, bad lengths — clear errors', () => {
  malformed('850000', /truncated attribute header/);
  malformed('85000002', /length 2, below its 4-byte header/);
  malformed('8500000c0001610000', /length 12, past the end of its container/);
  malformed('85000010000161000000000100000000', /data\.a: int32 value of 8 bytes, expected 4/);
  // A 9-byte int8 attribute whose padding is missing from the container.
  malformed('87000009000166000000', /padding .* runs past its container/);
  malformed('8500000600010000', /too short for a blobmsg name header/);
  malformed('8500000800106100', /name of 16 bytes, past its end/);
  malformed('8500000c0001616200000001', /name without its NUL/);
  malformed('8300000a0001730078790000', /not NUL-terminated/);
  malformed('8700000a0001660000010000', /data\.f: int8 value of 2 bytes, expected 1/);
  malformed('8800000800016400', /double value of 0 bytes, expected 8/);
  malformed('8900000800017800', /unknown blobmsg type 9/);
  malformed('0500000c0001610000000001', /not a blobmsg attribute/);
  // A table member that claims more than its table holds.
  malformed('82000010000174008500001000016100', /past the end of its container/);
});

test('nesting is bounded: 64 levels decode, 65 are refused without a stack overflow', () => {
  let ok: unknown = 1;
  for (let i = 0; i < MAX_DEPTH; i++) ok = [ok];
  assert.equal(decodeTable(encodeTable({ a: ok } as UbusTable)), { a: ok });
  // 100 levels built by hand: an array member is header, empty name (00000000), content.
  const wrap = (nameHex: string, inner: Uint8Array) => {
    const head = bytes('00000000' + nameHex);
    new DataView(head.buffer).setUint32(0, (0x81000000 | (head.length + inner.length)) >>> 0);
    return new Uint8Array([...head, ...inner]);
  };
  let inner = bytes('8500000c0000000000000001');
  for (let i = 0; i < 100; i++) inner = wrap('00000000', inner);
  const table = wrap('00016100', inner);
  throwsUbus(() => decodeTable(table), UBUS_STATUS.PARSE_ERROR, /nested deeper than 64 levels/);
  let edge = bytes('8500000c0000000000000001');
  for (let i = 0; i < 63; i++) edge = wrap('00000000', edge);
  assert.ok(decodeNodes(wrap('00016100', edge), true), '64 nested arrays decode');
  throwsUbus(() => decodeTable(wrap('00016100', wrap('00000000', edge))), UBUS_STATUS.PARSE_ERROR, /deeper/);
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = [deep];
  throwsUbus(() => encodeTable({ a: deep } as UbusTable), UBUS_STATUS.INVALID_ARGUMENT, /deeper than 64/);
});

test.run();
