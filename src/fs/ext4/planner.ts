// ext4 planner: FileTree + options -> Image (size and extent map). Pure: no
// file data is read; every inode number and block address is decided here.
import { DiskwrightError } from '../../errors.ts';
import type { DirEntry, SymlinkEntry } from '../../tree/model.ts';
import { finishImage, type Image, type ImageExtent, type LazyExtent } from '../../image/extent-map.ts';
import { crc32c } from '../../util/crc32c.ts';
import { seededUuid } from '../../util/ids.ts';
import {
  BG_INODE_UNINIT, BG_INODE_ZEROED, BLOCK_SIZE, BLOCKS_PER_GROUP, COMPAT_DIR_INDEX, DESC_SIZE, COMPAT_EXT_ATTR, COMPAT_HAS_JOURNAL, EXTRA_ISIZE,
  FIRST_INO, FLAG_UNSIGNED_HASH, HASH_HALF_MD4, INCOMPAT_64BIT, INCOMPAT_EXTENTS, INCOMPAT_FILETYPE, INCOMPAT_FLEX_BG,
  INODE_FL_EXTENTS, INODE_FL_INDEX, JOURNAL_INO, LOG_BLOCK_SIZE, LOG_GROUPS_PER_FLEX, RO_COMPAT_DIR_NLINK,
  RO_COMPAT_EXTRA_ISIZE, RO_COMPAT_HUGE_FILE, RO_COMPAT_LARGE_FILE, RO_COMPAT_METADATA_CSUM, RO_COMPAT_SPARSE_SUPER,
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK, SUPER_MAGIC,
} from './constants.ts';
import { geometry, inodesPerGroupFor } from './geometry.ts';
import { inodeBlocks, layout, type InodeBlocks, type Layout } from './layout.ts';
import type { Run } from './allocator.ts';
import { isFastSymlink, prepare, type Prepared } from './prepare.ts';
import { defaultJournalBlocks, encodeJournalSuperblock } from './journal.ts';
import { EXT4_MAX_TIME, encodeInode, inodeSeed, type InodeFields } from './inode.ts';
import { buildExtentTree } from './extent-tree.ts';
import { encodeLeaf } from './dir-entry.ts';
import { encodeHtreeBlock } from './htree.ts';
import { encodeInodeXattrs, encodeXattrBlock } from './xattr.ts';
import { encodeGroupDescriptor } from './group-descriptor.ts';
import { sealSuperblock, superblock } from './superblock.ts';

export interface Ext4Options {
  /** Filesystem size in bytes, or 'auto' for the smallest that fits. */
  size: number | 'auto';
  freeBytes?: number;
  freeInodes?: number;
  label?: string;
  uuid?: Buffer;
  hashSeed?: Buffer;
  seed?: string;
  /** Names what this filesystem is for, so two filesystems of one build get different ids. */
  role?: string;
  epoch?: number;
  inodeSize?: number;
  journal?: boolean;
  reservedPercent?: number;
  /** Inode ratio for fixed sizes (bytes per inode), as mke2fs's -i. */
  inodeRatio?: number;
}

export interface Ext4Stats {
  blocks: number;
  blockSize: number;
  bytes: number;
  usedBlocks: number;
  freeBlocks: number;
  inodes: number;
  usedInodes: number;
  freeInodes: number;
  journalBlocks: number;
  uuid: Buffer;
  label: string;
  groups: number;
}

export interface Ext4Plan {
  image: Image;
  stats: Ext4Stats;
}

const MAX_INODES = 0xffffffff;
/**
 * Without meta_bg the whole descriptor table follows the superblock inside
 * one group (and each backup likewise): at most 32767 blocks of 64 64-byte
 * descriptors, so 2097088 groups, 256 TiB less 8 GiB. (mke2fs turns on
 * meta_bg past that; diskwright does not write it.)
 */
export const MAX_BLOCKS = (BLOCKS_PER_GROUP - 1) * (BLOCK_SIZE / DESC_SIZE) * BLOCKS_PER_GROUP;

/**
 * A tree's size-independent plan (prepare.ts) with the options it depends
 * on: a build sizes a filesystem for its content and then plans it at its
 * partition's size, preparing the tree once for both.
 */
