// VHD (Connectix / Microsoft Virtual PC, "vpc" in qemu): fixed and dynamic.
// Microsoft, "Virtual Hard Disk Image Format Specification" v1.0 (2006):
// hard disk footer, dynamic disk header, block allocation table (BAT), data
// blocks (sector bitmap + data), checksum; CHS calculation in its appendix.
// https://www.microsoft.com/en-us/download/details.aspx?id=23850
//
// Every structure is big-endian. A format is a pure transform from the disk's
// extent map to the output file's extent map: the raw emitter then writes it
// in one forward pass, to a file (holes stay holes) or to a pipe.
//
// Layout of a dynamic VHD written here (what qemu writes too):
//   0     footer copy (512)
//   512   dynamic disk header (1024)
//   1536  BAT: one big-endian u32 per 2 MiB block, the sector of the block's
//         bitmap or 0xFFFFFFFF, padded to a whole sector
//   ...   per allocated block, ascending: sector bitmap (512 bytes, all 0xFF)
//         then the block's 2 MiB of data
//   end   footer (512)
// A fixed VHD is the disk's bytes followed by the footer.
//
// Identification chosen so that consumers agree on the size:
//   creator application "qem2", version 5.3, host OS "Wi2k" (what
//   `qemu-img convert -O vpc -o force_size=on` writes). qemu sizes a VHD by
//   its CHS geometry unless the creator is one that means "current size"
//   ("win ", "qem2", "d2v ", "CTXS", "tap\0") or the geometry is the maximum;
//   with "qem2" it takes Current Size, as Hyper-V, Azure and VirtualBox do,
//   so the virtual size is exactly the disk's size. The geometry field holds
//   the spec's CHS calculation for that size (qemu's force_size writes the
//   maximum 65535/16/255 instead; the real geometry keeps CHS-based readers
//   from seeing a disk larger than the data).
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { type FileExtent, type Image, type ImageExtent, finishImage } from '../image/extent-map.ts';
import { seededUuid } from '../util/ids.ts';
import { placed, planBlocks } from '../image/blocks.ts';
import { openForReading } from '../image/random-access.ts';
import { defineStruct, type Decoded } from '../util/struct.ts';

export interface IdOptions {
  /** Every UUID is seededUuid(seed, purpose). */
  seed: string;
  /** Unix seconds: every timestamp. */
  epoch: number;
}

export const SECTOR = 512;
const MiB = 1 << 20;
/** Dynamic VHD block size (the spec's default, what qemu and Hyper-V use). */
export const VHD_BLOCK_SIZE = 2 * MiB;
/** Largest virtual size: 2040 GiB (the spec's limit, qemu's VHD_MAX_SECTORS). */
export const VHD_MAX_SIZE = 0xff000000 * SECTOR;
/** Seconds from the Unix epoch to 2000-01-01 00:00:00 UTC, VHD's epoch. */
const VHD_EPOCH = 946684800;

export const VHD_TYPE_FIXED = 2;
export const VHD_TYPE_DYNAMIC = 3;
export const VHD_TYPE_DIFFERENCING = 4;

/** Hard disk footer (spec "Hard Disk Footer Format"), 512 bytes, big-endian. */
export const VHD_FOOTER = defineStruct(512, [
  ['Cookie', 0, { bytes: 8 }],
  ['Features', 8, 'u32'],
  ['FileFormatVersion', 12, 'u32'],
  ['DataOffset', 16, 'u64'],
  ['TimeStamp', 24, 'u32'],
  ['CreatorApplication', 28, { bytes: 4 }],
  ['CreatorVersion', 32, 'u32'],
  ['CreatorHostOS', 36, { bytes: 4 }],
  ['OriginalSize', 40, 'u64'],
  ['CurrentSize', 48, 'u64'],
  ['DiskGeometryCylinder', 56, 'u16'],
  ['DiskGeometryHeads', 58, 'u8'],
  ['DiskGeometrySectorsPerTrack', 59, 'u8'],
  ['DiskType', 60, 'u32'],
  ['Checksum', 64, 'u32'],
  ['UniqueId', 68, { bytes: 16 }],
  ['SavedState', 84, 'u8'],
  ['Reserved', 85, { bytes: 427 }],
], { bigEndian: true });

