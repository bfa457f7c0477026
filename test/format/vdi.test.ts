// VDI writer and reader against qemu-img 7.2: check, compare, info, map.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import { type BufferExtent, type FileExtent, type Image, finishImage, isFileExtent } from '../../src/image/extent-map.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { VDI_HEADER, isVdi, readVdi, toVdi } from '../../src/format/vdi.ts';
import { toVhdDynamic } from '../../src/format/vhd.ts';
import { formatUuid, seededUuid } from '../../src/util/ids.ts';
import { assertOneLine, assertReadsBack, assertSame, dataBlocks, diffOffsets, info, pseudoRandom, qemu, sameFile, streamTo } from './qemu.ts';

const MiB = 1 << 20;
const SIZE = 300 * MiB + 1536;
const IDS = { seed: 'vdi-test', epoch: 1700000000 };

let dir: string;
let raw: string;
let disk: Image;

function header(file: string) {
  const b = Buffer.alloc(512);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, b, 0, 512, 0);
  fs.closeSync(fd);
  return VDI_HEADER.decode(b, 0);
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'diskwright-vdi-'));
  const src = path.join(dir, 'source.bin');
  fs.writeFileSync(src, pseudoRandom(8 * MiB, 7));
  const srcPath = Buffer.from(src);
  const buf = (offset: number, length: number, seed: number): BufferExtent => ({ offset, length, buffer: pseudoRandom(length, seed) });
  const file = (offset: number, length: number, fileOffset: number): FileExtent => ({ offset, length, path: srcPath, fileOffset, expectSize: 8 * MiB });
  disk = finishImage(SIZE, [
    buf(0, 512, 1), // block 0
    buf(1234567, 10000, 2), // unaligned, block 1
    buf(2 * MiB - 3000, 7000, 3), // across blocks 1 and 2
    file(50 * MiB + 777, 3 * MiB + 5, 12345), // blocks 50-53
    { offset: 100 * MiB, length: 3 * MiB, buffer: Buffer.alloc(3 * MiB) }, // all zero: blocks 100-102 stay free
    buf(150 * MiB + 100, 4096, 4), // block 150
    file(200 * MiB, 2 * MiB, 4 * MiB), // blocks 200-201 exactly
    buf(SIZE - 700, 700, 5), // the partial last block, 300
  ]);
  raw = path.join(dir, 'disk.raw');
  writeImageFile(disk, raw);
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const EXPECTED_BLOCKS = [0, 1, 2, 50, 51, 52, 53, 150, 200, 201, 300];

test('VDI: qemu-img check passes and qemu sees the same disk, the exact size, and only the blocks with data', () => {
  const out = path.join(dir, 'disk.vdi');
  writeImageFile(toVdi(disk, IDS), out);
  const c = qemu('check', '-f', 'vdi', out);
  assert.equal(c.status, 0, c.out + c.err);
  assert.match(c.out, /No errors were found/);
  const i = info(out);
  assert.equal(i.format, 'vdi');
  assert.equal(i['virtual-size'], SIZE);
  assertSame(raw, out, 'vdi');
  assert.deepEqual(dataBlocks(out, 'vdi', MiB), EXPECTED_BLOCKS);

  const h = header(out);
  assert.equal(h.szFileInfo.toString('latin1').replace(/\0+$/, ''), '<<< Oracle VM VirtualBox Disk Image >>>\n');
  assert.equal(h.u32Signature, 0xbeda107f);
  assert.equal(h.u32Version, 0x00010001);
  assert.equal(h.cbHeader, 400);
  assert.equal(h.u32Type, 1);
  assert.equal(h.offBlocks, 512);
  assert.equal(h.offData, MiB); // 512 + 301 * 4 bytes of map, rounded up to a MiB
  assert.equal(h.cbDisk, SIZE);
  assert.equal(h.cbBlock, MiB);
  assert.equal(h.cBlocks, 301);
  assert.equal(h.cBlocksAllocated, EXPECTED_BLOCKS.length);
  assert.equal(h.LegacyGeometry_cbSector, 512);
  assert.ok(h.uuidLinkage.equals(Buffer.alloc(16)));
  assert.ok(h.uuidParentModify.equals(Buffer.alloc(16)));
  // UUIDs are stored with their first three fields little-endian, as VirtualBox keeps them.
  const create = seededUuid(IDS.seed, 'vdi create uuid');
  const stored = h.uuidCreate;
  assert.equal(formatUuid(Buffer.concat([Buffer.from(stored.subarray(0, 4)).reverse(), Buffer.from(stored.subarray(4, 6)).reverse(), Buffer.from(stored.subarray(6, 8)).reverse(), stored.subarray(8)])), formatUuid(create));
  assert.ok(!h.uuidModify.equals(stored));
  // Block map: stored blocks numbered in disk order, the rest 0xFFFFFFFF.
  const map = Buffer.alloc(301 * 4);
  const fd = fs.openSync(out, 'r');
  fs.readSync(fd, map, 0, map.length, 512);
  fs.closeSync(fd);
  for (let b = 0; b < 301; b++) {
    const k = EXPECTED_BLOCKS.indexOf(b);
    assert.equal(map.readUInt32LE(b * 4), k < 0 ? 0xffffffff : k, `block ${b}`);
  }
  assert.equal(fs.statSync(out).size, h.offData + EXPECTED_BLOCKS.length * MiB);
});

