// ext2/ext3/ext4 reader: superblock, group descriptors, inodes of every type,
// extent trees of any depth and old block maps, linear and htree directories,
// inline data, xattrs in the inode and in blocks (POSIX ACLs converted back to
// the system.posix_acl_* xattr form), the journal superblock, and a map of
// which byte ranges each inode and each metadata structure owns.
// Reference: https://www.kernel.org/doc/html/latest/filesystems/ext4/ (super.rst,
// group_descr.rst, inodes.rst, ifork.rst, directory.rst, attributes.rst,
// inlinedata.rst, journal.rst); the field tables are the writer's (src/fs/ext4/).
import { DiskwrightError } from '../errors.ts';
import { aclFromDisk } from '../fs/ext4/acl.ts';
import { dirhash, type DirhashVersion } from '../fs/ext4/dirhash.ts';
import { extentHeader, extentIndex, extentLeaf } from '../fs/ext4/extent-tree.ts';
import { decodeGroupDescriptor, type GroupStats } from '../fs/ext4/group-descriptor.ts';
import { decodeInode, type Ext4Inode, inode as inodeTable } from '../fs/ext4/inode.ts';
import { decodeJournalSuperblock, type JournalInfo } from '../fs/ext4/journal.ts';
import { decodeXattrEntries, xattrName } from '../fs/ext4/xattr.ts';
import { type DirItem, decodeDirBlock } from '../fs/ext4/dir-entry.ts';
import { decodeDxEntries, decodeDxRoot, DX_NODE_ENTRIES_AT } from '../fs/ext4/htree.ts';
import { extKind, featureNames, hashVersionName, superblock, superblockFlagNames } from '../fs/ext4/superblock.ts';
import { EXTENT_MAGIC, FLAG_SIGNED_HASH, FLAG_UNSIGNED_HASH, SUPER_MAGIC, XATTR_MAGIC } from '../fs/ext4/constants.ts';
import type { Decoded, IntFieldName } from '../util/struct.ts';
import { crc32c } from '../util/crc32c.ts';
import { formatUuid } from '../util/ids.ts';
import {
  childPath, coalesce, compareKeys, displayKey, type EntryType, type FsEntry, type FsSummary, type FsTime, type OwnedRange, type Xattr,
} from './entry.ts';
import { type ContentRun, FsReaderBase, readContent } from './fs-reader.ts';
import { BlockCache, type ByteSource, checkRange } from './source.ts';

const COMPAT_HAS_JOURNAL = 0x4;
const COMPAT_SPARSE_SUPER2 = 0x200;
const INCOMPAT_FILETYPE = 0x2;
const INCOMPAT_META_BG = 0x10;
const INCOMPAT_64BIT = 0x80;
const RO_COMPAT_SPARSE_SUPER = 0x1;
const RO_COMPAT_HUGE_FILE = 0x8;
const RO_COMPAT_METADATA_CSUM = 0x400;
const RO_COMPAT_GDT_CSUM = 0x10;
const BG_INODE_UNINIT = 0x1;

const FL_INDEX = 0x1000;
const FL_HUGE_FILE = 0x40000;
const FL_EXTENTS = 0x80000;
const FL_EA_INODE = 0x200000;
const FL_INLINE_DATA = 0x10000000;

// ---------------------------------------------------------------- public types

export interface Ext4Info {
  /** ext2, ext3 or ext4, decided from the features as blkid does. */
  kind: 'ext2' | 'ext3' | 'ext4';
  label: string;
  labelBytes: Buffer;
  uuid: string;
  hashSeed: string;
  /** "half_md4", "tea", ... (s_def_hash_version). */
  defaultHash: string;
  /** s_flags names: signed_directory_hash, unsigned_directory_hash, test_filesystem. */
  flags: string[];
  features: { compat: number; incompat: number; roCompat: number; names: string[] };
  blockSize: number;
  blocksCount: number;
  reservedBlocks: number;
  freeBlocks: number;
  inodesCount: number;
  freeInodes: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodeSize: number;
  descSize: number;
  groups: number;
  reservedGdtBlocks: number;
  firstIno: number;
  journalInum: number;
  journalUuid: string;
  lastMounted: string;
  state: number;
  errors: number;
  creatorOs: number;
  revLevel: number;
  minorRevLevel: number;
  mountCount: number;
  maxMountCount: number;
  checkInterval: number;
  defaultMountOpts: number;
  minExtraIsize: number;
  wantExtraIsize: number;
  logGroupsPerFlex: number;
  overheadClusters: number;
  kbytesWritten: number;
  /** Seconds since 1970 (with the _hi bytes), 0 for never. */
  times: { mkfs: number; mount: number; write: number; lastCheck: number };
  /** metadata_csum: the stored superblock checksum and whether it matches. */
  checksum?: { stored: number; valid: boolean };
  /** Sums over the group descriptors (the superblock's free counts may lag behind them). */
  groupTotals: { freeBlocks: number; freeInodes: number; usedDirs: number };
  /** Every superblock field by its spec name, as decoded. */
  raw: Decoded<typeof superblock.fields>;
}

/** A group descriptor as the writer's table decodes it (src/fs/ext4/group-descriptor.ts). */
export interface Ext4GroupDesc extends GroupStats {
  group: number;
  checksum: number;
}

export type { Ext4Inode, JournalInfo };

/** A run of file blocks mapped to disk blocks. */
export interface Ext4Extent {
  logical: number;
  physical: number;
  length: number;
  /** Unwritten (preallocated): reads as zeros. */
  unwritten: boolean;
}

export interface Ext4Mapping {
  extents: Ext4Extent[];
  /** Extent-tree index/leaf blocks or indirect blocks, in the order met. */
  treeBlocks: number[];
  /** Inline data (INLINE_DATA_FL): i_block followed by the system.data xattr. */
  inline?: Buffer;
}

