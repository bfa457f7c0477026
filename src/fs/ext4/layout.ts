// The size-dependent half of planning: for a candidate block count, place the
// group metadata (flex_bg: bitmaps and inode tables of 16 groups together at
// the front of their flex group, skipping superblock backups), then hand out
// blocks in inode order: journal, then per inode its xattr block, content and
// extent-tree blocks.
import { BLOCKS_PER_GROUP, LOG_GROUPS_PER_FLEX, JOURNAL_INO, MAX_EXTENT_LEN } from './constants.ts';
import { Allocator, freeRuns, type Run } from './allocator.ts';
import { type Geometry } from './geometry.ts';
import { type Extent, toExtents, treeBlocksFor } from './extent-tree.ts';
import type { Prepared } from './prepare.ts';

export interface InodeBlocks {
  extents: Extent[];
  /** Physical runs of content in logical order, with the logical block each starts at. */
  runs: Array<{ logical: number; physical: number; length: number }>;
  tree: number[];
}

export interface Layout {
  geo: Geometry;
  blockBitmap: number[];
  inodeBitmap: number[];
  inodeTable: number[];
  reserved: Run[]; // superblocks and descriptor tables
  journalBlocks: number;
  /**
   * By inode number: the first block of an inode whose blocks are one run
   * from logical block 0 with its extents all in i_block (nearly every one),
   * else 0. Eight bytes an inode instead of three arrays and an object.
   */
  start: Float64Array;
  /** Every other inode with blocks (sparse, split by metadata, or needing extent-tree blocks), the journal among them. */
  inodes: Map<number, InodeBlocks>;
  xattrBlockNr: number[];
  /** Blocks this layout needs, counting any that fall past the end. */
  used: number;
  /** Whether everything fits inside the filesystem. */
  fits: boolean;
  /** The smallest block count with this many groups whose short last group holds its backup superblock. */
  minBlocks: number;
  /** Free runs left, in address order (everything else is in use). */
  free: Run[];
}

export function layout(geo: Geometry, prep: Prepared, journalBlocks: number): Layout {
  const reserved: Run[] = [];
  for (let g = 0; g < geo.groups; g++) {
    const n = geo.superBlocks(g);
    if (n) reserved.push({ start: g * BLOCKS_PER_GROUP, length: n });
  }
  // A short last group must hold its own backup superblock and descriptors.
  const minBlocks = (geo.groups - 1) * BLOCKS_PER_GROUP + Math.max(1, geo.superBlocks(geo.groups - 1));
  let metaEnd = 0;

  const meta: Run[] = [];
  const blockBitmap: number[] = [];
  const inodeBitmap: number[] = [];
  const inodeTable: number[] = [];
  const per = 1 << LOG_GROUPS_PER_FLEX;
  let ri = 0;
  for (let f = 0; f * per < geo.groups; f++) {
    const first = f * per;
    const last = Math.min(geo.groups, first + per);
    let cursor = first * BLOCKS_PER_GROUP + geo.superBlocks(first);
    const place = (len: number): number => {
      // Skip any superblock backup the run would overlap.
      while (ri < reserved.length && reserved[ri].start + reserved[ri].length <= cursor) ri++;
      for (let k = ri; k < reserved.length && reserved[k].start < cursor + len; k++) {
        if (reserved[k].start + reserved[k].length > cursor) cursor = reserved[k].start + reserved[k].length;
      }
      const at = cursor;
      cursor += len;
      // One run per stretch, not per structure: a 16 TiB filesystem has 393216 of them.
      const prev = meta[meta.length - 1];
      if (prev && prev.start + prev.length === at) prev.length += len;
      else meta.push({ start: at, length: len });
      return at;
    };
    for (let g = first; g < last; g++) blockBitmap[g] = place(1);
    for (let g = first; g < last; g++) inodeBitmap[g] = place(1);
    for (let g = first; g < last; g++) inodeTable[g] = place(geo.itableBlocks);
    metaEnd = Math.max(metaEnd, cursor);
  }

  const fixed = [...reserved, ...meta];
  const alloc = new Allocator(freeRuns(fixed, geo.blocks), geo.blocks);
  const inodes = new Map<number, InodeBlocks>();
  const start = new Float64Array(prep.maxIno + 1);
  const place = (ino: number, logicalRuns: Array<{ logical: number; length: number }> | undefined, total: number) => {
    const phys = alloc.take(total);
    if (!logicalRuns && phys.length === 1 && treeBlocksFor(Math.ceil(total / MAX_EXTENT_LEN)) === 0) {
      start[ino] = phys[0].start;
      return;
    }
    logicalRuns ??= [{ logical: 0, length: total }];
    const runs: InodeBlocks['runs'] = [];
    let pi = 0;
    let pOff = 0;
    for (const lr of logicalRuns) {
      let left = lr.length;
      let logical = lr.logical;
      while (left > 0) {
        const p = phys[pi];
        const k = Math.min(left, p.length - pOff);
        const prev = runs[runs.length - 1];
        if (prev && prev.logical + prev.length === logical && prev.physical + prev.length === p.start + pOff) prev.length += k;
        else runs.push({ logical, physical: p.start + pOff, length: k });
        logical += k;
        left -= k;
        pOff += k;
        if (pOff === p.length) { pi++; pOff = 0; }
      }
    }
    const extents = toExtents(runs);
    const treeCount = treeBlocksFor(extents.length);
    const tree: number[] = [];
    for (const r of treeCount ? alloc.take(treeCount) : []) for (let i = 0; i < r.length; i++) tree.push(r.start + i);
    inodes.set(ino, { extents, runs, tree });
  };

  if (journalBlocks) place(JOURNAL_INO, [{ logical: 0, length: journalBlocks }], journalBlocks);
  const xattrBlockNr: number[] = [];
  for (let ino = 1; ino <= prep.maxIno; ino++) {
    if (!prep.entries[ino]) continue;
    const xb = prep.xblock[ino];
    if (xb >= 0 && xattrBlockNr[xb] === undefined) xattrBlockNr[xb] = alloc.one();
    const runs = prep.runs.get(ino);
    if (runs) place(ino, runs, prep.blocks[ino]);
    else if (prep.blocks[ino]) place(ino, undefined, prep.blocks[ino]);
  }
  let metaBlocks = 0;
  for (const r of fixed) metaBlocks += r.length;
  return {
    geo, blockBitmap, inodeBitmap, inodeTable, reserved, journalBlocks, start, inodes, xattrBlockNr,
    used: metaBlocks + alloc.used, fits: alloc.overflow === 0 && metaEnd <= geo.blocks && geo.blocks >= minBlocks,
    minBlocks, free: alloc.remaining(),
  };
}

/** Inode `ino`'s blocks, undefined for none; `blocks` is its content block count (Prepared.blocks). */
export function inodeBlocks(lay: Layout, ino: number, blocks: number): InodeBlocks | undefined {
  const physical = lay.start[ino];
  if (!physical) return lay.inodes.get(ino);
  const runs = [{ logical: 0, physical, length: blocks }];
  return { extents: toExtents(runs), runs, tree: [] };
}
