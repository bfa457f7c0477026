// VDI (VirtualBox Disk Image), header version 1.1, dynamic.
// Layout as VirtualBox's VDICore.h declares it (VDIPREHEADER + VDIHEADER1PLUS)
// and qemu's block/vdi.c reads it; all fields little-endian.
// https://www.virtualbox.org/browser/vbox/trunk/src/VBox/Storage/VDICore.h
//
// Layout written here:
//   0        pre-header (text, signature, version) and header, 512 bytes
//   512      block map: one u32 per 1 MiB block, its index among the stored
//            blocks or 0xFFFFFFFF (never written)
//   next MiB stored blocks, 1 MiB each, in disk order (the data starts on a
//            MiB boundary as in VirtualBox's own images, so blocks are
//            aligned in the file; the gap before it is a hole)
// Geometry fields: zero cylinders/heads/sectors (as qemu writes; VirtualBox
// then picks a geometry itself) with 512-byte sectors. No timestamps exist in
// the format. Create and modify UUIDs come from the seed; link and parent
// UUIDs stay zero (not a differencing image).
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { type FileExtent, type Image, type ImageExtent, finishImage } from '../image/extent-map.ts';
import { seededUuid } from '../util/ids.ts';
import { defineStruct } from '../util/struct.ts';
import { type IdOptions, SECTOR, openImageFile, readAt, truncated } from './vhd.ts';
import { placed, planBlocks } from '../image/blocks.ts';

export type { IdOptions };

const MiB = 1 << 20;
export const VDI_BLOCK_SIZE = MiB;

/** VDIPREHEADER + VDIHEADER1PLUS, offsets from the start of the file. */
export const VDI_HEADER = defineStruct(512, [
  ['szFileInfo', 0x000, { bytes: 64 }],
  ['u32Signature', 0x040, 'u32'],
  ['u32Version', 0x044, 'u32'],
  ['cbHeader', 0x048, 'u32'],
  ['u32Type', 0x04c, 'u32'],
  ['fFlags', 0x050, 'u32'],
  ['szComment', 0x054, { bytes: 256 }],
  ['offBlocks', 0x154, 'u32'],
  ['offData', 0x158, 'u32'],
  ['LegacyGeometry_cCylinders', 0x15c, 'u32'],
  ['LegacyGeometry_cHeads', 0x160, 'u32'],
  ['LegacyGeometry_cSectors', 0x164, 'u32'],
  ['LegacyGeometry_cbSector', 0x168, 'u32'],
  ['u32Dummy', 0x16c, 'u32'],
  ['cbDisk', 0x170, 'u64'],
  ['cbBlock', 0x178, 'u32'],
  ['cbBlockExtra', 0x17c, 'u32'],
  ['cBlocks', 0x180, 'u32'],
  ['cBlocksAllocated', 0x184, 'u32'],
  ['uuidCreate', 0x188, { bytes: 16 }],
  ['uuidModify', 0x198, { bytes: 16 }],
  ['uuidLinkage', 0x1a8, { bytes: 16 }],
  ['uuidParentModify', 0x1b8, { bytes: 16 }],
  ['LCHSGeometry_cCylinders', 0x1c8, 'u32'],
  ['LCHSGeometry_cHeads', 0x1cc, 'u32'],
  ['LCHSGeometry_cSectors', 0x1d0, 'u32'],
  ['LCHSGeometry_cbSector', 0x1d4, 'u32'],
]);

const TEXT = Buffer.from('<<< Oracle VM VirtualBox Disk Image >>>\n', 'latin1');
export const VDI_SIGNATURE = 0xbeda107f;
const VERSION_1_1 = 0x00010001;
/** sizeof(VDIHEADER1PLUS): from cbHeader through LCHSGeometry. */
const HEADER_1PLUS_SIZE = 0x190;
/** sizeof(VDIHEADER1): the smallest 1.1 header. */
const HEADER_1_SIZE = 0x180;
const TYPE_NORMAL = 1; // dynamic
const TYPE_FIXED = 2;
const TYPE_UNDO = 3;
const TYPE_DIFF = 4;
const BLOCK_FREE = 0xffffffff;
const BLOCK_ZERO = 0xfffffffe;
const BLOCKS_OFFSET = 512;
/** qemu's limit (VDI_BLOCKS_IN_IMAGE_MAX): the block map stays under 4 GiB. */
const MAX_BLOCKS = 0x3fffffff;

