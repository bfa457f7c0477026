// defineStruct: the field table's types reach decode and encode (checked by
// the type-check of this file: the @ts-expect-error lines must stay errors),
// and the runtime encodes and decodes each kind in both byte orders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineStruct } from '../../src/util/struct.ts';

const T = defineStruct(24, [
  ['a_u8', 0, 'u8'],
  ['a_u16', 2, 'u16'],
  ['a_i16', 4, 'i16'],
  ['a_u32', 8, 'u32'],
  ['a_u64', 12, 'u64'],
  ['a_bytes', 20, { bytes: 4 }],
]);

test('decode gives numbers for integer fields and Buffers for byte fields, typed', () => {
  const buf = Buffer.alloc(T.size);
  T.encode(buf, 0, { a_u8: 0xfe, a_u16: 0xbeef, a_i16: -2, a_u32: 0xdeadbeef, a_u64: 2 ** 40 + 5, a_bytes: Buffer.from('ab') });
  const d = T.decode(buf, 0);
  const n: number = d.a_u32 + d.a_u64 + d.a_i16;
  const b: Buffer = d.a_bytes;
  assert.equal(n, 0xdeadbeef + 2 ** 40 + 5 - 2);
  assert.deepEqual(b, Buffer.from([0x61, 0x62, 0, 0]));
  assert.equal(d.a_u8, 0xfe);
  assert.equal(d.a_u16, 0xbeef);
  // @ts-expect-error a field the table does not declare
  assert.equal(d.a_nope, undefined);
  // @ts-expect-error a byte field is a Buffer, not a number
  const wrong: number = d.a_bytes;
  assert.ok(Buffer.isBuffer(wrong));
  assert.equal(T.offsets.a_u64, 12);
  assert.equal(T.offsetOf('a_bytes'), 20);
});

test('encode takes a subset, leaves the rest, and refuses what the table lacks', () => {
  const buf = Buffer.alloc(T.size, 0xaa);
  T.encode(buf, 0, { a_u16: 1 });
  assert.equal(buf.readUInt16LE(2), 1);
  assert.equal(buf[0], 0xaa);
  // @ts-expect-error a field the table does not declare (and at run time an error)
  assert.throws(() => T.encode(buf, 0, { a_nope: 1 }), /no field a_nope/);
  // @ts-expect-error bytes for an integer field (and at run time not a 32-bit number)
  assert.throws(() => T.encode(buf, 0, { a_u32: Buffer.alloc(4) }), /does not fit in 32 bits/);
  // u64 alone takes a bigint, for values a number cannot hold.
  T.encode(buf, 0, { a_u64: 0xffffffffffffffffn });
  assert.equal(buf.readBigUInt64LE(12), 0xffffffffffffffffn);
  assert.throws(() => T.encode(buf, 0, { a_u32: 2 ** 32 }), /does not fit in 32 bits/);
});

test('big-endian tables read and write high bytes first', () => {
  const B = defineStruct(12, [['x', 0, 'u32'], ['y', 4, 'u64']], { bigEndian: true });
  const buf = Buffer.alloc(B.size);
  B.encode(buf, 0, { x: 0x01020304, y: 2 ** 33 + 1 });
  assert.equal(buf.toString('hex'), '01020304' + '0000000200000001');
  assert.deepEqual(B.decode(buf, 0), { x: 0x01020304, y: 2 ** 33 + 1 });
});
