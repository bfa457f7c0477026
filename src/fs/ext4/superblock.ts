// The ext4 superblock: 1024 bytes at byte 1024 of the filesystem, with backups
// at the start of sparse groups. Reference: Documentation/filesystems/ext4/super.rst
import { defineStruct } from '../../util/struct.ts';
import { crc32c } from '../../util/crc32c.ts';
import { COMPAT_HAS_JOURNAL, FLAG_SIGNED_HASH, FLAG_TEST_FS, FLAG_UNSIGNED_HASH, SUPER_MAGIC } from './constants.ts';

export const superblock = defineStruct(1024, [
  ['s_inodes_count', 0x0, 'u32'],
  ['s_blocks_count_lo', 0x4, 'u32'],
  ['s_r_blocks_count_lo', 0x8, 'u32'],
  ['s_free_blocks_count_lo', 0xc, 'u32'],
  ['s_free_inodes_count', 0x10, 'u32'],
  ['s_first_data_block', 0x14, 'u32'],
  ['s_log_block_size', 0x18, 'u32'],
  ['s_log_cluster_size', 0x1c, 'u32'],
  ['s_blocks_per_group', 0x20, 'u32'],
  ['s_clusters_per_group', 0x24, 'u32'],
  ['s_inodes_per_group', 0x28, 'u32'],
  ['s_mtime', 0x2c, 'u32'],
  ['s_wtime', 0x30, 'u32'],
  ['s_mnt_count', 0x34, 'u16'],
  ['s_max_mnt_count', 0x36, 'i16'],
  ['s_magic', 0x38, 'u16'],
  ['s_state', 0x3a, 'u16'],
  ['s_errors', 0x3c, 'u16'],
  ['s_minor_rev_level', 0x3e, 'u16'],
  ['s_lastcheck', 0x40, 'u32'],
  ['s_checkinterval', 0x44, 'u32'],
  ['s_creator_os', 0x48, 'u32'],
  ['s_rev_level', 0x4c, 'u32'],
  ['s_def_resuid', 0x50, 'u16'],
  ['s_def_resgid', 0x52, 'u16'],
  ['s_first_ino', 0x54, 'u32'],
  ['s_inode_size', 0x58, 'u16'],
  ['s_block_group_nr', 0x5a, 'u16'],
  ['s_feature_compat', 0x5c, 'u32'],
  ['s_feature_incompat', 0x60, 'u32'],
  ['s_feature_ro_compat', 0x64, 'u32'],
  ['s_uuid', 0x68, { bytes: 16 }],
  ['s_volume_name', 0x78, { bytes: 16 }],
  ['s_last_mounted', 0x88, { bytes: 64 }],
  ['s_algorithm_usage_bitmap', 0xc8, 'u32'],
  ['s_prealloc_blocks', 0xcc, 'u8'],
  ['s_prealloc_dir_blocks', 0xcd, 'u8'],
  ['s_reserved_gdt_blocks', 0xce, 'u16'],
  ['s_journal_uuid', 0xd0, { bytes: 16 }],
  ['s_journal_inum', 0xe0, 'u32'],
  ['s_journal_dev', 0xe4, 'u32'],
  ['s_last_orphan', 0xe8, 'u32'],
  ['s_hash_seed', 0xec, { bytes: 16 }],
  ['s_def_hash_version', 0xfc, 'u8'],
  ['s_jnl_backup_type', 0xfd, 'u8'],
  ['s_desc_size', 0xfe, 'u16'],
  ['s_default_mount_opts', 0x100, 'u32'],
  ['s_first_meta_bg', 0x104, 'u32'],
  ['s_mkfs_time', 0x108, 'u32'],
  ['s_jnl_blocks', 0x10c, { bytes: 68 }],
  ['s_blocks_count_hi', 0x150, 'u32'],
  ['s_r_blocks_count_hi', 0x154, 'u32'],
  ['s_free_blocks_count_hi', 0x158, 'u32'],
  ['s_min_extra_isize', 0x15c, 'u16'],
  ['s_want_extra_isize', 0x15e, 'u16'],
  ['s_flags', 0x160, 'u32'],
  ['s_raid_stride', 0x164, 'u16'],
  ['s_mmp_interval', 0x166, 'u16'],
  ['s_mmp_block', 0x168, 'u64'],
  ['s_raid_stripe_width', 0x170, 'u32'],
  ['s_log_groups_per_flex', 0x174, 'u8'],
  ['s_checksum_type', 0x175, 'u8'],
  ['s_kbytes_written', 0x178, 'u64'],
  ['s_usr_quota_inum', 0x240, 'u32'],
  ['s_grp_quota_inum', 0x244, 'u32'],
  ['s_overhead_clusters', 0x248, 'u32'],
  ['s_backup_bgs', 0x24c, { bytes: 8 }],
  ['s_lpf_ino', 0x268, 'u32'],
  ['s_prj_quota_inum', 0x26c, 'u32'],
  ['s_checksum_seed', 0x270, 'u32'],
  ['s_wtime_hi', 0x274, 'u8'],
  ['s_mtime_hi', 0x275, 'u8'],
  ['s_mkfs_time_hi', 0x276, 'u8'],
  ['s_lastcheck_hi', 0x277, 'u8'],
  ['s_encoding', 0x27c, 'u16'],
  ['s_encoding_flags', 0x27e, 'u16'],
  ['s_orphan_file_inum', 0x280, 'u32'],
  ['s_checksum', 0x3fc, 'u32'],
]);

