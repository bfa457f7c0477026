// Readers for inspect, ls, cat, extract and diff: a byte source (raw file,
// decoded container, partition) -> partition table -> filesystem -> entries.
import { DiskwrightError } from '../errors.ts';
import type { FsReader, FsSummary } from './entry.ts';
import { filesystemTitles, probeFilesystem } from '../fs/drivers.ts';
import { findPartition, type PartitionEntry, partitionSource, type PartitionTable, readPartitionTable } from './partition.ts';
import type { ByteSource } from './source.ts';

export * from './entry.ts';
export * from './names.ts';
export * from './source.ts';
export * from './partition.ts';
export { Ext4Reader, openExt4, type Ext4Info, type Ext4Inode, type Ext4GroupDesc, type Ext4Extent, type Ext4Mapping, type Ext4DiskXattr, type Ext4DirItem, type Ext4EntryDetail, type JournalInfo } from './ext4.ts';
export { FatReader, openFat, type FatInfo, type FatEntryDetail, type FatType } from './fat.ts';

export type FilesystemType = FsSummary['type'] | 'unknown';

/** What filesystem the source starts with, from its superblock or boot sector alone. */
export function detectFilesystem(source: ByteSource): FilesystemType {
  const driver = probeFilesystem(source);
  if (!driver) return 'unknown';
  try {
    return driver.open(source).summary().type;
  } catch (e) {
    // The magic matched but the rest is not this filesystem's.
    if (e instanceof DiskwrightError && e.code === 'FILESYSTEM_UNKNOWN') return 'unknown';
    throw e;
  }
}

/** Opens the filesystem the source holds. Throws FILESYSTEM_UNKNOWN (one line) when no driver recognises it. */
export function openFilesystem(source: ByteSource, what = 'image'): FsReader {
  const driver = probeFilesystem(source);
  if (!driver) throw new DiskwrightError('FILESYSTEM_UNKNOWN', `${what}: no ${filesystemTitles()} filesystem found`, { what });
  return driver.open(source);
}

export interface Volume {
  /** The partition table of the whole image, null for a bare filesystem. */
  table: PartitionTable | null;
  /** The partition chosen, undefined for a bare filesystem. */
  partition?: PartitionEntry;
  source: ByteSource;
}

/**
 * The volume `spec` names in a disk (IMAGE:N or IMAGE:LABEL): a partition
 * number, a GPT partition name or a filesystem label. Without a spec: the disk
 * itself when it is a bare filesystem, else its only partition holding a
 * filesystem (PARTITION_NOT_FOUND asks for a number when there are several).
 */
export function selectVolume(disk: ByteSource, spec?: string | number): Volume {
  const table = readPartitionTable(disk);
  if (spec === undefined || spec === '') {
    if (!table) return { table, source: disk };
    const withFs = table.partitions.filter((p) => !p.extended && detectFilesystem(partitionSource(disk, p)) !== 'unknown');
    if (withFs.length === 1) return { table, partition: withFs[0], source: partitionSource(disk, withFs[0]) };
    throw new DiskwrightError(
      'PARTITION_NOT_FOUND',
      `the image has ${withFs.length === 0 ? 'no partition with a filesystem' : `filesystems in partitions ${withFs.map((p) => p.index).join(', ')}`}; name one as IMAGE:N`,
      { partitions: withFs.map((p) => p.index) },
    );
  }
  try {
    const p = findPartition(table, spec);
    return { table, partition: p, source: partitionSource(disk, p) };
  } catch (e) {
    if (!(e instanceof DiskwrightError) || typeof spec === 'number' || /^\d+$/.test(spec)) throw e;
    // A filesystem label.
    for (const p of table?.partitions ?? []) {
      if (p.extended) continue;
      const src = partitionSource(disk, p);
      if (detectFilesystem(src) === 'unknown') continue;
      if (openFilesystem(src).summary().label === spec) return { table, partition: p, source: src };
    }
    throw e;
  }
}