/** Dynamic disk header (spec "Dynamic Disk Header Format"), 1024 bytes, big-endian. */
export const VHD_DYNAMIC_HEADER = defineStruct(1024, [
  ['Cookie', 0, { bytes: 8 }],
  ['DataOffset', 8, 'u64'],
  ['TableOffset', 16, 'u64'],
  ['HeaderVersion', 24, 'u32'],
  ['MaxTableEntries', 28, 'u32'],
  ['BlockSize', 32, 'u32'],
  ['Checksum', 36, 'u32'],
  ['ParentUniqueID', 40, { bytes: 16 }],
  ['ParentTimeStamp', 56, 'u32'],
  ['Reserved1', 60, 'u32'],
  ['ParentUnicodeName', 64, { bytes: 512 }],
  ['ParentLocatorEntries', 576, { bytes: 192 }],
  ['Reserved2', 768, { bytes: 256 }],
], { bigEndian: true });

const FOOTER_COOKIE = Buffer.from('conectix', 'latin1');
const DYNAMIC_COOKIE = Buffer.from('cxsparse', 'latin1');
/** "Reserved" feature bit: the spec says it is always set. */
const FEATURES_RESERVED = 0x00000002;
const VERSION_1_0 = 0x00010000;
/** "No next structure" (0xFFFFFFFFFFFFFFFF). */
const NO_OFFSET = 0xffffffffffffffffn;
const CREATOR_APP = Buffer.from('qem2', 'latin1');
const CREATOR_VERSION = 0x00050003;
const CREATOR_OS = Buffer.from('Wi2k', 'latin1');
const FOOTER_OFFSET_DYNAMIC_HEADER = SECTOR;
const TABLE_OFFSET = SECTOR + VHD_DYNAMIC_HEADER.size;
const UNALLOCATED = 0xffffffff;
/** Creator applications for which qemu (and we) size the disk by Current Size, not CHS. */
const SIZE_BY_CURRENT_SIZE = ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0'];
/** The largest geometry the footer holds: 65535 cylinders, 16 heads, 255 sectors per track. */
const CHS_MAX = 65535 * 16 * 255;

/** One's complement of the byte sum, with the checksum field counted as zero. */
export function vhdChecksum(buf: Buffer, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += buf[i];
  return ~sum >>> 0;
}

// ---------------------------------------------------------------- geometry

