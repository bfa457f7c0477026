// On-disk inode (256 bytes by default: 128 base + 32 extra + in-inode xattrs).
// Reference: Documentation/filesystems/ext4/inodes.rst
import { defineStruct } from '../../util/struct.ts';
import { crc32c, crc32cU32 } from '../../util/crc32c.ts';
import type { EntryType } from '../../tree/model.ts';
import { EXTRA_ISIZE } from './constants.ts';

export const inode = defineStruct(160, [
  ['i_mode', 0x0, 'u16'],
  ['i_uid', 0x2, 'u16'],
  ['i_size_lo', 0x4, 'u32'],
  ['i_atime', 0x8, 'u32'],
  ['i_ctime', 0xc, 'u32'],
  ['i_mtime', 0x10, 'u32'],
  ['i_dtime', 0x14, 'u32'],
  ['i_gid', 0x18, 'u16'],
  ['i_links_count', 0x1a, 'u16'],
  ['i_blocks_lo', 0x1c, 'u32'],
  ['i_flags', 0x20, 'u32'],
  ['l_i_version', 0x24, 'u32'],
  ['i_block', 0x28, { bytes: 60 }],
  ['i_generation', 0x64, 'u32'],
  ['i_file_acl_lo', 0x68, 'u32'],
  ['i_size_high', 0x6c, 'u32'],
  ['i_obso_faddr', 0x70, 'u32'],
  ['l_i_blocks_high', 0x74, 'u16'],
  ['l_i_file_acl_high', 0x76, 'u16'],
  ['l_i_uid_high', 0x78, 'u16'],
  ['l_i_gid_high', 0x7a, 'u16'],
  ['l_i_checksum_lo', 0x7c, 'u16'],
  ['l_i_reserved', 0x7e, 'u16'],
  ['i_extra_isize', 0x80, 'u16'],
  ['i_checksum_hi', 0x82, 'u16'],
  ['i_ctime_extra', 0x84, 'u32'],
  ['i_mtime_extra', 0x88, 'u32'],
  ['i_atime_extra', 0x8c, 'u32'],
  ['i_crtime', 0x90, 'u32'],
  ['i_crtime_extra', 0x94, 'u32'],
  ['i_version_hi', 0x98, 'u32'],
  ['i_projid', 0x9c, 'u32'],
]);

export interface InodeFields {
  mode: number; // type and permission bits
  uid: number;
  gid: number;
  size: number;
  links: number;
  /** 512-byte sectors: data, extent-tree and xattr blocks. */
  sectors: number;
  flags: number;
  block: Uint8Array; // i_block, up to 60 bytes
  fileAcl: number; // xattr block number, 0 for none
  timeSec: number; // atime = ctime = mtime = crtime: reading a file must not change the image
  timeNsec: number;
}

const hi32 = (n: number) => Math.floor(n / 0x100000000);

/** Low 32 bits of the seconds as stored in i_*time (signed on disk). */
function timeLo(sec: number): number {
  return Number(BigInt.asIntN(32, BigInt(sec)));
}

/**
 * The latest time an inode holds: signed 32-bit seconds plus 2 epoch bits
 * (2446-05-10T22:38:55Z). Later times would wrap silently.
 */
export const EXT4_MAX_TIME = 2 ** 31 - 1 + 3 * 2 ** 32;

/** i_*time_extra: 2 epoch bits extending the signed 32-bit seconds, then nanoseconds << 2. */
export function timeExtra(sec: number, nsec: number): number {
  const epoch = Number((BigInt(sec) - BigInt(timeLo(sec))) >> 32n) & 3;
  return ((nsec << 2) | epoch) >>> 0;
}

// Offsets from the table above; the encoder writes them directly because it
// runs once per inode of trees with millions of entries.
const O = inode.offsets;

/** Writes a whole inode (with its checksum) into buf at `at`; `inodeSize` bytes, the tail left as given. */
export function encodeInode(buf: Buffer, at: number, f: InodeFields, ino: number, fsSeed: number, inodeSize: number): void {
  const t = timeLo(f.timeSec);
  const tx = timeExtra(f.timeSec, f.timeNsec);
  buf.writeUInt16LE(f.mode, at + O.i_mode);
  buf.writeUInt16LE(f.uid & 0xffff, at + O.i_uid);
  buf.writeUInt16LE(f.uid >>> 16, at + O.l_i_uid_high);
  buf.writeUInt16LE(f.gid & 0xffff, at + O.i_gid);
  buf.writeUInt16LE(f.gid >>> 16, at + O.l_i_gid_high);
  buf.writeUInt32LE(f.size >>> 0, at + O.i_size_lo);
  buf.writeUInt32LE(hi32(f.size), at + O.i_size_high);
  for (const k of [O.i_atime, O.i_ctime, O.i_mtime, O.i_crtime]) buf.writeInt32LE(t, at + k);
  for (const k of [O.i_atime_extra, O.i_ctime_extra, O.i_mtime_extra, O.i_crtime_extra]) buf.writeUInt32LE(tx, at + k);
  buf.writeUInt16LE(f.links, at + O.i_links_count);
  buf.writeUInt32LE(f.sectors >>> 0, at + O.i_blocks_lo);
  buf.writeUInt16LE(hi32(f.sectors), at + O.l_i_blocks_high);
  buf.writeUInt32LE(f.flags, at + O.i_flags);
  buf.set(f.block.subarray(0, 60), at + O.i_block);
  buf.writeUInt32LE(f.fileAcl >>> 0, at + O.i_file_acl_lo);
  buf.writeUInt16LE(hi32(f.fileAcl), at + O.l_i_file_acl_high);
  buf.writeUInt16LE(EXTRA_ISIZE, at + O.i_extra_isize);
  sealInode(buf, at, ino, 0, fsSeed, inodeSize);
}

