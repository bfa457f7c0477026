// The partition-table model the build layer uses: partitions in bytes in,
// validated MBR / GPT / hybrid extents out. Specs: UEFI 2.10 §5.2-5.3
// https://uefi.org/specs/UEFI/2.10/05_GUID_Partition_Table_Format.html ;
// hybrid MBR as gdisk makes it: https://www.rodsbooks.com/gdisk/hybrid.html
import { DiskwrightError } from '../errors.ts';
import type { ImageExtent } from '../image/extent-map.ts';
import { seededU32 } from '../util/ids.ts';
import { encodeGpt, GPT_ATTR, GPT_BACKUP_SECTORS, GPT_ENTRY_COUNT, GPT_FIRST_USABLE_LBA, GPT_NAME_UNITS } from './gpt.ts';
import { guidToBytes, isGuid, seededGuid } from './guid.ts';
import { encodeMbr, type MbrEntry, protectiveMbr, SECTOR } from './mbr.ts';
import { GPT_TYPE, MBR_TYPE, mbrTypeForGpt } from './types.ts';

export interface PartitionSpec {
  /** GPT partition name (ignored for MBR). */
  name: string;
  /** Bytes, 512-aligned. */
  start: number;
  /** Bytes, a multiple of 512. */
  size: number;
  /** GPT type; default Linux filesystem data. */
  typeGuid?: string;
  /** MBR type; default derived from typeGuid (0x83 when neither is given). */
  mbrType?: number;
  /** GPT unique partition GUID; default seeded from TableSpec.seed. */
  guid?: string;
  /** MBR 0x80 flag: needs an MBR entry (kind mbr, or listed in hybridMbr). */
  bootable?: boolean;
  /** GPT attribute bit 2, read by BIOS boot code that boots from GPT. */
  legacyBiosBootable?: boolean;
  /** GPT attribute bit 0: firmware needs this partition; tools should not delete it. */
  required?: boolean;
  /** Further GPT attribute bits (59 grow-file-system, 60 read-only, 63 no-auto: Discoverable Partitions). */
  attributes?: bigint;
}

export interface TableSpec {
  kind: 'mbr' | 'gpt' | 'hybrid';
  diskSize: number;
  /** GPT disk GUID; default seeded. */
  diskGuid?: string;
  /** MBR disk signature; default seeded for mbr, 0 for hybrid; ignored for gpt (a protective MBR keeps 0, UEFI §5.2.3). */
  diskSignature?: number;
  partitions: PartitionSpec[];
  /** Indices of partitions mirrored in a hybrid MBR, in MBR slot order after the 0xEE entry. */
  hybridMbr?: number[];
  /** Build seed for GUIDs and signatures not given. */
  seed?: string;
  /** BIOS boot code for LBA 0 (first 440 bytes used), e.g. GRUB's boot.img. */
  bootCode?: Uint8Array;
}

/** Space the MBR, primary GPT header and entries take at the disk's start. */
export const GPT_HEADER_BYTES = GPT_FIRST_USABLE_LBA * SECTOR;
/** Space the backup GPT takes at the disk's end. */
export const GPT_FOOTER_BYTES = GPT_BACKUP_SECTORS * SECTOR;

const U32 = 0xffffffff;

function fail(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('PARTITION_INVALID', message, data);
}

const label = (p: PartitionSpec, i: number) => `partition ${i + 1} ("${p.name}")`;

/** The identities a table gets: given ones, else seeded ones. */
export interface TableIds {
  /** GPT kinds only. */
  diskGuid?: string;
  /** MBR kinds only. */
  diskSignature?: number;
  /** GPT kinds only, one per partition. */
  partitionGuids: string[];
}

export function resolveIds(spec: TableSpec): TableIds {
  const need = (what: string): string => spec.seed ?? fail(`${what} not given and no seed to derive it from`);
  if (spec.kind === 'mbr') {
    return { diskSignature: spec.diskSignature ?? seededU32(need('disk signature'), 'mbr disk signature'), partitionGuids: [] };
  }
  return {
    diskGuid: spec.diskGuid ?? seededGuid(need('disk GUID'), 'gpt disk guid'),
    diskSignature: spec.kind === 'hybrid' ? (spec.diskSignature ?? 0) : undefined,
    partitionGuids: spec.partitions.map((p, i) => p.guid ?? seededGuid(need(`${label(p, i)} GUID`), `gpt part ${i + 1}`)),
  };
}

