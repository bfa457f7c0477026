// The newc codec alone: encode/decode round trip, and hostile input (bad
// magic, non-hex fields, sizes past the end, a missing trailer) refused with
// one line, never read past the buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskwrightError } from '../../src/errors.ts';
import { expectUserError } from '../errors.ts';
import { align4, decodeArchive, encodeMember, encodeTrailer, HEADER_SIZE } from '../../src/archive/cpio.ts';

const header = { c_ino: 7, c_mode: 0o100644, c_uid: 1, c_gid: 2, c_nlink: 1, c_mtime: 0xfedcba98, c_maj: 0, c_min: 0, c_rmaj: 0, c_rmin: 0 };

function archive(): Buffer {
  const data = Buffer.from('hello');
  const m = encodeMember({ ...header, c_filesize: data.length }, Buffer.from('dir/file'));
  return Buffer.concat([m, data, Buffer.alloc(align4(data.length) - data.length), encodeTrailer()]);
}

test('round trip: every field, name, data; header plus name padded to 4', () => {
  const buf = archive();
  assert.equal(buf.toString('latin1', 0, 6), '070701');
  const [m, ...rest] = decodeArchive(buf);
  assert.equal(rest.length, 0);
  assert.equal(m.name.toString(), 'dir/file');
  assert.equal(m.data.toString(), 'hello');
  assert.equal(m.c_namesize, 9);
  assert.equal(m.dataOffset, align4(HEADER_SIZE + 9));
  for (const [k, v] of Object.entries(header)) assert.equal(m[k as keyof typeof header], v, k);
});

function refuses(buf: Buffer, code: string, pattern: RegExp) {
  expectUserError(() => decodeArchive(buf, 'x.cpio'), code, pattern);
}

test('hostile input: one line naming the archive and the offset', () => {
  const good = archive();
  const bad = (at: number, text: string) => {
    const b = Buffer.from(good);
    b.write(text, at, 'latin1');
    return b;
  };
  refuses(bad(0, '070707'), 'IMAGE_CORRUPT', /^x\.cpio: cpio member at byte 0 has magic "070707"/);
  refuses(bad(6 + 8 * 6, 'zzzzzzzz'), 'IMAGE_CORRUPT', /c_filesize "zzzzzzzz"/);
  refuses(bad(6 + 8 * 6, 'FFFFFFFF'), 'IMAGE_TRUNCATED', /runs past the end/);
  refuses(bad(6 + 8 * 11, '00000000'), 'IMAGE_CORRUPT', /name size 0/);
  refuses(bad(6 + 8 * 11, '7FFFFFFF'), 'IMAGE_CORRUPT', /name size 2147483647/);
  refuses(bad(6 + 8 * 11, '00000005'), 'IMAGE_CORRUPT', /without its terminating NUL/);
  refuses(good.subarray(0, good.length - 20), 'IMAGE_TRUNCATED', /runs past the end/);
  refuses(good.subarray(0, 50), 'IMAGE_TRUNCATED', /byte 0/);
});

test('fuzz: random damage gives a DiskwrightError or a bounded result, never a crash', () => {
  const good = archive();
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(good);
    for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    const cut = b.subarray(0, Math.floor(rnd() * (b.length + 1)));
    try {
      for (const m of decodeArchive(cut)) assert.ok(m.dataOffset + m.c_filesize <= cut.length);
    } catch (err) {
      assert.ok(err instanceof DiskwrightError, String(err));
    }
  }
});
