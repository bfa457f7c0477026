// 64-byte group descriptors (64bit feature). Reference: group_descr.rst
import { defineStruct, type FieldName } from '../../util/struct.ts';
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

/** The field names the table splits into a _lo and a _hi half, without the suffix. */
type Halved = FieldName<typeof groupDescriptor.fields> extends infer K ? (K extends `${infer N}_lo` ? N : never) : never;

// The GroupStats fields the table stores as a _lo and a _hi half, and the
// width of the _lo half: the writer splits them and the reader joins them here.
const HALVES: ReadonlyArray<readonly [field: keyof GroupStats, name: Halved, loBits: 16 | 32]> = [
  ['blockBitmap', 'bg_block_bitmap', 32],
  ['inodeBitmap', 'bg_inode_bitmap', 32],
  ['inodeTable', 'bg_inode_table', 32],
  ['freeBlocks', 'bg_free_blocks_count', 16],
  ['freeInodes', 'bg_free_inodes_count', 16],
  ['usedDirs', 'bg_used_dirs_count', 16],
  ['itableUnused', 'bg_itable_unused', 16],
  ['blockBitmapCsum', 'bg_block_bitmap_csum', 16],
  ['inodeBitmapCsum', 'bg_inode_bitmap_csum', 16],
];

export function encodeGroupDescriptor(buf: Buffer, at: number, group: number, g: GroupStats, fsSeed: number): void {
  const values: Record<string, number> = { bg_flags: g.flags, bg_checksum: 0 };
  for (const [field, name, loBits] of HALVES) {
    const v = g[field];
    values[`${name}_lo`] = loBits === 32 ? v >>> 0 : v & 0xffff;
    values[`${name}_hi`] = loBits === 32 ? Math.floor(v / 0x100000000) : v >>> 16;
  }
  groupDescriptor.encode(buf, at, values);
  // metadata_csum: low 16 bits of crc32c(seed, group number, descriptor with bg_checksum = 0).
  const c = crc32c(crc32cU32(fsSeed, group), buf, at, at + 64);
  buf.writeUInt16LE(c & 0xffff, at + 0x1e);
}

/** A descriptor as stored, its halves joined (a 32-byte descriptor, without 64bit, padded with zeros to 64 by the caller). */
export function decodeGroupDescriptor(buf: Buffer, at: number): GroupStats & { checksum: number } {
  const d = groupDescriptor.decode(buf, at);
  const g = { flags: d.bg_flags, checksum: d.bg_checksum } as GroupStats & { checksum: number };
  for (const [field, name, loBits] of HALVES) g[field] = d[`${name}_lo` as const] + d[`${name}_hi` as const] * 2 ** loBits;
  return g;
}
