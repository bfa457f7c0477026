// FAT12/16/32 planner: FileTree + options -> Image (size and extent map). Pure:
// no file data is read; every cluster is decided here. Spec: fatgen103 (layout:
// reserved sectors, FATs, FAT12/16 root directory, data clusters from 2).
//
// Layout: boot sector (FAT32: FSInfo in sector 1, boot sector backup in 6),
// two identical FATs, the FAT12/16 root directory, then clusters allocated in
// one contiguous sweep, depth first in bytewise name order: a directory's
// clusters, then its entries' (files' data, subdirectories recursively).
//
// Decisions (what FAT cannot say, or where readers differ):
// - Sizes: 'auto' is the smallest size that is a whole number of 4 KiB blocks
//   and of tracks (so BPB_TotSec equals the image size); a fixed size that is
//   too small names the smallest sector count that works. Geometry is
//   mkfs.fat 4.2's for the chosen type (fixed-disk parameters, never floppy ones).
// - Names: a name that is a valid upper-case 8.3 name is stored as just that;
//   every other name gets a long name, as Linux vfat writes them by default
//   (no NT case bits). Short aliases are ASCII; tails count up (~1, ~2, ...).
// - Only files and directories; hard links become separate copies; owners,
//   permissions and xattrs are dropped, except that a file without the owner
//   write bit is read-only. Times are UTC, clamped to 1980..2107.
// - FSInfo's next-free hint is the first free cluster; chains end in 0x..FFF.
import { DiskwrightError } from '../../errors.ts';
import { compareNames, type DirEntry, type FileEntry } from '../../tree/model.ts';
import { finishImage, type Image, type ImageExtent } from '../../image/extent-map.ts';
import { seededU32 } from '../../util/ids.ts';
import {
  ATTR_DIRECTORY, ATTR_VOLUME_ID, BACKUP_BOOT_SECTOR, DIR_ENTRY_SIZE, FSINFO_SECTOR,
  MAX_DIR_ENTRIES, MAX_FILE_SIZE, MAX_LFN_UNITS, MAX_SECTORS, MIN_CLUSTERS, NUM_FATS, SECTOR, type FatType,
} from './constants.ts';
import { chooseGeometry, NoFit, smallestFit, type FatGeometry, type GeometryOptions } from './geometry.ts';
import { encodeBootSector } from './boot-sector.ts';
import { encodeFsInfo, FSI_UNKNOWN } from './fsinfo.ts';
import { FatTable } from './fat-table.ts';
import { DOT, DOTDOT, encodeDirEntry, fatTime, fileAttr, type FatTime } from './dir-entry.ts';
import { badLongNameChar, encodeLfn, foldName, lfnEntries } from './lfn.ts';
import { assignShortNames } from './short-name.ts';

export interface FatOptions {
  /** Filesystem (image) size in bytes, or 'auto' for the smallest that fits. */
  size: number | 'auto';
  /** Free space to leave with size 'auto'. */
  freeBytes?: number;
  /** Volume label, at most 11 ASCII characters; none: BS_VolLab "NO NAME" and no label entry. */
  label?: string;
  /** BS_VolID; default derived from seed and role. */
  volumeId?: number;
  seed?: string;
  /** Names what this filesystem is for, so two filesystems of one build get different ids. */
  role?: string;
  /** Seconds: the time of the volume label entry. */
  epoch?: number;
  /** Force the FAT type (the size must give it a valid cluster count). */
  fatType?: FatType;
  /** Force the cluster size in sectors (1, 2, 4, ... 128). */
  sectorsPerCluster?: number;
  /** BPB_HiddSec: the start LBA of the partition that will hold this filesystem. */
  hiddenSectors?: number;
  /** Clamp entry mtimes later than the epoch to the epoch. */
  clampMtime?: boolean;
}

export interface FatStats {
  bytes: number;
  fatType: FatType;
  sectorsPerCluster: number;
  clusterBytes: number;
  clusters: number;
  usedClusters: number;
  freeClusters: number;
  freeBytes: number;
  volumeId: number;
  /** '' when there is none. */
  label: string;
  /** Regular files and directories below the root. */
  files: number;
  dirs: number;
}

