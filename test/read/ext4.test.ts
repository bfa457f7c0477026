// The ext4 reader against filesystems other tools made (mke2fs -d with 4 KiB
// and 1 KiB blocks, ext2/ext3 block maps, inline data, e2fsck -D htrees) and
// against diskwright's own writer: figures equal dumpe2fs -h, the tree equals
// the source and debugfs's view of the same image, every used block is
// explained by the allocation map.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import { planExt4Image } from '../../src/api/mkfs.ts';
import { Ext4Reader } from '../../src/read/ext4.ts';
import { detectFilesystem, openFilesystem } from '../../src/read/index.ts';
import { bufferSource, fileSource, type FileSource, imageSource, subSource } from '../../src/read/source.ts';
import { makeFeatureFixture, pseudoRandom } from '../oracle/fixture.ts';
import { diffSnapshots, snapshotTree, snapshotViaDebugfs, type Snapshot } from '../oracle/snapshot.ts';
import { requireRoot, requireTools, run } from '../oracle/tools.ts';
import { assertAllocationExact, assertMatchesDumpe2fs, snapshotReader } from './helpers.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const UUID = '0b8f7a0e-4b7c-4d5e-9f00-1234567890ab';
const SEED = 'c0ffee00-1111-4222-8333-444455556666';

let work: string;
let src: string;
let source: Snapshot;
let img: string;
let reader: Ext4Reader;
const open: FileSource[] = [];

function openExt4(image: string): Ext4Reader {
  const s = fileSource(image);
  open.push(s);
  return new Ext4Reader(s);
}

/** mke2fs -d keeps whole seconds only, in the 32-bit i_mtime (no extra epoch bits). */
function mke2fsTime(sec: bigint): bigint {
  return BigInt.asIntN(32, sec) * 1_000_000_000n;
}

/** Differences between the source and a mke2fs -d image, with mtimes compared as mke2fs stores them. */
function diffMke2fs(a: Snapshot, b: Snapshot): string[] {
  const out = diffSnapshots(a, b, { labels: ['source', 'image'], ignore: (_k, f) => f === 'mtime' });
  for (const [k, x] of a) {
    const y = b.get(k);
    if (!y || k === '/') continue; // the root's mtime is mkfs time
    const sec = x.mtimeNs >= 0n ? x.mtimeNs / 1_000_000_000n : -((-x.mtimeNs + 999_999_999n) / 1_000_000_000n);
    if (y.mtimeNs !== mke2fsTime(sec)) out.push(`${k}: mtime ${y.mtimeNs}, mke2fs stores ${mke2fsTime(sec)}`);
  }
  return out;
}

before(() => {
  requireRoot('the feature fixture (device nodes, owners)');
  requireTools('mkfs.ext4', 'mkfs.ext3', 'mkfs.ext2', 'dumpe2fs', 'debugfs', 'e2fsck');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-read-ext4-'));
  src = path.join(work, 'src');
  makeFeatureFixture(src);
  // mke2fs 1.47.0 -d refuses 4095-byte symlinks; a 6 GiB sparse file only costs time here:
  // a fragmented file gives the depth-2 extent tree instead (1,500 extents > 4 * 340).
  fs.rmSync(path.join(src, 'links/slow-4095'));
  fs.rmSync(path.join(src, 'sparse/big-6g'));
  const fd = fs.openSync(path.join(src, 'sparse/fragmented'), 'w', 0o644);
  for (let i = 0; i < 1500; i++) fs.writeSync(fd, pseudoRandom(`frag${i}`, 4096), 0, 4096, i * 8192);
  fs.ftruncateSync(fd, 1500 * 8192 + 123);
  fs.closeSync(fd);
  source = snapshotTree(src);
  img = path.join(work, 'mke2fs.img');
  run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-I', '256', '-L', 'readers', '-U', UUID, '-E', `hash_seed=${SEED}`, '-d', src, img, '256M']);
  reader = openExt4(img);
});

after(() => {
  for (const s of open) s.close();
  fs.rmSync(work, { recursive: true, force: true });
});