export interface Ext4Tree {
  root: DirEntry;
  prep: Prepared;
  /** The options prepare() saw, to refuse reuse with others. */
  key: string;
}

interface Prepping extends Ext4Tree {
  inodeSize: number;
  hashSeedBytes: Buffer;
  epoch: number;
}

function prepareFor(root: DirEntry | Ext4Tree, opts: Ext4Options): Prepping {
  const inodeSize = opts.inodeSize ?? 256;
  if (![256, 512, 1024].includes(inodeSize)) {
    throw new DiskwrightError('OPTION_INVALID', `--inode-size ${inodeSize}: use 256, 512 or 1024 (ext4 with nanosecond times needs at least 256)`, {});
  }
  const seed = opts.seed ?? 'diskwright';
  const role = opts.role ?? 'ext4';
  const hashSeedBytes = opts.hashSeed ?? seededUuid(seed, `${role}:hash_seed`);
  const epoch = opts.epoch ?? 1;
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > EXT4_MAX_TIME) {
    throw new DiskwrightError('OPTION_INVALID', `epoch ${epoch}: ext4 stores whole seconds from 0 to ${EXT4_MAX_TIME} (2446-05-10); give one in that range`, { epoch });
  }
  const key = `${inodeSize}:${hashSeedBytes.toString('hex')}:${epoch}`;
  if ('prep' in root) {
    if (root.key !== key) throw new Error(`internal: ext4 tree prepared with ${root.key}, planned with ${key}`);
    return { root: root.root, prep: root.prep, key, inodeSize, hashSeedBytes, epoch };
  }
  const hashSeed = new Uint32Array(4);
  for (let i = 0; i < 4; i++) hashSeed[i] = hashSeedBytes.readUInt32LE(i * 4);
  return { root, prep: prepare(root, { inodeSize, hashSeed, epoch }), key, inodeSize, hashSeedBytes, epoch };
}

/** Prepares `root` for planExt4 and ext4AutoBytes calls with these options (all but the size ones may differ). */
export function prepareExt4(root: DirEntry, opts: Omit<Ext4Options, 'size'>): Ext4Tree {
  const { prep, key } = prepareFor(root, { ...opts, size: 'auto' });
  return { root, prep, key };
}

export function planExt4(root: DirEntry | Ext4Tree, opts: Ext4Options): Ext4Plan {
  const label = Buffer.from(opts.label ?? '', 'utf8');
  if (label.length > 16) throw new DiskwrightError('LABEL_TOO_LONG', `label "${opts.label}" is ${label.length} bytes; ext4 labels hold at most 16`, {});
  const p = prepareFor(root, opts);
  const uuid = opts.uuid ?? seededUuid(opts.seed ?? 'diskwright', `${opts.role ?? 'ext4'}:uuid`);
  const lay = chooseLayout(p, opts);
  return materialize(p.prep, lay, { uuid, hashSeedBytes: p.hashSeedBytes, label, epoch: p.epoch, reservedPct: opts.reservedPercent ?? 0, fsSeed: crc32c(0xffffffff, uuid) });
}

/** The bytes planExt4 with size 'auto' makes, without making the image. */
export function ext4AutoBytes(root: DirEntry | Ext4Tree, opts: Omit<Ext4Options, 'size'>): number {
  return chooseLayout(prepareFor(root, { ...opts, size: 'auto' }), { ...opts, size: 'auto' }).geo.blocks * BLOCK_SIZE;
}