/** Per-inode checksum seed: crc32c(fs seed, inode number, generation); also seeds extent, dir and dx blocks. */
export function inodeSeed(fsSeed: number, ino: number, generation: number): number {
  return crc32cU32(crc32cU32(fsSeed, ino), generation);
}

export function sealInode(buf: Buffer, at: number, ino: number, generation: number, fsSeed: number, inodeSize: number): void {
  buf.writeUInt16LE(0, at + 0x7c);
  const large = inodeSize > 128 && buf.readUInt16LE(at + 0x80) >= 4;
  if (large) buf.writeUInt16LE(0, at + 0x82);
  const c = crc32c(inodeSeed(fsSeed, ino, generation), buf, at, at + inodeSize);
  buf.writeUInt16LE(c & 0xffff, at + 0x7c);
  if (large) buf.writeUInt16LE(c >>> 16, at + 0x82);
}

// ---------------------------------------------------------------- decoding

const FL_HUGE_FILE = 0x40000;

/** Seconds and nanoseconds. */
export interface InodeTime {
  sec: number;
  nsec: number;
}

/** An on-disk inode, decoded. */
export interface Ext4Inode {
  ino: number;
  /** Type and permission bits. */
  mode: number;
  type: EntryType | 'unknown';
  uid: number;
  gid: number;
  size: number;
  links: number;
  /** Bytes the inode's blocks take (i_blocks in 512-byte or, with HUGE_FILE, filesystem-block units). */
  allocatedBytes: number;
  flags: number;
  generation: number;
  /** The xattr block, 0 for none. */
  fileAcl: number;
  extraIsize: number;
  atime: InodeTime;
  ctime: InodeTime;
  mtime: InodeTime;
  dtime: number;
  crtime?: InodeTime;
  projid?: number;
  /** i_block: extent root, block map, inline data, fast symlink target or device number. */
  iBlock: Buffer;
  /** The whole on-disk inode. */
  raw: Buffer;
}

/** The entry type of i_mode's type bits. */
export function typeOfMode(mode: number): EntryType | 'unknown' {
  switch (mode & 0o170000) {
    case 0o100000: return 'file';
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o020000: return 'chr';
    case 0o060000: return 'blk';
    case 0o010000: return 'fifo';
    case 0o140000: return 'sock';
    default: return 'unknown';
  }
}

/** Seconds and nanoseconds from a signed 32-bit i_*time and its _extra word (the inverse of timeLo and timeExtra). */
export function decodeTime(base: number, extra: number | undefined): InodeTime {
  if (extra === undefined) return { sec: base, nsec: 0 };
  return { sec: base + (extra & 3) * 2 ** 32, nsec: extra >>> 2 };
}

type InodeField = keyof typeof O;

/**
 * Decodes inode `ino` from `raw` (the whole on-disk inode: 128 bytes or more).
 * Fields of the extra part count only where i_extra_isize covers them; `hugeFile`
 * is the filesystem's huge_file feature (i_blocks_hi counts, in blocks with
 * EXT4_HUGE_FILE_FL).
 */
export function decodeInode(ino: number, raw: Buffer, blockSize: number, hugeFile: boolean): Ext4Inode {
  const extraIsize = raw.length > 128 ? raw.readUInt16LE(O.i_extra_isize) : 0;
  const has = (f: InodeField) => raw.length > 128 && O[f] + 4 <= 128 + extraIsize && O[f] + 4 <= raw.length;
  const u32 = (f: InodeField) => raw.readUInt32LE(O[f]);
  const u16 = (f: InodeField) => raw.readUInt16LE(O[f]);
  const s32 = (f: InodeField) => raw.readInt32LE(O[f]);
  const extra = (f: InodeField) => (has(f) ? u32(f) : undefined);
  const mode = u16('i_mode');
  const flags = u32('i_flags');
  const blocksRaw = u32('i_blocks_lo') + (hugeFile ? u16('l_i_blocks_high') * 2 ** 32 : 0);
  return {
    ino,
    mode,
    type: typeOfMode(mode),
    uid: u16('i_uid') + u16('l_i_uid_high') * 65536,
    gid: u16('i_gid') + u16('l_i_gid_high') * 65536,
    size: u32('i_size_lo') + u32('i_size_high') * 2 ** 32,
    links: u16('i_links_count'),
    allocatedBytes: flags & FL_HUGE_FILE ? blocksRaw * blockSize : blocksRaw * 512,
    flags,
    generation: u32('i_generation'),
    fileAcl: u32('i_file_acl_lo') + u16('l_i_file_acl_high') * 2 ** 32,
    extraIsize,
    atime: decodeTime(s32('i_atime'), extra('i_atime_extra')),
    ctime: decodeTime(s32('i_ctime'), extra('i_ctime_extra')),
    mtime: decodeTime(s32('i_mtime'), extra('i_mtime_extra')),
    dtime: u32('i_dtime'),
    crtime: has('i_crtime') ? decodeTime(s32('i_crtime'), extra('i_crtime_extra')) : undefined,
    projid: extra('i_projid'),
    iBlock: raw.subarray(O.i_block, O.i_block + 60),
    raw,
  };
}