test('mke2fs -d: superblock, group and journal figures equal dumpe2fs -h', () => {
  assert.equal(reader.info.kind, 'ext4');
  assert.equal(reader.info.uuid, UUID);
  assert.equal(reader.info.hashSeed, SEED);
  assert.equal(reader.info.label, 'readers');
  assertMatchesDumpe2fs(reader, img);
  assert.deepEqual(reader.summary(), {
    type: 'ext4', label: 'readers', uuid: UUID, size: 256 * MiB, blockSize: 4096, blocks: 65536,
    freeBlocks: reader.info.freeBlocks, inodes: reader.info.inodesCount, freeInodes: reader.info.freeInodes, features: reader.info.features.names,
  });
  assert.equal(detectFilesystem(fileSource(img)), 'ext4');
});

test('mke2fs -d: the walk equals debugfs\'s view of the image and the source tree', async () => {
  const mine = snapshotReader(reader);
  assert.deepEqual(diffSnapshots(await snapshotViaDebugfs(img), mine, { labels: ['debugfs', 'reader'] }), []);
  assert.deepEqual(diffMke2fs(source, mine), []);
  assert.equal(mine.size, source.size);
});

test('mke2fs -d: extent trees, holes, hard links, devices, xattrs, lookups and ranged reads', () => {
  const frag = reader.lookup('/sparse/fragmented');
  const node = frag.ext4!.inode;
  assert.equal(node.iBlock.readUInt16LE(6), 2, 'extent tree depth 2');
  const m = reader.mapping(node);
  assert.equal(m.extents.length, 1500);
  assert.ok(m.treeBlocks.length >= 6, `${m.treeBlocks.length} tree blocks`);
  assert.equal(reader.dataRuns(frag).length, 1500);
  const host = fs.readFileSync(path.join(src, 'sparse/fragmented'));
  for (const [off, len] of [[0, 10], [4090, 20], [8191, 2], [1499 * 8192 + 4000, 500], [12_000_000, 123]]) {
    assert.ok(reader.read(frag, off, len).equals(host.subarray(off, off + len)), `bytes ${off}+${len}`);
  }
  const hole = reader.lookup('/sparse/all-hole');
  assert.deepEqual(reader.dataRuns(hole), []);
  assert.ok(reader.read(hole, 512 * MiB, 4096).equals(Buffer.alloc(4096)));
  assert.deepEqual([...reader.chunks(hole)], []);
  // Streaming in small pieces gives the same bytes as one read.
  const big = reader.lookup('/files/mib5-plus-123');
  const pieces = [...reader.chunks(big, { chunkSize: 100_000 })];
  assert.ok(pieces.every((p) => p.data.length <= 100_000));
  assert.ok(Buffer.concat(pieces.map((p) => p.data)).equals(fs.readFileSync(path.join(src, 'files/mib5-plus-123'))));
  // Hard links: one inode.
  const names = ['/hard/a/orig', '/hard/b/second', '/hard/third'].map((p) => reader.lookup(p));
  assert.equal(new Set(names.map((e) => e.ino)).size, 1);
  assert.equal(names[0].nlink, 3);
  // Devices, a FIFO, a socket, symlinks of both kinds.
  const dev = reader.lookup('/special/chr-4095-1048575');
  assert.deepEqual([dev.type, dev.major, dev.minor, dev.mode], ['chr', 4095, 1048575, 0o640]);
  assert.deepEqual(['/special/fifo', '/special/socket', '/special/blk-8-1'].map((p) => reader.lookup(p).type), ['fifo', 'sock', 'blk']);
  assert.equal(reader.lookup('/links/slow-1000').target!.length, 1000);
  assert.equal(reader.lookup('/links/fast').target!.toString(), '../files/one');
  // Owners with high bits, xattrs in a block, ACLs in the xattr form.
  const owner = reader.lookup('/perms/owner-max');
  assert.deepEqual([owner.uid, owner.gid], [4294967294, 4294967294]);
  const bigx = reader.lookup('/xattrs/big');
  assert.ok(bigx.ext4!.diskXattrs.some((x) => x.name === 'user.big' && x.where === 'block' && x.value.length === 3000));
  const acl = reader.lookup('/xattrs/acl-file').xattrs.find((x) => x.name === 'system.posix_acl_access')!;
  assert.equal(acl.value.readUInt32LE(0), 2, 'VFS ACL version');
  // Paths as raw bytes, and one-line errors.
  const latin = Buffer.concat([Buffer.from('/names/'), Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0x2d, 0xe9, 0x2d, 0xff, 0xfe])]);
  assert.equal(reader.read(reader.lookup(latin)).toString(), 'name 6c6174696e312de92dfffe\n');
  assert.throws(() => reader.lookup('/files/nope'), (e: DiskwrightError) => e.code === 'PATH_NOT_FOUND' && e.message === '/files/nope: no such file or directory');
  assert.throws(() => reader.lookup('/files/one/x'), (e: DiskwrightError) => e.code === 'NOT_A_DIRECTORY' && !e.message.includes('\n'));
  assert.throws(() => reader.readdir('/files/one'), (e: DiskwrightError) => e.code === 'NOT_A_DIRECTORY');
  assert.deepEqual(reader.readdir('/hard').map((e) => e.name), ['a', 'b', 'empty-1', 'empty-2', 'fifo', 'fifo-link', 'third']);
});