export interface FatPlan {
  image: Image;
  stats: FatStats;
}

interface Item {
  long: string;
  short: Buffer;
  needsLfn: boolean;
  entry: FileEntry | DirEntry;
  dir?: Dir;
  t: FatTime;
  cluster: number;
}

interface Dir {
  items: Item[];
  /** 32-byte slots: dot entries or label, long entries, short entries. */
  slots: number;
  cluster: number;
  t: FatTime;
}

interface Prepared {
  root: Dir;
  /** Every subdirectory's slot count and every file's size, for cluster counts at any cluster size. */
  dirSlots: number[];
  fileSizes: number[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A path for messages: one line, control characters escaped. */
function show(path: string): string {
  return /[\x00-\x1f\x7f]/.test(path) ? JSON.stringify(path) : path;
}

function invalid(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('OPTION_INVALID', message, data);
}

function prepare(root: DirEntry, hasLabel: boolean, timeOf: (sec: number, nsec: number) => FatTime): Prepared {
  const dirSlots: number[] = [];
  const fileSizes: number[] = [];
  const visit = (d: DirEntry, path: string, isRoot: boolean): Dir => {
    const keys = [...d.children.keys()].sort(compareNames);
    const longs: string[] = [];
    const folded = new Map<string, string>();
    for (const key of keys) {
      const e = d.children.get(key)!;
      let long: string;
      try {
        long = utf8.decode(Buffer.from(key, 'latin1'));
      } catch {
        const shown = show(`${path}${Buffer.from(key, 'latin1').toString('utf8')}`);
        throw new DiskwrightError('NAME_INVALID', `${shown}: the name is not valid UTF-8; FAT stores names as UTF-16, rename it`, { path: shown });
      }
      const p = path + long;
      if (e.type !== 'file' && e.type !== 'dir') {
        const what = { symlink: 'a symbolic link', chr: 'a character device', blk: 'a block device', fifo: 'a FIFO', sock: 'a socket' }[e.type];
        throw new DiskwrightError('NAME_INVALID', `${show(p)} is ${what}; FAT holds only files and directories: leave it out or replace it with what it stands for`, { path: p, type: e.type });
      }
      const bad = badLongNameChar(long);
      if (bad !== undefined) {
        throw new DiskwrightError('NAME_INVALID', `${show(p)}: FAT names cannot contain ${JSON.stringify(bad)} (nor control characters, " * / : < > ? \\ |); rename it`, { path: p });
      }
      if (long.endsWith('.') || long.endsWith(' ')) {
        throw new DiskwrightError('NAME_INVALID', `${show(p)}: FAT names cannot end in a dot or a space (readers drop them); rename it`, { path: p });
      }
      if (long.length > MAX_LFN_UNITS) {
        throw new DiskwrightError('NAME_TOO_LONG', `${show(p)}: the name is ${long.length} UTF-16 units; FAT names hold at most ${MAX_LFN_UNITS}`, { path: p });
      }
      const f = foldName(long);
      const other = folded.get(f);
      if (other !== undefined) {
        throw new DiskwrightError('DUPLICATE_ENTRY', `${show(path + other)} and ${show(p)} differ only in case; FAT names are case-insensitive, rename one`, { paths: [path + other, p] });
      }
      folded.set(f, long);
      if (e.type === 'file' && e.size > MAX_FILE_SIZE) {
        throw new DiskwrightError('TOO_LARGE', `${show(p)} is ${e.size} bytes; FAT files hold at most ${MAX_FILE_SIZE} bytes (4 GiB - 1)`, { path: p });
      }
      longs.push(long);
    }
    const shorts = assignShortNames(longs);
    if (!shorts) throw new DiskwrightError('TOO_MANY_FILES', `${show(path)}: too many names share a short-name basis (more than 999999); FAT cannot tell them apart`, { path });
    const items: Item[] = keys.map((key, i) => {
      const e = d.children.get(key) as FileEntry | DirEntry;
      const item: Item = { long: longs[i], short: shorts[i].name, needsLfn: shorts[i].needsLfn, entry: e, t: timeOf(e.mtimeSec, e.mtimeNsec), cluster: 0 };
      if (e.type === 'dir') item.dir = visit(e, `${path}${longs[i]}/`, false);
      else fileSizes.push(e.size);
      return item;
    });
    let slots = isRoot ? (hasLabel ? 1 : 0) : 2;
    for (const it of items) slots += 1 + (it.needsLfn ? lfnEntries(it.long) : 0);
    if (slots > MAX_DIR_ENTRIES) {
      throw new DiskwrightError('TOO_MANY_FILES', `${show(path)} needs ${slots} directory entries; a FAT directory holds at most ${MAX_DIR_ENTRIES} (long names take one more per 13 characters)`, { path });
    }
    if (!isRoot) dirSlots.push(slots);
    return { items, slots, cluster: 0, t: timeOf(d.mtimeSec, d.mtimeNsec) };
  };
  return { root: visit(root, '/', true), dirSlots, fileSizes };
}

const clustersFor = (bytes: number, clusterBytes: number) => Math.ceil(bytes / clusterBytes);

export function planFat(root: DirEntry, opts: FatOptions): FatPlan {
  // Options.
  if (opts.fatType !== undefined && ![12, 16, 32].includes(opts.fatType)) invalid(`--fat-type ${opts.fatType}: use 12, 16 or 32`);
  const spc = opts.sectorsPerCluster;
  if (spc !== undefined && !(Number.isInteger(spc) && spc >= 1 && spc <= 128 && (spc & (spc - 1)) === 0)) {
    invalid(`sectors per cluster ${spc}: use a power of two from 1 to 128`);
  }
  const u32 = (name: string, v: number | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) invalid(`${name} ${v}: give a whole number from 0 to 0xffffffff`);
    return v;
  };
  const seed = opts.seed ?? 'diskwright';
  const role = opts.role ?? 'fat';
  const volumeId = u32('--volume-id', opts.volumeId, seededU32(seed, `${role}:volume_id`));
  const hiddenSectors = u32('hidden sectors', opts.hiddenSectors, 0);
  const freeBytes = opts.freeBytes ?? 0;
  if (!(Number.isSafeInteger(freeBytes) && freeBytes >= 0)) invalid(`--free ${freeBytes}: give a size of 0 or more bytes`);
  const label = labelBytes(opts.label);
  const epoch = opts.epoch ?? 1;

  // Entry times: the source's mtime, clamped to the epoch if asked.
  const timeOf = (sec: number, nsec: number) =>
    opts.clampMtime && (sec > epoch || (sec === epoch && nsec > 0)) ? fatTime(epoch) : fatTime(sec, nsec);
  const prep = prepare(root, label !== null, timeOf);

  // Clusters the tree takes at one cluster size (FAT32 keeps the root in clusters too).
  const usedCache = new Map<string, number>();
  const usedClusters = (clusterBytes: number, is32: boolean): number => {
    const key = `${clusterBytes}/${is32}`;
    let n = usedCache.get(key);
    if (n === undefined) {
      n = 0;
      for (const s of prep.fileSizes) n += clustersFor(s, clusterBytes);
      for (const s of prep.dirSlots) n += clustersFor(s * DIR_ENTRY_SIZE, clusterBytes);
      if (is32) n += Math.max(1, clustersFor(prep.root.slots * DIR_ENTRY_SIZE, clusterBytes));
      usedCache.set(key, n);
    }
    return n;
  };
  const required = (g: FatGeometry): number => {
    if (g.fatType !== 32 && prep.root.slots > g.rootEntries) return Infinity;
    const cb = g.sectorsPerCluster * SECTOR;
    return Math.max(usedClusters(cb, g.fatType === 32) + clustersFor(freeBytes, cb), MIN_CLUSTERS[g.fatType]);
  };
  const gopts: GeometryOptions = { fatType: opts.fatType, sectorsPerCluster: spc };
  const search = (exact: boolean): FatGeometry => {
    try {
      return smallestFit(gopts, required, exact);
    } catch (err) {
      if (!(err instanceof NoFit)) throw err;
      if (err.reason === 'never') {
        throw new DiskwrightError('TOO_MANY_FILES', `the root directory needs ${prep.root.slots} entries; a FAT${opts.fatType ?? '12/16'} root directory holds 512 (1024 or 2048 only with 64- or 128-sector clusters): use FAT32 or put fewer names in the root`, {});
      }
      const most = opts.fatType ?? 32;
      throw new DiskwrightError('TOO_LARGE', `the tree${freeBytes ? ' plus --free' : ''} needs more than FAT${most}${spc ? ` with ${spc}-sector clusters` : ''} can hold${most === 32 ? '' : '; try --fat-type 32'}`, {});
    }
  };

  let g: FatGeometry;
  if (opts.size === 'auto') {
    g = search(false);
  } else {
    const size = opts.size;
    if (!(Number.isSafeInteger(size) && size > 0)) invalid(`--size ${size}: give 'auto' or a size in bytes`);
    const sectors = Math.floor(size / SECTOR);
    if (sectors > MAX_SECTORS) throw new DiskwrightError('TOO_LARGE', `--size ${size}: FAT with 512-byte sectors spans at most ${MAX_SECTORS * SECTOR} bytes (2 TiB - 512)`, {});
    const fixed = chooseGeometry(sectors, gopts);
    if (fixed === 'large') {
      throw new DiskwrightError('TOO_LARGE', `--size ${size}: FAT${opts.fatType ?? ''}${spc ? ` with ${spc}-sector clusters` : ''} cannot address that many clusters; use a smaller size${opts.fatType === 32 ? '' : ' or --fat-type 32'}`, {});
    }
    if (fixed === 'small' || fixed.clusters < required(fixed)) {
      const min = search(true).deviceSectors * SECTOR;
      throw new DiskwrightError('SIZE_TOO_SMALL', `--size ${size} bytes does not hold this tree${freeBytes ? ' plus --free' : ''}${opts.fatType ? ` as FAT${opts.fatType}` : ''}; the smallest size that does is ${min} bytes (${(min / 2 ** 20).toFixed(2)} MiB)`, { minimum: min });
    }
    g = fixed;
  }
  return materialize(prep, g, { volumeId, label, hiddenSectors, epoch }, usedClusters(g.sectorsPerCluster * SECTOR, g.fatType === 32));
}

/** BS_VolLab bytes, or null for no label. The rules are mkfs.fat's. */
function labelBytes(label: string | undefined): Buffer | null {
  if (label === undefined || label.trim() === '') return null;
  if (!/^[\x20-\x7e]*$/.test(label)) invalid(`--label ${JSON.stringify(label)}: use printable ASCII (FAT labels are in the DOS code page)`);
  if (label.length > 11) throw new DiskwrightError('LABEL_TOO_LONG', `label "${label}" is ${label.length} characters; FAT labels hold at most 11`, {});
  if (/[*?.,;:/\\|+=<>[\]"]/.test(label)) invalid(`--label "${label}": FAT labels cannot contain * ? . , ; : / \\ | + = < > [ ] "`);
  if (label.startsWith(' ')) invalid(`--label "${label}": FAT labels cannot start with a space`);
  const b = Buffer.from(label.padEnd(11, ' '), 'latin1');
  // mkfs.fat treats "NO NAME" as no label at all.
  return b.toString('latin1') === 'NO NAME    ' ? null : b;
}

interface Ids {
  volumeId: number;
  label: Buffer | null;
  hiddenSectors: number;
  epoch: number;
}

function materialize(prep: Prepared, g: FatGeometry, ids: Ids, used: number): FatPlan {
  const type = g.fatType;
  const cb = g.sectorsPerCluster * SECTOR;
  const extents: ImageExtent[] = [];
  const put = (offset: number, buffer: Buffer) => {
    if (buffer.length) extents.push({ offset, length: buffer.length, buffer });
  };
  const clusterOffset = (c: number) => (g.dataStart + (c - 2) * g.sectorsPerCluster) * SECTOR;
  const dirClusters = (d: Dir) => Math.max(1, clustersFor(d.slots * DIR_ENTRY_SIZE, cb));

  // Allocation: one sweep, depth first in name order.
  const fat = new FatTable(type, used);
  if (type === 32) prep.root.cluster = fat.allocate(dirClusters(prep.root));
  let files = 0;
  let dirs = 0;
  const allocate = (d: Dir) => {
    for (const it of d.items) {
      if (it.dir) {
        dirs++;
        it.cluster = it.dir.cluster = fat.allocate(dirClusters(it.dir));
        allocate(it.dir);
      } else {
        files++;
        const f = it.entry as FileEntry;
        it.cluster = fat.allocate(clustersFor(f.size, cb));
        const runs = f.runs ?? [{ offset: 0, length: f.size }];
        for (const r of runs) {
          if (r.length === 0) continue;
          // Holes of sparse sources stay gaps in the extent map: the clusters are allocated and read as zeros.
          const offset = clusterOffset(it.cluster) + r.offset;
          extents.push(f.content ? { offset, length: r.length, buffer: f.content.subarray(r.offset, r.offset + r.length) } : { offset, length: r.length, path: f.sourcePath, fileOffset: r.offset, expectSize: f.size });
        }
      }
    }
  };
  allocate(prep.root);
  if (fat.used !== used) throw new Error(`internal: allocated ${fat.used} clusters, planned ${used}`);

  // Directories.
  const encodeDir = (d: Dir, parent: Dir | null): Buffer => {
    const buf = Buffer.alloc(d.slots * DIR_ENTRY_SIZE);
    let at = 0;
    const short = (name: Buffer, attr: number, cluster: number, size: number, t: FatTime) => {
      encodeDirEntry(buf, at, { name, attr, cluster, size, t });
      at += DIR_ENTRY_SIZE;
    };
    if (parent) {
      short(DOT, ATTR_DIRECTORY, d.cluster, 0, d.t);
      // ".." of a directory in the root points to cluster 0, also on FAT32.
      short(DOTDOT, ATTR_DIRECTORY, parent === prep.root ? 0 : parent.cluster, 0, d.t);
    } else if (ids.label) {
      short(ids.label, ATTR_VOLUME_ID, 0, 0, fatTime(ids.epoch));
    }
    for (const it of d.items) {
      if (it.needsLfn) at = encodeLfn(buf, at, it.long, it.short);
      if (it.dir) short(it.short, ATTR_DIRECTORY, it.cluster, 0, it.t);
      else short(it.short, fileAttr(it.entry.mode), it.cluster, (it.entry as FileEntry).size, it.t);
    }
    return buf;
  };
  const placeDirs = (d: Dir, parent: Dir | null) => {
    const buf = encodeDir(d, parent);
    if (parent || type === 32) put(clusterOffset(d.cluster), buf);
    else put((g.reservedSectors + NUM_FATS * g.fatSectors) * SECTOR, buf);
    for (const it of d.items) if (it.dir) placeDirs(it.dir, d);
  };
  placeDirs(prep.root, null);

  // Boot sector(s), FSInfo, FATs.
  const boot = encodeBootSector(g, { volumeId: ids.volumeId, label: ids.label ?? Buffer.from('NO NAME    ', 'latin1'), hiddenSectors: ids.hiddenSectors });
  put(0, boot);
  const free = g.clusters - used;
  if (type === 32) {
    put(FSINFO_SECTOR * SECTOR, encodeFsInfo(free, free > 0 ? used + 2 : FSI_UNKNOWN));
    put(BACKUP_BOOT_SECTOR * SECTOR, boot);
  }
  const table = fat.encode();
  for (let i = 0; i < NUM_FATS; i++) put((g.reservedSectors + i * g.fatSectors) * SECTOR, table);

  const bytes = g.deviceSectors * SECTOR;
  return {
    image: finishImage(bytes, extents),
    stats: {
      bytes,
      fatType: type,
      sectorsPerCluster: g.sectorsPerCluster,
      clusterBytes: cb,
      clusters: g.clusters,
      usedClusters: used,
      freeClusters: free,
      freeBytes: free * cb,
      volumeId: ids.volumeId,
      label: ids.label ? ids.label.toString('latin1').trimEnd() : '',
      files,
      dirs,
    },
  };
}
