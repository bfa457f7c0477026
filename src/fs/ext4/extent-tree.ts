// Extent trees: up to 4 extents live in i_block; more go to leaf blocks of 340
// extents, indexed from i_block (and from index blocks when one level is not
// enough). Reference: Documentation/filesystems/ext4/ifork.rst
import { defineStruct } from '../../util/struct.ts';
import { crc32c } from '../../util/crc32c.ts';
import { BLOCK_SIZE, EXTENT_MAGIC, MAX_EXTENT_LEN } from './constants.ts';

export const extentHeader = defineStruct(12, [
  ['eh_magic', 0x0, 'u16'],
  ['eh_entries', 0x2, 'u16'],
  ['eh_max', 0x4, 'u16'],
  ['eh_depth', 0x6, 'u16'],
  ['eh_generation', 0x8, 'u32'],
]);
export const extentLeaf = defineStruct(12, [
  ['ee_block', 0x0, 'u32'],
  ['ee_len', 0x4, 'u16'],
  ['ee_start_hi', 0x6, 'u16'],
  ['ee_start_lo', 0x8, 'u32'],
]);
export const extentIndex = defineStruct(12, [
  ['ei_block', 0x0, 'u32'],
  ['ei_leaf_lo', 0x4, 'u32'],
  ['ei_leaf_hi', 0x8, 'u16'],
  ['ei_unused', 0xa, 'u16'],
]);

/** One mapping from file blocks to disk blocks; length at most 32768. */
export interface Extent {
  logical: number;
  physical: number;
  length: number;
}

const IN_INODE = 4;
const PER_BLOCK = (BLOCK_SIZE - 12 - 4) / 12; // 340: header and checksum tail take the rest
const TAIL = 12 + PER_BLOCK * 12;

/** Splits block runs into extents of at most 32768 blocks. */
export function toExtents(runs: Array<{ logical: number; physical: number; length: number }>): Extent[] {
  const out: Extent[] = [];
  for (const r of runs) {
    for (let done = 0; done < r.length; done += MAX_EXTENT_LEN) {
      out.push({ logical: r.logical + done, physical: r.physical + done, length: Math.min(MAX_EXTENT_LEN, r.length - done) });
    }
  }
  return out;
}

/** How many tree blocks n extents need (0 while they fit in the inode). */
export function treeBlocksFor(n: number): number {
  let total = 0;
  let count = n;
  while (count > IN_INODE) {
    count = Math.ceil(count / PER_BLOCK);
    total += count;
  }
  return total;
}

function header(buf: Buffer, at: number, entries: number, max: number, depth: number) {
  extentHeader.encode(buf, at, { eh_magic: EXTENT_MAGIC, eh_entries: entries, eh_max: max, eh_depth: depth, eh_generation: 0 });
}

const hi16 = (n: number) => Math.floor(n / 0x100000000);

/**
 * Builds i_block and the tree blocks. `blockNrs` gives the disk block of each
 * tree block (leaves first, then each index level upwards), as many as treeBlocksFor says.
 * `iBlock` (60 zero bytes) receives the root: a caller encoding inode after inode passes one it reuses.
 */
export function buildExtentTree(extents: Extent[], blockNrs: number[], inodeCsumSeed: number, iBlock: Buffer = Buffer.alloc(60)): { iBlock: Buffer; blocks: Buffer[] } {
  const blocks: Buffer[] = [];
  let level: Array<{ logical: number; node: number }> | null = null;
  let depth = 0;
  let next = 0;
  if (extents.length <= IN_INODE) {
    header(iBlock, 0, extents.length, IN_INODE, 0);
    extents.forEach((e, i) => writeLeaf(iBlock, 12 + i * 12, e));
    return { iBlock, blocks };
  }
  // Leaves.
  level = [];
  for (let i = 0; i < extents.length; i += PER_BLOCK) {
    const chunk = extents.slice(i, i + PER_BLOCK);
    const b = Buffer.alloc(BLOCK_SIZE);
    header(b, 0, chunk.length, PER_BLOCK, 0);
    chunk.forEach((e, j) => writeLeaf(b, 12 + j * 12, e));
    seal(b, inodeCsumSeed);
    blocks.push(b);
    level.push({ logical: chunk[0].logical, node: blockNrs[next++] });
  }
  depth = 1;
  while (level.length > IN_INODE) {
    const up: Array<{ logical: number; node: number }> = [];
    for (let i = 0; i < level.length; i += PER_BLOCK) {
      const chunk = level.slice(i, i + PER_BLOCK);
      const b = Buffer.alloc(BLOCK_SIZE);
      header(b, 0, chunk.length, PER_BLOCK, depth);
      chunk.forEach((e, j) => writeIndex(b, 12 + j * 12, e.logical, e.node));
      seal(b, inodeCsumSeed);
      blocks.push(b);
      up.push({ logical: chunk[0].logical, node: blockNrs[next++] });
    }
    level = up;
    depth++;
  }
  header(iBlock, 0, level.length, IN_INODE, depth);
  level.forEach((e, j) => writeIndex(iBlock, 12 + j * 12, e.logical, e.node));
  return { iBlock, blocks };
}

function writeLeaf(b: Buffer, at: number, e: Extent) {
  extentLeaf.encode(b, at, { ee_block: e.logical, ee_len: e.length, ee_start_hi: hi16(e.physical), ee_start_lo: e.physical >>> 0 });
}

function writeIndex(b: Buffer, at: number, logical: number, node: number) {
  extentIndex.encode(b, at, { ei_block: logical, ei_leaf_lo: node >>> 0, ei_leaf_hi: hi16(node), ei_unused: 0 });
}

function seal(b: Buffer, seed: number) {
  b.writeUInt32LE(crc32c(seed, b, 0, TAIL), TAIL);
}
