// The partition compiler on its own: placement, alignment, sizing rules and
// collisions, with empty partitions and blobs so no filesystem is planned;
// sfdisk reads the tables back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileDisk } from '../../src/disk/compile.ts';
import type { DiskPartition, DiskSpec } from '../../src/disk/spec.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { run } from '../oracle/tools.ts';

const K = 1024;
const M = 2 ** 20;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-compile-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const blob = path.join(dir, 'blob');
fs.writeFileSync(blob, Buffer.alloc(3000, 7));

const part = (key: string, more: Partial<DiskPartition> = {}): DiskPartition => ({ key, label: key, role: 'data', ...more });
const spec = (more: Partial<DiskSpec>): DiskSpec => ({ table: 'gpt', alignment: M, diskSize: 'auto', partitions: [], rawBlobs: [], seed: 'compile-test', ...more });

function fails(s: DiskSpec, pattern: RegExp) {
  assert.throws(() => compileDisk(s), (e: unknown) => e instanceof DiskwrightError && pattern.test(e.message) && !e.message.includes('\n'));
}

test('auto placement: aligned, in list order, the grow partition to the last aligned boundary; sfdisk agrees', () => {
  const c = compileDisk(spec({ alignment: 64 * K, partitions: [part('a', { size: 100 * K }), part('b', { minSize: 200 * K }), part('c', { grow: true, minSize: 64 * K })], diskSize: 4 * M, diskGuid: '11111111-2222-4333-8444-555555555555' }));
  assert.deepEqual(c.partitions.map((p) => [p.start, p.size]), [[64 * K, 100 * K], [192 * K, 256 * K], [448 * K, 4 * M - 64 * K - 448 * K]]);
  const file = path.join(dir, 'a.img');
  writeImageFile(c.disk, file);
  const pt = JSON.parse(run('sfdisk', ['--json', file]).stdout.toString()).partitiontable;
  assert.deepEqual(pt.partitions.map((p: { start: number; size: number }) => [p.start * 512, p.size * 512]), c.partitions.map((p) => [p.start, p.size]));
});

test('auto disk size: the partitions, rounded to the alignment, plus the backup GPT in whole alignments', () => {
  const c = compileDisk(spec({ partitions: [part('a', { size: 3 * M })] }));
  assert.equal(c.size, 4 * M + M);
  const mbr = compileDisk(spec({ table: 'mbr', partitions: [part('a', { size: 3 * M })], diskSignature: 1 }));
  assert.equal(mbr.size, 4 * M);
});

test('a blob is written where it says, and counts for the disk size', () => {
  const c = compileDisk(spec({ table: 'mbr', diskSignature: 1, partitions: [part('a', { start: 2 * M, size: M })], rawBlobs: [{ key: 'rawBlobs[0]', source: blob, name: 'blob', size: 3000, offset: 8 * K }] }));
  const file = path.join(dir, 'b.img');
  writeImageFile(c.disk, file);
  assert.ok(fs.readFileSync(file).subarray(8 * K, 8 * K + 3000).equals(Buffer.alloc(3000, 7)));
  assert.deepEqual(c.blobs, [{ key: 'rawBlobs[0]', source: 'blob', offset: 8 * K, size: 3000 }]);
});

test('a sparse blob: only its data runs become extents (its holes are not read), and the disk holds its bytes', () => {
  const sparse = path.join(dir, 'sparse-blob');
  const fd = fs.openSync(sparse, 'w');
  fs.ftruncateSync(fd, 64 * M);
  fs.writeSync(fd, Buffer.alloc(5000, 3), 0, 5000, 0);
  fs.writeSync(fd, Buffer.alloc(100, 4), 0, 100, 64 * M - 100);
  fs.closeSync(fd);
  const c = compileDisk(spec({ table: 'mbr', diskSignature: 1, partitions: [part('a', { start: 80 * M, size: M })], rawBlobs: [{ key: 'rawBlobs[0]', source: sparse, name: 'sparse', size: 64 * M, offset: M }] }));
  const fromBlob = c.disk.extents.filter((e) => 'path' in e && e.path.toString() === sparse);
  assert.ok(fromBlob.length >= 2 && fromBlob.reduce((n, e) => n + e.length, 0) < 2 * M, JSON.stringify(fromBlob.map((e) => [e.offset, e.length])));
  const file = path.join(dir, 'sparse.img');
  writeImageFile(c.disk, file);
  const img = fs.readFileSync(file);
  assert.ok(img.subarray(M, 65 * M).equals(fs.readFileSync(sparse)));
});

test('boot code fills LBA 0 bytes 0-439 only; a blob made in memory is written like a file blob', () => {
  const code = Buffer.alloc(512, 0xcc);
  const c = compileDisk(spec({ table: 'mbr', diskSignature: 0x12345678, bootCode: code, partitions: [part('a', { start: M, size: M })], rawBlobs: [{ key: 'bootLoader', source: '', name: 'core', content: Buffer.alloc(1024, 9), size: 1024, offset: 512 }] }));
  const file = path.join(dir, 'code.img');
  writeImageFile(c.disk, file);
  const img = fs.readFileSync(file);
  assert.ok(img.subarray(0, 440).equals(code.subarray(0, 440)));
  assert.equal(img.readUInt32LE(440), 0x12345678);
  assert.ok(img.subarray(512, 1536).equals(Buffer.alloc(1024, 9)));
  const pt = JSON.parse(run('sfdisk', ['--json', file]).stdout.toString()).partitiontable;
  assert.equal(pt.id, '0x12345678');
  assert.deepEqual(pt.partitions.map((p: { start: number }) => p.start), [2048]);
  fails(spec({ table: 'none', bootCode: code, partitions: [part('a', { grow: true, minSize: M })] }), /a disk without a partition table has no MBR to hold boot code/);
});

test('collisions name both sides: partitions, tables, blobs, the backup GPT', () => {
  fails(spec({ partitions: [part('a', { start: M, size: 2 * M }), part('b', { start: 2 * M, size: M })] }), /b \("b"\).*overlaps a \("a"\)/);
  fails(spec({ partitions: [part('a', { start: 0, size: M })] }), /a \("a"\).*overlaps the protective MBR/);
  fails(spec({ diskSize: 8 * M, partitions: [part('a', { size: M })], rawBlobs: [{ key: 'rawBlobs[0]', source: blob, name: 'blob', size: 3000, offset: 8 * M - 4 * K }] }), /rawBlobs\[0\] \(blob\).*overlaps the backup GPT/);
});

test('sizes: diskSize below the partitions (says the minimum), a partition after the grow one, bad alignment, minSize above maxSize, maxSize caps rounding', () => {
  fails(spec({ diskSize: 2 * M, partitions: [part('a', { size: 3 * M })] }), /diskSize 2 \(MiB\) is too small .* at least 5/);
  fails(spec({ partitions: [part('a', { grow: true }), part('b', { size: M })] }), /b comes after the grow partition a/);
  fails(spec({ alignment: 1000 }), /alignment 1000: give a positive multiple of 512/);
  fails(spec({ partitions: [part('a', { minSize: 3 * M, maxSize: 2 * M })] }), /a: minSize 3 MiB is above maxSize 2 MiB/);
  // Rounding up to the alignment stops at maxSize.
  assert.equal(compileDisk(spec({ partitions: [part('a', { minSize: 1536 * K, maxSize: 1536 * K })] })).partitions[0].size, 1536 * K);
});
