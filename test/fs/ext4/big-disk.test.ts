// Terabyte filesystems: a 1 TiB ext4 is written as a sparse file whose
// allocated size is its content plus metadata; a 2 TiB one is e2fsck-clean and
// dumpe2fs agrees with the planner; past 16 TiB (block numbers >= 2^32) the
// 64bit halves of the superblock, group descriptors and extents hold the high
// bits, and block bitmaps of groups there are right bit for bit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanSources } from '../../../src/tree/scan.ts';
import { planExt4, BlockBitmaps, MAX_BLOCKS, type Ext4Stats } from '../../../src/fs/ext4/planner.ts';
import { writeImageFile } from '../../../src/format/raw.ts';
import { imageSource } from '../../../src/read/source.ts';
import { openExt4 } from '../../../src/read/ext4.ts';
import { superblock } from '../../../src/fs/ext4/superblock.ts';
import { decodeGroupDescriptor, encodeGroupDescriptor } from '../../../src/fs/ext4/group-descriptor.ts';
import { buildExtentTree, extentLeaf } from '../../../src/fs/ext4/extent-tree.ts';
import { BLOCKS_PER_GROUP } from '../../../src/fs/ext4/constants.ts';
import { DiskwrightError } from '../../../src/errors.ts';
import { dumpe2fs, e2fsck } from '../../oracle/tools.ts';

const TiB = 2 ** 40;
const MiB = 2 ** 20;
let work: string;
let src: string;
const content = Buffer.alloc(3 * MiB + 5);
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-big-'));
  src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  for (let i = 0; i < content.length; i++) content[i] = (i * 131 + (i >> 12)) & 0xff;
  fs.writeFileSync(path.join(src, 'd', 'data'), content);
  fs.writeFileSync(path.join(src, 'small'), 'hello\n');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function dumpe2fsAgrees(img: string, stats: Ext4Stats): void {
  const d = dumpe2fs(img);
  assert.equal(Number(d['Block count']), stats.blocks);
  assert.equal(Number(d['Free blocks']), stats.freeBlocks);
  assert.equal(Number(d['Inode count']), stats.inodes);
  assert.equal(Number(d['Free inodes']), stats.freeInodes);
}

const plan = (size: number) => planExt4(scanSources([src]), { size, epoch: 1_700_000_000 });

test('1 TiB raw: a sparse file holding only content and metadata', () => {
  const { image, stats } = plan(TiB);
  const out = path.join(work, 'one.img');
  const r = writeImageFile(image, out);
  assert.equal(r.apparentBytes, TiB);
  // Every extent rounded out to whole 4 KiB blocks: what may be allocated.
  let planned = 0;
  for (const e of image.extents) planned += Math.ceil((e.offset + e.length) / 4096) * 4096 - Math.floor(e.offset / 4096) * 4096;
  assert.ok(r.allocatedBytes >= content.length, `allocated ${r.allocatedBytes}`);
  assert.ok(r.allocatedBytes <= planned, `allocated ${r.allocatedBytes} > planned extents ${planned}`);
  assert.ok(r.allocatedBytes < 40 * MiB, `allocated ${r.allocatedBytes}: metadata of empty groups was written`);
  dumpe2fsAgrees(out, stats);
  fs.rmSync(out);
});

test('2 TiB raw: e2fsck -fn clean, dumpe2fs agrees', () => {
  const { image, stats } = plan(2 * TiB + 12345 * 4096);
  const out = path.join(work, 'two.img');
  writeImageFile(image, out);
  const check = e2fsck(out);
  assert.ok(check.clean, check.output);
  dumpe2fsAgrees(out, stats);
  fs.rmSync(out);
});

test('17 TiB: block numbers past 2^32 in the superblock, descriptors and bitmaps', () => {
  const size = 17 * TiB + 7 * 4096; // a short last group
  const { image, stats } = plan(size);
  assert.ok(stats.blocks > 2 ** 32);
  const img = imageSource(image);
  const sb = superblock.decode(img.read(1024, 1024), 0);
  assert.equal(sb.s_blocks_count_lo + sb.s_blocks_count_hi * 2 ** 32, stats.blocks);
  assert.equal(sb.s_free_blocks_count_lo + sb.s_free_blocks_count_hi * 2 ** 32, stats.freeBlocks);
  // The last group's descriptor: its bitmaps and inode table lie past 2^32.
  const last = stats.groups - 1;
  const gd = decodeGroupDescriptor(img.read(4096 + last * 64, 64), 0);
  assert.ok(gd.blockBitmap > 2 ** 32 && gd.inodeTable > 2 ** 32, JSON.stringify(gd));
  assert.ok(gd.blockBitmap < stats.blocks && gd.inodeTable < stats.blocks);
  // Its block bitmap: bits past the filesystem's end set, the rest as the descriptor counts.
  const bitmap = img.read(gd.blockBitmap * 4096, 4096);
  const inGroup = stats.blocks - last * BLOCKS_PER_GROUP;
  let clear = 0;
  for (let b = 0; b < BLOCKS_PER_GROUP; b++) {
    const set = (bitmap[b >> 3] >> (b & 7)) & 1;
    if (b >= inGroup) assert.equal(set, 1, `padding bit ${b}`);
    else clear += 1 - set;
  }
  assert.equal(clear, gd.freeBlocks);
  // Our reader finds the file back through it all.
  const r = openExt4(img);
  assert.equal(r.info.blocksCount, stats.blocks);
  assert.ok(r.read(r.lookup('/d/data')).equals(content));
});