export interface Ext4DiskXattr {
  index: number;
  /** The name after the prefix, raw bytes. */
  suffix: Buffer;
  /** Full name (prefix + suffix) as the kernel lists it. */
  name: string;
  /** The stored value (ACLs in ext4's on-disk form). */
  stored: Buffer;
  /** The value getxattr returns (ACLs converted to the VFS form). */
  value: Buffer;
  where: 'inode' | 'block';
  /** ea_inode: the inode holding the value. */
  valueInode?: number;
}

export type Ext4DirItem = DirItem;

/** ext4-specific detail on FsEntry.ext4. */
export interface Ext4EntryDetail {
  inode: Ext4Inode;
  /** The directory entry's file type byte (0 without the filetype feature). */
  fileType: number;
  /** Every xattr as stored, including system.data (inline data). */
  diskXattrs: Ext4DiskXattr[];
}

// ---------------------------------------------------------------- helpers

function corrupt(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('IMAGE_CORRUPT', `ext4: ${message}`, data);
}

type SbInt = IntFieldName<typeof superblock.fields>;

const isPowerOf = (n: number, b: number) => {
  let x = b;
  while (x < n) x *= b;
  return x === n;
};

// ---------------------------------------------------------------- the reader

export class Ext4Reader extends FsReaderBase {
  readonly source: ByteSource;
  protected readonly fsName = 'ext4';
  readonly info: Ext4Info;
  readonly blockSize: number;
  private readonly cache: BlockCache;
  private readonly descs: Ext4GroupDesc[] = [];
  private readonly seed: Uint32Array;
  private readonly mappingCache = new Map<number, Ext4Mapping>();

