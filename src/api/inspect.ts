// `inspect`: what an image is and holds, from the readers alone: container
// format and sizes, the partition table, and each filesystem's figures.
import * as fs from 'node:fs';
import { isLazyExtent } from '../image/extent-map.ts';
import { detectFilesystem, openFilesystem, readPartitionTable, selectVolume } from '../read/index.ts';
import { driverOf } from '../fs/drivers.ts';
import type { InspectExt4 } from '../fs/ext4/driver.ts';
import type { InspectFat } from '../fs/fat/driver.ts';

export type { InspectExt4, InspectFat };
import { findPartition, type PartitionEntry, partitionSource, type PartitionTable } from '../read/partition.ts';
import type { ByteSource } from '../read/source.ts';
import type { FsReader, FsSummary } from '../read/entry.ts';
import { openDisk, type OpenedDisk, parseImageArg, type ReadOptions, withInput } from './volume.ts';
import { isEfiVarStore, summarizeEfiVars, type EfiVarsSummary } from '../boot/efi-vars.ts';

/** A partition as the reader sees it (PartitionEntry), numbers written for JSON. */
export interface InspectPartition extends Omit<PartitionEntry, 'index' | 'typeGuid' | 'attributes' | 'mbrType'> {
  /** PartitionEntry.index: as Linux numbers it. */
  number: number;
  /** GPT attribute bits as 0x + 16 hex digits. */
  attributes?: string;
  /** The MBR type byte on MBR and hybrid disks, e.g. "0x83". */
  mbrType?: string;
}

export interface InspectTable {
  kind: 'mbr' | 'gpt' | 'hybrid';
  sectorSize: number;
  diskGuid?: string;
  /** The MBR disk signature, 0x + 8 hex digits. */
  diskSignature: string;
  firstUsableLba?: number;
  lastUsableLba?: number;
  /** Which GPT copy the partitions were read from. */
  gptCopy?: 'primary' | 'backup';
  partitions: InspectPartition[];
}

/** The reader's summary (FsSummary) with used counts and per-filesystem detail. */
export interface InspectFilesystem extends FsSummary {
  /** The partition number, null for a bare filesystem. */
  partition: number | null;
  usedBlocks: number;
  usedInodes?: number;
  ext4?: InspectExt4;
  fat?: InspectFat;
}

export interface InspectResult {
  path: string;
  /** raw, qcow2, vdi, vpc (VHD) or zstd (raw inside a .zst). */
  format: string;
  /** "qcow2", "qcow2 (compressed clusters)", "fixed VHD", "dynamic VHD", "VDI", "raw", "raw, zstd-compressed". */
  description: string;
  /** qcow2: how many clusters are stored compressed. */
  compressedClusters?: number;
  virtualSize: number;
  /** The image file: its apparent size and the bytes it occupies on disk. */
  fileSize: number;
  allocatedSize: number;
  /**
   * Bytes of the virtual disk the container stores: its allocated data
   * clusters or blocks (raw: the file's allocated bytes). null for .zst,
   * where finding out means decoding everything.
   */
  dataSize: number | null;
  table: InspectTable | null;
  filesystems: InspectFilesystem[];
  /** A firmware's variable store (OVMF_VARS.fd): its variables. */
  efiVariables?: EfiVarsSummary;
  warnings: string[];
}

const hex = (n: number | bigint, digits: number) => `0x${n.toString(16).padStart(digits, '0')}`;

export function describePartition(p: PartitionEntry, t: PartitionTable): InspectPartition {
  const out: InspectPartition = {
    number: p.index,
    start: p.start,
    size: p.size,
    startLba: p.startLba,
    sectors: p.sectors,
    type: p.type,
    typeName: p.typeName,
    attributeNames: p.attributeNames,
    bootable: p.bootable,
  };
  if (p.name !== undefined) out.name = p.name;
  if (p.guid !== undefined) out.guid = p.guid;
  if (p.attributes !== undefined) out.attributes = hex(p.attributes, 16);
  if (p.mbrType !== undefined && t.kind !== 'gpt') out.mbrType = hex(p.mbrType, 2);
  if (p.extended) out.extended = true;
  if (p.logical) out.logical = true;
  return out;
}