test('block bitmaps of groups past 2^32 blocks: free runs across groups', () => {
  const g0 = 2 ** 32 / BLOCKS_PER_GROUP; // first group whose blocks are >= 2^32
  const base = g0 * BLOCKS_PER_GROUP;
  const free = [
    { start: base - 5, length: 10 }, // crosses into g0
    { start: base + 100, length: BLOCKS_PER_GROUP }, // crosses into g0 + 1
    { start: base + 2 * BLOCKS_PER_GROUP + 200, length: 3 },
  ];
  const bm = new BlockBitmaps(free, g0 + 3);
  assert.equal(bm.freeIn(g0 - 1), 5);
  assert.equal(bm.freeIn(g0), 5 + BLOCKS_PER_GROUP - 100);
  assert.equal(bm.freeIn(g0 + 1), 100);
  assert.equal(bm.freeIn(g0 + 2), 3);
  // Two groups' bitmaps in one call, starting mid-block: the producer's byte g * 4096 starts group g.
  const out = Buffer.alloc(8192 - 10);
  bm.fill(out, 0, g0 * 4096 + 10, out.length);
  const bit = (g: number, b: number) => {
    const at = (g - g0) * 4096 + (b >> 3) - 10;
    return (out[at] >> (b & 7)) & 1;
  };
  for (let b = 80; b < BLOCKS_PER_GROUP; b++) assert.equal(bit(g0, b), b < 100 ? 1 : 0, `g0 bit ${b}`);
  for (let b = 0; b < BLOCKS_PER_GROUP; b++) assert.equal(bit(g0 + 1, b), b < 100 ? 0 : 1, `g0+1 bit ${b}`);
});

test('group descriptors and extents keep the high halves', () => {
  const stats = {
    blockBitmap: 2 ** 40 + 3, inodeBitmap: 2 ** 32, inodeTable: 2 ** 33 - 1, freeBlocks: 32768, freeInodes: 65536 + 8,
    usedDirs: 70000, flags: 4, itableUnused: 65536, blockBitmapCsum: 0xdeadbeef, inodeBitmapCsum: 0x12345678,
  };
  const buf = Buffer.alloc(64);
  encodeGroupDescriptor(buf, 0, 200000, stats, 0x1234);
  const back: Record<string, number> = { ...decodeGroupDescriptor(buf, 0) };
  delete back.checksum;
  assert.deepEqual(back, stats);

  const physical = 2 ** 32 + 5;
  const { iBlock } = buildExtentTree([{ logical: 0, physical, length: 3 }, { logical: 3, physical: 2 ** 47 + 1, length: 1 }], [], 0);
  const a = extentLeaf.decode(iBlock, 12);
  const b = extentLeaf.decode(iBlock, 24);
  assert.equal(a.ee_start_lo + a.ee_start_hi * 2 ** 32, physical);
  assert.equal(b.ee_start_lo + b.ee_start_hi * 2 ** 32, 2 ** 47 + 1);
});

test('past the largest descriptor table one group holds: TOO_LARGE, and struct fields never wrap', () => {
  assert.throws(() => plan((MAX_BLOCKS + 1) * 4096), (e: unknown) => e instanceof DiskwrightError && e.code === 'TOO_LARGE' && /--size \d+ bytes is larger than the largest ext4/.test(e.message));
  const sb = Buffer.alloc(1024);
  assert.throws(() => superblock.encode(sb, 0, { s_blocks_count_lo: 2 ** 32 }), /does not fit in 32 bits/);
  superblock.encode(sb, 0, { s_blocks_count_lo: 2 ** 32 - 1, s_checksum: -1 });
  assert.equal(sb.readUInt32LE(4), 2 ** 32 - 1);
});
