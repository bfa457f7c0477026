// VHD writer and reader against qemu-img 7.2: check, compare, info, map.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import { type BufferExtent, type FileExtent, type Image, finishImage, isFileExtent } from '../../src/image/extent-map.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { VHD_FOOTER, isVhd, readVhd, toVhdDynamic, toVhdFixed, vhdGeometry } from '../../src/format/vhd.ts';
import { toVdi } from '../../src/format/vdi.ts';
import { assertOneLine, assertReadsBack, assertSame, dataBlocks, diffOffsets, info, pseudoRandom, qemu, sameFile, streamTo } from './qemu.ts';

const MiB = 1 << 20;
const SIZE = 300 * MiB + 1536; // not a whole MiB: the fixed VHD rounds it up to 301 MiB
const IDS = { seed: 'vhd-test', epoch: 1700000000 };
const VHD_EPOCH = 946684800;

let dir: string;
let raw: string;
let disk: Image;

function checkOrSkip(t: { diagnostic(s: string): void }, file: string) {
  const r = qemu('check', '-f', 'vpc', file);
  if (/does not support checks/.test(r.err)) {
    t.diagnostic('qemu-img check: the vpc driver has no check; assertion skipped');
    return;
  }
  assert.equal(r.status, 0, r.err);
}


before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'diskwright-vhd-'));
  const src = path.join(dir, 'source.bin');
  fs.writeFileSync(src, pseudoRandom(8 * MiB, 7));
  const srcPath = Buffer.from(src);
  const srcSize = 8 * MiB;
  const buf = (offset: number, length: number, seed: number): BufferExtent => ({ offset, length, buffer: pseudoRandom(length, seed) });
  const file = (offset: number, length: number, fileOffset: number): FileExtent => ({ offset, length, path: srcPath, fileOffset, expectSize: srcSize });
  disk = finishImage(SIZE, [
    buf(0, 512, 1),
    buf(1234567, 10000, 2), // unaligned, inside block 0
    buf(2 * MiB - 3000, 7000, 3), // across the block 0/1 boundary
    file(50 * MiB + 777, 3 * MiB + 5, 12345), // unaligned file range, blocks 25-26
    { offset: 100 * MiB, length: 3 * MiB, buffer: Buffer.alloc(3 * MiB) }, // all zero: blocks 50-51 stay unallocated
    buf(150 * MiB + 100, 4096, 4), // block 75
    file(200 * MiB, 2 * MiB, 4 * MiB), // exactly block 100
    buf(SIZE - 700, 700, 5), // the partial last block, 150
  ]);
  raw = path.join(dir, 'disk.raw');
  writeImageFile(disk, raw);
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const EXPECTED_BLOCKS = [0, 1, 25, 26, 75, 100, 150];

test('dynamic VHD: qemu-img sees the same disk, the exact size, and only the blocks with data', (t) => {
  const out = path.join(dir, 'dyn.vhd');
  const image = toVhdDynamic(disk, IDS);
  writeImageFile(image, out);
  const i = info(out); // probed: the footer copy at 0 identifies it
  assert.equal(i.format, 'vpc');
  assert.equal(i['virtual-size'], SIZE);
  checkOrSkip(t, out);
  assertSame(raw, out, 'vpc');
  assert.deepEqual(dataBlocks(out, 'vpc', 2 * MiB), EXPECTED_BLOCKS);
  // footer copy + dynamic header + BAT (151 entries: two sectors) + blocks + footer
  const bat = Math.ceil((151 * 4) / 512) * 512;
  assert.equal(fs.statSync(out).size, 1536 + bat + EXPECTED_BLOCKS.length * (512 + 2 * MiB) + 512);

  const head = Buffer.alloc(512);
  const fd = fs.openSync(out, 'r');
  fs.readSync(fd, head, 0, 512, 0);
  fs.closeSync(fd);
  const f = VHD_FOOTER.decode(head, 0);
  assert.equal(f.CreatorApplication.toString('latin1'), 'qem2');
  assert.equal(f.CreatorVersion, 0x00050003);
  assert.equal(f.CreatorHostOS.toString('latin1'), 'Wi2k');
  assert.equal(f.DiskType, 3);
  assert.equal(f.CurrentSize, SIZE);
  assert.equal(f.OriginalSize, SIZE);
  assert.equal(f.TimeStamp, IDS.epoch - VHD_EPOCH);
  const chs = vhdGeometry(SIZE / 512);
  assert.deepEqual([f.DiskGeometryCylinder, f.DiskGeometryHeads, f.DiskGeometrySectorsPerTrack], [chs.cylinders, chs.heads, chs.sectorsPerTrack]);
});

