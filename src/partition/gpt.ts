// GUID Partition Table: UEFI 2.10 §5.3 (header Table 5.5, entry Table 5.6).
// https://uefi.org/specs/UEFI/2.10/05_GUID_Partition_Table_Format.html
// Fixed shape for 512-byte sectors: header at LBA 1, 128 entries of 128 bytes
// at LBA 2..33; the backup entries fill the 33 sectors before the backup
// header, which is the disk's last LBA.
import { crc32 } from 'node:zlib';
import type { BufferExtent } from '../image/extent-map.ts';
import { defineStruct } from '../util/struct.ts';
import { guidToBytes } from './guid.ts';
import { SECTOR } from './mbr.ts';

export const GPT_ENTRY_COUNT = 128;
export const GPT_ENTRY_SIZE = 128;
/** Sectors the entry array takes: 128 * 128 / 512. */
export const GPT_ENTRY_SECTORS = (GPT_ENTRY_COUNT * GPT_ENTRY_SIZE) / SECTOR;
/** LBA 0 (MBR) + LBA 1 (header) + the entry array: the first usable LBA. */
export const GPT_FIRST_USABLE_LBA = 2 + GPT_ENTRY_SECTORS;
/** Entry array + header at the end. */
export const GPT_BACKUP_SECTORS = GPT_ENTRY_SECTORS + 1;
/** Partition names are 36 UTF-16 code units. */
export const GPT_NAME_UNITS = 36;

/** Attribute bits (UEFI Table 5.8). */
export const GPT_ATTR = {
  requiredPartition: 1n << 0n,
  noBlockIoProtocol: 1n << 1n,
  legacyBiosBootable: 1n << 2n,
  // Discoverable Partitions Spec: type-specific bits systemd acts on.
  growFileSystem: 1n << 59n,
  readOnly: 1n << 60n,
  noAuto: 1n << 63n,
} as const;

export const GPT_HEADER = defineStruct(92, [
  ['Signature', 0, { bytes: 8 }],
  ['Revision', 8, 'u32'],
  ['HeaderSize', 12, 'u32'],
  ['HeaderCRC32', 16, 'u32'],
  ['Reserved', 20, 'u32'],
  ['MyLBA', 24, 'u64'],
  ['AlternateLBA', 32, 'u64'],
  ['FirstUsableLBA', 40, 'u64'],
  ['LastUsableLBA', 48, 'u64'],
  ['DiskGUID', 56, { bytes: 16 }],
  ['PartitionEntryLBA', 72, 'u64'],
  ['NumberOfPartitionEntries', 80, 'u32'],
  ['SizeOfPartitionEntry', 84, 'u32'],
  ['PartitionEntryArrayCRC32', 88, 'u32'],
]);

export const GPT_ENTRY = defineStruct(GPT_ENTRY_SIZE, [
  ['PartitionTypeGUID', 0, { bytes: 16 }],
  ['UniquePartitionGUID', 16, { bytes: 16 }],
  ['StartingLBA', 32, 'u64'],
  ['EndingLBA', 40, 'u64'],
  // u64 attribute bits go up to 63, past what a JS number holds exactly.
  ['Attributes', 48, { bytes: 8 }],
  ['PartitionName', 56, { bytes: 72 }],
]);

const SIGNATURE = Buffer.from('EFI PART', 'latin1');
const REVISION_1_0 = 0x00010000;

export interface GptEntry {
  typeGuid: string;
  guid: string;
  /** Inclusive, in sectors. */
  firstLba: number;
  lastLba: number;
  attributes: bigint;
  /** At most 36 UTF-16 code units. */
  name: string;
}

export interface GptOptions {
  diskSectors: number;
  diskGuid: string;
  /** Partition n is entries[n-1]; unused slots stay zero. */
  entries: GptEntry[];
  /** LBA 0: the protective or hybrid MBR. */
  mbr: Buffer;
}

/** The 128-entry array (16 KiB). */
export function encodeEntries(entries: GptEntry[]): Buffer {
  if (entries.length > GPT_ENTRY_COUNT) throw new Error(`internal: ${entries.length} GPT entries`);
  const buf = Buffer.alloc(GPT_ENTRY_COUNT * GPT_ENTRY_SIZE);
  entries.forEach((e, i) => {
    const attrs = Buffer.alloc(8);
    attrs.writeBigUInt64LE(e.attributes);
    GPT_ENTRY.encode(buf, i * GPT_ENTRY_SIZE, {
      PartitionTypeGUID: guidToBytes(e.typeGuid),
      UniquePartitionGUID: guidToBytes(e.guid),
      StartingLBA: e.firstLba,
      EndingLBA: e.lastLba,
      Attributes: attrs,
      PartitionName: Buffer.from(e.name, 'utf16le'),
    });
  });
  return buf;
}

/** One 512-byte header sector; `primary` picks MyLBA/AlternateLBA/PartitionEntryLBA. */
export function encodeHeader(diskSectors: number, diskGuid: string, entriesCrc: number, primary: boolean): Buffer {
  const last = diskSectors - 1;
  const buf = Buffer.alloc(SECTOR);
  GPT_HEADER.encode(buf, 0, {
    Signature: SIGNATURE,
    Revision: REVISION_1_0,
    HeaderSize: GPT_HEADER.size,
    HeaderCRC32: 0, // the CRC covers the header with this field zeroed
    Reserved: 0,
    MyLBA: primary ? 1 : last,
    AlternateLBA: primary ? last : 1,
    FirstUsableLBA: GPT_FIRST_USABLE_LBA,
    LastUsableLBA: last - GPT_BACKUP_SECTORS,
    DiskGUID: guidToBytes(diskGuid),
    PartitionEntryLBA: primary ? 2 : last - GPT_ENTRY_SECTORS,
    NumberOfPartitionEntries: GPT_ENTRY_COUNT,
    SizeOfPartitionEntry: GPT_ENTRY_SIZE,
    PartitionEntryArrayCRC32: entriesCrc,
  });
  GPT_HEADER.encode(buf, 0, { HeaderCRC32: crc32(buf.subarray(0, GPT_HEADER.size)) });
  return buf;
}

/**
 * The whole table as two extents: LBA 0..33 (MBR, primary header, entries)
 * and the last 33 sectors (backup entries, backup header).
 */
export function encodeGpt(opts: GptOptions): BufferExtent[] {
  const entries = encodeEntries(opts.entries);
  const crc = crc32(entries);
  const head = Buffer.concat([opts.mbr, encodeHeader(opts.diskSectors, opts.diskGuid, crc, true), entries]);
  const tail = Buffer.concat([entries, encodeHeader(opts.diskSectors, opts.diskGuid, crc, false)]);
  return [
    { offset: 0, length: head.length, buffer: head },
    { offset: (opts.diskSectors - GPT_BACKUP_SECTORS) * SECTOR, length: tail.length, buffer: tail },
  ];
}
