// One structure, both directions: what the writer encodes, the decoder beside
// it reads back field for field (the readers in src/read/ use these decoders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeInode, encodeInode } from '../../../src/fs/ext4/inode.ts';
import { decodeDirBlock, dirList, type DirList, encodeLeaf, withDots } from '../../../src/fs/ext4/dir-entry.ts';
import { decodeJournalSuperblock, encodeJournalSuperblock } from '../../../src/fs/ext4/journal.ts';
import { decodeXattrEntries, encodeXattrBlock, toDiskXattr, xattrName } from '../../../src/fs/ext4/xattr.ts';
import { decodeDxEntries, decodeDxRoot, encodeHtree, planHtree } from '../../../src/fs/ext4/htree.ts';
import { extKind, featureNames, hasExtMagic } from '../../../src/fs/ext4/superblock.ts';
import { BLOCK_SIZE, HASH_HALF_MD4 } from '../../../src/fs/ext4/constants.ts';

const fail = (why: string): never => {
  throw new Error(why);
};

test('inode: encodeInode then decodeInode gives the fields back, times past 2038 included', () => {
  const buf = Buffer.alloc(256);
  const block = Buffer.alloc(60, 7);
  encodeInode(buf, 0, { mode: 0o100640, uid: 70000, gid: 80000, size: 2 ** 33 + 5, links: 3, sectors: 24, flags: 0x80000, block, fileAcl: 2 ** 32 + 9, timeSec: 2 ** 31 + 100, timeNsec: 123456789 }, 12, 0, 256);
  const n = decodeInode(12, buf, 4096, true);
  assert.equal(n.type, 'file');
  assert.equal(n.mode, 0o100640);
  assert.deepEqual([n.uid, n.gid, n.size, n.links, n.flags, n.fileAcl], [70000, 80000, 2 ** 33 + 5, 3, 0x80000, 2 ** 32 + 9]);
  assert.equal(n.allocatedBytes, 24 * 512);
  for (const t of [n.atime, n.ctime, n.mtime, n.crtime]) assert.deepEqual(t, { sec: 2 ** 31 + 100, nsec: 123456789 });
  assert.ok(n.iBlock.equals(block));
  // A 128-byte inode has no extra fields: whole seconds, no creation time.
  const small = decodeInode(12, buf.subarray(0, 128), 4096, true);
  assert.equal(small.crtime, undefined);
  assert.equal(small.mtime.nsec, 0);
});

/** Regular files named `names` (ASCII), inodes from `ino` on. */
function files(names: string[], ino: number): DirList {
  const l = dirList(names.length);
  names.forEach((name, i) => {
    l.names[i] = name;
    l.inos[i] = ino + i;
    l.types[i] = 1;
  });
  return l;
}

test('directory block: encodeLeaf then decodeDirBlock lists the children, not the dots', () => {
  const items = withDots(12, 2, files(['a', 'bb', '..x'], 20));
  const b = encodeLeaf(items, 0, items.names.length, 0);
  const got = decodeDirBlock(b, { filetype: true, blockSize: BLOCK_SIZE, whole: true, first: true }, fail);
  assert.deepEqual(got.map((it) => [it.name.toString(), it.ino, it.fileType]), [['a', 20, 1], ['bb', 21, 1], ['..x', 22, 1]]);
  // Past block 0 a dot name is an entry like any other.
  assert.equal(decodeDirBlock(b, { filetype: true, blockSize: BLOCK_SIZE, whole: true }, fail).length, 5);
  const bad = Buffer.from(b);
  bad.writeUInt16LE(6, 4);
  assert.throws(() => decodeDirBlock(bad, { filetype: true, blockSize: BLOCK_SIZE, whole: true }, fail), /entry at 0 has rec_len 6/);
});

test('htree: the dx root and its entries read back as planned', () => {
  const p = planHtree(files(Array.from({ length: 400 }, (_, i) => `file-${i}`), 100), new Uint32Array([1, 2, 3, 4]));
  const out = Buffer.alloc(p.blocks * BLOCK_SIZE);
  encodeHtree(p, 12, 2, 0, out);
  const root = decodeDxRoot(out);
  assert.deepEqual([root.hashVersion, root.infoLength, root.levels], [HASH_HALF_MD4, 8, 0]);
  const dx = decodeDxEntries(out, root.entriesAt);
  assert.equal(dx.count, p.leafStarts.length);
  for (let k = 0; k < dx.count; k++) assert.equal(dx.block(k), 1 + k);
  for (let k = 1; k < dx.count; k++) assert.equal(dx.hash(k), p.leafHashes[k]);
});

test('xattrs: an encoded block decodes to the same names and values', () => {
  const attrs = [toDiskXattr({ name: 'user.a', value: Buffer.from('1') }, '/f'), toDiskXattr({ name: 'security.selinux', value: Buffer.from('ctx\0') }, '/f')];
  const b = encodeXattrBlock(attrs, 1, 99, 0);
  const got = decodeXattrEntries(b, 32, b.length, 0, fail);
  assert.deepEqual(got.map((e) => [xattrName(e.index, e.suffix), e.stored?.toString('latin1')]).sort(), [['security.selinux', 'ctx\0'], ['user.a', '1']]);
  const huge = Buffer.from(b);
  huge.writeUInt32LE(70000, 32 + 8);
  assert.throws(() => decodeXattrEntries(huge, 32, huge.length, 0, fail), /at most 65536/);
});

test('journal superblock, feature names, ext kind and the magic check', () => {
  const uuid = Buffer.alloc(16, 0xab);
  const j = decodeJournalSuperblock(encodeJournalSuperblock(1024, uuid), fail);
  assert.deepEqual([j.blockType, j.blockSize, j.maxLen, j.first, j.sequence, j.nrUsers], [4, 4096, 1024, 1, 1, 1]);
  assert.equal(j.uuid, 'abababab-abab-abab-abab-abababababab');
  assert.throws(() => decodeJournalSuperblock(Buffer.alloc(1024), fail), /magic 0x0 is not 0xc03b3998/);
  assert.deepEqual(featureNames(0x4, 0x2c0, 0x400 | 0x80000000), ['has_journal', 'extent', '64bit', 'flex_bg', 'metadata_csum', 'FEATURE_R31']);
  assert.deepEqual([extKind(0, 0x2, 0x1), extKind(0x4, 0x2, 0x1), extKind(0x4, 0x40, 0)], ['ext2', 'ext3', 'ext4']);
  const head = Buffer.alloc(2048);
  assert.equal(hasExtMagic(head), false);
  head.writeUInt16LE(0xef53, 1080);
  assert.ok(hasExtMagic(head));
  assert.equal(hasExtMagic(head.subarray(0, 1081)), false);
});
