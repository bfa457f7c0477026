// `inspect`: what an image is and holds, from the readers alone: container
// format and sizes, the partition table, and each filesystem's figures.
import * as fs from 'node:fs';
import { isLazyExtent } from '../image/extent-map.ts';
import { detectFilesystem, openFilesystem, readPartitionTable, selectVolume } from '../read/index.ts';
import { Ext4Reader } from '../read/ext4.ts';
import { FatReader } from '../read/fat.ts';
import { findPartition, type PartitionEntry, partitionSource, type PartitionTable } from '../read/partition.ts';
import type { ByteSource } from '../read/source.ts';
import type { FsReader, FsSummary } from '../read/entry.ts';
import { openDisk, type OpenedDisk, parseImageArg, type ReadOptions, withInput } from './volume.ts';

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

export interface InspectExt4 {
  hashSeed: string;
  defaultHash: string;
  flags: string[];
  inodeSize: number;
  reservedBlocks: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  groups: number;
  revision: number;
  state: string;
  mountCount: number;
  maxMountCount: number;
  lastMounted: string;
  /** ISO 8601 UTC, null for never. */
  created: string | null;
  lastWrite: string | null;
  lastMount: string | null;
  lastCheck: string | null;
  journal: null | { inode: number; blocks: number; blockSize: number; sequence: number; uuid: string };
}

export interface InspectFat {
  fatType: 12 | 16 | 32;
  /** Volume ID as 0x + 8 hex digits (uuid has it as XXXX-XXXX). */
  volumeId: string;
  bytesPerSector: number;
  sectorsPerCluster: number;
  clusterSize: number;
  reservedSectors: number;
  fats: number;
  sectorsPerFat: number;
  rootEntries: number;
  totalSectors: number;
  hiddenSectors: number;
  media: string;
  oemName: string;
  /** Byte offsets in the volume. */
  fatOffset: number;
  rootDirOffset: number;
  dataOffset: number;
  badClusters: number;
  /** FAT32 FSInfo free-cluster count (0xFFFFFFFF: unknown), when present. */
  fsinfoFree?: number;
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
  warnings: string[];
}

const iso = (sec: number) => (sec === 0 ? null : new Date(sec * 1000).toISOString().replace('.000Z', 'Z'));
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

const STATES: Record<number, string> = { 1: 'clean', 2: 'not clean (errors)', 3: 'clean with errors' };

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
  if (reader instanceof Ext4Reader) {
    const i = reader.info;
    withInput(what, () => reader.checkInodes());
    const j = withInput(what, () => reader.journal());
    out.ext4 = {
      hashSeed: i.hashSeed,
      defaultHash: i.defaultHash,
      flags: i.flags,
      inodeSize: i.inodeSize,
      reservedBlocks: i.reservedBlocks,
      blocksPerGroup: i.blocksPerGroup,
      inodesPerGroup: i.inodesPerGroup,
      groups: i.groups,
      revision: i.revLevel,
      state: STATES[i.state] ?? `not clean (${i.state})`,
      mountCount: i.mountCount,
      maxMountCount: i.maxMountCount,
      lastMounted: i.lastMounted,
      created: iso(i.times.mkfs),
      lastWrite: iso(i.times.write),
      lastMount: iso(i.times.mount),
      lastCheck: iso(i.times.lastCheck),
      journal: j ? { inode: i.journalInum, blocks: j.maxLen, blockSize: j.blockSize, sequence: j.sequence, uuid: j.uuid } : null,
    };
  } else if (reader instanceof FatReader) {
    const i = reader.info;
    out.fat = {
      fatType: i.type,
      volumeId: hex(i.volumeId, 8),
      bytesPerSector: i.bytesPerSector,
      sectorsPerCluster: i.sectorsPerCluster,
      clusterSize: i.clusterSize,
      reservedSectors: i.reservedSectors,
      fats: i.numFats,
      sectorsPerFat: i.fatSectors,
      rootEntries: i.rootEntries,
      totalSectors: i.totalSectors,
      hiddenSectors: i.hiddenSectors,
      media: hex(i.media, 2),
      oemName: i.oemName,
      fatOffset: i.fatOffset,
      rootDirOffset: i.type === 32 ? reader.clusterOffset(i.rootCluster) : i.rootDirOffset,
      dataOffset: i.dataOffset,
      badClusters: i.badClusters,
    };
    if (i.fsinfo) out.fat.fsinfoFree = i.fsinfo.freeCount;
  }
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
