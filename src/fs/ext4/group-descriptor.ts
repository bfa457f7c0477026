// 64-byte group descriptors (64bit feature). Reference: group_descr.rst
import { defineStruct } from '../../util/struct.ts';
import { crc32c, crc32cU32 } from '../../util/crc32c.ts';

export const groupDescriptor = defineStruct(64, [
  ['bg_block_bitmap_lo', 0x0, 'u32'],
  ['bg_inode_bitmap_lo', 0x4, 'u32'],
  ['bg_inode_table_lo', 0x8, 'u32'],
  ['bg_free_blocks_count_lo', 0xc, 'u16'],
  ['bg_free_inodes_count_lo', 0xe, 'u16'],
  ['bg_used_dirs_count_lo', 0x10, 'u16'],
  ['bg_flags', 0x12, 'u16'],
  ['bg_exclude_bitmap_lo', 0x14, 'u32'],
  ['bg_block_bitmap_csum_lo', 0x18, 'u16'],
  ['bg_inode_bitmap_csum_lo', 0x1a, 'u16'],
  ['bg_itable_unused_lo', 0x1c, 'u16'],
  ['bg_checksum', 0x1e, 'u16'],
  ['bg_block_bitmap_hi', 0x20, 'u32'],
  ['bg_inode_bitmap_hi', 0x24, 'u32'],
  ['bg_inode_table_hi', 0x28, 'u32'],
  ['bg_free_blocks_count_hi', 0x2c, 'u16'],
  ['bg_free_inodes_count_hi', 0x2e, 'u16'],
  ['bg_used_dirs_count_hi', 0x30, 'u16'],
  ['bg_itable_unused_hi', 0x32, 'u16'],
  ['bg_exclude_bitmap_hi', 0x34, 'u32'],
  ['bg_block_bitmap_csum_hi', 0x38, 'u16'],
  ['bg_inode_bitmap_csum_hi', 0x3a, 'u16'],
]);

export interface GroupStats {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  freeBlocks: number;
  freeInodes: number;
  usedDirs: number;
  flags: number;
  itableUnused: number;
  blockBitmapCsum: number;
  inodeBitmapCsum: number;
}

const hi = (n: number) => Math.floor(n / 0x100000000);

export function encodeGroupDescriptor(buf: Buffer, at: number, group: number, g: GroupStats, fsSeed: number): void {
  groupDescriptor.encode(buf, at, {
    bg_block_bitmap_lo: g.blockBitmap >>> 0,
    bg_block_bitmap_hi: hi(g.blockBitmap),
    bg_inode_bitmap_lo: g.inodeBitmap >>> 0,
    bg_inode_bitmap_hi: hi(g.inodeBitmap),
    bg_inode_table_lo: g.inodeTable >>> 0,
    bg_inode_table_hi: hi(g.inodeTable),
    bg_free_blocks_count_lo: g.freeBlocks & 0xffff,
    bg_free_blocks_count_hi: g.freeBlocks >>> 16,
    bg_free_inodes_count_lo: g.freeInodes & 0xffff,
    bg_free_inodes_count_hi: g.freeInodes >>> 16,
    bg_used_dirs_count_lo: g.usedDirs & 0xffff,
    bg_used_dirs_count_hi: g.usedDirs >>> 16,
    bg_flags: g.flags,
    bg_itable_unused_lo: g.itableUnused & 0xffff,
    bg_itable_unused_hi: g.itableUnused >>> 16,
    bg_block_bitmap_csum_lo: g.blockBitmapCsum & 0xffff,
    bg_block_bitmap_csum_hi: g.blockBitmapCsum >>> 16,
    bg_inode_bitmap_csum_lo: g.inodeBitmapCsum & 0xffff,
    bg_inode_bitmap_csum_hi: g.inodeBitmapCsum >>> 16,
    bg_checksum: 0,
  });
  // metadata_csum: low 16 bits of crc32c(seed, group number, descriptor with bg_checksum = 0).
  const c = crc32c(crc32cU32(fsSeed, group), buf, at, at + 64);
  buf.writeUInt16LE(c & 0xffff, at + 0x1e);
}