export interface Chs {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

/**
 * CHS geometry for `totalSectors`, by the spec's appendix ("CHS
 * Calculation"), which qemu's calculate_geometry also follows. Sizes past
 * 65535/16/255 get that maximum.
 */
export function vhdGeometry(totalSectors: number): Chs {
  const sectors = Math.min(totalSectors, CHS_MAX);
  let spt: number;
  let heads: number;
  let cylTimesHeads: number;
  if (sectors >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cylTimesHeads = Math.floor(sectors / spt);
  } else {
    spt = 17;
    cylTimesHeads = Math.floor(sectors / spt);
    heads = Math.max(4, Math.ceil(cylTimesHeads / 1024));
    if (cylTimesHeads >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cylTimesHeads = Math.floor(sectors / spt);
    }
    if (cylTimesHeads >= heads * 1024) {
      spt = 63;
      heads = 16;
      cylTimesHeads = Math.floor(sectors / spt);
    }
  }
  return { cylinders: Math.floor(cylTimesHeads / heads), heads, sectorsPerTrack: spt };
}

// ---------------------------------------------------------------- writers

function vhdTimestamp(epoch: number): number {
  return Math.min(0xffffffff, Math.max(0, Math.floor(epoch - VHD_EPOCH)));
}

function vhdVirtualSize(diskSize: number, what: string): number {
  const size = Math.ceil(diskSize / SECTOR) * SECTOR;
  if (size > VHD_MAX_SIZE) {
    throw new DiskwrightError('TOO_LARGE', `the disk is ${diskSize} bytes; ${what} holds at most 2040 GiB (${VHD_MAX_SIZE} bytes); use qcow2 or raw`, { size: diskSize });
  }
  return size;
}

function footer(type: number, size: number, ids: IdOptions, dataOffset: number | bigint): Buffer {
  const buf = Buffer.alloc(VHD_FOOTER.size);
  const chs = vhdGeometry(size / SECTOR);
  VHD_FOOTER.encode(buf, 0, {
    Cookie: FOOTER_COOKIE,
    Features: FEATURES_RESERVED,
    FileFormatVersion: VERSION_1_0,
    DataOffset: dataOffset,
    TimeStamp: vhdTimestamp(ids.epoch),
    CreatorApplication: CREATOR_APP,
    CreatorVersion: CREATOR_VERSION,
    CreatorHostOS: CREATOR_OS,
    OriginalSize: size,
    CurrentSize: size,
    DiskGeometryCylinder: chs.cylinders,
    DiskGeometryHeads: chs.heads,
    DiskGeometrySectorsPerTrack: chs.sectorsPerTrack,
    DiskType: type,
    UniqueId: seededUuid(ids.seed, 'vhd unique id'),
    SavedState: 0,
  });
  VHD_FOOTER.encode(buf, 0, { Checksum: vhdChecksum(buf, VHD_FOOTER.offsetOf('Checksum')) });
  return buf;
}

/**
 * A dynamic VHD of `disk`: only the 2 MiB blocks that hold data are stored.
 * The virtual size is disk.size (rounded up to a whole sector).
 */
export function toVhdDynamic(disk: Image, ids: IdOptions): Image {
  const size = vhdVirtualSize(disk.size, 'a dynamic VHD');
  const entries = Math.ceil(size / VHD_BLOCK_SIZE);
  const batBytes = Math.ceil((entries * 4) / SECTOR) * SECTOR;
  const bat = Buffer.alloc(batBytes, 0xff);
  const foot = footer(VHD_TYPE_DYNAMIC, size, ids, FOOTER_OFFSET_DYNAMIC_HEADER);

  const header = Buffer.alloc(VHD_DYNAMIC_HEADER.size);
  VHD_DYNAMIC_HEADER.encode(header, 0, {
    Cookie: DYNAMIC_COOKIE,
    DataOffset: NO_OFFSET,
    TableOffset: TABLE_OFFSET,
    HeaderVersion: VERSION_1_0,
    MaxTableEntries: entries,
    BlockSize: VHD_BLOCK_SIZE,
  });
  VHD_DYNAMIC_HEADER.encode(header, 0, { Checksum: vhdChecksum(header, VHD_DYNAMIC_HEADER.offsetOf('Checksum')) });

  const out: ImageExtent[] = [
    { offset: 0, length: SECTOR, buffer: foot },
    { offset: FOOTER_OFFSET_DYNAMIC_HEADER, length: header.length, buffer: header },
  ];
  if (batBytes) out.push({ offset: TABLE_OFFSET, length: batBytes, buffer: bat });

  const bitmapSize = bitmapBytes(VHD_BLOCK_SIZE);
  const bitmap = Buffer.alloc(bitmapSize, 0xff);
  const plan = planBlocks(disk, VHD_BLOCK_SIZE);
  let pos = TABLE_OFFSET + batBytes;
  for (let i = 0; i < plan.blocks.length; i++) {
    const sector = pos / SECTOR;
    if (sector >= UNALLOCATED) throw new DiskwrightError('TOO_LARGE', 'the dynamic VHD would grow past 2 TiB, where its block table cannot point', { size: disk.size });
    bat.writeUInt32BE(sector, plan.blocks[i] * 4);
    out.push({ offset: pos, length: bitmapSize, buffer: bitmap });
    pos += bitmapSize;
    for (const p of plan.pieces[i]) out.push(placed(p, pos));
    pos += VHD_BLOCK_SIZE;
  }
  out.push({ offset: pos, length: SECTOR, buffer: foot });
  return { size: pos + SECTOR, extents: out };
}

/** Azure wants fixed VHDs whose virtual size is a whole number of MiB. */
export function azureVirtualSize(diskSize: number): number {
  return Math.ceil(diskSize / MiB) * MiB;
}

/**
 * A fixed VHD of `disk`, as Azure takes it: the virtual size is disk.size
 * rounded up to a whole MiB (the padding reads as zero), followed by the footer.
 */
export function toVhdFixed(disk: Image, ids: IdOptions): Image {
  const size = vhdVirtualSize(azureVirtualSize(disk.size), 'a fixed VHD');
  const extents: ImageExtent[] = disk.extents.map((e) => placed(e, 0));
  extents.push({ offset: size, length: SECTOR, buffer: footer(VHD_TYPE_FIXED, size, ids, NO_OFFSET) });
  return { size: size + SECTOR, extents };
}

/** Whether the first `n` bits of a sector bitmap are all set. */
function allSet(bitmap: Buffer, n: number): boolean {
  const whole = n >> 3;
  for (let i = 0; i < whole; i++) if (bitmap[i] !== 0xff) return false;
  const rest = n & 7;
  const mask = (0xff << (8 - rest)) & 0xff;
  return rest === 0 || (bitmap[whole] & mask) === mask;
}

function bitmapBytes(blockSize: number): number {
  return Math.ceil(blockSize / SECTOR / 8 / SECTOR) * SECTOR;
}

// ---------------------------------------------------------------- detection and reading

export function isVhd(head: Buffer, tail: Buffer): boolean {
  if (head.length >= 8 && head.subarray(0, 8).equals(FOOTER_COOKIE)) return true;
  return tail.length >= SECTOR && tail.subarray(tail.length - SECTOR, tail.length - SECTOR + 8).equals(FOOTER_COOKIE);
}

/** A short read returns fewer bytes; the caller decides whether that is truncation. */
export function readAt(fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const n = fs.readSync(fd, buf, done, len - done, pos + done);
    if (n <= 0) break;
    done += n;
  }
  return done === len ? buf : buf.subarray(0, done);
}

