// Block-group geometry: how many groups, where superblock backups go
// (sparse_super: groups 0, 1 and powers of 3, 5, 7), inodes per group.
import { BLOCK_SIZE, BLOCKS_PER_GROUP, DESC_SIZE } from './constants.ts';

export function hasSuper(group: number): boolean {
  if (group <= 1) return true;
  for (const p of [3, 5, 7]) {
    let n = p;
    while (n < group) n *= p;
    if (n === group) return true;
  }
  return false;
}

export interface Geometry {
  blocks: number;
  groups: number;
  gdtBlocks: number;
  inodesPerGroup: number;
  inodeSize: number;
  itableBlocks: number; // per group
  /** Blocks in group g (the last one may be short). */
  groupBlocks(g: number): number;
  /** Superblock + descriptor-table blocks at the start of group g (0 where it has no backup). */
  superBlocks(g: number): number;
}

/** Inodes per group for at least `inodes` inodes: a multiple of 8 that fills inode-table blocks. */
export function inodesPerGroupFor(inodes: number, groups: number, inodeSize: number): number {
  const perBlock = BLOCK_SIZE / inodeSize;
  const unit = Math.max(8, perBlock);
  return Math.max(unit, Math.ceil(Math.ceil(inodes / groups) / unit) * unit);
}

export function geometry(blocks: number, inodesPerGroup: number, inodeSize: number): Geometry {
  const groups = Math.ceil(blocks / BLOCKS_PER_GROUP);
  const gdtBlocks = Math.ceil((groups * DESC_SIZE) / BLOCK_SIZE);
  return {
    blocks,
    groups,
    gdtBlocks,
    inodesPerGroup,
    inodeSize,
    itableBlocks: (inodesPerGroup * inodeSize) / BLOCK_SIZE,
    groupBlocks: (g) => Math.min(BLOCKS_PER_GROUP, blocks - g * BLOCKS_PER_GROUP),
    superBlocks: (g) => (hasSuper(g) ? 1 + gdtBlocks : 0),
  };
}
