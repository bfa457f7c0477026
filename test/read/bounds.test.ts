// Readers bound their work by what the image can hold: an i_size beyond what
// the extent tree or block map can address, a directory larger than its
// blocks, a FAT size beyond its cluster chain are damage, refused in one line
// naming the image and the inode or entry, by cat, ls, inspect and extract
// alike. A legitimately sparse huge file still reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractImage } from '../../src/api/extract.ts';
import { inspectImage } from '../../src/api/inspect.ts';
import { planExt4Image, planVfatImage } from '../../src/api/mkfs.ts';
import { openVolume } from '../../src/api/volume.ts';
import { writeOutput } from '../../src/format/output.ts';
import { Ext4Reader } from '../../src/read/ext4.ts';
import { FatReader } from '../../src/read/fat.ts';
import { fileSource } from '../../src/read/source.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { BIN } from '../cli/run.ts';
import { oneLine, throwsOneLine } from './commands-fixture.ts';

const TiB = 2 ** 40;
let work: string;
let src: string;
let ext4Img: string;
let ext4Img1k: string;
let fatImg: string;

/** Where inode `ino`'s bytes lie in the image, and the inode number of `p`. */
function inodeAt(image: string, p: string): { ino: number; at: number } {
  const s = fileSource(image);
  try {
    const r = new Ext4Reader(s);
    const ino = r.lookup(p).ino;
    const g = Math.floor((ino - 1) / r.info.inodesPerGroup);
    return { ino, at: r.groupDescriptors[g].inodeTable * r.blockSize + ((ino - 1) % r.info.inodesPerGroup) * r.info.inodeSize };
  } finally {
    s.close();
  }
}

/** A copy of `image` with the i_size of `p` set to `size`; its inode number. */
function withSize(image: string, p: string, size: number | bigint, name: string): { file: string; ino: number } {
  const file = path.join(work, name);
  fs.copyFileSync(image, file);
  const { ino, at } = inodeAt(image, p);
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(4);
  const big = BigInt(size);
  b.writeUInt32LE(Number(big & 0xffffffffn));
  fs.writeSync(fd, b, 0, 4, at + 0x4);
  b.writeUInt32LE(Number(big >> 32n));
  fs.writeSync(fd, b, 0, 4, at + 0x6c);
  fs.closeSync(fd);
  return { file, ino };
}

/** What ls does with a directory: its entries. */
function listDir(file: string, dir: string): void {
  const vol = openVolume(file);
  try {
    vol.fs.readdir(dir);
  } finally {
    vol.close();
  }
}

