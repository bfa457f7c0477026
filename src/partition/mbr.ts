// Master Boot Record: https://en.wikipedia.org/wiki/Master_boot_record
// (classic generic MBR, "Partition table entries"), and UEFI 2.10 §5.2
// (legacy and protective MBR): https://uefi.org/specs/UEFI/2.10/05_GUID_Partition_Table_Format.html
import { defineStruct } from '../util/struct.ts';
import { MBR_TYPE } from './types.ts';

export const SECTOR = 512;

/** LBA 0. Field names as in UEFI Table 5.1 (Legacy MBR). */
export const MBR = defineStruct(SECTOR, [
  ['BootCode', 0, { bytes: 440 }],
  ['UniqueMBRDiskSignature', 440, 'u32'],
  ['Unknown', 444, 'u16'],
  ['PartitionRecord', 446, { bytes: 64 }],
  ['Signature', 510, 'u16'],
]);

/** One of the four 16-byte entries at 446. Names as in UEFI Table 5.2. */
export const MBR_PARTITION_RECORD = defineStruct(16, [
  ['BootIndicator', 0, 'u8'],
  ['StartingCHS', 1, { bytes: 3 }],
  ['OSType', 4, 'u8'],
  ['EndingCHS', 5, { bytes: 3 }],
  ['StartingLBA', 8, 'u32'],
  ['SizeInLBA', 12, 'u32'],
]);

// Nobody addresses disks by CHS any more, but the fields must still be filled.
// We do what fdisk does for a disk without a real geometry: 255 heads, 63 sectors.
const HEADS = 255;
const SECTORS = 63;

/**
 * The 3 CHS bytes (head, sector | cylinder high bits, cylinder low byte) for
 * `lba`, or `overflow` when the cylinder would be past 1023.
 */
export function chs(lba: number, overflow: readonly number[] = [0xfe, 0xff, 0xff]): Uint8Array {
  const c = Math.floor(lba / (HEADS * SECTORS));
  if (c > 1023) return Uint8Array.from(overflow);
  const h = Math.floor(lba / SECTORS) % HEADS;
  const s = (lba % SECTORS) + 1;
  return Uint8Array.of(h, s | ((c >> 2) & 0xc0), c & 0xff);
}

export interface MbrEntry {
  type: number;
  startLba: number;
  sectors: number;
  /** BootIndicator 0x80: the partition BIOS boot code chains to. */
  bootable?: boolean;
}

export interface MbrOptions {
  /** Up to four entries, in slot order. */
  entries: MbrEntry[];
  diskSignature?: number;
  /** Boot code; only the first 440 bytes are used (the rest of the sector is the table). */
  bootCode?: Uint8Array;
  /** End CHS for entries past cylinder 1023 (fdisk: FE FF FF; UEFI's protective MBR: FF FF FF). */
  chsOverflow?: readonly number[];
}

/** Encodes a 512-byte MBR. Callers validate ranges; this only lays bytes down. */
export function encodeMbr(opts: MbrOptions): Buffer {
  if (opts.entries.length > 4) throw new Error(`internal: ${opts.entries.length} MBR entries`);
  const buf = Buffer.alloc(SECTOR);
  if (opts.bootCode) buf.set(opts.bootCode.subarray(0, 440), 0);
  MBR.encode(buf, 0, { UniqueMBRDiskSignature: opts.diskSignature ?? 0, Unknown: 0, Signature: 0xaa55 });
  opts.entries.forEach((e, i) => {
    MBR_PARTITION_RECORD.encode(buf, MBR.offsetOf('PartitionRecord') + 16 * i, {
      BootIndicator: e.bootable ? 0x80 : 0,
      StartingCHS: chs(e.startLba, opts.chsOverflow),
      OSType: e.type,
      EndingCHS: chs(e.startLba + e.sectors - 1, opts.chsOverflow),
      StartingLBA: e.startLba,
      SizeInLBA: e.sectors,
    });
  });
  return buf;
}

/**
 * The protective MBR of a GPT disk (UEFI §5.2.3): one 0xEE entry from LBA 1
 * over the rest of the disk (capped at 32 bits), signature 0, not bootable;
 * unrepresentable CHS is FF FF FF as the spec says (sgdisk writes the same).
 */
export function protectiveMbr(diskSectors: number, bootCode?: Uint8Array): Buffer {
  return encodeMbr({
    entries: [{ type: MBR_TYPE.gptProtective, startLba: 1, sectors: Math.min(diskSectors - 1, 0xffffffff) }],
    bootCode,
    chsOverflow: [0xff, 0xff, 0xff],
  });
}
