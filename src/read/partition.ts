// Partition table reader: MBR (with extended/logical partitions, protective and
// hybrid) and GPT (both headers and the entry arrays, CRC-checked; a broken
// primary falls back to the backup with a warning).
// Specs: UEFI 2.10 §5.2 (legacy/protective MBR) and §5.3 (GPT header, entries)
// https://uefi.org/specs/UEFI/2.10/05_GUID_Partition_Table_Format.html ;
// extended partitions (EBR chains): https://en.wikipedia.org/wiki/Extended_boot_record
import { crc32 } from 'node:zlib';
import { DiskwrightError } from '../errors.ts';
import { GPT_HEADER, GPT_ENTRY } from '../partition/gpt.ts';
import { bytesToGuid } from '../partition/guid.ts';
import { MBR, MBR_PARTITION_RECORD } from '../partition/mbr.ts';
import { gptTypeName, mbrTypeName, MBR_TYPE } from '../partition/types.ts';
import { type ByteSource, readAt, subSource } from './source.ts';

export type TableKind = 'mbr' | 'gpt' | 'hybrid';

/** One partition, as Linux numbers it (sda1, sda5 for the first logical one). */
export interface PartitionEntry {
  /** 1-based: the GPT entry slot + 1; MBR slots 1-4, logical partitions from 5. */
  index: number;
  /** Bytes from the start of the disk. */
  start: number;
  size: number;
  startLba: number;
  sectors: number;
  /** GPT: the type GUID (upper case); MBR: the type byte in hex as sfdisk prints it ("83", "c"). */
  type: string;
  /** "EFI System", "Linux filesystem", "W95 FAT32 (LBA)", ... or "unknown". */
  typeName: string;
  typeGuid?: string;
  mbrType?: number;
  /** GPT partition name (UTF-16 up to the first NUL). */
  name?: string;
  /** GPT unique partition GUID. */
  guid?: string;
  /** GPT attribute bits. */
  attributes?: bigint;
  /** Attribute names as sfdisk prints them: RequiredPartition, NoBlockIOProtocol, LegacyBIOSBootable, GUID:52,... */
  attributeNames: string[];
  /** MBR 0x80; on a hybrid disk, the flag of the MBR entry that mirrors this partition. */
  bootable: boolean;
  /** MBR: an extended partition (the container of logical ones). */
  extended?: boolean;
  /** MBR: a logical partition inside an extended one. */
  logical?: boolean;
}

/** A raw MBR partition record (primary slots, and logical ones from EBRs). */
export interface MbrRecord {
  /** Slot 1-4; logical partitions 5+. */
  slot: number;
  status: number;
  type: number;
  startLba: number;
  sectors: number;
  startChs: Buffer;
  endChs: Buffer;
}

export interface GptHeaderInfo {
  /** Where the header was looked for. */
  lba: number;
  valid: boolean;
  /** Why it is not valid (empty when it is). */
  problems: string[];
  revision: number;
  headerSize: number;
  headerCrc: number;
  myLba: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entriesCrc: number;
}

export interface PartitionTable {
  kind: TableKind;
  sectorSize: number;
  /** Bytes of the disk the table was read from. */
  diskSize: number;
  /** GPT disk GUID. */
  diskGuid?: string;
  /** MBR UniqueMBRDiskSignature (also present, usually 0, on GPT disks). */
  diskSignature: number;
  partitions: PartitionEntry[];
  /** LBA 0 as read: every non-empty primary record (0xEE and extended ones too), then logical ones. */
  mbr: { records: MbrRecord[] };
  gpt?: {
    primary: GptHeaderInfo;
    backup: GptHeaderInfo;
    /** Which copy the partitions come from. */
    used: 'primary' | 'backup';
    firstUsableLba: number;
    lastUsableLba: number;
  };
  /** Problems that did not stop reading, one line each (a broken primary GPT, ...). */
  warnings: string[];
}

const GPT_SIGNATURE = Buffer.from('EFI PART', 'latin1');
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
const RECORD_AT = MBR.offsetOf('PartitionRecord');

function corrupt(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('IMAGE_CORRUPT', message, data);
}