/** cat, ls -l, inspect and extract of `file` (library and CLI) all refuse it: one line naming the image and `what`. */
function allRefuse(file: string, p: string, what: RegExp): void {
  const named = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*${what.source}.*the image is damaged(; nothing written \\(.* not created\\))?$`);
  throwsOneLine(() => inspectImage(file), 'IMAGE_CORRUPT', named);
  throwsOneLine(() => listDir(file, path.posix.dirname(p)), 'IMAGE_CORRUPT', named);
  throwsOneLine(() => extractImage(file, '/', path.join(work, `x-${path.basename(file)}`), { owners: false }), 'IMAGE_CORRUPT', named);
  const cli = new RegExp(`^diskwright: ${named.source.slice(1)}`);
  oneLine(['cat', file, p], 1, cli);
  oneLine(['ls', '-l', file, path.posix.dirname(p)], 1, cli);
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-bounds-'));
  src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
  fs.writeFileSync(path.join(src, 'dir/file'), 'hello, bounded world\n');
  fs.writeFileSync(path.join(src, 'data'), Buffer.alloc(8192, 0x5a));
  ext4Img = path.join(work, 'ext4.img');
  writeOutput(planExt4Image({ sources: [src], epoch: 1, seed: 'bounds', journal: false }).image, { format: 'raw', seed: 'b', epoch: 1 }, ext4Img);
  fatImg = path.join(work, 'fat.img');
  writeOutput(planVfatImage({ sources: [src], epoch: 1, seed: 'bounds' }).image, { format: 'raw', seed: 'b', epoch: 1 }, fatImg);
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('ext4: an i_size of 2^63-1 is refused by cat, ls, inspect and extract, naming the image and the inode', () => {
  const { file, ino } = withSize(ext4Img, '/dir/file', 2n ** 63n - 1n, 'huge.img');
  allRefuse(file, '/dir/file', new RegExp(`inode ${ino}( \\(/dir/file\\))?: i_size 9223372036854775807 is more than its extent tree can address \\(17592186044416 bytes\\)`));
});

test('ext4 with 1 KiB blocks: 16 TiB is more than 2^32 blocks of an extent tree address', () => {
  requireTools('mkfs.ext4');
  ext4Img1k = path.join(work, 'ext4-1k.img');
  fs.writeFileSync(ext4Img1k, '');
  fs.truncateSync(ext4Img1k, 4 << 20);
  run('mkfs.ext4', ['-q', '-F', '-b', '1024', '-O', '^metadata_csum', '-d', src, ext4Img1k]);
  const { file, ino } = withSize(ext4Img1k, '/dir/file', 16 * TiB, 'huge-1k.img');
  allRefuse(file, '/dir/file', new RegExp(`inode ${ino}( \\(/dir/file\\))?: i_size 17592186044416 is more than its extent tree can address \\(4398046511104 bytes\\)`));
});

test('ext4 block map (ext2): a size beyond the triple indirect blocks is refused', () => {
  requireTools('mkfs.ext2');
  const img = path.join(work, 'ext2.img');
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 4 << 20);
  run('mkfs.ext2', ['-q', '-F', '-b', '1024', '-d', src, img]);
  // 1 KiB blocks: 12 + 256 + 256^2 + 256^3 blocks, about 16 GiB.
  const { file, ino } = withSize(img, '/dir/file', 17 * 2 ** 30, 'huge-ext2.img');
  allRefuse(file, '/dir/file', new RegExp(`inode ${ino}( \\(/dir/file\\))?: i_size 18253611008 is more than its block map can address \\(\\d+ bytes\\)`));
});

test('ext4: a directory whose i_size exceeds its blocks is refused', () => {
  const { file, ino } = withSize(ext4Img, '/dir', 1 << 20, 'bigdir.img');
  const named = new RegExp(`^${file}: ext4: directory inode ${ino}: i_size 1048576 is more than its blocks hold \\(4096 bytes\\); the image is damaged(; nothing written \\(.* not created\\))?$`);
  throwsOneLine(() => listDir(file, '/dir'), 'IMAGE_CORRUPT', named);
  throwsOneLine(() => extractImage(file, '/', path.join(work, 'x-bigdir'), { owners: false }), 'IMAGE_CORRUPT', named);
  oneLine(['cat', file, '/dir/file'], 1, new RegExp(`^diskwright: ${named.source.slice(1)}`));
});

test('ext4: a legitimately sparse 1 TiB file on 4 KiB blocks still reads: ls, inspect, and cat of its head', () => {
  const { file } = withSize(ext4Img, '/data', TiB, 'sparse.img');
  const vol = openVolume(file);
  try {
    const e = vol.fs.lookup('/data');
    assert.equal(e.size, TiB);
    assert.deepEqual(vol.fs.dataRuns(e), [{ offset: 0, length: 8192 }]);
    assert.deepEqual(vol.fs.read(e, 8190, 4), Buffer.from([0x5a, 0x5a, 0, 0]));
  } finally {
    vol.close();
  }
  assert.equal(inspectImage(file).filesystems.length, 1);
  // cat streams the head; head closing the pipe ends it quietly (status 141 from cat, none from the pipeline).
  const r = spawnSync('/bin/sh', ['-c', `"$0" "$1" cat "$2" /data | head -c 12288 | od -An -tx1 | sort -u | tr -d ' \\n'`, process.execPath, BIN, file], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, '000000000000000000000000000000005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a*');
});

test('FAT: a DIR_FileSize beyond the cluster chain, or at 4 GiB - 1, is refused naming the image and the entry', () => {
  const s = fileSource(fatImg);
  let at: number;
  let cluster: number;
  try {
    const r = new FatReader(s);
    const e = r.lookup('/dir/file');
    at = e.fat!.entryOffset;
    cluster = r.info.clusterSize;
  } finally {
    s.close();
  }
  for (const size of [cluster + 1, 0xffffffff]) {
    const file = path.join(work, `fat-${size}.img`);
    fs.copyFileSync(fatImg, file);
    const fd = fs.openSync(file, 'r+');
    const b = Buffer.alloc(4);
    b.writeUInt32LE(size);
    fs.writeSync(fd, b, 0, 4, at + 28);
    fs.closeSync(fd);
    const named = new RegExp(`^${file}: FAT: /dir/file: DIR_FileSize ${size} is more than its 1 clusters hold \\(${cluster} bytes\\); the image is damaged(; nothing written \\(.* not created\\))?$`);
    throwsOneLine(() => listDir(file, '/dir'), 'IMAGE_CORRUPT', named);
    throwsOneLine(() => extractImage(file, '/', path.join(work, `x-fat-${size}`), { owners: false }), 'IMAGE_CORRUPT', named);
    oneLine(['cat', file, '/dir/file'], 1, new RegExp(`^diskwright: ${named.source.slice(1)}`));
  }
});