/** Superblock checksum: crc32c over everything before s_checksum (metadata_csum). */
export function sealSuperblock(buf: Buffer, at: number): void {
  buf.writeUInt32LE(crc32c(0xffffffff, buf, at, at + 0x3fc), at + 0x3fc);
}

// ---------------------------------------------------------------- feature names

const COMPAT_NAMES: Record<number, string> = {
  0x1: 'dir_prealloc', 0x2: 'imagic_inodes', 0x4: 'has_journal', 0x8: 'ext_attr', 0x10: 'resize_inode', 0x20: 'dir_index',
  0x40: 'lazy_bg', 0x100: 'snapshot_bitmap', 0x200: 'sparse_super2', 0x400: 'fast_commit', 0x800: 'stable_inodes',
  0x1000: 'orphan_file',
};
const INCOMPAT_NAMES: Record<number, string> = {
  0x1: 'compression', 0x2: 'filetype', 0x4: 'needs_recovery', 0x8: 'journal_dev', 0x10: 'meta_bg', 0x40: 'extent',
  0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg', 0x400: 'ea_inode', 0x1000: 'dirdata', 0x2000: 'metadata_csum_seed',
  0x4000: 'large_dir', 0x8000: 'inline_data', 0x10000: 'encrypt', 0x20000: 'casefold',
};
const RO_COMPAT_NAMES: Record<number, string> = {
  0x1: 'sparse_super', 0x2: 'large_file', 0x8: 'huge_file', 0x10: 'uninit_bg', 0x20: 'dir_nlink', 0x40: 'extra_isize',
  0x100: 'quota', 0x200: 'bigalloc', 0x400: 'metadata_csum', 0x800: 'replica', 0x1000: 'read-only', 0x2000: 'project',
  0x4000: 'shared_blocks', 0x8000: 'verity', 0x10000: 'orphan_present',
};

/** Feature names in dumpe2fs's order (compat, incompat, ro_compat; bit order); unknown bits as FEATURE_C12 etc. */
export function featureNames(compat: number, incompat: number, roCompat: number): string[] {
  const out: string[] = [];
  const add = (bits: number, names: Record<number, string>, letter: string) => {
    for (let b = 0; b < 32; b++) {
      const m = 2 ** b;
      if (Math.floor(bits / m) % 2) out.push(names[m] ?? `FEATURE_${letter}${b}`);
    }
  };
  add(compat, COMPAT_NAMES, 'C');
  add(incompat, INCOMPAT_NAMES, 'I');
  add(roCompat, RO_COMPAT_NAMES, 'R');
  return out;
}

/** s_flags as dumpe2fs names them. */
export function superblockFlagNames(sFlags: number): string[] {
  const flags: string[] = [];
  if (sFlags & FLAG_SIGNED_HASH) flags.push('signed_directory_hash');
  if (sFlags & FLAG_UNSIGNED_HASH) flags.push('unsigned_directory_hash');
  if (sFlags & FLAG_TEST_FS) flags.push('test_filesystem');
  return flags;
}

/** s_def_hash_version as dumpe2fs names it. */
export function hashVersionName(v: number): string {
  return HASH_NAMES[v] ?? `unknown (${v})`;
}
const HASH_NAMES = ['legacy', 'half_md4', 'tea', 'legacy_unsigned', 'half_md4_unsigned', 'tea_unsigned', 'siphash'];

/** What ext3 knows (as blkid decides): any other incompat or ro_compat feature makes it ext4. */
const EXT3_INCOMPAT = 0x2 | 0x4 | 0x10; // filetype, needs_recovery, meta_bg
const EXT3_RO_COMPAT = 0x1 | 0x2 | 0x4; // sparse_super, large_file, btree_dir

/** ext2, ext3 or ext4, from the feature words as blkid tells them apart. */
export function extKind(compat: number, incompat: number, roCompat: number): 'ext2' | 'ext3' | 'ext4' {
  return incompat & ~EXT3_INCOMPAT || roCompat & ~EXT3_RO_COMPAT ? 'ext4' : compat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
}

/** The superblock's byte offset in the volume. */
export const SUPERBLOCK_AT = 1024;

/** Whether `head`, a volume's first bytes, holds an ext2/3/4 superblock magic (s_magic, byte 1080): the one place that checks it. */
export function hasExtMagic(head: Buffer): boolean {
  const at = SUPERBLOCK_AT + superblock.offsets.s_magic;
  return head.length >= at + 2 && head.readUInt16LE(at) === SUPER_MAGIC;
}