function decodeRecord(sector: Buffer, i: number, slot: number): MbrRecord {
  const r = MBR_PARTITION_RECORD.decode(sector, RECORD_AT + 16 * i);
  return {
    slot,
    status: r.BootIndicator,
    type: r.OSType,
    startLba: r.StartingLBA,
    sectors: r.SizeInLBA,
    startChs: r.StartingCHS,
    endChs: r.EndingCHS,
  };
}

/**
 * True when LBA 0 is a filesystem's boot sector rather than an MBR: a FAT or
 * NTFS BPB (jump instruction, power-of-two sector size, sane cluster size).
 */
export function looksLikeBootSector(s: Buffer): boolean {
  if (!(s[0] === 0xeb || s[0] === 0xe9)) return false;
  const bps = s.readUInt16LE(11);
  const spc = s[13];
  if (![512, 1024, 2048, 4096].includes(bps)) return false;
  if (spc === 0 || (spc & (spc - 1)) !== 0) return false;
  const oem = s.subarray(3, 11).toString('latin1');
  if (oem === 'NTFS    ' || oem.startsWith('EXFAT')) return true;
  return s.readUInt16LE(14) >= 1 && s[16] >= 1; // reserved sectors and FAT count
}

/** The MBR records of LBA 0 when they form a plausible table; null otherwise. */
function primaryRecords(lba0: Buffer, diskSectors: number): MbrRecord[] | null {
  if (lba0.readUInt16LE(510) !== 0xaa55) return null;
  const records: MbrRecord[] = [];
  for (let i = 0; i < 4; i++) {
    const r = decodeRecord(lba0, i, i + 1);
    if (r.status !== 0 && r.status !== 0x80) return null;
    if (r.type === 0) continue;
    if (r.sectors === 0 || r.startLba === 0) return null;
    // Past the disk's end: a protective 0xEE entry may claim more (a grown disk), others are garbage.
    if (r.type !== MBR_TYPE.gptProtective && r.startLba >= diskSectors) return null;
    records.push(r);
  }
  return records;
}

/**
 * Reads the disk's partition table. Returns null when there is none: no
 * 0x55AA signature, a filesystem boot sector at LBA 0 (a bare FAT volume), or
 * no partitions at all. Throws IMAGE_CORRUPT when a GPT is present but both
 * headers are broken, IMAGE_TRUNCATED when the table lies past the end.
 */
export function readPartitionTable(src: ByteSource): PartitionTable | null {
  if (src.size < 512) return null;
  const lba0 = readAt(src, 0, 512, 'MBR');
  // GPT first: 512-byte sectors, then 4 KiB ones.
  for (const sectorSize of [512, 4096]) {
    if (src.size < sectorSize * 2) continue;
    const h = readAt(src, sectorSize, 8, 'GPT header');
    if (h.equals(GPT_SIGNATURE)) return readGpt(src, lba0, sectorSize);
  }
  if (looksLikeBootSector(lba0)) return null;
  const diskSectors = Math.floor(src.size / 512);
  const records = primaryRecords(lba0, diskSectors);
  if (!records || records.length === 0) return null;
  if (records.some((r) => r.type === MBR_TYPE.gptProtective)) {
    // A protective MBR without a primary GPT header: look for the backup.
    return readGpt(src, lba0, 512);
  }
  return readMbr(src, lba0, records);
}

function mbrPartition(r: MbrRecord, index: number, sectorSize: number, extra: Partial<PartitionEntry> = {}): PartitionEntry {
  return {
    index,
    start: r.startLba * sectorSize,
    size: r.sectors * sectorSize,
    startLba: r.startLba,
    sectors: r.sectors,
    type: r.type.toString(16),
    typeName: mbrTypeName(r.type),
    mbrType: r.type,
    attributeNames: [],
    bootable: r.status === 0x80,
    ...extra,
  };
}

