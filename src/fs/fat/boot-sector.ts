// Boot sector and BIOS Parameter Block. Spec: fatgen103 section 3.1 (BPB common
// to all FAT types), 3.2 (FAT12/16 extended fields at offset 36) and 3.3 (FAT32
// extended fields at offset 36).
import { defineStruct, type Decoded } from '../../util/struct.ts';
import { BACKUP_BOOT_SECTOR, DRIVE_NUMBER, EXT_BOOT_SIG, FSINFO_SECTOR, MEDIA, NUM_FATS, ROOT_CLUSTER, SECTOR } from './constants.ts';
import type { FatGeometry } from './geometry.ts';

export const BPB = defineStruct(36, [
  ['BS_jmpBoot', 0, { bytes: 3 }],
  ['BS_OEMName', 3, { bytes: 8 }],
  ['BPB_BytsPerSec', 11, 'u16'],
  ['BPB_SecPerClus', 13, 'u8'],
  ['BPB_RsvdSecCnt', 14, 'u16'],
  ['BPB_NumFATs', 16, 'u8'],
  ['BPB_RootEntCnt', 17, 'u16'],
  ['BPB_TotSec16', 19, 'u16'],
  ['BPB_Media', 21, 'u8'],
  ['BPB_FATSz16', 22, 'u16'],
  ['BPB_SecPerTrk', 24, 'u16'],
  ['BPB_NumHeads', 26, 'u16'],
  ['BPB_HiddSec', 28, 'u32'],
  ['BPB_TotSec32', 32, 'u32'],
]);

/** FAT12/16: the extended boot record follows the BPB directly. */
export const EBPB16 = defineStruct(62 - 36, [
  ['BS_DrvNum', 0, 'u8'],
  ['BS_Reserved1', 1, 'u8'],
  ['BS_BootSig', 2, 'u8'],
  ['BS_VolID', 3, 'u32'],
  ['BS_VolLab', 7, { bytes: 11 }],
  ['BS_FilSysType', 18, { bytes: 8 }],
]);

/** FAT32: FAT32-only BPB fields, then the same extended boot record at 64. */
export const EBPB32 = defineStruct(90 - 36, [
  ['BPB_FATSz32', 0, 'u32'],
  ['BPB_ExtFlags', 4, 'u16'],
  ['BPB_FSVer', 6, 'u16'],
  ['BPB_RootClus', 8, 'u32'],
  ['BPB_FSInfo', 12, 'u16'],
  ['BPB_BkBootSec', 14, 'u16'],
  ['BPB_Reserved', 16, { bytes: 12 }],
  ['BS_DrvNum', 28, 'u8'],
  ['BS_Reserved1', 29, 'u8'],
  ['BS_BootSig', 30, 'u8'],
  ['BS_VolID', 31, 'u32'],
  ['BS_VolLab', 35, { bytes: 11 }],
  ['BS_FilSysType', 46, { bytes: 8 }],
]);

/** Offset 510: 0x55 0xAA ends the boot sector (and the FSInfo sector). */
export const SIGNATURE_OFFSET = 510;

/**
 * Boot code for a volume nobody should boot: `int 18h` asks the BIOS for the
 * next boot device; if it returns, halt forever (`hlt; jmp $-1`).
 */
const BOOT_CODE = Buffer.from([0xcd, 0x18, 0xf4, 0xeb, 0xfd]);

export interface BootIds {
  volumeId: number;
  /** 11 bytes, space padded; "NO NAME    " when there is no label. */
  label: Buffer;
  hiddenSectors: number;
}

