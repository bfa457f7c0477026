// An empty internal journal: a JBD2 v2 superblock in the journal's first block,
// the rest zero (which the image leaves as holes). Reference: journal.rst
import { defineStruct } from '../../util/struct.ts';
import { formatUuid } from '../../util/ids.ts';
import { BLOCK_SIZE, JBD2_MAGIC } from './constants.ts';

// JBD2 is big-endian: the table says so, and decodeJournalSuperblock reads it.
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
  journalSuperblock.encode(b, 0, {
    h_magic: JBD2_MAGIC,
    h_blocktype: SUPERBLOCK_V2,
    s_blocksize: BLOCK_SIZE,
    s_maxlen: blocks,
    s_first: 1,
    s_sequence: 1,
    s_uuid: uuid,
    s_nr_users: 1,
  });
  return b;
}

export interface JournalInfo {
  blockType: number;
  blockSize: number;
  maxLen: number;
  first: number;
  sequence: number;
  start: number;
  errno: number;
  featureCompat: number;
  featureIncompat: number;
  featureRoCompat: number;
  uuid: string;
  nrUsers: number;
  maxTransaction: number;
  checksumType: number;
  fastCommitBlocks: number;
}

/** The journal superblock in the journal's first block; `fail` throws with the reason. */
export function decodeJournalSuperblock(b: Buffer, fail: (why: string) => never): JournalInfo {
  const j = journalSuperblock.decode(b, 0);
  if (j.h_magic !== JBD2_MAGIC) fail(`journal superblock magic 0x${j.h_magic.toString(16)} is not 0x${JBD2_MAGIC.toString(16)}`);
  return {
    blockType: j.h_blocktype,
    blockSize: j.s_blocksize,
    maxLen: j.s_maxlen,
    first: j.s_first,
    sequence: j.s_sequence,
    start: j.s_start,
    errno: j.s_errno,
    featureCompat: j.s_feature_compat,
    featureIncompat: j.s_feature_incompat,
    featureRoCompat: j.s_feature_ro_compat,
    uuid: formatUuid(j.s_uuid),
    nrUsers: j.s_nr_users,
    maxTransaction: j.s_max_transaction,
    checksumType: j.s_checksum_type,
    fastCommitBlocks: j.s_num_fc_blks,
  };
}