export function openImageFile(file: string): { fd: number; size: number } {
  const fd = openForReading(file);
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new DiskwrightError('SOURCE_UNREADABLE', `${file} is not a regular file; give the image file`, { path: file });
  }
  return { fd, size: st.size };
}

export function truncated(file: string, what: string): never {
  throw new DiskwrightError('SOURCE_UNREADABLE', `${file} is truncated: ${what}; the file is damaged or still being written`, { path: file });
}

function bad(file: string, what: string): never {
  throw new DiskwrightError('SOURCE_UNREADABLE', `${file} is not a valid VHD image: ${what}`, { path: file });
}

type VhdFooter = Decoded<typeof VHD_FOOTER.fields>;

function checkFooter(file: string, buf: Buffer, where: string): VhdFooter {
  const f = VHD_FOOTER.decode(buf, 0);
  if (vhdChecksum(buf, VHD_FOOTER.offsetOf('Checksum')) !== f.Checksum) bad(file, `the footer at its ${where} has a wrong checksum`);
  return f;
}

/** The virtual size as qemu computes it: CHS unless the creator means Current Size or the geometry is the maximum. */
function virtualSize(f: VhdFooter): number {
  const chs = f.DiskGeometryCylinder * f.DiskGeometryHeads * f.DiskGeometrySectorsPerTrack;
  const app = f.CreatorApplication.toString('latin1');
  if (SIZE_BY_CURRENT_SIZE.includes(app) || chs === CHS_MAX) return f.CurrentSize;
  return chs * SECTOR;
}

/**
 * The virtual disk inside a fixed or dynamic VHD: FileExtents into `file`
 * for the data it stores; everything else reads as zero. Sectors a dynamic
 * block's bitmap marks unused read as zero (most significant bit first, as
 * VirtualBox reads it). The virtual size follows qemu's rules.
 */
