// Linear directory blocks: ext4_dir_entry_2 records packed into 4 KiB blocks,
// each ending in a 12-byte checksum tail (metadata_csum).
// Reference: Documentation/filesystems/ext4/directory.rst
import { crc32c } from '../../util/crc32c.ts';
import { BLOCK_SIZE } from './constants.ts';

export interface DirItem {
  name: Buffer;
  ino: number;
  fileType: number;
}

export const TAIL_SIZE = 12;
export const LEAF_SPACE = BLOCK_SIZE - TAIL_SIZE;

export function recLen(nameLen: number): number {
  return (8 + nameLen + 3) & ~3;
}

/**
 * A directory's records in their final order as parallel arrays: one
 * allocation per directory instead of an object and a name buffer per child.
 * Names are byte strings (latin1, one char per byte: the tree's own keys).
 */
export interface DirList {
  names: string[];
  inos: Uint32Array;
  types: Uint8Array;
}

/** A DirList of `n` records, names to be filled in. */
export function dirList(n: number): DirList {
  return { names: new Array<string>(n), inos: new Uint32Array(n), types: new Uint8Array(n) };
}

/** Greedy packing: index of the first item of each block (items in their final order). */
export function packBlocks(items: DirList, space = LEAF_SPACE): number[] {
  const starts: number[] = [];
  const { names } = items;
  let used = space;
  for (let i = 0; i < names.length; i++) {
    const r = recLen(names[i].length);
    if (used + r > space) {
      starts.push(i);
      used = 0;
    }
    used += r;
  }
  return starts;
}

/** Encodes one leaf block holding items[from, to) into `b` (zeroed); the last record reaches the tail. */
export function encodeLeaf(items: DirList, from: number, to: number, inodeCsumSeed: number, b: Buffer = Buffer.alloc(BLOCK_SIZE)): Buffer {
  const { names, inos, types } = items;
  let at = 0;
  for (let i = from; i < to; i++) {
    const name = names[i];
    const r = i === to - 1 ? LEAF_SPACE - at : recLen(name.length);
    b.writeUInt32LE(inos[i], at);
    b.writeUInt16LE(r, at + 4);
    b[at + 6] = name.length;
    b[at + 7] = types[i];
    b.write(name, at + 8, 'latin1');
    at += r;
  }
  if (from === to) b.writeUInt16LE(LEAF_SPACE, 4); // an empty leaf: one unused record spanning it
  sealLeaf(b, inodeCsumSeed);
  return b;
}

/** The checksum tail: a fake record (inode 0, rec_len 12, type 0xde) holding crc32c of the block before it. */
export function sealLeaf(b: Buffer, inodeCsumSeed: number): void {
  const t = LEAF_SPACE;
  b.writeUInt32LE(0, t);
  b.writeUInt16LE(TAIL_SIZE, t + 4);
  b[t + 6] = 0;
  b[t + 7] = 0xde;
  b.writeUInt32LE(crc32c(inodeCsumSeed, b, 0, t), t + 8);
}

/** Items of a linear directory in order: ".", "..", then the children. */
export function withDots(self: number, parent: number, children: DirList): DirList {
  const n = children.names.length;
  const out = dirList(n + 2);
  out.names[0] = '.';
  out.names[1] = '..';
  out.inos[0] = self;
  out.inos[1] = parent;
  out.types[0] = out.types[1] = 2;
  for (let i = 0; i < n; i++) out.names[i + 2] = children.names[i];
  out.inos.set(children.inos, 2);
  out.types.set(children.types, 2);
  return out;
}

// ---------------------------------------------------------------- decoding

/** rec_len as stored to bytes: blocks of 64 KiB and more keep the high bits in the low two (ext4_rec_len_from_disk). */
export function recLenFromDisk(stored: number, blockSize: number): number {
  if (blockSize < 65536) return stored;
  return stored === 65535 || stored === 0 ? 65536 : (stored & 65532) | ((stored & 3) << 16);
}

/**
 * The live entries of a directory block (or of inline data), in on-disk
 * order. `filetype`: the filesystem's filetype feature (else name_len is 16
 * bits and there is no type byte); `whole`: a full block, where a zero
 * rec_len is damage (inline data may end in one); `first`: logical block 0,
 * where '.' and '..' are the first two records and are left out; a dot name
 * anywhere else (or in inline data, which stores neither) is an entry like
 * any other, for the consumers to refuse (read/names.ts). `fail` throws with
 * the reason (its caller names the directory).
 */
export function decodeDirBlock(
  b: Buffer, opts: { filetype: boolean; blockSize: number; whole: boolean; first?: boolean }, fail: (why: string) => never,
): DirItem[] {
  const items: DirItem[] = [];
  let at = 0;
  for (let k = 0; at + 8 <= b.length; k++) {
    const ino = b.readUInt32LE(at);
    const rec = recLenFromDisk(b.readUInt16LE(at + 4), opts.blockSize);
    const nameLen = opts.filetype ? b[at + 6] : b.readUInt16LE(at + 6) & 0xff;
    if (rec < 8 || rec % 4 !== 0 || at + rec > b.length) {
      if (!opts.whole && rec === 0 && ino === 0) break; // unused tail of inline data
      fail(`entry at ${at} has rec_len ${rec}`);
    }
    if (ino !== 0 && nameLen > 0 && 8 + nameLen <= rec) {
      const name = b.subarray(at + 8, at + 8 + nameLen);
      const dot = opts.first === true && k < 2 && nameLen === k + 1 && name.every((c) => c === 0x2e);
      if (!dot) items.push({ name: Buffer.from(name), ino, fileType: opts.filetype ? b[at + 7] : 0 });
    }
    at += rec;
  }
  return items;
}