test('fixed VHD: the virtual size is rounded up to a whole MiB, as Azure requires', (t) => {
  const out = path.join(dir, 'fixed.vhd');
  writeImageFile(toVhdFixed(disk, IDS), out);
  const rounded = 301 * MiB;
  assert.equal(fs.statSync(out).size, rounded + 512);
  // A fixed VHD has no header, so qemu only probes it as raw: name the format.
  const i = info(out, 'vpc');
  assert.equal(i.format, 'vpc');
  assert.equal(i['virtual-size'], rounded);
  checkOrSkip(t, out);
  assertSame(raw, out, 'vpc'); // the padding past the disk reads as zero

  const tail = Buffer.alloc(512);
  const fd = fs.openSync(out, 'r');
  fs.readSync(fd, tail, 0, 512, rounded);
  fs.closeSync(fd);
  const f = VHD_FOOTER.decode(tail, 0);
  assert.equal(f.DiskType, 2);
  assert.equal(f.CurrentSize, rounded);
  assert.equal(f.OriginalSize, rounded);
  assert.equal(f.DataOffset, 2 ** 64);
  assert.equal(f.CreatorApplication.toString('latin1'), 'qem2');
});

test('the CHS geometry is the one qemu writes for the same size', () => {
  const g = path.join(dir, 'geometry.vhd');
  for (const size of ['10M', '300M', '1G', '5G', '33G', '130G', '2040G']) {
    assert.equal(qemu('create', '-q', '-f', 'vpc', g, size).status, 0);
    const head = Buffer.alloc(512);
    const fd = fs.openSync(g, 'r');
    fs.readSync(fd, head, 0, 512, 0);
    fs.closeSync(fd);
    const f = VHD_FOOTER.decode(head, 0);
    const chs = vhdGeometry(f.CurrentSize / 512);
    assert.deepEqual([chs.cylinders, chs.heads, chs.sectorsPerTrack], [f.DiskGeometryCylinder, f.DiskGeometryHeads, f.DiskGeometrySectorsPerTrack], size);
  }
});

test('streaming through a pipe gives the same bytes as the file', async () => {
  for (const [name, make] of [['dyn', toVhdDynamic], ['fixed', toVhdFixed]] as const) {
    const file = path.join(dir, `${name}-file.vhd`);
    const piped = path.join(dir, `${name}-pipe.vhd`);
    writeImageFile(make(disk, IDS), file);
    await streamTo(make(disk, IDS), piped, dir);
    assert.ok(sameFile(file, piped), name);
    fs.rmSync(piped);
    fs.rmSync(file);
  }
});

test('same seed and epoch give identical bytes; another seed changes only the unique id', () => {
  const a = path.join(dir, 'a.vhd');
  const b = path.join(dir, 'b.vhd');
  const c = path.join(dir, 'c.vhd');
  writeImageFile(toVhdDynamic(disk, IDS), a);
  writeImageFile(toVhdDynamic(disk, { ...IDS }), b);
  assert.ok(sameFile(a, b));
  writeImageFile(toVhdDynamic(disk, { ...IDS, seed: 'another' }), c);
  const end = fs.statSync(a).size - 512;
  // Checksum (64..67) and Unique Id (68..83), in the footer copy and the footer.
  const diffs = diffOffsets(a, c);
  assert.ok(diffs.length > 0);
  for (const d of diffs) {
    const rel = d >= end ? d - end : d;
    assert.ok((d < 512 || d >= end) && rel >= 64 && rel < 84, `unexpected difference at ${d}`);
  }
  assert.ok(diffs.some((d) => d >= 68 && d < 84));
  // Timestamps count from 2000-01-01 and stop at zero before it.
  const early = toVhdFixed({ size: MiB, extents: [] }, { seed: 's', epoch: 0 });
  const footer = early.extents[early.extents.length - 1] as BufferExtent;
  assert.equal(VHD_FOOTER.decode(footer.buffer, 0).TimeStamp, 0);
});

test('planning reads no file bytes and slices extents into the blocks', () => {
  const missing = Buffer.from(path.join(dir, 'does-not-exist'));
  const d = finishImage(8 * MiB, [
    { offset: 3 * MiB + 5, length: 2 * MiB, path: missing, fileOffset: 100, expectSize: 1 << 30 },
    { offset: 6 * MiB, length: 4, buffer: Buffer.from([0, 0, 0, 0]) },
  ]);
  const out = toVhdDynamic(d, IDS);
  const files = out.extents.filter(isFileExtent);
  // Block 1 (2-4 MiB) then block 2 (4-6 MiB); the zero buffer allocates nothing.
  assert.equal(files.length, 2);
  assert.equal(files[0].path, missing);
  assert.equal(files[0].fileOffset, 100);
  assert.equal(files[0].length, MiB - 5);
  assert.equal(files[1].fileOffset, 100 + MiB - 5);
  assert.equal(files[1].length, MiB + 5);
  assert.equal(files[1].offset - files[0].offset, 2 * MiB + 512 - (MiB + 5));
  assert.equal(out.size, 1536 + 512 + 2 * (512 + 2 * MiB) + 512);
  assert.throws(() => toVhdDynamic({ size: 2041 * 1024 * MiB, extents: [] }, IDS), (e: unknown) => e instanceof DiskwrightError && e.code === 'TOO_LARGE');
});