/** RFC 4122 byte order to VirtualBox's (first three fields little-endian), and back. */
function swapUuid(u: Buffer): Buffer {
  const b = Buffer.from(u);
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/**
 * A dynamic VDI of `disk`: only the 1 MiB blocks that hold data are stored,
 * in disk order. The virtual size is disk.size (rounded up to a whole sector).
 */
export function toVdi(disk: Image, ids: IdOptions): Image {
  const size = Math.ceil(disk.size / SECTOR) * SECTOR;
  const blocks = Math.ceil(size / VDI_BLOCK_SIZE);
  const mapBytes = blocks * 4;
  const offData = Math.ceil((BLOCKS_OFFSET + mapBytes) / MiB) * MiB;
  if (blocks > MAX_BLOCKS || offData > 0xffffffff) {
    throw new DiskwrightError('TOO_LARGE', `the disk is ${disk.size} bytes; a VDI's block map holds fewer than 2^30 blocks of 1 MiB; use qcow2 or raw`, { size: disk.size });
  }
  const map = Buffer.alloc(mapBytes, 0xff);
  const plan = planBlocks(disk, VDI_BLOCK_SIZE);

  const header = Buffer.alloc(VDI_HEADER.size);
  VDI_HEADER.encode(header, 0, {
    szFileInfo: TEXT,
    u32Signature: VDI_SIGNATURE,
    u32Version: VERSION_1_1,
    cbHeader: HEADER_1PLUS_SIZE,
    u32Type: TYPE_NORMAL,
    fFlags: 0,
    offBlocks: BLOCKS_OFFSET,
    offData,
    LegacyGeometry_cbSector: SECTOR,
    cbDisk: size,
    cbBlock: VDI_BLOCK_SIZE,
    cbBlockExtra: 0,
    cBlocks: blocks,
    cBlocksAllocated: plan.blocks.length,
    uuidCreate: swapUuid(seededUuid(ids.seed, 'vdi create uuid')),
    uuidModify: swapUuid(seededUuid(ids.seed, 'vdi modify uuid')),
    LCHSGeometry_cbSector: SECTOR,
  });

  const out: ImageExtent[] = [{ offset: 0, length: header.length, buffer: header }];
  if (mapBytes) out.push({ offset: BLOCKS_OFFSET, length: mapBytes, buffer: map });
  let pos = offData;
  for (let i = 0; i < plan.blocks.length; i++) {
    map.writeUInt32LE(i, plan.blocks[i] * 4);
    for (const p of plan.pieces[i]) out.push(placed(p, pos));
    pos += VDI_BLOCK_SIZE;
  }
  return { size: pos, extents: out };
}

export function isVdi(head: Buffer): boolean {
  return head.length >= 0x44 && head.readUInt32LE(0x40) === VDI_SIGNATURE;
}

function bad(file: string, what: string): never {
  throw new DiskwrightError('SOURCE_UNREADABLE', `${file} is not a valid VDI image: ${what}`, { path: file });
}

/**
 * The virtual disk inside a VDI (version 1.1, dynamic or fixed): FileExtents
 * into `file` for the blocks it stores; free and zero blocks read as zero.
 */
export function readVdi(file: string): Image {
  const { fd, size: fileSize } = openImageFile(file);
  try {
    const head = readAt(fd, 0, VDI_HEADER.size);
    if (!isVdi(head)) bad(file, `no VDI signature 0x${VDI_SIGNATURE.toString(16)} at offset 0x40`);
    if (head.length < 0x48 + HEADER_1_SIZE) truncated(file, `${fileSize} bytes, less than its header`);
    const version = head.readUInt32LE(0x44);
    if (version !== VERSION_1_1) bad(file, `header version ${version >>> 16}.${version & 0xffff} is not 1.1`);
    const cbHeader = head.readUInt32LE(0x48);
    if (cbHeader < HEADER_1_SIZE) bad(file, `header size ${cbHeader} is below the ${HEADER_1_SIZE} bytes of a 1.1 header`);
    const h = VDI_HEADER.decode(Buffer.concat([head, Buffer.alloc(VDI_HEADER.size - head.length)]), 0);
    const type = h.u32Type;
    if (type === TYPE_DIFF || type === TYPE_UNDO) bad(file, 'it is a differencing image (it needs its parent); only normal and fixed VDIs are read');
    if (type !== TYPE_NORMAL && type !== TYPE_FIXED) bad(file, `unknown image type ${type}`);
    const size = h.cbDisk;
    const blockSize = h.cbBlock;
    const extra = h.cbBlockExtra;
    const blocks = h.cBlocks;
    if (blockSize === 0 || blockSize % SECTOR !== 0) bad(file, `block size ${blockSize} is not a multiple of 512`);
    if (!Number.isSafeInteger(size) || size > blocks * blockSize) bad(file, `the disk (${size} bytes) is larger than its ${blocks} blocks of ${blockSize} bytes`);
    const offBlocks = h.offBlocks;
    const offData = h.offData;
    if (offBlocks + blocks * 4 > fileSize) truncated(file, `the block map (${blocks} entries at ${offBlocks}) runs past its end (${fileSize})`);
    const map = readAt(fd, offBlocks, blocks * 4);

    const pathBuf = Buffer.from(file);
    const extents: FileExtent[] = [];
    const used = Math.min(blocks, Math.ceil(size / blockSize));
    for (let b = 0; b < used; b++) {
      const entry = map.readUInt32LE(b * 4);
      if (entry === BLOCK_FREE || entry === BLOCK_ZERO) continue;
      const start = b * blockSize;
      const len = Math.min(blockSize, size - start);
      const at = offData + entry * (blockSize + extra) + extra;
      if (at + len > fileSize) truncated(file, `block ${b} (stored block ${entry}, at ${at}) runs past its end (${fileSize})`);
      extents.push({ offset: start, length: len, path: pathBuf, fileOffset: at, expectSize: fileSize });
    }
    return finishImage(size, extents);
  } finally {
    fs.closeSync(fd);
  }
}