/** Indices of partitions that get an MBR entry (all for mbr, hybridMbr for hybrid). */
function mbrIndices(spec: TableSpec): number[] {
  const n = spec.partitions.length;
  if (spec.kind === 'mbr') {
    if (n > 4) fail(`${n} partitions; an MBR holds at most 4`);
    return spec.partitions.map((_, i) => i);
  }
  if (spec.kind === 'gpt') return [];
  const h = spec.hybridMbr ?? [];
  if (h.length < 1 || h.length > 3) fail(`a hybrid MBR mirrors 1 to 3 GPT partitions (hybridMbr has ${h.length}); the 0xEE entry takes the fourth slot`);
  h.forEach((i, k) => {
    if (!Number.isInteger(i) || i < 0 || i >= n) fail(`hybridMbr[${k}] = ${i} is not a partition index (0..${n - 1})`);
    if (h.indexOf(i) !== k) fail(`hybridMbr lists partition index ${i} twice`);
  });
  return h;
}

function mbrTypeOf(p: PartitionSpec, i: number): number {
  const t = p.mbrType ?? (p.typeGuid === undefined ? MBR_TYPE.linux : mbrTypeForGpt(p.typeGuid));
  if (t === undefined) fail(`${label(p, i)}: no MBR type for GPT type ${p.typeGuid}; give mbrType`);
  if (!Number.isInteger(t) || t < 1 || t > 0xff) fail(`${label(p, i)}: MBR type ${t} is not 0x01..0xff`);
  return t;
}

/**
 * The table's extents for a disk of spec.diskSize bytes: one sector for an
 * MBR; for GPT kinds, LBA 0..33 and the last 33 sectors. Throws
 * DiskwrightError('PARTITION_INVALID') on anything the tools would reject.
 */
