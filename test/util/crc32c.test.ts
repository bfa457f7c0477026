import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32c } from '../../src/util/crc32c.ts';

// Bit-at-a-time reference: obviously correct, slow.
function slowCrc32c(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc >>> 0;
  for (let i = start; i < end; i++) {
    c ^= data[i];
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

test('standard check value 0xE3069283', () => {
  const r = crc32c(0xffffffff, Buffer.from('123456789'));
  assert.equal(~r >>> 0, 0xe3069283);
  assert.equal(r, 0x1cf96d7c);
});

test('known vectors (RFC 3720 iSCSI)', () => {
  // 32 zero bytes, 32 0xff bytes, 0..31 ascending: inverted result per RFC 3720 B.4.
  const zeros = new Uint8Array(32);
  const ones = new Uint8Array(32).fill(0xff);
  const inc = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(~crc32c(0xffffffff, zeros) >>> 0, 0x8a9136aa);
  assert.equal(~crc32c(0xffffffff, ones) >>> 0, 0x62a8ab43);
  assert.equal(~crc32c(0xffffffff, inc) >>> 0, 0x46dd794e);
});

test('empty input returns the seed unchanged, unsigned', () => {
  assert.equal(crc32c(0xffffffff, new Uint8Array(0)), 0xffffffff);
  assert.equal(crc32c(0, new Uint8Array(0)), 0);
  assert.equal(crc32c(0x12345678, Buffer.from('abc'), 1, 1), 0x12345678);
  assert.equal(crc32c(-1, new Uint8Array(0)), 0xffffffff);
});

test('results are unsigned 32-bit', () => {
  for (let n = 0; n < 200; n++) {
    const r = crc32c(0xffffffff, randomBytes(n));
    assert.ok(Number.isInteger(r) && r >= 0 && r <= 0xffffffff);
  }
});

test('incremental: two chunks equal one pass', () => {
  const buf = randomBytes(5000);
  const whole = crc32c(0xffffffff, buf);
  for (const cut of [0, 1, 3, 15, 16, 17, 63, 64, 65, 1000, 4095, 4999, 5000]) {
    const a = crc32c(0xffffffff, buf.subarray(0, cut));
    assert.equal(crc32c(a, buf.subarray(cut)), whole, `cut at ${cut}`);
    // Same via start/end on the full buffer.
    assert.equal(crc32c(crc32c(0xffffffff, buf, 0, cut), buf, cut, buf.length), whole);
  }
});

test('start/end select a subrange', () => {
  const buf = randomBytes(1024);
  for (const [s, e] of [[0, 0], [0, 1], [5, 9], [3, 200], [1, 1023], [100, 1024], [0, 1024]]) {
    assert.equal(crc32c(0xffffffff, buf, s, e), crc32c(0xffffffff, buf.subarray(s, e)), `[${s}, ${e})`);
    assert.equal(crc32c(0x1234abcd, buf, s, e), slowCrc32c(0x1234abcd, buf, s, e), `[${s}, ${e})`);
  }
  // Default end is data.length.
  assert.equal(crc32c(7, buf, 10), crc32c(7, buf, 10, buf.length));
});

test('out-of-range subranges throw', () => {
  const buf = new Uint8Array(10);
  assert.throws(() => crc32c(0, buf, 0, 11), RangeError);
  assert.throws(() => crc32c(0, buf, 5, 4), RangeError);
  assert.throws(() => crc32c(0, buf, -1, 4), RangeError);
});

test('matches the bitwise reference on random buffers, seeds and alignments', () => {
  // One backing buffer so subarrays land on every alignment of the ArrayBuffer.
  const pool = randomBytes(70000);
  const lengths = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 1024, 4096, 4099, 65536];
  let n = 0;
  for (const len of lengths) {
    for (let off = 0; off < 8; off++) {
      const seed = n++ % 3 === 0 ? 0xffffffff : randomBytes(4).readUInt32LE(0);
      const view = pool.subarray(off, off + len);
      assert.equal(crc32c(seed, view), slowCrc32c(seed, view), `len ${len} off ${off}`);
    }
  }
  for (let k = 0; k < 200; k++) {
    const len = Math.floor(Math.random() * 3000);
    const off = Math.floor(Math.random() * 1000);
    const seed = randomBytes(4).readUInt32LE(0);
    assert.equal(crc32c(seed, pool, off, off + len), slowCrc32c(seed, pool, off, off + len));
  }
});

test('works on plain Uint8Array over a shared larger buffer and on Buffer', () => {
  const ab = new ArrayBuffer(256);
  const u8 = new Uint8Array(ab, 3, 200);
  for (let i = 0; i < u8.length; i++) u8[i] = (i * 37) & 0xff;
  const copy = Buffer.from(u8);
  assert.equal(crc32c(0xffffffff, u8), crc32c(0xffffffff, copy));
  assert.equal(crc32c(0xffffffff, u8), slowCrc32c(0xffffffff, u8));
});