export function readVhd(file: string): Image {
  const { fd, size: fileSize } = openImageFile(file);
  try {
    const head = readAt(fd, 0, SECTOR);
    const tail = fileSize >= SECTOR ? readAt(fd, fileSize - SECTOR, SECTOR) : Buffer.alloc(0);
    const headIsFooter = head.length >= 8 && head.subarray(0, 8).equals(FOOTER_COOKIE);
    if (headIsFooter && head.length < SECTOR) truncated(file, `${fileSize} bytes, less than the 512-byte footer`);
    if (!isVhd(head, tail)) bad(file, 'no "conectix" footer at its start or end (a fixed VHD cut short loses its footer)');
    const pathBuf = Buffer.from(file);
    const extent = (offset: number, length: number, fileOffset: number): FileExtent => ({ offset, length, path: pathBuf, fileOffset, expectSize: fileSize });

    if (!headIsFooter) {
      const f = checkFooter(file, tail, 'end');
      if (f.DiskType !== VHD_TYPE_FIXED) bad(file, `the footer is only at its end but says disk type ${f.DiskType}, not fixed (2)`);
      const size = virtualSize(f);
      if (size > fileSize - SECTOR) truncated(file, `the disk is ${size} bytes but only ${fileSize - SECTOR} bytes of data precede the footer`);
      return finishImage(size, size ? [extent(0, size, 0)] : []);
    }

    const f = checkFooter(file, head, 'start');
    if (f.DiskType === VHD_TYPE_DIFFERENCING) bad(file, 'it is a differencing VHD (it needs its parent); only fixed and dynamic VHDs are read');
    if (f.DiskType !== VHD_TYPE_DYNAMIC) bad(file, `the footer at its start says disk type ${f.DiskType}, not dynamic (3)`);
    const size = virtualSize(f);
    if (!tail.subarray(0, 8).equals(FOOTER_COOKIE)) truncated(file, 'the footer at its end is missing');
    const dataEnd = fileSize - SECTOR;

    const hdrAt = f.DataOffset;
    if (!Number.isSafeInteger(hdrAt) || hdrAt + VHD_DYNAMIC_HEADER.size > dataEnd) truncated(file, `the dynamic disk header at ${hdrAt} lies past the end of the data (${dataEnd})`);
    const hb = readAt(fd, hdrAt, VHD_DYNAMIC_HEADER.size);
    const h = VHD_DYNAMIC_HEADER.decode(hb, 0);
    if (!h.Cookie.equals(DYNAMIC_COOKIE)) bad(file, `no "cxsparse" dynamic disk header at ${hdrAt}`);
    if (vhdChecksum(hb, VHD_DYNAMIC_HEADER.offsetOf('Checksum')) !== h.Checksum) bad(file, 'the dynamic disk header has a wrong checksum');
    const blockSize = h.BlockSize;
    if (blockSize < SECTOR || (blockSize & (blockSize - 1)) !== 0) bad(file, `block size ${blockSize} is not a power of two of at least 512`);
    const entries = h.MaxTableEntries;
    if (entries > VHD_MAX_SIZE / blockSize) bad(file, `its block table has ${entries} entries, more than 2040 GiB needs`);
    if (entries * blockSize < size) bad(file, `its block table (${entries} blocks of ${blockSize} bytes) is smaller than the disk (${size} bytes)`);
    const tableAt = h.TableOffset;
    if (!Number.isSafeInteger(tableAt) || tableAt + entries * 4 > dataEnd) truncated(file, `the block table (${entries} entries at ${tableAt}) runs past the end of the data (${dataEnd})`);
    const bat = readAt(fd, tableAt, entries * 4);

    const bmSize = bitmapBytes(blockSize);
    const extents: FileExtent[] = [];
    const used = Math.min(entries, Math.ceil(size / blockSize));
    for (let b = 0; b < used; b++) {
      const entry = bat.readUInt32BE(b * 4);
      if (entry === UNALLOCATED) continue;
      const start = b * blockSize;
      const len = Math.min(blockSize, size - start);
      const bitmapAt = entry * SECTOR;
      const dataAt = bitmapAt + bmSize;
      if (dataAt + len > dataEnd) truncated(file, `block ${b} (at ${bitmapAt}) runs past the end of the data (${dataEnd})`);
      const bitmap = readAt(fd, bitmapAt, bmSize);
      const lenSectors = Math.ceil(len / SECTOR);
      if (allSet(bitmap, lenSectors)) {
        extents.push(extent(start, len, dataAt));
        continue;
      }
      // Runs of set bits, most significant bit first.
      for (let s = 0; s < lenSectors; ) {
        const set = (bitmap[s >> 3] & (0x80 >> (s & 7))) !== 0;
        let t = s + 1;
        while (t < lenSectors && ((bitmap[t >> 3] & (0x80 >> (t & 7))) !== 0) === set) t++;
        if (set) {
          const from = s * SECTOR;
          const to = Math.min(t * SECTOR, len);
          extents.push(extent(start + from, to - from, dataAt + from));
        }
        s = t;
      }
    }
    return finishImage(size, extents);
  } finally {
    fs.closeSync(fd);
  }
}
