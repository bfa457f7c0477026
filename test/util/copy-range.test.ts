// copy_file_range through the addon, and the raw emitter's use of it: long
// file extents are copied by the kernel, with the same bytes and holes as the
// read-and-write path; a source that shrinks mid-copy is still an error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { copyFileRange } from '../../src/util/copy-range.ts';
import { emit, fileSink, writeImageFile, type Sink } from '../../src/format/raw.ts';
import type { Image } from '../../src/image/extent-map.ts';
import { DiskwrightError } from '../../src/errors.ts';

const MiB = 2 ** 20;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-copy-range-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const src = path.join(dir, 'src');
const data = Buffer.alloc(5 * MiB + 123);
for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
fs.writeFileSync(src, data);

test('copyFileRange copies at both offsets and returns 0 at the end of the input', () => {
  const out = path.join(dir, 'plain');
  const a = fs.openSync(src, 'r');
  const b = fs.openSync(out, 'w+');
  try {
    const n = copyFileRange(a, 1000, b, 3 * MiB, 2 * MiB);
    assert.equal(n, 2 * MiB);
    const got = Buffer.alloc(2 * MiB);
    fs.readSync(b, got, 0, got.length, 3 * MiB);
    assert.ok(got.equals(data.subarray(1000, 1000 + 2 * MiB)));
    assert.equal(copyFileRange(a, data.length, b, 0, 4096), 0);
  } finally {
    fs.closeSync(a);
    fs.closeSync(b);
  }
});

const image = (): Image => ({
  size: 64 * MiB,
  extents: [
    { offset: 4096, length: 100, buffer: Buffer.alloc(100, 1) },
    // A long extent (copied) right after a short gap, then one past a hole, and a short one (read).
    { offset: 8192, length: 3 * MiB, path: Buffer.from(src), fileOffset: 0, expectSize: data.length },
    { offset: 40 * MiB, length: data.length - 4096, path: Buffer.from(src), fileOffset: 4096, expectSize: data.length },
    { offset: 50 * MiB, length: 5000, path: Buffer.from(src), fileOffset: 77, expectSize: data.length },
  ],
});

test('the emitter writes the same file with kernel copies as without', () => {
  const viaCopy = path.join(dir, 'copy.img');
  const viaRead = path.join(dir, 'read.img');
  let copied = 0;
  writeImageFile(image(), viaCopy, (fd) => {
    const s = fileSink(fd);
    return { ...s, copy: (from, off, len, at) => { const n = s.copy!(from, off, len, at); copied += n; return n; } };
  });
  writeImageFile(image(), viaRead, (fd) => ({ ...fileSink(fd), copy: undefined }) as Sink);
  assert.ok(copied >= 3 * MiB + data.length - 4096, `copied ${copied} bytes in the kernel`);
  assert.ok(fs.readFileSync(viaCopy).equals(fs.readFileSync(viaRead)));
  // Holes stay holes: nothing allocated between the extents.
  assert.ok(fs.statSync(viaCopy).blocks * 512 < 12 * MiB, `allocated ${fs.statSync(viaCopy).blocks * 512}`);
});

test('a source shorter than planned mid-copy is SOURCE_CHANGED, as when read', () => {
  const short = path.join(dir, 'short');
  fs.writeFileSync(short, data.subarray(0, 2 * MiB));
  const img: Image = { size: 8 * MiB, extents: [{ offset: 0, length: 4 * MiB, path: Buffer.from(short), fileOffset: 0, expectSize: 2 * MiB }] };
  const fd = fs.openSync(path.join(dir, 'short.img'), 'w');
  try {
    assert.throws(() => emit(img, fileSink(fd)), (e: unknown) => e instanceof DiskwrightError && e.code === 'SOURCE_CHANGED');
  } finally {
    fs.closeSync(fd);
  }
});
