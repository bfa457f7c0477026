// FAT as a filesystem driver: how to recognise it, plan it from a tree,
// read it, and describe what only FAT has. Registered in src/fs/drivers.ts.
import type { FsDriver } from '../drivers.ts';
import { FatReader } from '../../read/fat.ts';
import { looksLikeFat } from './boot-sector.ts';
import { DIR_ENTRY_SIZE, SECTOR } from './constants.ts';
import type { FsReader } from '../../read/entry.ts';
import { planFat } from './planner.ts';
import type { VfatContent } from '../../disk/spec.ts';

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

const hex = (n: number, digits: number) => `0x${n.toString(16).padStart(digits, '0')}`;

/** A FAT volume id the way blkid and /dev/disk/by-uuid show it: "ABCD-1234". */
export function fatVolumeUuid(id: number): string {
  const h = id.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

export const fatDriver: FsDriver<VfatContent, { fat: InspectFat }> = {
  name: 'vfat',
  title: 'FAT',
  minSize: SECTOR,
  magic: looksLikeFat,
  open: (src) => new FatReader(src),
  owns: (reader: FsReader) => reader instanceof FatReader,
  need: (c) => planFat(c.tree, { ...c.options, size: 'auto', freeBytes: c.freeBytes ?? 0 }).stats.bytes,
  fits: (size) => size >= 512,
  // BPB_HiddSec: where the partition starts, so boot code finds the volume.
  plan(c, size, hiddenSectors) {
    const { image, stats: s } = planFat(c.tree, { ...c.options, size, hiddenSectors });
    return { image, report: { type: 'vfat', label: s.label, uuid: fatVolumeUuid(s.volumeId), bytes: s.bytes, freeBytes: s.freeBytes, fatType: s.fatType, clusterBytes: s.clusterBytes } };
  },
  describe(reader) {
    const r = reader as FatReader;
    const i = r.info;
    const fat: InspectFat = {
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
      rootDirOffset: i.type === 32 ? r.clusterOffset(i.rootCluster) : i.rootDirOffset,
      dataOffset: i.dataOffset,
      badClusters: i.badClusters,
    };
    if (i.fsinfo) fat.fsinfoFree = i.fsinfo.freeCount;
    return { fat };
  },
  // Paths: FAT has no inode numbers, and an entry's record moves when its directory changes.
  rootAttributes: false,
  identity: 'path',
  records: (_reader, range) => (range.what === 'directory' || range.what === 'root directory' ? { kind: 'dir-entries', size: DIR_ENTRY_SIZE } : undefined),
};
