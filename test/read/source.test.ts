// Byte sources: raw files, sub-ranges (partitions), planned images read in
// place, the block cache; and the one-line errors for what cannot be read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import { pathKey } from '../../src/read/entry.ts';
import { BlockCache, bufferSource, fileSource, imageSource, readAt, subSource } from '../../src/read/source.ts';

const oneLine = (code: string, re: RegExp) => (e: unknown) =>
  e instanceof DiskwrightError && e.code === code && !e.message.includes('\n') && re.test(e.message);

test('file, buffer and sub-range sources read the same bytes; reads past the end are IMAGE_TRUNCATED', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-read-src-'));
  try {
    const bytes = Buffer.from(Array.from({ length: 10000 }, (_, i) => (i * 31) & 0xff));
    const file = path.join(dir, 'x.img');
    fs.writeFileSync(file, bytes);
    const f = fileSource(file);
    try {
      assert.equal(f.size, 10000);
      assert.ok(f.read(123, 4000).equals(bytes.subarray(123, 4123)));
      const part = subSource(f, 1000, 5000);
      assert.ok(part.read(10, 20).equals(bytes.subarray(1010, 1030)));
      assert.throws(() => part.read(4990, 20), oneLine('IMAGE_TRUNCATED', /^partition: bytes 4990\.\.5010 lie past the end \(5000 bytes\); is the image truncated\?$/));
      assert.equal(subSource(f, 8000, 5000).size, 2000, 'a partition past the end is cut');
      assert.throws(() => readAt(f, 9999, 2, 'GPT header'), oneLine('IMAGE_TRUNCATED', /^GPT header: bytes 9999\.\.10001 lie past the end/));
      const cache = new BlockCache(bufferSource(bytes), 4096, 2);
      assert.ok(cache.bytes(4000, 5000).equals(bytes.subarray(4000, 9000)));
      assert.equal(cache.block(2).length, 4096, 'the short last block is padded');
      assert.throws(() => cache.block(3), oneLine('IMAGE_TRUNCATED', /past the end/));
    } finally {
      f.close();
    }
    assert.throws(() => fileSource(path.join(dir, 'missing.img')), oneLine('IMAGE_UNREADABLE', /^cannot open \/.*missing\.img: no such file or directory; check the path$/));
    assert.throws(() => fileSource(dir), oneLine('IMAGE_UNREADABLE', / is a directory, not an image$/));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a planned image reads in place: buffers, file ranges, producers, zeros between', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-read-img-'));
  try {
    const file = path.join(dir, 'data');
    fs.writeFileSync(file, 'abcdefghij');
    const src = imageSource({
      size: 100,
      extents: [
        { offset: 10, length: 5, buffer: Buffer.from('HELLO') },
        { offset: 20, length: 4, path: Buffer.from(file), fileOffset: 3, expectSize: 10 },
        { offset: 30, length: 3, from: 7, fill: (dst, at, from, n) => { for (let i = 0; i < n; i++) dst[at + i] = 0x30 + from + i; } },
      ],
    });
    const z = (n: number) => '\x00'.repeat(n);
    assert.equal(src.read(8, 30).toString('latin1'), `${z(2)}HELLO${z(5)}defg${z(6)}789${z(5)}`);
    assert.equal(src.read(31, 1).toString(), '8');
    assert.throws(() => src.read(95, 10), oneLine('IMAGE_TRUNCATED', /^image: bytes 95\.\.105/));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('paths: text or raw bytes, "." and ".." resolved lexically', () => {
  assert.equal(pathKey(''), '/');
  assert.equal(pathKey('/a//b/./c/../d/'), '/a/b/d');
  assert.equal(pathKey('../../x'), '/x');
  assert.equal(pathKey('/ü'), '/' + Buffer.from('ü').toString('latin1'));
  assert.equal(pathKey(Buffer.from([0x2f, 0xff])), '/\xff');
});