  /** Reads and checks the superblock and group descriptors. Throws FILESYSTEM_UNKNOWN, IMAGE_TRUNCATED, IMAGE_CORRUPT. */
  constructor(source: ByteSource) {
    super();
    this.source = source;
    if (source.size < 2048) {
      throw new DiskwrightError('FILESYSTEM_UNKNOWN', `not an ext2/3/4 filesystem: only ${source.size} bytes`, { size: source.size });
    }
    const sbBuf = source.read(1024, 1024);
    const sb = superblock.decode(sbBuf, 0);
    if (sb.s_magic !== SUPER_MAGIC) {
      throw new DiskwrightError('FILESYSTEM_UNKNOWN', 'not an ext2/3/4 filesystem (no 0xEF53 magic at byte 1080)', {});
    }
    const n = (k: SbInt) => sb[k];
    const logBlock = n('s_log_block_size');
    if (logBlock > 6) corrupt(`s_log_block_size ${logBlock} is out of range`);
    const blockSize = 1024 << logBlock;
    this.blockSize = blockSize;
    const compat = n('s_feature_compat');
    const incompat = n('s_feature_incompat');
    const roCompat = n('s_feature_ro_compat');
    const is64 = (incompat & INCOMPAT_64BIT) !== 0;
    const blocksCount = n('s_blocks_count_lo') + (is64 ? n('s_blocks_count_hi') * 2 ** 32 : 0);
    const firstDataBlock = n('s_first_data_block');
    const blocksPerGroup = n('s_blocks_per_group');
    const inodesPerGroup = n('s_inodes_per_group');
    const revLevel = n('s_rev_level');
    const inodeSize = revLevel === 0 ? 128 : n('s_inode_size');
    if (blocksPerGroup === 0 || inodesPerGroup === 0 || blocksCount <= firstDataBlock) corrupt('superblock counts are zero or inconsistent');
    if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) corrupt(`inode size ${inodeSize} is invalid`);
    const fsBytes = blocksCount * blockSize;
    if (fsBytes > source.size) {
      throw new DiskwrightError(
        'IMAGE_TRUNCATED',
        `ext4: the filesystem spans ${fsBytes} bytes (${blocksCount} blocks of ${blockSize}) but the image holds only ${source.size}; is it truncated?`,
        { expected: fsBytes, actual: source.size },
      );
    }
    const groups = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
    const descSize = is64 ? n('s_desc_size') || 32 : 32;
    if (descSize < 32 || descSize > blockSize || (descSize & (descSize - 1)) !== 0) corrupt(`group descriptor size ${descSize} is invalid`);
    // Every inode number must fall in a group's inode table, and the reserved ones before the first ordinary one.
    if (n('s_inodes_count') > groups * inodesPerGroup) corrupt(`s_inodes_count ${n('s_inodes_count')} is more than ${groups} groups of ${inodesPerGroup} inodes hold`);
    if (revLevel !== 0 && (n('s_first_ino') < 11 || n('s_first_ino') > n('s_inodes_count'))) corrupt(`s_first_ino ${n('s_first_ino')} is out of range (11..${n('s_inodes_count')})`);
    const uuid = formatUuid(sb.s_uuid);
    const labelBytes = sb.s_volume_name;
    const nul = labelBytes.indexOf(0);
    const label = (nul < 0 ? labelBytes : labelBytes.subarray(0, nul));
    const lastMountedRaw = sb.s_last_mounted;
    const lmNul = lastMountedRaw.indexOf(0);
    const hashSeedBuf = sb.s_hash_seed;
    this.seed = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.seed[i] = hashSeedBuf.readUInt32LE(4 * i);
    const t = (lo: SbInt, hi: SbInt) => n(lo) + n(hi) * 2 ** 32;
    const kind = extKind(compat, incompat, roCompat);
    this.info = {
      kind,
      label: label.toString('utf8'),
      labelBytes: Buffer.from(label),
      uuid,
      hashSeed: formatUuid(hashSeedBuf),
      defaultHash: hashVersionName(n('s_def_hash_version')),
      flags: superblockFlagNames(n('s_flags')),
      features: { compat, incompat, roCompat, names: featureNames(compat, incompat, roCompat) },
      blockSize,
      blocksCount,
      reservedBlocks: n('s_r_blocks_count_lo') + (is64 ? n('s_r_blocks_count_hi') * 2 ** 32 : 0),
      freeBlocks: n('s_free_blocks_count_lo') + (is64 ? n('s_free_blocks_count_hi') * 2 ** 32 : 0),
      inodesCount: n('s_inodes_count'),
      freeInodes: n('s_free_inodes_count'),
      firstDataBlock,
      blocksPerGroup,
      inodesPerGroup,
      inodeSize,
      descSize,
      groups,
      reservedGdtBlocks: n('s_reserved_gdt_blocks'),
      firstIno: revLevel === 0 ? 11 : n('s_first_ino'),
      journalInum: compat & COMPAT_HAS_JOURNAL ? n('s_journal_inum') : 0,
      journalUuid: formatUuid(sb.s_journal_uuid),
      lastMounted: (lmNul < 0 ? lastMountedRaw : lastMountedRaw.subarray(0, lmNul)).toString('utf8'),
      state: n('s_state'),
      errors: n('s_errors'),
      creatorOs: n('s_creator_os'),
      revLevel,
      minorRevLevel: n('s_minor_rev_level'),
      mountCount: n('s_mnt_count'),
      maxMountCount: n('s_max_mnt_count'),
      checkInterval: n('s_checkinterval'),
      defaultMountOpts: n('s_default_mount_opts'),
      minExtraIsize: n('s_min_extra_isize'),
      wantExtraIsize: n('s_want_extra_isize'),
      logGroupsPerFlex: n('s_log_groups_per_flex'),
      overheadClusters: n('s_overhead_clusters'),
      kbytesWritten: n('s_kbytes_written'),
      times: {
        mkfs: t('s_mkfs_time', 's_mkfs_time_hi'),
        mount: t('s_mtime', 's_mtime_hi'),
        write: t('s_wtime', 's_wtime_hi'),
        lastCheck: t('s_lastcheck', 's_lastcheck_hi'),
      },
      groupTotals: { freeBlocks: 0, freeInodes: 0, usedDirs: 0 },
      raw: sb,
    };
    if (roCompat & RO_COMPAT_METADATA_CSUM) {
      const stored = n('s_checksum');
      this.info.checksum = { stored, valid: crc32c(0xffffffff, sbBuf, 0, 0x3fc) >>> 0 === stored };
    }
    this.cache = new BlockCache(source, blockSize, 8192, 'ext4');
    this.readGroupDescriptors();
  }

  // ------------------------------------------------------------ geometry

  /** True when group g holds a superblock backup (and group descriptor copies). */
  hasSuper(g: number): boolean {
    if (g === 0) return true;
    const { compat, roCompat } = this.info.features;
    if (compat & COMPAT_SPARSE_SUPER2) {
      const b = this.info.raw.s_backup_bgs;
      return g === b.readUInt32LE(0) || g === b.readUInt32LE(4);
    }
    if (!(roCompat & RO_COMPAT_SPARSE_SUPER)) return true;
    if (g === 1) return true;
    return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
  }

  groupFirstBlock(g: number): number {
    return this.info.firstDataBlock + g * this.info.blocksPerGroup;
  }

  groupBlockCount(g: number): number {
    return Math.min(this.info.blocksPerGroup, this.info.blocksCount - this.groupFirstBlock(g));
  }

  private get descPerBlock(): number {
    return this.blockSize / this.info.descSize;
  }

  /** Group descriptor blocks: how many, and where block i of the table lives. */
  private descBlockLocation(i: number): number {
    const meta = (this.info.features.incompat & INCOMPAT_META_BG) !== 0;
    const firstMeta = this.info.raw.s_first_meta_bg;
    if (!meta || i < firstMeta) return this.info.firstDataBlock + 1 + i;
    const g = i * this.descPerBlock;
    return this.groupFirstBlock(g) + (this.hasSuper(g) ? 1 : 0);
  }

  private readGroupDescriptors(): void {
    const { groups, descSize } = this.info;
    const nBlocks = Math.ceil(groups / this.descPerBlock);
    const itBlocks = Math.ceil((this.info.inodesPerGroup * this.info.inodeSize) / this.blockSize);
    const tmp = Buffer.alloc(64);
    for (let i = 0; i < nBlocks; i++) {
      const b = this.block(this.descBlockLocation(i), 'group descriptors');
      for (let j = 0; j < this.descPerBlock && i * this.descPerBlock + j < groups; j++) {
        const g = i * this.descPerBlock + j;
        tmp.fill(0);
        b.copy(tmp, 0, j * descSize, j * descSize + Math.min(descSize, 64));
        const gd: Ext4GroupDesc = { group: g, ...decodeGroupDescriptor(tmp, 0) };
        if (gd.inodeTable === 0 || gd.inodeTable >= this.info.blocksCount) corrupt(`group ${g}: inode table at block ${gd.inodeTable} is outside the filesystem`);
        if (gd.inodeTable + itBlocks > this.info.blocksCount) corrupt(`group ${g}: the inode table (${itBlocks} blocks at ${gd.inodeTable}) runs past the filesystem's end`);
        this.descs.push(gd);
        this.info.groupTotals.freeBlocks += gd.freeBlocks;
        this.info.groupTotals.freeInodes += gd.freeInodes;
        this.info.groupTotals.usedDirs += gd.usedDirs;
      }
    }
  }

  get groupDescriptors(): readonly Ext4GroupDesc[] {
    return this.descs;
  }

  /** One filesystem block (cached; do not modify). */
  block(n: number, what = 'block'): Buffer {
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.info.blocksCount) corrupt(`${what}: block ${n} is outside the filesystem (${this.info.blocksCount} blocks)`);
    return this.cache.block(n);
  }

  summary(): FsSummary {
    const i = this.info;
    return {
      type: i.kind,
      label: i.label,
      uuid: i.uuid,
      size: i.blocksCount * i.blockSize,
      blockSize: i.blockSize,
      blocks: i.blocksCount,
      freeBlocks: i.freeBlocks,
      inodes: i.inodesCount,
      freeInodes: i.freeInodes,
      features: i.features.names,
    };
  }

  // ------------------------------------------------------------ inodes

  inode(ino: number): Ext4Inode {
    const { inodesCount, inodesPerGroup, inodeSize } = this.info;
    if (!Number.isInteger(ino) || ino < 1 || ino > inodesCount) corrupt(`inode ${ino} is out of range (1..${inodesCount})`);
    const g = Math.floor((ino - 1) / inodesPerGroup);
    const idx = (ino - 1) % inodesPerGroup;
    const at = this.descs[g].inodeTable * this.blockSize + idx * inodeSize;
    checkRange(this.source, at, inodeSize, `ext4 inode ${ino}`);
    const raw = Buffer.from(this.cache.bytes(at, inodeSize));
    return decodeInode(ino, raw, this.blockSize, (this.info.features.roCompat & RO_COMPAT_HUGE_FILE) !== 0);
  }

  // ------------------------------------------------------------ bounds

  /**
   * The most bytes the inode's mapping can address: 2^32 logical blocks for
   * an extent tree (ee_block is 32 bits), 12 direct blocks plus single,
   * double and triple indirect ones for a block map. A larger i_size is a
   * lie a reader must not act on (cat would stream zeros for ever).
   */
  maxSize(node: Ext4Inode): number {
    const bs = this.blockSize;
    if (node.flags & FL_EXTENTS || node.flags & FL_INLINE_DATA) return 2 ** 32 * bs;
    const per = bs / 4;
    return (12 + per + per ** 2 + per ** 3) * bs;
  }

  /** Throws IMAGE_CORRUPT when the inode's i_size is more than its kind of inode can hold. */
  checkSize(node: Ext4Inode, path?: string): void {
    const who = `inode ${node.ino}${path === undefined ? '' : ` (${displayKey(path)})`}`;
    const max = this.maxSize(node);
    // Exact, as debugfs shows it: sizes past 2^53 lose digits as a number.
    const exact = () => (BigInt(node.raw.readUInt32LE(inodeTable.offsets.i_size_high)) << 32n) | BigInt(node.raw.readUInt32LE(inodeTable.offsets.i_size_lo));
    if (node.size > max) corrupt(`${who}: i_size ${exact()} is more than its ${node.flags & FL_EXTENTS ? 'extent tree' : 'block map'} can address (${max} bytes)`, { ino: node.ino });
    // The kernel refuses symlinks longer than a block (ext4_symlink), and xattr values hold at most 64 KiB.
    if (node.type === 'symlink' && node.size > this.blockSize) corrupt(`${who}: a symlink of ${node.size} bytes (at most ${this.blockSize})`, { ino: node.ino });
  }

  /**
   * Checks every inode the inode bitmaps mark in use for an i_size beyond
   * what its mapping can address (checkSize), so inspect does not vouch for
   * a filesystem that cat and extract would refuse. Reads the inode tables'
   * used part once; groups whose inodes were never initialised are skipped.
   */
  checkInodes(): void {
    const { groups, inodesPerGroup, inodesCount, firstIno, features } = this.info;
    // Without group checksums bg_itable_unused and INODE_UNINIT mean nothing.
    const csum = (features.roCompat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM)) !== 0;
    for (let g = 0; g < groups; g++) {
      const d = this.descs[g];
      if (csum && d.flags & BG_INODE_UNINIT) continue;
      const used = Math.min(inodesPerGroup, csum ? inodesPerGroup - d.itableUnused : inodesPerGroup, inodesCount - g * inodesPerGroup);
      if (used <= 0) continue;
      const bitmap = this.block(d.inodeBitmap, `group ${g} inode bitmap`);
      for (let i = 0; i < used && i >> 3 < bitmap.length; i++) {
        const ino = g * inodesPerGroup + i + 1;
        if (!(bitmap[i >> 3] & (1 << (i & 7))) || (ino < firstIno && ino !== 2)) continue;
        const node = this.inode(ino);
        if (node.links > 0) this.checkSize(node);
      }
    }
  }

  /** Throws IMAGE_CORRUPT when a directory's i_size reaches past the blocks it maps. */
  private checkDirSize(dir: Ext4Inode, m: Ext4Mapping): void {
    const held = m.inline ? m.inline.length : m.extents.reduce((end, e) => Math.max(end, (e.logical + e.length) * this.blockSize), 0);
    if (dir.size > held) corrupt(`directory inode ${dir.ino}: i_size ${dir.size} is more than its blocks hold (${held} bytes)`, { ino: dir.ino });
  }

  // ------------------------------------------------------------ block mapping

  /** Which disk blocks hold the inode's content, and which blocks its mapping itself takes. */
  mapping(node: Ext4Inode): Ext4Mapping {
    const hit = this.mappingCache.get(node.ino);
    if (hit) return hit;
    const m = this.computeMapping(node);
    this.mappingCache.set(node.ino, m);
    if (this.mappingCache.size > 256) this.mappingCache.delete(this.mappingCache.keys().next().value as number);
    return m;
  }

  private computeMapping(node: Ext4Inode): Ext4Mapping {
    const out: Ext4Mapping = { extents: [], treeBlocks: [] };
    if (node.flags & FL_INLINE_DATA) {
      const data = this.diskXattrs(node).find((x) => x.index === 7 && x.suffix.toString('latin1') === 'data');
      out.inline = Buffer.concat([node.iBlock, data?.stored ?? Buffer.alloc(0)]);
      return out;
    }
    if (node.type === 'chr' || node.type === 'blk' || node.type === 'fifo' || node.type === 'sock' || node.type === 'unknown') return out;
    if (node.type === 'symlink' && this.isFastSymlink(node)) return out;
    this.checkSize(node);
    if (node.flags & FL_EXTENTS) {
      this.walkExtentNode(node, node.iBlock, -1, out, 0, new Set());
    } else {
      this.walkBlockMap(node, out);
    }
    // Blocks mapped twice (a tree block or indirect block shared, extents cross-linked) could make one
    // small image describe terabytes of content: no file maps more blocks than the filesystem has.
    let mapped = 0;
    for (const e of out.extents) mapped += e.length;
    if (mapped + out.treeBlocks.length > this.info.blocksCount) corrupt(`inode ${node.ino}: maps ${mapped + out.treeBlocks.length} blocks, more than the filesystem's ${this.info.blocksCount}`, { ino: node.ino });
    out.extents.sort((a, b) => a.logical - b.logical);
    for (let i = 1; i < out.extents.length; i++) {
      const p = out.extents[i - 1];
      if (out.extents[i].logical < p.logical + p.length) corrupt(`inode ${node.ino}: extents overlap at file block ${out.extents[i].logical}`);
    }
    return out;
  }

  private walkExtentNode(node: Ext4Inode, buf: Buffer, expectDepth: number, out: Ext4Mapping, level: number, seen: Set<number>): void {
    const h = extentHeader.decode(buf, 0);
    if (h.eh_magic !== EXTENT_MAGIC) corrupt(`inode ${node.ino}: extent header magic 0x${h.eh_magic.toString(16)} is not 0xf30a`);
    if (expectDepth >= 0 && h.eh_depth !== expectDepth) corrupt(`inode ${node.ino}: extent tree depth ${h.eh_depth} where ${expectDepth} was expected`);
    if (h.eh_depth > 5 || level > 5) corrupt(`inode ${node.ino}: extent tree deeper than 5`);
    const max = (buf.length - 12) / 12;
    if (h.eh_entries > max) corrupt(`inode ${node.ino}: ${h.eh_entries} extents in a node that holds ${max}`);
    for (let i = 0; i < h.eh_entries; i++) {
      const at = 12 + 12 * i;
      if (h.eh_depth === 0) {
        const e = extentLeaf.decode(buf, at);
        const unwritten = e.ee_len > 32768;
        const length = unwritten ? e.ee_len - 32768 : e.ee_len;
        const physical = e.ee_start_lo + e.ee_start_hi * 2 ** 32;
        if (length === 0) continue;
        if (physical + length > this.info.blocksCount) corrupt(`inode ${node.ino}: extent at block ${physical} (+${length}) is outside the filesystem`);
        out.extents.push({ logical: e.ee_block, physical, length, unwritten });
      } else {
        const x = extentIndex.decode(buf, at);
        const child = x.ei_leaf_lo + x.ei_leaf_hi * 2 ** 32;
        if (seen.has(child)) corrupt(`inode ${node.ino}: extent tree block ${child} is reached twice`, { ino: node.ino });
        seen.add(child);
        out.treeBlocks.push(child);
        this.walkExtentNode(node, this.block(child, `inode ${node.ino} extent tree`), h.eh_depth - 1, out, level + 1, seen);
      }
    }
  }

  private walkBlockMap(node: Ext4Inode, out: Ext4Mapping): void {
    const per = this.blockSize / 4;
    const nBlocks = Math.ceil(node.size / this.blockSize);
    const add = (logical: number, physical: number) => {
      if (physical >= this.info.blocksCount) corrupt(`inode ${node.ino}: block ${physical} is outside the filesystem`);
      const last = out.extents[out.extents.length - 1];
      if (last && last.logical + last.length === logical && last.physical + last.length === physical) last.length++;
      else out.extents.push({ logical, physical, length: 1, unwritten: false });
    };
    const seen = new Set<number>();
    const indirect = (blk: number, level: number, first: number) => {
      if (blk === 0 || first >= nBlocks) return;
      if (seen.has(blk)) corrupt(`inode ${node.ino}: indirect block ${blk} is reached twice`, { ino: node.ino });
      seen.add(blk);
      out.treeBlocks.push(blk);
      const b = this.block(blk, `inode ${node.ino} indirect block`);
      const span = per ** (level - 1);
      for (let i = 0; i < per; i++) {
        const p = b.readUInt32LE(i * 4);
        const logical = first + i * span;
        if (logical >= nBlocks) break;
        if (p === 0) continue;
        if (level === 1) add(logical, p);
        else indirect(p, level - 1, logical);
      }
    };
    for (let i = 0; i < 12 && i < nBlocks; i++) {
      const p = node.iBlock.readUInt32LE(i * 4);
      if (p) add(i, p);
    }
    indirect(node.iBlock.readUInt32LE(48), 1, 12);
    indirect(node.iBlock.readUInt32LE(52), 2, 12 + per);
    indirect(node.iBlock.readUInt32LE(56), 3, 12 + per + per * per);
  }

  private isFastSymlink(node: Ext4Inode): boolean {
    if (node.flags & FL_INLINE_DATA) return false;
    if (node.flags & FL_EA_INODE) return false;
    // The kernel's test: no blocks besides an xattr block.
    const eaBytes = node.fileAcl ? this.blockSize : 0;
    return node.allocatedBytes - eaBytes === 0;
  }

  // ------------------------------------------------------------ xattrs

  /** Every xattr as stored: in-inode entries first, then the xattr block's. */
  diskXattrs(node: Ext4Inode): Ext4DiskXattr[] {
    const out: Ext4DiskXattr[] = [];
    const raw = node.raw;
    const base = 128 + node.extraIsize;
    if (node.extraIsize > 0 && base + 4 <= raw.length && raw.readUInt32LE(base) === XATTR_MAGIC) {
      this.parseXattrEntries(node, raw.subarray(0, raw.length), base + 4, raw.length, base + 4, 'inode', out);
    }
    if (node.fileAcl) {
      const b = this.block(node.fileAcl, `inode ${node.ino} xattr block`);
      if (b.readUInt32LE(0) !== XATTR_MAGIC) corrupt(`inode ${node.ino}: xattr block ${node.fileAcl} has no 0xEA020000 magic`);
      this.parseXattrEntries(node, b, 32, b.length, 0, 'block', out);
    }
    return out;
  }

  /** The entries of one xattr area; ea_inode values are read from their inodes. */
  private parseXattrEntries(node: Ext4Inode, buf: Buffer, start: number, end: number, valueBase: number, where: 'inode' | 'block', out: Ext4DiskXattr[]): void {
    const fail = (why: string) => corrupt(`inode ${node.ino}: ${why}`, { ino: node.ino });
    for (const e of decodeXattrEntries(buf, start, end, valueBase, fail)) {
      const stored = e.stored ?? this.readNode(this.inode(e.valueInum), 0, e.valueSize);
      const value = e.index === 2 || e.index === 3 ? aclFromDisk(stored) ?? stored : stored;
      out.push({ index: e.index, suffix: e.suffix, name: xattrName(e.index, e.suffix), stored, value, where, valueInode: e.valueInum || undefined });
    }
  }

  /** The xattrs getxattr would list (system.data of inline data left out), sorted by name bytes. */
  xattrs(node: Ext4Inode): Xattr[] {
    return this.toXattrs(this.diskXattrs(node));
  }

  private toXattrs(disk: Ext4DiskXattr[]): Xattr[] {
    return disk
      .filter((x) => !(x.index === 7 && x.suffix.toString('latin1') === 'data'))
      .map((x) => ({ name: Buffer.from(x.name, 'latin1').toString('utf8'), value: x.value, key: x.name }))
      .sort((a, b) => compareKeys(a.key, b.key))
      .map(({ name, value }) => ({ name, value }));
  }

  // ------------------------------------------------------------ directories

  /** The entries of a directory inode in on-disk order, without '.' and '..'. */
  dirItems(dir: Ext4Inode): Ext4DirItem[] {
    if (dir.type !== 'dir') throw new DiskwrightError('NOT_A_DIRECTORY', `ext4: inode ${dir.ino} is not a directory`, { ino: dir.ino });
    const items: Ext4DirItem[] = [];
    const m = this.mapping(dir);
    this.checkDirSize(dir, m);
    if (m.inline) {
      // Inline directory: the parent's inode number, then entries in the rest of i_block and in system.data.
      this.parseDirBlock(dir, m.inline.subarray(4, 60), items, false);
      if (m.inline.length > 60) this.parseDirBlock(dir, m.inline.subarray(60), items, false);
      return items;
    }
    const nBlocks = Math.ceil(dir.size / this.blockSize);
    for (const e of m.extents) {
      if (e.unwritten) continue;
      for (let i = 0; i < e.length && e.logical + i < nBlocks; i++) {
        this.parseDirBlock(dir, this.block(e.physical + i, `directory inode ${dir.ino}`), items, true, e.logical + i === 0);
      }
    }
    return items;
  }

  /** Adds the entries of one directory block (or inline data) to `items`; `first`: logical block 0 (see decodeDirBlock). */
  private parseDirBlock(dir: Ext4Inode, b: Buffer, items: Ext4DirItem[], whole: boolean, first = false): void {
    const filetype = (this.info.features.incompat & INCOMPAT_FILETYPE) !== 0;
    const fail = (why: string) => corrupt(`directory inode ${dir.ino}: ${why}`, { ino: dir.ino });
    for (const it of decodeDirBlock(b, { filetype, blockSize: this.blockSize, whole, first }, fail)) items.push(it);
  }

  /** Logical block `n` of a directory. */
  private dirBlock(dir: Ext4Inode, n: number): Buffer | null {
    for (const e of this.mapping(dir).extents) {
      if (n >= e.logical && n < e.logical + e.length) return e.unwritten ? null : this.block(e.physical + (n - e.logical), `directory inode ${dir.ino}`);
    }
    return null;
  }

  /**
   * Looks `name` up through the directory's hash index. Returns the inode
   * number, 0 when the index says the name is absent, or null when the
   * directory has no usable index (the caller then scans linearly).
   */
  htreeLookup(dir: Ext4Inode, name: Buffer): number | null {
    if (!(dir.flags & FL_INDEX) || (dir.flags & FL_INLINE_DATA)) return null;
    this.checkDirSize(dir, this.mapping(dir));
    const root = this.dirBlock(dir, 0);
    if (!root) return null;
    const { hashVersion, infoLength, levels, entriesAt } = decodeDxRoot(root);
    const maxLevels = this.info.features.incompat & 0x4000 ? 3 : 2; // large_dir: one level more
    if (hashVersion > 2 || infoLength !== 8 || levels > maxLevels) return null;
    const sFlags = this.info.raw.s_flags;
    const unsigned = (sFlags & FLAG_UNSIGNED_HASH) !== 0 && (sFlags & FLAG_SIGNED_HASH) === 0;
    const hash = dirhash(name, hashVersion as DirhashVersion, unsigned, this.seed).hash;
    let dx = decodeDxEntries(root, entriesAt);
    for (let level = 0; ; level++) {
      const { count, limit } = dx;
      if (count === 0 || count > limit) return null;
      let i = 0;
      for (let k = 1; k < count; k++) {
        if (dx.hash(k) <= hash) i = k;
        else break;
      }
      if (level < levels) {
        const child = this.dirBlock(dir, dx.block(i));
        if (!child) return null;
        dx = decodeDxEntries(child, DX_NODE_ENTRIES_AT);
        continue;
      }
      // Leaf: scan it, and the following leaves while they continue a run of this hash.
      for (let k = i; k < count; k++) {
        if (k > i) {
          const h = dx.hash(k);
          if ((h & 1) === 0 || (h & ~1) >>> 0 !== hash) break;
        }
        const leaf = this.dirBlock(dir, dx.block(k));
        if (!leaf) continue;
        const items: Ext4DirItem[] = [];
        this.parseDirBlock(dir, leaf, items, true);
        const hit = items.find((it) => it.name.equals(name));
        if (hit) return hit.ino;
      }
      return 0;
    }
  }

  /** Looks one name up in a directory: through its htree when it has one, else by scanning. 0 when absent. */
  lookupName(dir: Ext4Inode, name: Buffer): number {
    const viaIndex = this.htreeLookup(dir, name);
    if (viaIndex !== null) return viaIndex;
    return this.dirItems(dir).find((it) => it.name.equals(name))?.ino ?? 0;
  }

  // ------------------------------------------------------------ entries

  private entryForIno(ino: number, path = `<${ino}>`, name = '', fileType = 0): FsEntry {
    const node = this.inode(ino);
    const disk = this.diskXattrs(node);
    const type = node.type === 'unknown' ? corrupt(`inode ${ino} (${displayKey(path)}) has an unknown file type (mode 0${node.mode.toString(8)})`) : node.type;
    this.checkSize(node, path);
    const e: FsEntry = {
      path,
      name,
      type,
      mode: node.mode & 0o7777,
      uid: node.uid,
      gid: node.gid,
      mtimeSec: node.mtime.sec,
      mtimeNsec: node.mtime.nsec,
      atime: node.atime,
      ctime: node.ctime,
      crtime: node.crtime,
      size: node.size,
      nlink: node.links,
      ino,
      linkKey: type === 'dir' ? undefined : `ext4:${ino}`,
      xattrs: this.toXattrs(disk),
      flags: node.flags,
      ext4: { inode: node, fileType, diskXattrs: disk },
    };
    if (type === 'symlink') e.target = this.symlinkTarget(node);
    if (type === 'chr' || type === 'blk') Object.assign(e, this.deviceNumber(node));
    return e;
  }

  /** The target's bytes: never empty and never holding a NUL, which no symlink can have (the kernel and e2fsck refuse both). */
  private symlinkTarget(node: Ext4Inode): Buffer {
    const t = this.rawSymlinkTarget(node);
    if (t.length === 0 || t.includes(0)) corrupt(`inode ${node.ino}: a symlink target ${t.length === 0 ? 'that is empty' : 'holding a NUL byte'}`, { ino: node.ino });
    return t;
  }

  private rawSymlinkTarget(node: Ext4Inode): Buffer {
    const m = this.mapping(node);
    if (m.inline) return Buffer.from(m.inline.subarray(0, node.size));
    if (this.isFastSymlink(node)) {
      if (node.size > 60) corrupt(`inode ${node.ino}: fast symlink of ${node.size} bytes`);
      return Buffer.from(node.iBlock.subarray(0, node.size));
    }
    return this.readNode(node, 0, node.size);
  }

  /** Linux device numbers from i_block: old 16-bit form in word 0, new 32-bit form in word 1. */
  private deviceNumber(node: Ext4Inode): { major: number; minor: number } {
    const old = node.iBlock.readUInt32LE(0);
    if (old !== 0) return { major: (old >> 8) & 0xff, minor: old & 0xff };
    const dev = node.iBlock.readUInt32LE(4);
    return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
  }

  root(): FsEntry {
    return this.entryForIno(2, '/', '', 2);
  }

  protected child(dir: FsEntry, name: string): FsEntry | undefined {
    const ino = this.lookupName(dir.ext4!.inode, Buffer.from(name, 'latin1'));
    return ino ? this.entryForIno(ino, childPath(dir.path, name), name) : undefined;
  }

  protected children(dir: FsEntry): FsEntry[] {
    return this.dirItems(this.nodeOf(dir)).map((it) => {
      const name = it.name.toString('latin1');
      return this.entryForIno(it.ino, childPath(dir.path, name), name, it.fileType);
    });
  }

  protected dirIdentity(dir: FsEntry): { id: number; what: string } {
    return { id: dir.ino, what: `inode ${dir.ino}` };
  }

  // ------------------------------------------------------------ content

  private nodeOf(entry: FsEntry): Ext4Inode {
    return entry.ext4?.inode ?? this.inode(entry.ino);
  }

  protected content(entry: FsEntry): ContentRun[] {
    return this.nodeContent(this.nodeOf(entry));
  }

  /** Inline data, or the written extents in bytes (unwritten ones read as zeros: holes). */
  private nodeContent(node: Ext4Inode): ContentRun[] {
    const m = this.mapping(node);
    if (m.inline) return [{ logical: 0, length: m.inline.length, bytes: m.inline }];
    const bs = this.blockSize;
    return m.extents.filter((e) => !e.unwritten).map((e) => ({ logical: e.logical * bs, length: e.length * bs, physical: e.physical * bs }));
  }

  private readNode(node: Ext4Inode, offset: number, length: number): Buffer {
    return readContent(this.source, () => this.nodeContent(node), node.size, offset, length, `inode ${node.ino}`);
  }

  // ------------------------------------------------------------ journal

  /** The journal superblock (internal journal), or null when there is none. */
  journal(): JournalInfo | null {
    const inum = this.info.journalInum;
    if (!inum) return null;
    const node = this.inode(inum);
    const m = this.mapping(node);
    const first = m.extents.find((e) => e.logical === 0);
    if (!first) corrupt(`journal inode ${inum} has no first block`);
    const b = this.block(first.physical, 'journal superblock');
    return decodeJournalSuperblock(b, (why) => corrupt(why));
  }

  // ------------------------------------------------------------ allocation map

  /** Byte ranges of every metadata structure, per group. */
  metadataRanges(): OwnedRange[] {
    const bs = this.blockSize;
    const out: OwnedRange[] = [];
    const meta = (block: number, count: number, what: string) => {
      if (count > 0) out.push({ offset: block * bs, length: count * bs, kind: 'metadata', what });
    };
    const { firstDataBlock, groups, reservedGdtBlocks, inodesPerGroup, inodeSize } = this.info;
    if (firstDataBlock === 1) out.push({ offset: 0, length: 1024, kind: 'metadata', what: 'boot block' });
    const metaBg = (this.info.features.incompat & INCOMPAT_META_BG) !== 0;
    const firstMeta = metaBg ? this.info.raw.s_first_meta_bg : Infinity;
    const descBlocks = Math.ceil(groups / this.descPerBlock);
    const itBlocks = Math.ceil((inodesPerGroup * inodeSize) / bs);
    for (let g = 0; g < groups; g++) {
      const first = this.groupFirstBlock(g);
      if (this.hasSuper(g)) {
        if (g === 0 && firstDataBlock === 0) out.push({ offset: 0, length: bs, kind: 'metadata', what: 'superblock' });
        else meta(first, 1, g === 0 ? 'superblock' : `superblock backup (group ${g})`);
        const gdt = Math.min(descBlocks, firstMeta);
        meta(first + 1, gdt, g === 0 ? 'group descriptors' : `group descriptors backup (group ${g})`);
        meta(first + 1 + gdt, reservedGdtBlocks, `reserved GDT blocks (group ${g})`);
      }
      if (metaBg) {
        const dpb = this.descPerBlock;
        const mg = Math.floor(g / dpb);
        const inMeta = g % dpb;
        if (mg >= firstMeta && (inMeta === 0 || inMeta === 1 || inMeta === dpb - 1)) {
          meta(first + (this.hasSuper(g) ? 1 : 0), 1, `group descriptors (meta group ${mg})`);
        }
      }
      const d = this.descs[g];
      meta(d.blockBitmap, 1, `block bitmap (group ${g})`);
      meta(d.inodeBitmap, 1, `inode bitmap (group ${g})`);
      meta(d.inodeTable, itBlocks, `inode table (group ${g})`);
    }
    return out;
  }

  /** Ranges one inode owns: its content ('data'; the journal's counts as metadata) and its mapping and xattr blocks. */
  inodeRanges(node: Ext4Inode, path?: string): OwnedRange[] {
    const bs = this.blockSize;
    const out: OwnedRange[] = [];
    const special = node.ino < this.info.firstIno && node.ino !== 2;
    const what = node.ino === this.info.journalInum ? 'journal' : special ? `reserved inode ${node.ino}` : node.type === 'dir' ? 'directory' : node.type;
    const kind = special ? 'metadata' : 'data';
    if (node.ino === 7) {
      // The resize inode maps the reserved GDT blocks (already listed) through one double-indirect block.
      const dind = node.iBlock.readUInt32LE(52);
      if (dind) out.push({ offset: dind * bs, length: bs, kind: 'metadata', what: 'resize inode', ino: 7 });
    } else {
      const m = this.mapping(node);
      for (const e of m.extents) out.push({ offset: e.physical * bs, length: e.length * bs, kind, what, path, ino: node.ino });
      const treeWhat = node.flags & FL_EXTENTS ? 'extent tree' : 'indirect block';
      for (const b of m.treeBlocks) out.push({ offset: b * bs, length: bs, kind: 'metadata', what: treeWhat, path, ino: node.ino });
    }
    if (node.fileAcl) out.push({ offset: node.fileAcl * bs, length: bs, kind: 'metadata', what: 'xattr block', path, ino: node.ino });
    return out;
  }

  allocation(): OwnedRange[] {
    const out = this.metadataRanges();
    const seen = new Set<number>();
    const xattrBlocks = new Set<number>();
    const add = (node: Ext4Inode, path?: string) => {
      if (seen.has(node.ino)) return;
      seen.add(node.ino);
      for (const r of this.inodeRanges(node, path)) {
        if (r.what === 'xattr block') {
          if (xattrBlocks.has(r.offset)) continue; // shared by several inodes: listed once, for the first
          xattrBlocks.add(r.offset);
        }
        out.push(r);
      }
    };
    for (let ino = 1; ino < this.info.firstIno; ino++) {
      if (ino === 2) continue;
      const node = this.inode(ino);
      if (node.mode === 0 && node.links === 0 && node.allocatedBytes === 0) continue;
      if (node.type === 'unknown' && node.ino !== 7 && node.ino !== 1) continue;
      add(node);
    }
    for (const e of this.walk()) {
      add(e.ext4!.inode, e.path);
      for (const x of e.ext4!.diskXattrs) {
        if (x.valueInode && !seen.has(x.valueInode)) add(this.inode(x.valueInode), `${e.path} (xattr ${x.name})`);
      }
    }
    return coalesce(out);
  }
}

/** Opens an ext2/3/4 filesystem. */
export function openExt4(source: ByteSource): Ext4Reader {
  return new Ext4Reader(source);
}
