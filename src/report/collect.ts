// Reads what the size planner needs from an image: which bytes of the
// virtual disk the file stores, the partition table's own sectors, each
// partition's filesystem and its allocation map (the hardened readers'
// allocation(): every loop there is bounded), where store paths lie and
// which reference which.
import { firstEndingAfter } from '../util/search.ts';
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import type { DiskSource } from '../format/input.ts';
import { isFileExtent } from '../image/extent-map.ts';
import { dataSegments } from '../util/sparse.ts';
import { probeFilesystem } from '../fs/drivers.ts';
import { partitionSource, readPartitionTable, type PartitionTable } from '../read/partition.ts';
import type { FsReader } from '../read/entry.ts';
import { FatReader } from '../read/fat.ts';
import type { ByteSource } from '../read/source.ts';
import { openDisk, withInput, type ReadOptions } from '../api/volume.ts';
import { isStorePathName } from '../nix/store-path.ts';
import type { DiskLayoutInput, FsLayout, VolumeLayout } from './plan.ts';
import type { References } from './closure.ts';
import { isStoreRoot, recordedReferences, recordedStoreDir, scannedReferences } from './references.ts';

export const DEFAULT_STORE_DIR = '/nix/store';

export interface CollectedImage {
  path: string;
  format: string;
  description: string;
  virtualSize: number;
  allocatedSize: number;
  /** Whether the stored ranges are known (false for .zst: every byte counts as stored). */
  storedKnown: boolean;
  layout: DiskLayoutInput;
  /** References of every filesystem's store paths, merged; null when no filesystem holds a store. */
  references: References | null;
  warnings: string[];
}

/**
 * The ranges of the virtual disk the file stores, sorted and merged (a
 * container's map is trusted for nothing). A container's clusters read from
 * the file count where the host file system holds their bytes (a qcow2 file
 * can be sparse itself); compressed clusters count as their whole extent.
 */
function storedRanges(disk: DiskSource, path: string): Array<[number, number]> | null {
  if (disk.format === 'zstd') return null;
  const extents = disk.stored().extents;
  let host: Array<[number, number]> | null = null;
  if (disk.format !== 'raw' && extents.some(isFileExtent)) {
    const fd = fs.openSync(path, 'r');
    try {
      host = dataSegments(fd, fs.fstatSync(fd).size);
    } finally {
      fs.closeSync(fd);
    }
  }
  const ranges: Array<[number, number]> = [];
  for (const e of extents) {
    if (host && isFileExtent(e)) ranges.push(...hostHeld(host, e.offset, e.fileOffset, e.length));
    else ranges.push([e.offset, e.offset + e.length]);
  }
  const clipped = ranges
    .map((r): [number, number] => [Math.max(0, r[0]), Math.min(disk.size, r[1])])
    .filter(([a, b]) => b > a)
    .sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const r of clipped) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** The virtual ranges of an extent (at `offset`, read from `fileOffset`) whose file bytes the host holds. */
function hostHeld(host: ReadonlyArray<readonly [number, number]>, offset: number, fileOffset: number, length: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const end = fileOffset + length;
  for (let i = firstEndingAfter(host, fileOffset); i < host.length && host[i][0] < end; i++) {
    const s = Math.max(host[i][0], fileOffset);
    const t = Math.min(host[i][1], end);
    if (t > s) out.push([offset + (s - fileOffset), offset + (t - fileOffset)]);
  }
  return out;
}

/** MBR and GPT structures as byte ranges of the disk. */
function tableRanges(t: PartitionTable): DiskLayoutInput['table'] {
  const ss = t.sectorSize;
  const out: Array<{ offset: number; length: number; what: string }> = [];
  out.push({ offset: 0, length: ss, what: t.kind === 'gpt' ? 'protective MBR' : t.kind === 'hybrid' ? 'hybrid MBR' : 'MBR' });
  for (const [h, what] of [[t.gpt?.primary, 'GPT (primary)'], [t.gpt?.backup, 'GPT (backup)']] as const) {
    if (!h || !h.valid) continue;
    out.push({ offset: h.myLba * ss, length: ss, what });
    const bytes = Math.ceil((h.entryCount * h.entrySize) / ss) * ss;
    out.push({ offset: h.entriesLba * ss, length: bytes, what });
  }
  return out.filter((r) => Number.isSafeInteger(r.offset) && Number.isSafeInteger(r.length) && r.offset >= 0 && r.length > 0);
}