function chooseLayout(p: Prepping, opts: Ext4Options): Layout {
  const { prep, inodeSize } = p;
  const journal = opts.journal ?? true;
  const reservedPct = opts.reservedPercent ?? 0;
  const freeBlocksWanted = Math.ceil((opts.freeBytes ?? 0) / BLOCK_SIZE);
  const freeInodesWanted = opts.freeInodes ?? 0;
  const inodesWanted = prep.maxIno + freeInodesWanted;
  if (inodesWanted > MAX_INODES) {
    throw new DiskwrightError('TOO_MANY_INODES', `the tree needs ${inodesWanted} inodes; ext4 addresses at most ${MAX_INODES}`, {});
  }
  const tryBlocks = (blocks: number, inodes: number): Layout | null => {
    const groups = Math.ceil(blocks / BLOCKS_PER_GROUP);
    const ipg = inodesPerGroupFor(inodes, groups, inodeSize);
    if (ipg > BLOCKS_PER_GROUP || ipg * groups > MAX_INODES) return null;
    const geo = geometry(blocks, ipg, inodeSize);
    return layout(geo, prep, journal ? defaultJournalBlocks(blocks) : 0);
  };
  const required = (blocks: number) => freeBlocksWanted + Math.floor((blocks * reservedPct) / 100);

  let lay: Layout | null;
  if (opts.size === 'auto') {
    // Least fixed point of N = used(N) + wanted free: used() only grows with N,
    // so iterating from below lands on the smallest size that fits.
    let blocks = Math.max(prep.contentBlocks + 4, 16);
    for (;;) {
      if (blocks > MAX_BLOCKS) throw new DiskwrightError('TOO_LARGE', `the tree needs more than ${MAX_BLOCKS * BLOCK_SIZE} bytes, the largest ext4 diskwright writes`, { maximum: MAX_BLOCKS * BLOCK_SIZE });
      const inodes = inodesWanted;
      const l = tryBlocks(blocks, inodes);
      // Too many inodes for this many groups: no smaller size can work either,
      // so go on from the first size with one more group.
      if (!l) { blocks = Math.ceil(blocks / BLOCKS_PER_GROUP) * BLOCKS_PER_GROUP + 1; continue; }
      if (l.fits && blocks - l.used >= required(blocks)) { lay = l; break; }
      blocks = Math.max(blocks + 1, l.used + required(blocks), l.minBlocks);
    }
  } else {
    const blocks = Math.floor(opts.size / BLOCK_SIZE);
    if (blocks > MAX_BLOCKS) {
      throw new DiskwrightError('TOO_LARGE', `--size ${opts.size} bytes is larger than the largest ext4 diskwright writes (${MAX_BLOCKS * BLOCK_SIZE} bytes, 4 KiB blocks without meta_bg); use a smaller size`, { maximum: MAX_BLOCKS * BLOCK_SIZE });
    }
    const ratio = opts.inodeRatio ?? 16384;
    // At most one inode per block, and past 64 TiB the inode ratio would
    // exceed the 32-bit inode count: cap it at whole inode-table blocks per group below 2^32.
    const groups = Math.ceil(blocks / BLOCKS_PER_GROUP);
    const unit = Math.max(8, BLOCK_SIZE / inodeSize);
    const maxInodes = Math.min(groups * BLOCKS_PER_GROUP, Math.floor(MAX_INODES / groups / unit) * unit * groups);
    const fits = (l: Layout | null) => l && l.fits && blocks - l.used >= required(blocks);
    // mke2fs's inode ratio where it fits; otherwise only the inodes asked for.
    lay = blocks >= 16 ? tryBlocks(blocks, Math.min(maxInodes, Math.max(inodesWanted, Math.floor(opts.size / ratio)))) : null;
    if (!fits(lay) && blocks >= 16) lay = tryBlocks(blocks, Math.min(maxInodes, inodesWanted));
    if (lay && inodesWanted > lay.geo.inodesPerGroup * lay.geo.groups) {
      throw new DiskwrightError('TOO_MANY_INODES', `the tree needs ${inodesWanted} inodes; a ${opts.size}-byte ext4 holds at most ${lay.geo.inodesPerGroup * lay.geo.groups}`, {});
    }
    if (!lay || !fits(lay)) {
      const min = ext4AutoBytes({ root: p.root, prep, key: p.key }, opts);
      throw new DiskwrightError('SIZE_TOO_SMALL', `--size ${opts.size} bytes is too small for this tree; it needs at least ${min} bytes (${Math.ceil(min / 2 ** 20)} MiB)`, { minimum: min });
    }
  }
  return lay;
}

interface Ids {
  uuid: Buffer;
  hashSeedBytes: Buffer;
  label: Buffer;
  epoch: number;
  reservedPct: number;
  fsSeed: number;
}

const TYPE_BITS: Record<string, number> = {
  file: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK, chr: S_IFCHR, blk: S_IFBLK, fifo: S_IFIFO, sock: S_IFSOCK,
};