test('mke2fs -d: the allocation map explains every used block exactly once', () => {
  assertAllocationExact(reader);
  const a = reader.allocation();
  assert.ok(a.some((r) => r.what === 'journal' && r.kind === 'metadata'));
  assert.ok(a.some((r) => r.what === 'extent tree' && r.path === '/sparse/fragmented'));
  assert.ok(a.some((r) => r.what === 'xattr block' && r.path === '/xattrs/big'));
  assert.ok(a.some((r) => r.what === 'inode table (group 1)'));
});

test('e2fsck -D htree directories: every name found through the index; the tree is unchanged', () => {
  const copy = path.join(work, 'htree.img');
  fs.copyFileSync(img, copy);
  const r = run('e2fsck', ['-fyD', copy], { allowFailure: true });
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  const h = openExt4(copy);
  const many = h.lookup('/many');
  assert.ok(many.ext4!.inode.flags & 0x1000, 'indexed');
  const names = fs.readdirSync(path.join(src, 'many'));
  for (const n of names) {
    const ino = h.htreeLookup(many.ext4!.inode, Buffer.from(n));
    assert.ok(ino, `${n} through the index`);
    assert.equal(h.lookup(`/many/${n}`).ino, ino);
  }
  assert.equal(h.htreeLookup(many.ext4!.inode, Buffer.from('not-there')), 0);
  assert.deepEqual(diffSnapshots(snapshotReader(reader, { content: false }), snapshotReader(h, { content: false })), []);
});

test('1 KiB blocks, ext2 and ext3 block maps (direct, indirect, double and triple indirect), 128-byte inodes', () => {
  const small = path.join(work, 'small');
  fs.mkdirSync(path.join(small, 'dir'), { recursive: true });
  fs.writeFileSync(path.join(small, 'direct'), pseudoRandom('d', 5 * KiB));
  fs.writeFileSync(path.join(small, 'single'), pseudoRandom('s', 100 * KiB));
  fs.writeFileSync(path.join(small, 'double'), pseudoRandom('dd', 2 * MiB + 5));
  const fd = fs.openSync(path.join(small, 'triple'), 'w');
  fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
  fs.writeSync(fd, pseudoRandom('t', 3000), 0, 3000, 70 * MiB);
  fs.closeSync(fd);
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(small, 'dir', `entry-${i}-${'x'.repeat(i % 40)}`), `${i}`);
  fs.symlinkSync('s'.repeat(200), path.join(small, 'slowlink'));
  fs.symlinkSync('direct', path.join(small, 'fastlink'));
  run('mknod', [path.join(small, 'null'), 'c', '1', '3']);
  const want = snapshotTree(small);
  for (const kind of ['ext2', 'ext3'] as const) {
    const image = path.join(work, `${kind}.img`);
    run(`mkfs.${kind}`, ['-q', '-F', '-b', '1024', '-I', '128', '-d', small, image, '24M']);
    const r = openExt4(image);
    assert.equal(r.info.kind, kind);
    assert.equal(r.info.firstDataBlock, 1);
    assertMatchesDumpe2fs(r, image);
    assert.deepEqual(diffMke2fs(want, snapshotReader(r)), [], kind);
    const triple = r.lookup('/triple');
    assert.deepEqual(r.dataRuns(triple), [{ offset: 0, length: 1024 }, { offset: 70 * MiB, length: 3000 }]);
    assert.ok(!(triple.ext4!.inode.flags & 0x80000), 'block-mapped');
    assert.ok(triple.ext4!.inode.iBlock.readUInt32LE(56) !== 0, 'triple indirect block');
    assert.equal(r.readdir('/dir').length, 300);
    assertAllocationExact(r);
  }
});

