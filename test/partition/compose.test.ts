import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeDisk } from '../../src/image/compose.ts';
import { type BufferExtent, type FileExtent, type Image, isFileExtent } from '../../src/image/extent-map.ts';

const buf = (offset: number, length: number, fill: number): BufferExtent => ({ offset, length, buffer: Buffer.alloc(length, fill) });

test('composeDisk shifts each part and keeps the table extents, sorted', () => {
  const file: FileExtent = { offset: 4096, length: 8192, path: Buffer.from('/src/a'), fileOffset: 100, expectSize: 9000 };
  const part: Image = { size: 1 << 20, extents: [buf(0, 1024, 1), file] };
  const mbr = buf(0, 512, 2);
  const tail = buf(4 * 1048576 - 512, 512, 3);
  const disk = composeDisk(4 << 20, [{ offset: 2 << 20, image: part }, { offset: 1 << 20, image: { size: 512, extents: [buf(0, 512, 4)] } }], [tail, mbr]);

  assert.equal(disk.size, 4 << 20);
  assert.deepEqual(disk.extents.map((e) => e.offset), [0, 1 << 20, 2 << 20, (2 << 20) + 4096, (4 << 20) - 512]);
  const moved = disk.extents[3];
  assert.ok(isFileExtent(moved));
  assert.deepEqual(moved, { ...file, offset: (2 << 20) + 4096 });
  // New objects; the part's own extent map is untouched and buffers are shared, not copied.
  assert.notEqual(moved, file);
  assert.equal(file.offset, 4096);
  assert.equal(part.extents[0].offset, 0);
  assert.equal((disk.extents[2] as BufferExtent).buffer, (part.extents[0] as BufferExtent).buffer);
});

test('composeDisk rejects overlaps between parts and with the table', () => {
  const part: Image = { size: 1024, extents: [buf(0, 1024, 1)] };
  assert.throws(() => composeDisk(1 << 20, [{ offset: 0, image: part }], [buf(0, 512, 2)]), /overlapping/);
  assert.throws(() => composeDisk(1 << 20, [{ offset: 4096, image: part }, { offset: 4608, image: part }], []), /overlapping/);
  assert.throws(() => composeDisk(4096, [{ offset: 4096 - 512, image: part }], []), /past the end/);
});