function materialize(prep: Prepared, lay: Layout, ids: Ids): Ext4Plan {
  const { geo } = lay;
  const { fsSeed } = ids;
  const extents: ImageExtent[] = [];
  const at = (block: number, buffer: Buffer) => extents.push({ offset: block * BLOCK_SIZE, length: buffer.length, buffer });
  const ipg = geo.inodesPerGroup;
  const isz = geo.inodeSize;

  // Inodes without a tree entry, encoded now: 1 (bad blocks) exists with only
  // times, as mke2fs writes it; and the journal's.
  const fixedInodes = new Map<number, Buffer>();
  const encodeFixed = (ino: number, f: InodeFields) => {
    const b = Buffer.alloc(isz);
    encodeInode(b, 0, f, ino, fsSeed, isz);
    fixedInodes.set(ino, b);
  };
  encodeFixed(1, { mode: 0, uid: 0, gid: 0, size: 0, links: 0, sectors: 0, flags: 0, block: Buffer.alloc(60), fileAcl: 0, timeSec: ids.epoch, timeNsec: 0 });

  // Journal.
  let jnlBlocks = Buffer.alloc(68);
  if (lay.journalBlocks) {
    const jb = lay.inodes.get(JOURNAL_INO)!;
    const seed = inodeSeed(fsSeed, JOURNAL_INO, 0);
    const tree = buildExtentTree(jb.extents, jb.tree, seed);
    tree.blocks.forEach((b, i) => at(jb.tree[i], b));
    at(jb.runs[0].physical, encodeJournalSuperblock(lay.journalBlocks, ids.uuid));
    const size = lay.journalBlocks * BLOCK_SIZE;
    encodeFixed(JOURNAL_INO, {
      mode: S_IFREG | 0o600, uid: 0, gid: 0, size, links: 1, sectors: (lay.journalBlocks + jb.tree.length) * 8,
      flags: INODE_FL_EXTENTS, block: tree.iBlock, fileAcl: 0, timeSec: ids.epoch, timeNsec: 0,
    });
    // s_jnl_blocks: a backup of i_block, then i_size_high and i_size.
    jnlBlocks = Buffer.alloc(68);
    tree.iBlock.copy(jnlBlocks, 0);
    jnlBlocks.writeUInt32LE(Math.floor(size / 2 ** 32), 60);
    jnlBlocks.writeUInt32LE(size >>> 0, 64);
  }

  // Shared xattr blocks.
  prep.xattrBlocks.forEach((xb, i) => at(lay.xattrBlockNr[i], encodeXattrBlock(xb.attrs, xb.refs, lay.xattrBlockNr[i], fsSeed)));

  // Content of every inode: file data as file (or buffer) extents; directory
  // and slow symlink blocks as lazy extents, made from the prepared nodes when
  // the emitter reaches them rather than held as buffers until then. Extent
  // tree blocks (files of many extents, huge directories) are few: buffers,
  // their roots kept for the inodes.
  const treeRoots = new Map<number, Buffer>();
  const dirsInGroup = new Array<number>(geo.groups).fill(0);
  for (let ino = 1; ino <= prep.maxIno; ino++) {
    const e = prep.entries[ino];
    if (!e) continue;
    const ib = inodeBlocks(lay, ino, prep.blocks[ino]);
    if (ib?.tree.length) {
      const tree = buildExtentTree(ib.extents, ib.tree, inodeSeed(fsSeed, ino, 0));
      tree.blocks.forEach((b, i) => at(ib.tree[i], b));
      treeRoots.set(ino, tree.iBlock);
    }
    if (e.type === 'dir') dirsInGroup[Math.floor((ino - 1) / ipg)]++;
    if (!ib) continue;
    if (e.type === 'file') {
      for (const r of ib.runs) {
        const from = r.logical * BLOCK_SIZE;
        const length = Math.min(r.length * BLOCK_SIZE, e.size - from);
        const offset = r.physical * BLOCK_SIZE;
        extents.push(e.content ? { offset, length, buffer: e.content.subarray(from, from + length) } : { offset, length, path: e.sourcePath, fileOffset: from, expectSize: e.size });
      }
    } else if (e.type === 'dir') {
      const fill = blockFill(dirBlocks(prep, ino, inodeSeed(fsSeed, ino, 0)));
      for (const r of ib.runs) extents.push({ offset: r.physical * BLOCK_SIZE, length: r.length * BLOCK_SIZE, from: r.logical * BLOCK_SIZE, fill });
    } else if (e.type === 'symlink') {
      // One producer for all: its block i is inode i's target.
      extents.push({ offset: ib.runs[0].physical * BLOCK_SIZE, length: BLOCK_SIZE, from: ino * BLOCK_SIZE, fill: symlinkFill(prep) });
    }
  }

  // Inode tables: only the part up to the last used inode of each group holds
  // bytes, made on demand from the nodes (the producer's byte (ino - 1) *
  // inodeSize starts inode ino).
  const iBlock = Buffer.alloc(60);
  const writeInode = (ino: number, buf: Buffer, off: number) => {
    buf.fill(0, off, off + isz);
    const fixed = fixedInodes.get(ino);
    if (fixed) {
      fixed.copy(buf, off);
      return;
    }
    if (!prep.entries[ino]) return;
    iBlock.fill(0);
    const f = inodeFields(prep, ino, inodeBlocks(lay, ino, prep.blocks[ino]), treeRoots.get(ino), iBlock, inodeSeed(fsSeed, ino, 0));
    const xb = prep.xblock[ino];
    f.fileAcl = xb >= 0 ? lay.xattrBlockNr[xb] : 0;
    f.sectors += f.fileAcl ? 8 : 0;
    const inInode = prep.inInode.get(ino);
    if (inInode) encodeInodeXattrs(buf, off, isz, inInode);
    encodeInode(buf, off, f, ino, fsSeed, isz);
  };
  const oneInode = Buffer.alloc(isz);
  const inodeFill = (dst: Buffer, dstOff: number, from: number, len: number) => {
    while (len > 0) {
      const idx = Math.floor(from / isz);
      const rel = from - idx * isz;
      const k = Math.min(len, isz - rel);
      if (k === isz) writeInode(idx + 1, dst, dstOff);
      else {
        writeInode(idx + 1, oneInode, 0);
        oneInode.copy(dst, dstOff, rel, rel + k);
      }
      dstOff += k;
      from += k;
      len -= k;
    }
  };
  for (let g = 0; g < geo.groups; g++) {
    const usedInGroup = Math.max(0, Math.min(ipg, prep.maxIno - g * ipg));
    if (usedInGroup === 0) continue;
    const length = Math.ceil((usedInGroup * isz) / BLOCK_SIZE) * BLOCK_SIZE;
    extents.push({ offset: lay.inodeTable[g] * BLOCK_SIZE, length, from: g * ipg * isz, fill: inodeFill });
  }

  // Bitmaps and descriptors, one group at a time. A 16 TiB filesystem has
  // 131072 groups: holding each group's bitmaps would cost 1 GiB, so a block
  // bitmap is an extent only where it has both set and clear bits, and then a
  // lazy one, rebuilt from the free runs when the emitter reaches it; an
  // all-free group's bitmap is a hole and a full group's shares one buffer.
  // A group with no inodes in use is INODE_UNINIT, as mke2fs makes it: its
  // inode bitmap is never read (the kernel and e2fsck take it as all free),
  // so it is not written either.
  const gdt = Buffer.alloc(geo.gdtBlocks * BLOCK_SIZE);
  const bitmaps = new BlockBitmaps(lay.free, geo.groups);
  const scratch = Buffer.alloc(BLOCK_SIZE);
  const emptyInodes = inodeBitmap(ipg, 0);
  const emptyInodesCsum = crc32c(fsSeed, emptyInodes, 0, ipg / 8);
  const zeroCsum = crc32c(fsSeed, Buffer.alloc(BLOCK_SIZE), 0, BLOCKS_PER_GROUP / 8);
  const fullCsum = crc32c(fsSeed, FULL_BITMAP, 0, BLOCKS_PER_GROUP / 8);
  let freeBlocks = 0;
  for (let g = 0; g < geo.groups; g++) {
    const free = bitmaps.freeIn(g);
    freeBlocks += free;
    let blockBitmapCsum: number;
    if (free === BLOCKS_PER_GROUP) blockBitmapCsum = zeroCsum; // a hole reads as the all-free bitmap
    else if (free === 0 && geo.groupBlocks(g) === BLOCKS_PER_GROUP) {
      blockBitmapCsum = fullCsum;
      at(lay.blockBitmap[g], FULL_BITMAP);
    } else {
      bitmaps.fill(scratch, 0, g * BLOCK_SIZE, BLOCK_SIZE);
      blockBitmapCsum = crc32c(fsSeed, scratch, 0, BLOCKS_PER_GROUP / 8);
      extents.push({ offset: lay.blockBitmap[g] * BLOCK_SIZE, length: BLOCK_SIZE, from: g * BLOCK_SIZE, fill: bitmaps.fill });
    }
    const usedInodes = Math.max(0, Math.min(ipg, prep.maxIno - g * ipg));
    const ib = usedInodes ? inodeBitmap(ipg, usedInodes) : emptyInodes;
    if (usedInodes) at(lay.inodeBitmap[g], ib);
    encodeGroupDescriptor(gdt, g * 64, g, {
      blockBitmap: lay.blockBitmap[g], inodeBitmap: lay.inodeBitmap[g], inodeTable: lay.inodeTable[g],
      freeBlocks: free, freeInodes: ipg - usedInodes, usedDirs: dirsInGroup[g],
      flags: BG_INODE_ZEROED | (usedInodes ? 0 : BG_INODE_UNINIT),
      itableUnused: ipg - usedInodes,
      blockBitmapCsum,
      inodeBitmapCsum: usedInodes ? crc32c(fsSeed, ib, 0, ipg / 8) : emptyInodesCsum,
    }, fsSeed);
  }

  const inodesCount = ipg * geo.groups;
  const freeInodes = inodesCount - prep.maxIno;
  const rBlocks = Math.floor((geo.blocks * ids.reservedPct) / 100);
  const sb = Buffer.alloc(1024);
  const hi = (n: number) => Math.floor(n / 2 ** 32);
  superblock.encode(sb, 0, {
    s_inodes_count: inodesCount,
    s_blocks_count_lo: geo.blocks >>> 0, s_blocks_count_hi: hi(geo.blocks),
    s_r_blocks_count_lo: rBlocks >>> 0, s_r_blocks_count_hi: hi(rBlocks),
    s_free_blocks_count_lo: freeBlocks >>> 0, s_free_blocks_count_hi: hi(freeBlocks),
    s_free_inodes_count: freeInodes,
    s_first_data_block: 0,
    s_log_block_size: LOG_BLOCK_SIZE, s_log_cluster_size: LOG_BLOCK_SIZE,
    s_blocks_per_group: BLOCKS_PER_GROUP, s_clusters_per_group: BLOCKS_PER_GROUP,
    s_inodes_per_group: ipg,
    s_wtime: ids.epoch >>> 0, s_wtime_hi: hi(ids.epoch) & 0xff,
    s_max_mnt_count: -1,
    s_magic: SUPER_MAGIC,
    s_state: 1, // cleanly unmounted
    s_errors: 1, // continue, the mke2fs default
    s_lastcheck: ids.epoch >>> 0, s_lastcheck_hi: hi(ids.epoch) & 0xff,
    s_rev_level: 1,
    s_first_ino: FIRST_INO,
    s_inode_size: geo.inodeSize,
    s_feature_compat: COMPAT_EXT_ATTR | COMPAT_DIR_INDEX | (lay.journalBlocks ? COMPAT_HAS_JOURNAL : 0),
    s_feature_incompat: INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG,
    s_feature_ro_compat: RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_HUGE_FILE | RO_COMPAT_DIR_NLINK |
      RO_COMPAT_EXTRA_ISIZE | RO_COMPAT_METADATA_CSUM,
    s_uuid: ids.uuid,
    s_volume_name: ids.label,
    s_journal_inum: lay.journalBlocks ? JOURNAL_INO : 0,
    s_hash_seed: ids.hashSeedBytes,
    s_def_hash_version: HASH_HALF_MD4,
    s_jnl_backup_type: lay.journalBlocks ? 1 : 0,
    s_desc_size: 64,
    s_default_mount_opts: 0x000c, // user_xattr, acl
    s_mkfs_time: ids.epoch >>> 0, s_mkfs_time_hi: hi(ids.epoch) & 0xff,
    s_jnl_blocks: jnlBlocks,
    s_min_extra_isize: EXTRA_ISIZE,
    s_want_extra_isize: EXTRA_ISIZE,
    s_flags: FLAG_UNSIGNED_HASH,
    s_log_groups_per_flex: LOG_GROUPS_PER_FLEX,
    s_checksum_type: 1, // crc32c
  });
  for (let g = 0; g < geo.groups; g++) {
    if (!geo.superBlocks(g)) continue;
    const copy = Buffer.from(sb);
    superblock.encode(copy, 0, { s_block_group_nr: g });
    sealSuperblock(copy, 0);
    const start = g * BLOCKS_PER_GROUP;
    extents.push({ offset: g === 0 ? 1024 : start * BLOCK_SIZE, length: 1024, buffer: copy });
    at(start + 1, gdt);
  }

  const image = finishImage(geo.blocks * BLOCK_SIZE, extents);
  return {
    image,
    stats: {
      blocks: geo.blocks, blockSize: BLOCK_SIZE, bytes: geo.blocks * BLOCK_SIZE,
      usedBlocks: geo.blocks - freeBlocks, freeBlocks, inodes: inodesCount, usedInodes: prep.maxIno, freeInodes,
      journalBlocks: lay.journalBlocks, uuid: ids.uuid, label: ids.label.toString('utf8'), groups: geo.groups,
    },
  };
}