test('inline data: small files, symlinks and directories inside the inode', () => {
  const tiny = path.join(work, 'tiny');
  fs.mkdirSync(path.join(tiny, 'd/e'), { recursive: true });
  fs.writeFileSync(path.join(tiny, 'd/small'), 'fits in i_block\n');
  fs.writeFileSync(path.join(tiny, 'd/medium'), pseudoRandom('m', 100));
  fs.writeFileSync(path.join(tiny, 'd/big'), pseudoRandom('b', 9000));
  fs.symlinkSync('t'.repeat(80), path.join(tiny, 'link80'));
  const want = snapshotTree(tiny);
  const image = path.join(work, 'inline.img');
  run('mkfs.ext4', ['-q', '-F', '-O', 'inline_data', '-I', '256', '-d', tiny, image, '16M']);
  const r = openExt4(image);
  assert.ok(r.info.features.names.includes('inline_data'));
  assertMatchesDumpe2fs(r, image);
  assert.deepEqual(diffMke2fs(want, snapshotReader(r)), []);
  const inline = (p: string) => (r.lookup(p).flags & 0x10000000) !== 0;
  assert.deepEqual(['/d/small', '/d/medium', '/d/big', '/d', '/d/e'].map(inline), [true, true, false, true, true]);
  assert.ok(r.lookup('/d/medium').xattrs.every((x) => x.name !== 'system.data'), 'system.data is not listed');
  assertAllocationExact(r);
});

test('diskwright mkfs ext4 reads back equal to the source, nanosecond times and all', () => {
  const { image, stats } = planExt4Image({ sources: [src], label: 'ours', seed: 'read-test' });
  const r = new Ext4Reader(imageSource(image));
  assert.deepEqual(diffSnapshots(source, snapshotReader(r), { labels: ['source', 'reader'] }), []);
  const s = r.summary();
  assert.deepEqual([s.label, s.uuid, s.blocks, s.freeBlocks, s.inodes, s.freeInodes], [stats.label, stats.uuid.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'), stats.blocks, stats.freeBlocks, stats.inodes, stats.freeInodes]);
  assert.equal(r.lookup('/times/after-2106').mtimeSec, 4294979641);
  assert.equal(r.lookup('/times/int32-min').mtimeSec, -2147483648);
  assert.ok(r.lookup('/many').flags & 0x1000, 'our big directory is an htree');
  assert.ok(r.htreeLookup(r.lookup('/many').ext4!.inode, Buffer.from('e1999-a')));
  assertAllocationExact(r);
});

test('bad input: not a filesystem, truncated image — one-line errors', () => {
  const oneLine = (code: string, re: RegExp) => (e: unknown) =>
    e instanceof DiskwrightError && e.code === code && !e.message.includes('\n') && re.test(e.message);
  const junk = Buffer.alloc(MiB, 0x5a);
  assert.throws(() => new Ext4Reader(bufferSource(junk)), oneLine('FILESYSTEM_UNKNOWN', /^not an ext2\/3\/4 filesystem/));
  assert.throws(() => openFilesystem(bufferSource(junk), 'junk.img'), oneLine('FILESYSTEM_UNKNOWN', /^junk.img: no ext2\/3\/4 or FAT filesystem found$/));
  assert.equal(detectFilesystem(bufferSource(junk)), 'unknown');
  assert.equal(detectFilesystem(bufferSource(Buffer.alloc(10))), 'unknown');
  const whole = fileSource(img);
  open.push(whole);
  assert.throws(() => new Ext4Reader(subSource(whole, 0, 100 * MiB)),
    oneLine('IMAGE_TRUNCATED', /^ext4: the filesystem spans 268435456 bytes \(65536 blocks of 4096\) but the image holds only 104857600; is it truncated\?$/));
  // A superblock whose group descriptors point outside the filesystem.
  const bad = {
    size: whole.size,
    read(offset: number, length: number) {
      const b = whole.read(offset, length);
      const at = 4096 + 8 - offset; // group 0's inode table
      if (at >= 0 && at + 4 <= length) b.writeUInt32LE(0x7fffffff, at);
      return b;
    },
  };
  assert.throws(() => new Ext4Reader(bad), oneLine('IMAGE_CORRUPT', /^ext4: group 0: inode table at block 2147483647 is outside the filesystem$/));
});
