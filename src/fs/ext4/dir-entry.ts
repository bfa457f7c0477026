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
export const DOT = Buffer.from('.');
export const DOTDOT = Buffer.from('..');

export function recLen(nameLen: number): number {
  return (8 + nameLen + 3) & ~3;
}

/** Greedy packing: index of the first item of each block (items in their final order). */
export function packBlocks(items: DirItem[], space = LEAF_SPACE): number[] {
  const starts: number[] = [];
  let used = space;
  for (let i = 0; i < items.length; i++) {
    const r = recLen(items[i].name.length);
    if (used + r > space) {
      starts.push(i);
      used = 0;
    }
    used += r;
  }
  return starts;
}

/** Encodes one leaf block holding items[from, to) into `b` (zeroed); the last record reaches the tail. */
export function encodeLeaf(items: DirItem[], from: number, to: number, inodeCsumSeed: number, b: Buffer = Buffer.alloc(BLOCK_SIZE)): Buffer {
  let at = 0;
  for (let i = from; i < to; i++) {
    const it = items[i];
    const r = i === to - 1 ? LEAF_SPACE - at : recLen(it.name.length);
    b.writeUInt32LE(it.ino, at);
    b.writeUInt16LE(r, at + 4);
    b[at + 6] = it.name.length;
    b[at + 7] = it.fileType;
    it.name.copy(b, at + 8);
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
export function withDots(self: number, parent: number, children: DirItem[]): DirItem[] {
  return [{ name: DOT, ino: self, fileType: 2 }, { name: DOTDOT, ino: parent, fileType: 2 }, ...children];
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