/**
 * An inode's fields but the xattr block (the caller's): i_block is written
 * into `iBlock` (zeroed) unless `treeRoot`, the root of its extent-tree blocks.
 */
function inodeFields(prep: Prepared, ino: number, ib: InodeBlocks | undefined, treeRoot: Buffer | undefined, iBlock: Buffer, seed: number): InodeFields {
  const e = prep.entries[ino];
  const blocks = prep.blocks[ino];
  let block = iBlock;
  let flags = 0;
  let size = 0;
  if (treeRoot) block = treeRoot;
  else if (ib || e.type === 'file') buildExtentTree(ib?.extents ?? [], [], seed, iBlock);
  switch (e.type) {
    case 'file':
      size = e.size;
      flags = INODE_FL_EXTENTS;
      break;
    case 'dir':
      flags = INODE_FL_EXTENTS | (prep.dirLayouts.get(ino)!.htree ? INODE_FL_INDEX : 0);
      size = blocks * BLOCK_SIZE;
      break;
    case 'symlink':
      size = e.target.length;
      if (isFastSymlink(e.target)) e.target.copy(iBlock);
      else flags = INODE_FL_EXTENTS;
      break;
    case 'chr':
    case 'blk':
      // Old 16-bit encoding in i_block[0] when it fits, else the new one in i_block[1].
      if (e.major < 256 && e.minor < 256) iBlock.writeUInt32LE((e.major << 8) | e.minor, 0);
      else iBlock.writeUInt32LE(((e.minor & 0xff) | (e.major << 8) | ((e.minor & ~0xff) << 12)) >>> 0, 4);
      break;
    default:
      break;
  }
  return {
    mode: TYPE_BITS[e.type] | e.mode, uid: e.uid, gid: e.gid, size, links: prep.links[ino],
    sectors: (blocks + (ib?.tree.length ?? 0)) * 8, flags, block, fileAcl: 0,
    timeSec: e.mtimeSec, timeNsec: e.mtimeNsec,
  };
}