export function encodeTable(spec: TableSpec): ImageExtent[] {
  const { kind, diskSize, partitions: parts } = spec;
  if (kind !== 'mbr' && kind !== 'gpt' && kind !== 'hybrid') fail(`unknown partition table kind "${kind}"; use mbr, gpt or hybrid`);
  if (!Number.isSafeInteger(diskSize) || diskSize <= 0 || diskSize % SECTOR) fail(`disk size ${diskSize} is not a positive multiple of 512 bytes`);
  const sectors = diskSize / SECTOR;
  const isGpt = kind !== 'mbr';
  // MBR partitions may start right after LBA 0; GPT ones only between the two tables.
  const firstLba = isGpt ? GPT_FIRST_USABLE_LBA : 1;
  const lastLba = isGpt ? sectors - 1 - GPT_BACKUP_SECTORS : sectors - 1;
  if (lastLba < firstLba) fail(`disk size ${diskSize} is too small for a ${kind} partition table`);
  if (isGpt && parts.length > GPT_ENTRY_COUNT) fail(`${parts.length} partitions; a GPT holds at most ${GPT_ENTRY_COUNT}`);
  if (kind !== 'hybrid' && spec.hybridMbr !== undefined) fail(`hybridMbr applies to kind "hybrid" only`);
  if (spec.diskSignature !== undefined && !(Number.isInteger(spec.diskSignature) && spec.diskSignature >= 0 && spec.diskSignature <= U32)) {
    fail(`disk signature ${spec.diskSignature} is not a 32-bit unsigned number`);
  }
  if (spec.diskGuid !== undefined && !isGuid(spec.diskGuid)) fail(`disk GUID "${spec.diskGuid}" is not 8-4-4-4-12 hex digits`);
  const inMbr = mbrIndices(spec);

  parts.forEach((p, i) => {
    const what = label(p, i);
    if (!Number.isSafeInteger(p.start) || p.start < 0 || p.start % SECTOR) fail(`${what}: start ${p.start} is not a multiple of 512 bytes`);
    if (!Number.isSafeInteger(p.size) || p.size <= 0 || p.size % SECTOR) fail(`${what}: size ${p.size} is not a positive multiple of 512 bytes`);
    const first = p.start / SECTOR;
    const last = first + p.size / SECTOR - 1;
    if (first < firstLba || last > lastLba) {
      fail(`${what}: bytes ${p.start}..${p.start + p.size} lie outside the usable area ${firstLba * SECTOR}..${(lastLba + 1) * SECTOR}`, { index: i });
    }
    const mirrored = inMbr.includes(i);
    if (mirrored) {
      if (first > U32 || p.size / SECTOR > U32) fail(`${what}: an MBR entry holds 32-bit sector numbers; it must start and measure below 2 TiB`, { index: i });
      mbrTypeOf(p, i);
    }
    if (p.bootable && !mirrored) fail(`${what}: bootable is the MBR 0x80 flag but the partition has no MBR entry; use legacyBiosBootable for GPT`, { index: i });
    if (!isGpt && (p.legacyBiosBootable || p.required || p.attributes)) fail(`${what}: legacyBiosBootable, required and attribute bits are GPT attributes; an MBR has nowhere to keep them`, { index: i });
    if (isGpt) {
      if (p.typeGuid !== undefined && (!isGuid(p.typeGuid) || guidToBytes(p.typeGuid).every((b) => b === 0))) fail(`${what}: type GUID "${p.typeGuid}" is not a non-zero 8-4-4-4-12 GUID`, { index: i });
      if (p.guid !== undefined && !isGuid(p.guid)) fail(`${what}: GUID "${p.guid}" is not 8-4-4-4-12 hex digits`, { index: i });
      if (p.name.length > GPT_NAME_UNITS || p.name.includes('\0')) fail(`${what}: a GPT name is at most ${GPT_NAME_UNITS} UTF-16 code units with no NUL`, { index: i });
    }
  });
  if (parts.filter((p) => p.bootable).length > 1) fail(`more than one partition is bootable; BIOS boot code chains to one`);

  const order = parts.map((_, i) => i).sort((a, b) => parts[a].start - parts[b].start);
  for (let k = 1; k < order.length; k++) {
    const a = order[k - 1];
    const b = order[k];
    if (parts[a].start + parts[a].size > parts[b].start) fail(`${label(parts[a], a)} and ${label(parts[b], b)} overlap`);
  }

  const ids = resolveIds(spec);
  const mbrEntries: MbrEntry[] = inMbr.map((i) => ({
    type: mbrTypeOf(parts[i], i),
    startLba: parts[i].start / SECTOR,
    sectors: parts[i].size / SECTOR,
    bootable: parts[i].bootable,
  }));
  if (kind === 'mbr') {
    const mbr = encodeMbr({ entries: mbrEntries, diskSignature: ids.diskSignature, bootCode: spec.bootCode });
    return [{ offset: 0, length: SECTOR, buffer: mbr }];
  }

  const guids = [ids.diskGuid as string, ...ids.partitionGuids].map((g) => guidToBytes(g).toString('hex'));
  const dup = guids.findIndex((g, k) => guids.indexOf(g) !== k);
  if (dup >= 0) fail(`GUID ${[ids.diskGuid, ...ids.partitionGuids][dup]!.toUpperCase()} is used twice; every GPT GUID must be unique`);

  let mbr: Buffer;
  if (kind === 'gpt') mbr = protectiveMbr(sectors, spec.bootCode);
  else {
    // gdisk's "0xEE first" hybrid: the protective entry covers LBA 1 up to the
    // first mirrored partition, so GPT-only space before it (BIOS boot,
    // the GPT itself) stays claimed; GRUB wants 0xEE first.
    const firstMirrored = Math.min(...mbrEntries.map((e) => e.startLba));
    const ee: MbrEntry = { type: MBR_TYPE.gptProtective, startLba: 1, sectors: firstMirrored - 1 };
    mbr = encodeMbr({ entries: [ee, ...mbrEntries], diskSignature: ids.diskSignature, bootCode: spec.bootCode });
  }
  return encodeGpt({
    diskSectors: sectors,
    diskGuid: ids.diskGuid as string,
    mbr,
    entries: parts.map((p, i) => ({
      typeGuid: p.typeGuid ?? GPT_TYPE.linuxData,
      guid: ids.partitionGuids[i],
      firstLba: p.start / SECTOR,
      lastLba: (p.start + p.size) / SECTOR - 1,
      attributes: (p.required ? GPT_ATTR.requiredPartition : 0n) | (p.legacyBiosBootable ? GPT_ATTR.legacyBiosBootable : 0n) | (p.attributes ?? 0n),
      name: p.name,
    })),
  });
}
