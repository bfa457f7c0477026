// An empty internal journal: a JBD2 v2 superblock in the journal's first block,
// the rest zero (which the image leaves as holes). Reference: journal.rst
import { defineStruct } from '../../util/struct.ts';
import { BLOCK_SIZE, JBD2_MAGIC } from './constants.ts';

// JBD2 is big-endian. The encoder below writes BE by hand at these offsets;
// readers (src/read/ext4.ts) decode with the table.
export const journalSuperblock = defineStruct(1024, [
  ['h_magic', 0x0, 'u32'],
  ['h_blocktype', 0x4, 'u32'],
  ['h_sequence', 0x8, 'u32'],
  ['s_blocksize', 0xc, 'u32'],
  ['s_maxlen', 0x10, 'u32'],
  ['s_first', 0x14, 'u32'],
  ['s_sequence', 0x18, 'u32'],
  ['s_start', 0x1c, 'u32'],
  ['s_errno', 0x20, 'u32'],
  ['s_feature_compat', 0x24, 'u32'],
  ['s_feature_incompat', 0x28, 'u32'],
  ['s_feature_ro_compat', 0x2c, 'u32'],
  ['s_uuid', 0x30, { bytes: 16 }],
  ['s_nr_users', 0x40, 'u32'],
  ['s_dynsuper', 0x44, 'u32'],
  ['s_max_transaction', 0x48, 'u32'],
  ['s_max_trans_data', 0x4c, 'u32'],
  ['s_checksum_type', 0x50, 'u8'],
  ['s_num_fc_blks', 0x54, 'u32'],
  ['s_head', 0x58, 'u32'],
  ['s_checksum', 0xfc, 'u32'],
], { bigEndian: true });

const SUPERBLOCK_V2 = 4;

/** The journal size mke2fs picks for a filesystem of `blocks` 4 KiB blocks (ext2fs_default_journal_size). */
export function defaultJournalBlocks(blocks: number): number {
  if (blocks < 32768) return 1024; // mke2fs makes none under 2048 blocks; we keep the 4 MiB minimum when asked for one
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

export function encodeJournalSuperblock(blocks: number, uuid: Uint8Array): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  const o = journalSuperblock.offsetOf.bind(journalSuperblock);
  b.writeUInt32BE(JBD2_MAGIC, o('h_magic'));
  b.writeUInt32BE(SUPERBLOCK_V2, o('h_blocktype'));
  b.writeUInt32BE(BLOCK_SIZE, o('s_blocksize'));
  b.writeUInt32BE(blocks, o('s_maxlen'));
  b.writeUInt32BE(1, o('s_first'));
  b.writeUInt32BE(1, o('s_sequence'));
  b.set(uuid, o('s_uuid'));
  b.writeUInt32BE(1, o('s_nr_users'));
  return b;
}