/** Makes directory block i of `n` into b (zeroed): an htree's root, leaf or node, or a linear leaf. */
function dirBlocks(prep: Prepared, ino: number, seed: number): (i: number, b: Buffer) => void {
  const d = prep.dirLayouts.get(ino)!;
  return (i, b) => {
    if (d.htree) return encodeHtreeBlock(d.htree, i, ino, prep.parent[ino], seed, b);
    const { items, starts } = d.linear!;
    const count = items.names.length;
    encodeLeaf(items, starts[i] ?? count, starts[i + 1] ?? count, seed, b);
  };
}

const scratchBlock = Buffer.alloc(BLOCK_SIZE);

/** A LazyExtent producer over blocks made one at a time by `make(i, b)` (b zeroed). */
function blockFill(make: (i: number, b: Buffer) => void): LazyExtent['fill'] {
  return (dst, dstOff, from, len) => {
    while (len > 0) {
      const i = Math.floor(from / BLOCK_SIZE);
      const rel = from - i * BLOCK_SIZE;
      const k = Math.min(len, BLOCK_SIZE - rel);
      if (k === BLOCK_SIZE) {
        const b = dst.subarray(dstOff, dstOff + BLOCK_SIZE).fill(0);
        make(i, b);
      } else {
        make(i, scratchBlock.fill(0));
        scratchBlock.copy(dst, dstOff, rel, rel + k);
      }
      dstOff += k;
      from += k;
      len -= k;
    }
  };
}

