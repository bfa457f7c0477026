// Hostile images for the tests: a normal image built by our own writer, then
// names patched in place the way an attacker would hand-edit them: an ext4
// directory record's name bytes (same length, the block's checksum tail
// sealed again so the block stays self-consistent), a VFAT long name's
// UTF-16 units (its checksum depends on the short name only), a FAT 8.3 name.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Ext4Reader } from '../../src/read/ext4.ts';
import { FatReader } from '../../src/read/fat.ts';
import { fileSource } from '../../src/read/source.ts';
import { sealLeaf, TAIL_SIZE } from '../../src/fs/ext4/dir-entry.ts';
import { inodeSeed } from '../../src/fs/ext4/inode.ts';
import { crc32c } from '../../src/util/crc32c.ts';

function writeAt(img: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(img, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Renames entries of the ext4 directory `dir` in place: each record named
 * `from` gets the name `to` (same length, any bytes). The directory must be a
 * linear one in blocks (what our writer makes for a few entries).
 */
export function renameExt4Entries(img: string, dir: string, renames: Array<[from: string, to: Buffer]>): void {
  const src = fileSource(img);
  const patched: Array<{ offset: number; block: Buffer }> = [];
  try {
    const r = new Ext4Reader(src);
    const d = r.lookup(dir);
    const node = d.ext4!.inode;
    const m = r.mapping(node);
    assert.ok(!m.inline, `${dir}: inline directory`);
    const csum = r.info.features.names.includes('metadata_csum');
    const seed = inodeSeed(crc32c(0xffffffff, r.info.raw.s_uuid as Buffer), d.ino, node.generation);
    const todo = new Map(renames.map(([f, t]) => [f, t]));
    for (const e of m.extents) {
      for (let i = 0; i < e.length; i++) {
        const block = Buffer.from(r.block(e.physical + i));
        let changed = false;
        for (let at = 0; at + 8 <= block.length; ) {
          const rec = block.readUInt16LE(at + 4);
          const name = block.subarray(at + 8, at + 8 + block[at + 6]).toString('latin1');
          const to = block.readUInt32LE(at) !== 0 ? todo.get(name) : undefined;
          if (to) {
            assert.equal(to.length, name.length, `${name}: the new name must be as long`);
            to.copy(block, at + 8);
            todo.delete(name);
            changed = true;
          }
          assert.ok(rec >= 8, 'a sane directory block');
          at += rec;
        }
        if (!changed) continue;
        if (csum) {
          assert.equal(block[block.length - TAIL_SIZE + 7], 0xde, 'a checksum tail');
          sealLeaf(block, seed);
        }
        patched.push({ offset: (e.physical + i) * r.blockSize, block });
      }
    }
    assert.deepEqual([...todo.keys()], [], `names not found in ${dir}`);
  } finally {
    src.close();
  }
  for (const p of patched) writeAt(img, p.offset, p.block);
}

/** Where the 8.3 entries of `paths` are in a (bare) FAT image, looked up before anything is patched. */
export function fatEntryOffsets(img: string, paths: string[]): number[] {
  const src = fileSource(img);
  try {
    const r = new FatReader(src);
    return paths.map((p) => r.lookup(p).fat!.entryOffset);
  } finally {
    src.close();
  }
}

/**
 * Overwrites the long name in front of the 8.3 entry at `entryOffset` with
 * `units` (UTF-16LE, any units, at most what its long entries hold), then a
 * NUL and 0xFFFF padding as a writer would.
 */
export function patchFatLongName(img: string, entryOffset: number, units: Buffer): void {
  const all = fs.readFileSync(img);
  let n = 0;
  for (let j = 1; ; j++) {
    const at = entryOffset - 32 * j;
    assert.ok(at >= 0 && all[at + 11] === 0x0f && (all[at] & 0x3f) === j, `a long entry ${j} before the entry at ${entryOffset}`);
    if (all[at] & 0x40) {
      n = j;
      break;
    }
  }
  assert.ok(units.length <= n * 26, `${units.length / 2} units do not fit ${n} long entries`);
  const full = Buffer.alloc(n * 26, 0xff);
  units.copy(full);
  if (units.length < full.length) full.writeUInt16LE(0, units.length);
  for (let j = 1; j <= n; j++) {
    const at = entryOffset - 32 * j;
    const piece = full.subarray((j - 1) * 26, j * 26);
    writeAt(img, at + 1, piece.subarray(0, 10));
    writeAt(img, at + 14, piece.subarray(10, 22));
    writeAt(img, at + 28, piece.subarray(22, 26));
  }
}

/** Overwrites the 11 bytes of the 8.3 name at `entryOffset`. */
export function patchFatShortName(img: string, entryOffset: number, raw11: string): void {
  assert.equal(raw11.length, 11);
  writeAt(img, entryOffset, Buffer.from(raw11, 'latin1'));
}

/** Sets DIR_Attr of the 8.3 entry at `entryOffset` (0x01: read-only). */
export function patchFatAttr(img: string, entryOffset: number, attr: number): void {
  writeAt(img, entryOffset + 11, Buffer.from([attr]));
}

/**
 * Every path below `root` with what it is (type, mode, size, symlink target,
 * mtime for directories and files), not following symlinks; `except` and
 * what is below it left out, and the mtime of `volatile` (the parent of the
 * directory being written, whose mtime that changes) too.
 */
export function treeState(root: string, except: string, volatile: string): Map<string, string> {
  const out = new Map<string, string>();
  const go = (host: Buffer, dir: string) => {
    for (const n of fs.readdirSync(host, { encoding: 'buffer' })) {
      const p = `${dir}/${n.toString('latin1')}`;
      const child = Buffer.concat([host, Buffer.from('/'), n]);
      if (p === except) continue;
      const st = fs.lstatSync(child);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? `symlink -> ${fs.readlinkSync(child, { encoding: 'buffer' }).toString('latin1')}` : st.isFile() ? 'file' : 'other';
      out.set(p, `${type} ${(st.mode & 0o7777).toString(8)} ${st.size} ${p === volatile || type !== 'dir' && type !== 'file' ? '' : st.mtimeMs}`);
      if (st.isDirectory()) go(child, p);
    }
  };
  go(Buffer.from(root), root);
  return out;
}
