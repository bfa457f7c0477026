import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { formatUuid, parseUuid, seededBytes, seededU32, seededUuid } from '../../src/util/ids.ts';

test('seededBytes is HMAC-SHA256(seed, purpose) for the first 32 bytes', () => {
  const mac = createHmac('sha256', 'build-seed').update('ext4 uuid').digest();
  assert.deepEqual(seededBytes('build-seed', 'ext4 uuid', 32), mac);
  assert.deepEqual(seededBytes('build-seed', 'ext4 uuid', 7), mac.subarray(0, 7));
  assert.equal(seededBytes('s', 'p', 0).length, 0);
});

test('seededBytes is deterministic and extends past 32 bytes consistently', () => {
  for (const len of [1, 16, 31, 32, 33, 64, 100, 1000]) {
    const a = seededBytes('seed', 'purpose', len);
    assert.equal(a.length, len);
    assert.deepEqual(a, seededBytes('seed', 'purpose', len));
  }
  // Longer outputs are prefix-extensions of shorter ones.
  const long = seededBytes('seed', 'purpose', 1000);
  assert.deepEqual(seededBytes('seed', 'purpose', 33), long.subarray(0, 33));
  assert.deepEqual(seededBytes('seed', 'purpose', 100), long.subarray(0, 100));
  // The extension blocks are not repeats of the first.
  assert.notDeepEqual(long.subarray(0, 32), long.subarray(32, 64));
  assert.notDeepEqual(long.subarray(32, 64), long.subarray(64, 96));
});

test('seededBytes rejects bad lengths', () => {
  assert.throws(() => seededBytes('s', 'p', -1), RangeError);
  assert.throws(() => seededBytes('s', 'p', 1.5), RangeError);
});

test('different purposes and different seeds give different values', () => {
  const purposes = ['ext4 uuid', 'ext4 hash seed', 'fat volume id', 'gpt disk guid', 'gpt part 1', 'gpt part 2', ''];
  const seen = new Set<string>();
  for (const p of purposes) {
    seen.add(seededBytes('seed', p, 32).toString('hex'));
    seen.add(seededBytes('other-seed', p, 32).toString('hex'));
  }
  assert.equal(seen.size, purposes.length * 2);
  assert.notEqual(seededU32('seed', 'a'), seededU32('seed', 'b'));
  assert.notDeepEqual(seededUuid('seed', 'a'), seededUuid('seed', 'b'));
  assert.notDeepEqual(seededUuid('seed1', 'a'), seededUuid('seed2', 'a'));
});

test('seededUuid is a deterministic RFC 4122 version-4 UUID', () => {
  for (let i = 0; i < 200; i++) {
    const u = seededUuid('seed', `purpose ${i}`);
    assert.equal(u.length, 16);
    assert.equal(u[6] >> 4, 4, 'version nibble');
    assert.equal(u[8] >> 6, 0b10, 'variant bits');
    assert.match(formatUuid(u), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(u, seededUuid('seed', `purpose ${i}`));
    // Every other byte comes straight from the HMAC.
    const raw = seededBytes('seed', `purpose ${i}`, 16);
    for (let k = 0; k < 16; k++) {
      if (k === 6) assert.equal(u[k] & 0x0f, raw[k] & 0x0f);
      else if (k === 8) assert.equal(u[k] & 0x3f, raw[k] & 0x3f);
      else assert.equal(u[k], raw[k]);
    }
  }
});

test('seededU32 is an unsigned 32-bit number from the HMAC', () => {
  const v = seededU32('seed', 'fat volume id');
  assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
  assert.equal(v, seededBytes('seed', 'fat volume id', 4).readUInt32BE(0));
  assert.equal(v, seededU32('seed', 'fat volume id'));
});

test('parseUuid / formatUuid round trip in RFC byte order', () => {
  const text = '01234567-89ab-cdef-0123-456789abcdef';
  const b = parseUuid(text);
  assert.ok(b);
  assert.deepEqual(b, Buffer.from('0123456789abcdef0123456789abcdef', 'hex'));
  assert.equal(formatUuid(b), text);
  // Case-insensitive in, lowercase out.
  assert.deepEqual(parseUuid('01234567-89AB-CDEF-0123-456789ABCDEF'), b);
  assert.equal(formatUuid(parseUuid('A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D')!), 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d');
  for (let i = 0; i < 50; i++) {
    const u = seededUuid('rt', String(i));
    assert.deepEqual(parseUuid(formatUuid(u)), u);
  }
  // formatUuid accepts any Uint8Array view, including offset ones.
  const backing = new Uint8Array(20);
  backing.set(b, 3);
  assert.equal(formatUuid(backing.subarray(3, 19)), text);
  assert.equal(formatUuid(new Uint8Array(16)), '00000000-0000-0000-0000-000000000000');
});

test('parseUuid rejects anything but 8-4-4-4-12 hex', () => {
  const bad = [
    '',
    '0123456789abcdef0123456789abcdef',
    '{01234567-89ab-cdef-0123-456789abcdef}',
    'urn:uuid:01234567-89ab-cdef-0123-456789abcdef',
    '01234567-89ab-cdef-0123-456789abcdeg',
    '01234567-89ab-cdef-0123-456789abcde',
    '01234567-89ab-cdef-0123-456789abcdef0',
    '0123456-789ab-cdef-0123-456789abcdef',
    '01234567_89ab_cdef_0123_456789abcdef',
    ' 01234567-89ab-cdef-0123-456789abcdef',
    '01234567-89ab-cdef-0123-456789abcdef ',
    '01234567-89ab-cdef-0123-456789abcdef\n',
    '01234567-89ab-cdef-0123-4567-89abcdef',
    '01234567-89ab-cdef-01234-56789abcdef',
    '0x234567-89ab-cdef-0123-456789abcdef',
  ];
  for (const s of bad) assert.equal(parseUuid(s), null, JSON.stringify(s));
  assert.equal(parseUuid(undefined as unknown as string), null);
});

test('formatUuid rejects wrong lengths', () => {
  assert.throws(() => formatUuid(new Uint8Array(15)), RangeError);
  assert.throws(() => formatUuid(new Uint8Array(17)), RangeError);
});