test("readVhd reads our VHDs and qemu's, fixed and dynamic", () => {
  const cases: [string, string[]][] = [
    ['ours-dyn.vhd', []],
    ['ours-fixed.vhd', []],
    ['qemu-dyn.vhd', ['-O', 'vpc']],
    ['qemu-fixed.vhd', ['-O', 'vpc', '-o', 'subformat=fixed']],
    ['qemu-force.vhd', ['-O', 'vpc', '-o', 'force_size=on']],
    ['qemu-fixed-force.vhd', ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on']],
  ];
  writeImageFile(toVhdDynamic(disk, IDS), path.join(dir, 'ours-dyn.vhd'));
  writeImageFile(toVhdFixed(disk, IDS), path.join(dir, 'ours-fixed.vhd'));
  assertReadsBack(raw, dir, cases, (f) => readVhd(f), (img, file, name) => {
    assert.equal(img.size, info(file, 'vpc')['virtual-size'], name);
    assert.ok(img.size >= SIZE, name);
  });
});

test('truncated, damaged and foreign files give one-line errors', () => {
  const small = finishImage(8 * MiB, [
    { offset: 0, length: 4096, buffer: pseudoRandom(4096, 11) },
    { offset: 5 * MiB, length: 4096, buffer: pseudoRandom(4096, 12) },
  ]);
  const dyn = path.join(dir, 'small.vhd');
  const fixed = path.join(dir, 'small-fixed.vhd');
  writeImageFile(toVhdDynamic(small, IDS), dyn);
  writeImageFile(toVhdFixed(small, IDS), fixed);
  const bytes = fs.readFileSync(dyn);
  const bad = path.join(dir, 'bad.vhd');
  const variant = (b: Buffer) => {
    fs.writeFileSync(bad, b);
    return bad;
  };
  assert.equal(readVhd(dyn).size, 8 * MiB);
  assertOneLine(() => readVhd(variant(bytes.subarray(0, 300))), bad, /is truncated: .*less than the 512-byte footer.*still being written/);
  assertOneLine(() => readVhd(variant(bytes.subarray(0, bytes.length - 512))), bad, /is truncated: the footer at its end is missing/);
  assertOneLine(() => readVhd(variant(bytes.subarray(0, bytes.length - 4096))), bad, /is truncated/);
  // Footer intact at both ends, but a block cut off: rebuild the tail.
  const cut = Buffer.concat([bytes.subarray(0, bytes.length - 512 - MiB), bytes.subarray(bytes.length - 512)]);
  assertOneLine(() => readVhd(variant(cut)), bad, /is truncated: block 2 .* runs past the end/);
  const sum = Buffer.from(bytes);
  sum[100] ^= 1;
  assertOneLine(() => readVhd(variant(sum)), bad, /not a valid VHD image: the footer at its start has a wrong checksum/);
  const hdr = Buffer.from(bytes);
  hdr[512 + 40] ^= 1;
  assertOneLine(() => readVhd(variant(hdr)), bad, /dynamic disk header has a wrong checksum/);
  const fx = fs.readFileSync(fixed);
  assert.equal(readVhd(fixed).size, 8 * MiB);
  assertOneLine(() => readVhd(variant(fx.subarray(0, fx.length - 1))), bad, /not a valid VHD image: no "conectix" footer/);
  // Other formats, and no file at all.
  const vdi = path.join(dir, 'small.vdi');
  writeImageFile(toVdi(small, IDS), vdi);
  assertOneLine(() => readVhd(vdi), vdi, /not a valid VHD image/);
  assertOneLine(() => readVhd(raw), raw, /not a valid VHD image/);
  assertOneLine(() => readVhd(path.join(dir, 'nope.vhd')), path.join(dir, 'nope.vhd'), /cannot read .*: no such file or directory; check the path$/);
});

test('isVhd recognises the footer at the start or at the end', () => {
  const dyn = toVhdDynamic(disk, IDS);
  const fixed = toVhdFixed(disk, IDS);
  const first = (i: Image) => (i.extents[0] as BufferExtent).buffer;
  const last = (i: Image) => (i.extents[i.extents.length - 1] as BufferExtent).buffer;
  assert.ok(isVhd(first(dyn), last(dyn)));
  assert.ok(isVhd(Buffer.alloc(512), last(fixed)));
  assert.ok(!isVhd(Buffer.alloc(512), Buffer.alloc(512)));
  assert.ok(!isVhd(Buffer.alloc(4), Buffer.alloc(4)));
});