export function describeTable(t: PartitionTable): InspectTable {
  const out: InspectTable = {
    kind: t.kind,
    sectorSize: t.sectorSize,
    diskSignature: hex(t.diskSignature, 8),
    partitions: t.partitions.map((p) => describePartition(p, t)),
  };
  if (t.diskGuid) out.diskGuid = t.diskGuid;
  if (t.gpt) {
    out.firstUsableLba = t.gpt.firstUsableLba;
    out.lastUsableLba = t.gpt.lastUsableLba;
    out.gptCopy = t.gpt.used;
  }
  return out;
}

/** One filesystem's figures. */
export function describeFilesystem(src: ByteSource, partition: number | null, what: string): InspectFilesystem {
  return describeReader(withInput(what, () => openFilesystem(src, what)), partition, what);
}

export function describeReader(reader: FsReader, partition: number | null, what: string): InspectFilesystem {
  const s = reader.summary();
  const out: InspectFilesystem = {
    partition,
    type: s.type,
    label: s.label,
    uuid: s.uuid,
    size: s.size,
    blockSize: s.blockSize,
    blocks: s.blocks,
    usedBlocks: s.blocks - s.freeBlocks,
    freeBlocks: s.freeBlocks,
    features: s.features,
  };
  if (s.inodes !== undefined) {
    out.inodes = s.inodes;
    out.usedInodes = s.inodes - (s.freeInodes ?? 0);
    out.freeInodes = s.freeInodes;
  }
  // What only this filesystem has: its driver says.
  Object.assign(out, withInput(what, () => driverOf(reader).describe(reader)));
  return out;
}

/**
 * Inspects IMAGE or IMAGE:PART (then only that partition's filesystem is
 * described). Warnings (a broken primary GPT, ...) are returned, not printed.
 */
export function inspectImage(arg: string, opts: ReadOptions = {}): InspectResult {
  const { path, part } = parseImageArg(arg);
  const img = openDisk(path, opts);
  try {
    // Whatever the readers meet names the image; a partition's own errors already name it.
    return withInput(path, () => inspectDisk(img, path, part));
  } finally {
    img.close();
  }
}

function inspectDisk(img: OpenedDisk, path: string, part: string | undefined): InspectResult {
  const disk = img.disk;
  const st = fs.statSync(path);
  let dataSize: number | null = null;
  let compressedClusters: number | undefined;
  if (disk.format === 'raw') dataSize = Math.min(st.blocks * 512, disk.size);
  else if (disk.format !== 'zstd') {
    const stored = disk.stored();
    dataSize = 0;
    let lazy = 0;
    for (const e of stored.extents) {
      dataSize += e.length;
      if (isLazyExtent(e)) lazy++;
    }
    if (disk.format === 'qcow2') compressedClusters = lazy;
  }
  const table = readPartitionTable(img.source);
  const result: InspectResult = {
    path,
    format: disk.format,
    description: disk.format === 'qcow2' && compressedClusters ? 'qcow2 (compressed clusters)' : disk.description,
    virtualSize: disk.size,
    fileSize: st.size,
    allocatedSize: st.blocks * 512,
    dataSize,
    table: table ? describeTable(table) : null,
    filesystems: [],
    warnings: table ? [...table.warnings] : [],
  };
  if (compressedClusters !== undefined) result.compressedClusters = compressedClusters;
  if (!table) {
    if (part !== undefined) findPartition(null, part);
    if (detectFilesystem(img.source) !== 'unknown') result.filesystems.push(describeFilesystem(img.source, null, path));
    else if (disk.size <= 64 << 20 && isEfiVarStore(img.source.read(0, Math.min(disk.size, 56)))) {
      result.description = 'EFI variable store (edk2 firmware volume)';
      result.efiVariables = summarizeEfiVars(img.source.read(0, disk.size), path);
    }
    return result;
  }
  let parts = table.partitions.filter((p) => !p.extended);
  if (part !== undefined) parts = [selectVolume(img.source, part).partition!];
  for (const p of parts) {
    const src = partitionSource(img.source, p);
    const what = `${path} partition ${p.index}`;
    const kind = withInput(what, () => detectFilesystem(src));
    if (kind === 'unknown') continue;
    result.filesystems.push(describeFilesystem(src, p.index, what));
  }
  return result;
}