/** Where a filesystem keeps store paths, and their references. */
function storeOf(reader: FsReader, givenStoreDir: string, warnings: string[]): { storeDirs: string[]; nixStoreDir: string; references: References | null; paths: Map<string, string> } {
  const recorded = recordedReferences(reader, warnings);
  const recordedDir = recorded ? recordedStoreDir(recorded) : null;
  const isDir = (p: string) => {
    try {
      return reader.lookup(p).type === 'dir';
    } catch (e) {
      if (e instanceof DiskwrightError && (e.code === 'PATH_NOT_FOUND' || e.code === 'NOT_A_DIRECTORY')) return false;
      throw e;
    }
  };
  let nixStoreDir = recordedDir ?? givenStoreDir;
  // The store dir's path as a byte-string key, as the readers name entries.
  let storeDir: string | null = isDir(nixStoreDir) ? Buffer.from(nixStoreDir, 'utf8').toString('latin1') : null;
  if (storeDir === null && isStoreRoot(reader)) {
    storeDir = '/';
  }
  const paths = new Map<string, string>();
  if (storeDir === null) return { storeDirs: [], nixStoreDir, references: null, paths };
  for (const e of reader.readdir(storeDir)) {
    if (isStorePathName(e.name)) paths.set(`${nixStoreDir}/${e.name}`, e.path);
  }
  const references = recorded ?? (paths.size > 0 ? scannedReferences(reader, paths) : null);
  return { storeDirs: [storeDir], nixStoreDir, references, paths };
}

function fsLayout(src: ByteSource, what: string, nixStoreDir: string, warnings: string[]): { fs: FsLayout; references: References | null } | undefined {
  const driver = probeFilesystem(src);
  if (!driver) return undefined;
  return withInput(what, () => {
    let reader: FsReader;
    try {
      reader = driver.open(src);
    } catch (e) {
      // The magic matched, the rest is not this filesystem: opaque bytes, not an error.
      if (e instanceof DiskwrightError && e.code === 'FILESYSTEM_UNKNOWN') return undefined;
      throw e;
    }
    const s = reader.summary();
    const ranges = reader.allocation();
    if (reader instanceof FatReader) {
      // Sectors after the last whole cluster belong to no cluster: never free, never used.
      const { dataOffset, clusters, clusterSize } = reader.info;
      const end = dataOffset + clusters * clusterSize;
      if (s.size > end) ranges.push({ offset: end, length: s.size - end, kind: 'metadata', what: 'sectors after the last cluster' });
    }
    const store = storeOf(reader, nixStoreDir, warnings);
    return {
      fs: { type: s.type, label: s.label, size: s.size, ranges, storeDirs: store.storeDirs, nixStoreDir: store.nixStoreDir },
      references: store.references,
    };
  });
}

function mergeReferences(all: References[]): References | null {
  if (all.length === 0) return null;
  if (all.length === 1) return all[0];
  const refs = new Map<string, readonly string[]>();
  const narSizes = new Map<string, number>();
  for (const r of all) {
    for (const [k, v] of r.refs) if (!refs.has(k)) refs.set(k, v);
    for (const [k, v] of r.narSizes ?? []) if (!narSizes.has(k)) narSizes.set(k, v);
  }
  return { source: [...new Set(all.map((r) => r.source))].join(', '), refs, narSizes };
}

export interface ReportOptions extends ReadOptions {
  /** Where store paths are when the image records none (no database, no registration); default /nix/store. */
  nixStoreDir?: string;
}

/**
 * The file's allocated bytes once the host file system has placed them: a
 * file just written (build --report) may still have blocks whose allocation
 * is delayed, and its allocated size changes when they are written back.
 */
function settledAllocation(path: string): number {
  const fd = fs.openSync(path, 'r');
  try {
    try {
      fs.fsyncSync(fd);
    } catch {
      // Files that cannot be synced (some special files) are measured as they are.
    }
    return fs.fstatSync(fd).blocks * 512;
  } finally {
    fs.closeSync(fd);
  }
}

/** Everything the size report needs from the image at `path`. */
export function collectImage(path: string, opts: ReportOptions = {}): CollectedImage {
  const nixStoreDir = (opts.nixStoreDir ?? DEFAULT_STORE_DIR).replace(/(.)\/+$/, '$1');
  const img = openDisk(path, opts);
  try {
    return withInput(path, () => {
      const disk = img.disk;
      const allocatedSize = settledAllocation(path);
      const warnings: string[] = [];
      const table = readPartitionTable(img.source);
      const volumes: VolumeLayout[] = [];
      const refs: References[] = [];
      if (table) {
        warnings.push(...table.warnings);
        for (const p of table.partitions) {
          if (p.extended) continue;
          const label = p.name ? ` "${p.name}"` : ` (${p.typeName})`;
          const name = `partition ${p.index}${label}`;
          const found = fsLayout(partitionSource(img.source, p), `${path} partition ${p.index}`, nixStoreDir, warnings);
          volumes.push({ name, offset: p.start, length: p.size, fs: found?.fs });
          if (found?.references) refs.push(found.references);
        }
      } else {
        const found = fsLayout(img.source, path, nixStoreDir, warnings);
        volumes.push({ name: found ? 'filesystem' : 'unknown contents', offset: 0, length: disk.size, fs: found?.fs });
        if (found?.references) refs.push(found.references);
      }
      const stored = storedRanges(disk, path);
      return {
        path,
        format: disk.format,
        description: disk.description,
        virtualSize: disk.size,
        allocatedSize,
        storedKnown: stored !== null,
        layout: { diskSize: disk.size, stored, allocatedSize, table: table ? tableRanges(table) : [], volumes },
        references: mergeReferences(refs),
        warnings,
      };
    });
  } finally {
    img.close();
  }
}