test('streaming through a pipe gives the same bytes as the file', async () => {
  const file = path.join(dir, 'file.vdi');
  const piped = path.join(dir, 'pipe.vdi');
  writeImageFile(toVdi(disk, IDS), file);
  await streamTo(toVdi(disk, IDS), piped, dir);
  assert.ok(sameFile(file, piped));
});

test('same seed gives identical bytes; another seed changes only the create and modify UUIDs', () => {
  const a = path.join(dir, 'a.vdi');
  const b = path.join(dir, 'b.vdi');
  const c = path.join(dir, 'c.vdi');
  writeImageFile(toVdi(disk, IDS), a);
  writeImageFile(toVdi(disk, { ...IDS, epoch: 1 }), b); // VDI has no timestamps
  assert.ok(sameFile(a, b));
  writeImageFile(toVdi(disk, { ...IDS, seed: 'another' }), c);
  const diffs = diffOffsets(a, c);
  assert.ok(diffs.length > 0);
  const create = VDI_HEADER.offsetOf('uuidCreate');
  const modify = VDI_HEADER.offsetOf('uuidModify');
  for (const d of diffs) assert.ok((d >= create && d < create + 16) || (d >= modify && d < modify + 16), `unexpected difference at ${d}`);
  assert.ok(diffs.some((d) => d < create + 16) && diffs.some((d) => d >= modify));
});

test('planning reads no file bytes and slices extents into 1 MiB blocks', () => {
  const missing = Buffer.from(path.join(dir, 'does-not-exist'));
  const d = finishImage(4 * MiB, [
    { offset: MiB - 10, length: 20, path: missing, fileOffset: 7, expectSize: 1 << 30 },
    { offset: 3 * MiB, length: 8, buffer: Buffer.alloc(8) },
  ]);
  const out = toVdi(d, IDS);
  const files = out.extents.filter(isFileExtent);
  assert.deepEqual(files.map((f) => [f.offset, f.length, f.fileOffset]), [[MiB + MiB - 10, 10, 7], [2 * MiB, 10, 17]]);
  assert.equal(out.size, 3 * MiB);
  assert.throws(() => toVdi({ size: 2 ** 50, extents: [] }, IDS), (e: unknown) => e instanceof DiskwrightError && e.code === 'TOO_LARGE');
});

test("readVdi reads our VDIs and qemu's, dynamic and static", () => {
  const cases: [string, string[]][] = [
    ['ours.vdi', []],
    ['qemu.vdi', ['-O', 'vdi']],
    ['qemu-static.vdi', ['-O', 'vdi', '-o', 'static=on']],
  ];
  writeImageFile(toVdi(disk, IDS), path.join(dir, 'ours.vdi'));
  assertReadsBack(raw, dir, cases, (f) => readVdi(f), (img, file, name) => {
    assert.equal(img.size, SIZE, name);
    assert.equal(img.size, info(file)['virtual-size'], name);
  });
});

test('truncated, damaged and foreign files give one-line errors', () => {
  const small = finishImage(8 * MiB, [
    { offset: 0, length: 4096, buffer: pseudoRandom(4096, 11) },
    { offset: 5 * MiB, length: 4096, buffer: pseudoRandom(4096, 12) },
  ]);
  const vdi = path.join(dir, 'small.vdi');
  writeImageFile(toVdi(small, IDS), vdi);
  const bytes = fs.readFileSync(vdi);
  assert.equal(readVdi(vdi).size, 8 * MiB);
  const bad = path.join(dir, 'bad.vdi');
  const variant = (b: Buffer) => {
    fs.writeFileSync(bad, b);
    return bad;
  };
  assertOneLine(() => readVdi(variant(bytes.subarray(0, 300))), bad, /is truncated: .*less than its header; the file is damaged or still being written/);
  assertOneLine(() => readVdi(variant(bytes.subarray(0, 520))), bad, /is truncated: the block map .* runs past its end/);
  assertOneLine(() => readVdi(variant(bytes.subarray(0, bytes.length - 1))), bad, /is truncated: block 5 \(stored block 1, .*\) runs past its end/);
  const version = Buffer.from(bytes);
  version.writeUInt32LE(0x00010000, 0x44);
  assertOneLine(() => readVdi(variant(version)), bad, /not a valid VDI image: header version 1\.0 is not 1\.1/);
  const size = Buffer.from(bytes);
  size.writeUInt32LE(9 * MiB, 0x170);
  assertOneLine(() => readVdi(variant(size)), bad, /not a valid VDI image: the disk .* is larger than its 8 blocks/);
  const vhd = path.join(dir, 'small.vhd');
  writeImageFile(toVhdDynamic(small, IDS), vhd);
  assertOneLine(() => readVdi(vhd), vhd, /not a valid VDI image: no VDI signature/);
  assertOneLine(() => readVdi(raw), raw, /not a valid VDI image/);
  assertOneLine(() => readVdi(dir), dir, /is not a regular file/);
});

test('isVdi recognises the signature', () => {
  const head = (toVdi(disk, IDS).extents[0] as BufferExtent).buffer;
  assert.ok(isVdi(head));
  assert.ok(isVdi(head.subarray(0, 0x44)));
  assert.ok(!isVdi(head.subarray(0, 0x40)));
  assert.ok(!isVdi(Buffer.alloc(512)));
});