/** Slow symlinks' blocks: the producer's block i is inode i's target, zero-padded. */
const symlinkFills = new WeakMap<Prepared, LazyExtent['fill']>();
function symlinkFill(prep: Prepared): LazyExtent['fill'] {
  let fill = symlinkFills.get(prep);
  if (!fill) {
    fill = blockFill((ino, b) => (prep.entries[ino] as SymlinkEntry).target.copy(b));
    symlinkFills.set(prep, fill);
  }
  return fill;
}

const FULL_BITMAP = Buffer.alloc(BLOCK_SIZE, 0xff);

/** An inode bitmap: the first `used` inodes in use, and the padding past the group's `ipg` inodes set. */
function inodeBitmap(ipg: number, used: number): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  setBits(b, 0, used);
  setBits(b, ipg, BLOCK_SIZE * 8);
  return b;
}

function setBits(b: Buffer, from: number, to: number) {
  for (; from < to && from & 7; from++) b[from >> 3] |= 1 << (from & 7);
  for (; to > from && to & 7;) { to--; b[to >> 3] |= 1 << (to & 7); }
  if (to > from) b.fill(0xff, from >> 3, to >> 3);
}

/** Clears bits [from, to) of `b` (bit offsets within one group's bitmap, below 2^15). */
function clearBits(b: Buffer, from: number, to: number) {
  for (; from < to && from & 7; from++) b[from >> 3] &= ~(1 << (from & 7));
  for (; to > from && to & 7;) { to--; b[to >> 3] &= ~(1 << (to & 7)); }
  if (to > from) b.fill(0, from >> 3, to >> 3);
}