function readMbr(src: ByteSource, lba0: Buffer, records: MbrRecord[]): PartitionTable {
  const warnings: string[] = [];
  const partitions: PartitionEntry[] = [];
  const all = [...records];
  for (const r of records) {
    const ext = EXTENDED_TYPES.has(r.type);
    partitions.push(mbrPartition(r, r.slot, 512, ext ? { extended: true } : {}));
  }
  const ext = records.filter((r) => EXTENDED_TYPES.has(r.type));
  if (ext.length > 1) warnings.push(`MBR has ${ext.length} extended partitions; only the first is read`);
  if (ext.length > 0) {
    const base = ext[0].startLba;
    const seen = new Set<number>();
    let ebr = base;
    let slot = 5;
    while (true) {
      if (seen.has(ebr) || seen.size > 1024) {
        warnings.push(`extended partition: EBR chain loops at LBA ${ebr}; stopped`);
        break;
      }
      seen.add(ebr);
      if ((ebr + 1) * 512 > src.size) {
        warnings.push(`extended partition: EBR at LBA ${ebr} lies past the end of the image`);
        break;
      }
      const s = readAt(src, ebr * 512, 512, 'EBR');
      if (s.readUInt16LE(510) !== 0xaa55) {
        if (ebr !== base) warnings.push(`extended partition: EBR at LBA ${ebr} has no 0x55AA signature`);
        break;
      }
      const logical = decodeRecord(s, 0, slot);
      const next = decodeRecord(s, 1, 0);
      if (logical.type !== 0 && logical.sectors > 0) {
        const abs = { ...logical, startLba: ebr + logical.startLba };
        all.push(abs);
        partitions.push(mbrPartition(abs, slot, 512, { logical: true }));
        slot++;
      }
      if (next.type === 0 || next.startLba === 0) break;
      ebr = base + next.startLba;
    }
  }
  partitions.sort((a, b) => a.index - b.index);
  const diskSignature = MBR.decode(lba0, 0).UniqueMBRDiskSignature;
  return { kind: 'mbr', sectorSize: 512, diskSize: src.size, diskSignature, partitions, mbr: { records: all }, warnings };
}