export function encodeBootSector(g: FatGeometry, ids: BootIds): Buffer {
  const b = Buffer.alloc(SECTOR);
  const is32 = g.fatType === 32;
  const codeAt = is32 ? 90 : 62;
  // A short jump over the BPB to the boot code, then a NOP (fatgen103 3.1: EB xx 90).
  BPB.encode(b, 0, {
    BS_jmpBoot: Buffer.from([0xeb, codeAt - 2, 0x90]),
    // fatgen103 recommends this OEM name: some old drivers check it.
    BS_OEMName: Buffer.from('MSWIN4.1', 'latin1'),
    BPB_BytsPerSec: SECTOR,
    BPB_SecPerClus: g.sectorsPerCluster,
    BPB_RsvdSecCnt: g.reservedSectors,
    BPB_NumFATs: NUM_FATS,
    BPB_RootEntCnt: g.rootEntries,
    BPB_TotSec16: g.totalSectors < 65536 ? g.totalSectors : 0,
    BPB_Media: MEDIA,
    BPB_FATSz16: is32 ? 0 : g.fatSectors,
    BPB_SecPerTrk: g.secPerTrack,
    BPB_NumHeads: g.heads,
    BPB_HiddSec: ids.hiddenSectors,
    BPB_TotSec32: g.totalSectors < 65536 ? 0 : g.totalSectors,
  });
  const ext = {
    BS_DrvNum: DRIVE_NUMBER,
    BS_Reserved1: 0,
    BS_BootSig: EXT_BOOT_SIG,
    BS_VolID: ids.volumeId,
    BS_VolLab: ids.label,
    // Informational only: readers determine the type from the cluster count.
    BS_FilSysType: Buffer.from(`FAT${g.fatType}   `, 'latin1'),
  };
  if (is32) {
    EBPB32.encode(b, BPB.size, {
      BPB_FATSz32: g.fatSectors,
      BPB_ExtFlags: 0, // FATs mirrored
      BPB_FSVer: 0,
      BPB_RootClus: ROOT_CLUSTER,
      BPB_FSInfo: FSINFO_SECTOR,
      BPB_BkBootSec: BACKUP_BOOT_SECTOR,
      ...ext,
    });
  } else {
    EBPB16.encode(b, BPB.size, ext);
  }
  BOOT_CODE.copy(b, codeAt);
  b[SIGNATURE_OFFSET] = 0x55;
  b[SIGNATURE_OFFSET + 1] = 0xaa;
  return b;
}

// ---------------------------------------------------------------- decoding

/** A boot sector's BPB and the extension its FAT type has: FAT32's when BPB_FATSz16 is 0 (fatgen103 3.3). */
export type BootSector =
  | { bpb: Decoded<typeof BPB.fields>; is32: true; ext: Decoded<typeof EBPB32.fields> }
  | { bpb: Decoded<typeof BPB.fields>; is32: false; ext: Decoded<typeof EBPB16.fields> };

export function decodeBootSector(s: Buffer): BootSector {
  const bpb = BPB.decode(s, 0);
  return bpb.BPB_FATSz16 === 0 ? { bpb, is32: true, ext: EBPB32.decode(s, BPB.size) } : { bpb, is32: false, ext: EBPB16.decode(s, BPB.size) };
}

/**
 * True when the sector holds a FAT BPB a reader can work from: a jump (or
 * zero), a power-of-two sector size and cluster size, reserved sectors, FATs,
 * sizes, a media byte, and not NTFS (which shares the layout's start).
 */
export function looksLikeFat(s: Buffer): boolean {
  if (s.length < SECTOR) return false;
  const { bpb, ext, is32 } = decodeBootSector(s);
  const jmp = bpb.BS_jmpBoot[0];
  if (!(jmp === 0xeb || jmp === 0xe9 || jmp === 0x00)) return false;
  if (![512, 1024, 2048, 4096].includes(bpb.BPB_BytsPerSec)) return false;
  const spc = bpb.BPB_SecPerClus;
  if (spc === 0 || (spc & (spc - 1)) !== 0) return false;
  if (bpb.BPB_RsvdSecCnt === 0 || bpb.BPB_NumFATs === 0) return false;
  if ((bpb.BPB_TotSec16 || bpb.BPB_TotSec32) === 0 || (is32 ? ext.BPB_FATSz32 : bpb.BPB_FATSz16) === 0) return false;
  if (bpb.BS_OEMName.toString('latin1') === 'NTFS    ') return false;
  return bpb.BPB_Media === 0xf0 || bpb.BPB_Media >= 0xf8;
}