/**
 * Every group's block bitmap, made from the allocator's free runs on demand:
 * bits of blocks in use set, free ones clear, and bits past a short last
 * group's end set. Bit offsets are taken relative to the group, so block
 * numbers past 2^32 never meet 32-bit arithmetic. `fill` is a LazyExtent
 * producer over the concatenation of all groups' bitmaps (producer byte
 * g * 4096 starts group g's).
 */
export class BlockBitmaps {
  private readonly free: Run[];
  private readonly groups: number;
  private readonly bitmap = Buffer.alloc(BLOCK_SIZE);
  constructor(free: Run[], groups: number) {
    this.free = free;
    this.groups = groups;
  }

  /** Index of the first free run that ends after `block`. */
  private firstRunAfter(block: number): number {
    let lo = 0;
    let hi = this.free.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.free[mid].start + this.free[mid].length <= block) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Free blocks in group g. */
  freeIn(g: number): number {
    const start = g * BLOCKS_PER_GROUP;
    const end = start + BLOCKS_PER_GROUP;
    let n = 0;
    for (let i = this.firstRunAfter(start); i < this.free.length && this.free[i].start < end; i++) {
      const r = this.free[i];
      n += Math.min(end, r.start + r.length) - Math.max(start, r.start);
    }
    return n;
  }

  readonly fill = (dst: Buffer, dstOff: number, at: number, len: number): void => {
    const { bitmap } = this;
    while (len > 0) {
      const g = Math.floor(at / BLOCK_SIZE);
      if (g >= this.groups) throw new Error(`internal: block bitmap of group ${g} of ${this.groups}`);
      const start = g * BLOCKS_PER_GROUP;
      const end = start + BLOCKS_PER_GROUP;
      bitmap.fill(0xff);
      for (let i = this.firstRunAfter(start); i < this.free.length && this.free[i].start < end; i++) {
        const r = this.free[i];
        clearBits(bitmap, Math.max(start, r.start) - start, Math.min(end, r.start + r.length) - start);
      }
      const rel = at - g * BLOCK_SIZE;
      const k = Math.min(len, BLOCK_SIZE - rel);
      bitmap.copy(dst, dstOff, rel, rel + k);
      dstOff += k;
      at += k;
      len -= k;
    }
  };
}