function decodeHeader(src: ByteSource, lba: number, sectorSize: number, expectMyLba: number): GptHeaderInfo {
  const info: GptHeaderInfo = {
    lba, valid: false, problems: [], revision: 0, headerSize: 0, headerCrc: 0, myLba: 0, alternateLba: 0,
    firstUsableLba: 0, lastUsableLba: 0, diskGuid: '', entriesLba: 0, entryCount: 0, entrySize: 0, entriesCrc: 0,
  };
  if (lba < 1 || (lba + 1) * sectorSize > src.size) {
    info.problems.push(`LBA ${lba} lies past the end of the image`);
    return info;
  }
  const s = readAt(src, lba * sectorSize, sectorSize, 'GPT header');
  const h = GPT_HEADER.decode(s, 0);
  if (!h.Signature.equals(GPT_SIGNATURE)) {
    info.problems.push('no "EFI PART" signature');
    return info;
  }
  info.revision = h.Revision;
  info.headerSize = h.HeaderSize;
  info.headerCrc = h.HeaderCRC32;
  info.myLba = h.MyLBA;
  info.alternateLba = h.AlternateLBA;
  info.firstUsableLba = h.FirstUsableLBA;
  info.lastUsableLba = h.LastUsableLBA;
  info.diskGuid = bytesToGuid(h.DiskGUID);
  info.entriesLba = h.PartitionEntryLBA;
  info.entryCount = h.NumberOfPartitionEntries;
  info.entrySize = h.SizeOfPartitionEntry;
  info.entriesCrc = h.PartitionEntryArrayCRC32;
  if (info.headerSize < GPT_HEADER.size || info.headerSize > sectorSize) {
    info.problems.push(`header size ${info.headerSize} is not ${GPT_HEADER.size}..${sectorSize}`);
    return info;
  }
  const copy = Buffer.from(s.subarray(0, info.headerSize));
  copy.writeUInt32LE(0, 16);
  const crc = crc32(copy);
  if (crc !== info.headerCrc) info.problems.push(`header CRC32 is 0x${hex8(info.headerCrc)}, computed 0x${hex8(crc)}`);
  if (info.myLba !== expectMyLba) info.problems.push(`MyLBA is ${info.myLba}, expected ${expectMyLba}`);
  if (info.entrySize < 128 || info.entrySize % 8 !== 0 || info.entrySize > 4096) info.problems.push(`entry size ${info.entrySize} is not a multiple of 8 from 128`);
  if (info.entryCount === 0 || info.entryCount > 65536) info.problems.push(`entry count ${info.entryCount} is out of range`);
  if (info.firstUsableLba > info.lastUsableLba + 1) info.problems.push(`first usable LBA ${info.firstUsableLba} is after the last ${info.lastUsableLba}`);
  if (info.problems.length === 0) {
    const bytes = info.entryCount * info.entrySize;
    if (info.entriesLba * sectorSize + bytes > src.size) {
      info.problems.push(`entry array at LBA ${info.entriesLba} lies past the end of the image`);
    } else {
      const arr = readAt(src, info.entriesLba * sectorSize, bytes, 'GPT entry array');
      const ecrc = crc32(arr);
      if (ecrc !== info.entriesCrc) info.problems.push(`entry array CRC32 is 0x${hex8(info.entriesCrc)}, computed 0x${hex8(ecrc)}`);
    }
  }
  info.valid = info.problems.length === 0;
  return info;
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** sfdisk's names for GPT attribute bits. */
export function gptAttributeNames(attrs: bigint): string[] {
  const out: string[] = [];
  if (attrs & 1n) out.push('RequiredPartition');
  if (attrs & 2n) out.push('NoBlockIOProtocol');
  if (attrs & 4n) out.push('LegacyBIOSBootable');
  const guidBits: number[] = [];
  for (let b = 48; b < 64; b++) if ((attrs >> BigInt(b)) & 1n) guidBits.push(b);
  if (guidBits.length) out.push(`GUID:${guidBits.join(',')}`);
  return out;
}

function readGpt(src: ByteSource, lba0: Buffer, sectorSize: number): PartitionTable {
  const warnings: string[] = [];
  const lastLba = Math.floor(src.size / sectorSize) - 1;
  const primary = decodeHeader(src, 1, sectorSize, 1);
  // The backup: where the primary says, else at the last LBA.
  let backupLba = primary.valid ? primary.alternateLba : lastLba;
  let backup = decodeHeader(src, backupLba, sectorSize, backupLba);
  if (!backup.valid && backupLba !== lastLba) {
    const atEnd = decodeHeader(src, lastLba, sectorSize, lastLba);
    if (atEnd.valid) {
      backup = atEnd;
      backupLba = lastLba;
    }
  }
  let used: 'primary' | 'backup';
  let h: GptHeaderInfo;
  if (primary.valid) {
    used = 'primary';
    h = primary;
    if (!backup.valid) warnings.push(`backup GPT header at LBA ${backupLba} is invalid (${backup.problems.join('; ')}); using the primary`);
    else if (backup.entriesCrc !== primary.entriesCrc || backup.diskGuid !== primary.diskGuid) {
      warnings.push('primary and backup GPT differ; using the primary');
    }
    if (primary.alternateLba !== lastLba) warnings.push(`backup GPT header is at LBA ${primary.alternateLba}, not at the disk's last LBA ${lastLba} (was the image resized?)`);
  } else if (backup.valid) {
    used = 'backup';
    h = backup;
    warnings.push(`primary GPT header is invalid (${primary.problems.join('; ')}); using the backup at LBA ${backupLba}`);
  } else {
    corrupt(
      `GPT: both headers are invalid: primary (${primary.problems.join('; ')}), backup at LBA ${backupLba} (${backup.problems.join('; ')})`,
      { primary: primary.problems, backup: backup.problems },
    );
  }
  const arr = readAt(src, h.entriesLba * sectorSize, h.entryCount * h.entrySize, 'GPT entry array');
  const partitions: PartitionEntry[] = [];
  const diskSectors = lastLba + 1;
  for (let i = 0; i < h.entryCount; i++) {
    const e = GPT_ENTRY.decode(arr, i * h.entrySize);
    const typeBytes = e.PartitionTypeGUID;
    if (typeBytes.every((b) => b === 0)) continue;
    const first = e.StartingLBA;
    const last = e.EndingLBA;
    const attributes = e.Attributes.readBigUInt64LE(0);
    const typeGuid = bytesToGuid(typeBytes);
    const nameRaw = e.PartitionName;
    let end = 0;
    while (end < nameRaw.length && nameRaw.readUInt16LE(end) !== 0) end += 2;
    if (last < first) warnings.push(`GPT entry ${i + 1}: ending LBA ${last} is before its start ${first}`);
    if (first < h.firstUsableLba || last > h.lastUsableLba) warnings.push(`GPT entry ${i + 1}: LBA ${first}..${last} lies outside the usable range ${h.firstUsableLba}..${h.lastUsableLba}`);
    const sectors = Math.max(0, last - first + 1);
    partitions.push({
      index: i + 1,
      start: first * sectorSize,
      size: sectors * sectorSize,
      startLba: first,
      sectors,
      type: typeGuid,
      typeName: gptTypeName(typeGuid),
      typeGuid,
      name: nameRaw.subarray(0, end).toString('utf16le'),
      guid: bytesToGuid(e.UniquePartitionGUID),
      attributes,
      attributeNames: gptAttributeNames(attributes),
      bootable: false,
    });
  }
  // LBA 0: protective (one 0xEE entry) or hybrid (0xEE plus mirrors of GPT partitions).
  const records = primaryRecords(lba0, diskSectors) ?? [];
  const diskSignature = lba0.readUInt16LE(510) === 0xaa55 ? MBR.decode(lba0, 0).UniqueMBRDiskSignature : 0;
  const protective = records.filter((r) => r.type === MBR_TYPE.gptProtective);
  const others = records.filter((r) => r.type !== MBR_TYPE.gptProtective);
  if (lba0.readUInt16LE(510) !== 0xaa55) warnings.push('LBA 0 has no MBR signature (0x55AA): no protective MBR');
  else if (protective.length === 0) warnings.push('the MBR has no 0xEE entry: not a valid protective MBR');
  const kind: TableKind = others.length > 0 && protective.length > 0 ? 'hybrid' : 'gpt';
  if (kind === 'hybrid') {
    for (const r of others) {
      const p = partitions.find((q) => q.startLba === r.startLba);
      if (!p) {
        warnings.push(`hybrid MBR slot ${r.slot} (LBA ${r.startLba}, type ${r.type.toString(16)}) mirrors no GPT partition`);
        continue;
      }
      if (p.sectors !== r.sectors) warnings.push(`hybrid MBR slot ${r.slot} and GPT partition ${p.index} differ in size`);
      p.bootable = r.status === 0x80;
      p.mbrType = r.type;
    }
  }
  return {
    kind,
    sectorSize,
    diskSize: src.size,
    diskGuid: h.diskGuid,
    diskSignature,
    partitions,
    mbr: { records },
    gpt: { primary, backup, used, firstUsableLba: h.firstUsableLba, lastUsableLba: h.lastUsableLba },
    warnings,
  };
}

/** The partition's bytes as a source of their own. */
export function partitionSource(disk: ByteSource, p: PartitionEntry): ByteSource {
  return subSource(disk, p.start, p.size, `partition ${p.index}`);
}

/**
 * The partition a user named: a number ("2", as in IMAGE:2) or a GPT
 * partition name. Throws PARTITION_NOT_FOUND with the choices otherwise.
 */
export function findPartition(table: PartitionTable | null, spec: string | number): PartitionEntry {
  const parts = (table?.partitions ?? []).filter((p) => !p.extended);
  const list = parts.map((p) => (p.name ? `${p.index} (${p.name})` : String(p.index))).join(', ');
  const byNumber = typeof spec === 'number' || /^\d+$/.test(spec);
  const hit = byNumber ? parts.find((p) => p.index === Number(spec)) : parts.find((p) => p.name === spec);
  if (hit) return hit;
  if (!table) {
    throw new DiskwrightError('PARTITION_NOT_FOUND', `partition ${spec}: the image has no partition table`, { spec });
  }
  throw new DiskwrightError(
    'PARTITION_NOT_FOUND',
    `partition ${spec} not found; the image has ${parts.length === 0 ? 'no partitions' : `partition${parts.length === 1 ? '' : 's'} ${list}`}`,
    { spec, partitions: parts.map((p) => p.index) },
  );
}
