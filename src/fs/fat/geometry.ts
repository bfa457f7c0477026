// FAT geometry: which FAT type, cluster size, reserved sectors, FAT length and
// cluster count a device of N sectors gets. Spec: fatgen103 sections 3.5 and 4
// (FAT type by cluster count); the choices are dosfstools mkfs.fat 4.2's
// (establish_params + setup_tables), re-derived here so our BPBs equal
// `mkfs.fat -F T` output field for field, except that with no type forced we
// pick FAT32 wherever it is valid, then FAT16, then FAT12.
import {
  MAX_CLUSTERS, MAX_SECTORS, MIN_CLUSTERS, NUM_FATS, RESERVED_SECTORS, ROOT_ENTRIES, SECTOR, type FatType,
} from './constants.ts';

export interface FatGeometry {
  fatType: FatType;
  /** The device (image) size in sectors: may exceed totalSectors by less than a track. */
  deviceSectors: number;
  /** BPB_TotSec16/32: rounded down to whole tracks, as mkfs.fat does for DOS and mtools. */
  totalSectors: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  /** Sectors per FAT (BPB_FATSz16 or BPB_FATSz32). */
  fatSectors: number;
  /** BPB_RootEntCnt: 0 on FAT32. */
  rootEntries: number;
  rootSectors: number;
  /** Data clusters: numbers 2 .. clusters + 1. */
  clusters: number;
  /** First sector of cluster 2. */
  dataStart: number;
  secPerTrack: number;
  heads: number;
  aligned: boolean;
}

export interface GeometryOptions {
  fatType?: FatType;
  sectorsPerCluster?: number;
}

/** No layout at this size: too small to hold the structures, or more clusters than the type addresses at any cluster size. */
export type NoGeometry = 'small' | 'large';

/**
 * CHS figures mkfs.fat invents for a device without geometry: the SD card
 * recommendation below 256 MiB, LBA-assist translation above. Meaningless for
 * LBA, but mkfs.fat rounds the size down to whole tracks (mtools checks that).
 */
export function chs(deviceSectors: number): { secPerTrack: number; heads: number } {
  const s = deviceSectors;
  if (s <= 524288) {
    return { heads: s <= 32768 ? 2 : s <= 65536 ? 4 : s <= 262144 ? 8 : 16, secPerTrack: s <= 4096 ? 16 : 32 };
  }
  const t = 63 * 1024;
  return { heads: s <= 16 * t ? 16 : s <= 32 * t ? 32 : s <= 64 * t ? 64 : s <= 128 * t ? 128 : 255, secPerTrack: 63 };
}

/** mkfs.fat -F 32's starting cluster size, from the device size (Microsoft's table, fatgen103 p. 20). */
export function fat32ClusterSectors(deviceSectors: number): number {
  const mib = 2048;
  return deviceSectors > 32768 * mib ? 64 : deviceSectors > 16384 * mib ? 32 : deviceSectors > 8192 * mib ? 16 : deviceSectors > 260 * mib ? 8 : 1;
}

const cdiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * One type at one cluster size, mkfs.fat's arithmetic: estimate the cluster
 * count from the space left after reserved sectors and root directory, size the
 * FAT for it, then recount the clusters that really fit beside two FATs.
 */
function tryLayout(num: number, type: FatType, spc: number, aligned: boolean): { fatSectors: number; clusters: number } | NoGeometry {
  const align = (n: number) => (aligned ? cdiv(n, spc) * spc : n);
  const reserved = align(RESERVED_SECTORS[type]);
  const root = type === 32 ? 0 : align((ROOT_ENTRIES * 32) / SECTOR);
  const fatdata = num - reserved - root;
  if (fatdata <= 0) return 'small';
  let estimate: number;
  let fatBytes: number;
  if (type === 12) {
    estimate = Math.floor((2 * (fatdata * SECTOR + NUM_FATS * 3)) / (2 * spc * SECTOR + NUM_FATS * 3));
    fatBytes = ((estimate + 2) * 3 + 1) >> 1;
  } else {
    const entry = type / 8;
    estimate = Math.floor((fatdata * SECTOR + NUM_FATS * 2 * entry) / (spc * SECTOR + NUM_FATS * entry));
    fatBytes = (estimate + 2) * entry;
  }
  const fatSectors = align(cdiv(fatBytes, SECTOR));
  const clusters = Math.floor((fatdata - NUM_FATS * fatSectors) / spc);
  if (clusters <= 0) return 'small';
  // The FAT must have an entry for every cluster plus the two reserved ones.
  const entries = Math.floor((fatSectors * SECTOR * 8) / type);
  if (clusters > Math.min(entries - 2, MAX_CLUSTERS[type])) return 'large';
  return { fatSectors, clusters };
}

/**
 * The layout of one FAT type on a device, as `mkfs.fat -F type [-s spc]`
 * lays it out: cluster sizes double from the starting guess until the cluster
 * count fits the FAT. Returns it even when it has fewer clusters than the type
 * needs (see isValid), so sizing can tell how far off it is.
 */
export function layoutFor(deviceSectors: number, type: FatType, sectorsPerCluster?: number): FatGeometry | NoGeometry {
  const { secPerTrack, heads } = chs(deviceSectors);
  const num = Math.floor(Math.min(deviceSectors, MAX_SECTORS) / secPerTrack) * secPerTrack;
  // Floppy-sized filesystems (up to 4 MiB) are not aligned to clusters.
  const aligned = num > 8192;
  let spc = sectorsPerCluster ?? (type === 32 ? fat32ClusterSectors(deviceSectors) : 4);
  const maxSpc = sectorsPerCluster ?? 128;
  for (; spc <= maxSpc; spc *= 2) {
    const r = tryLayout(num, type, spc, aligned);
    if (r === 'small') return 'small';
    if (r === 'large') continue;
    const align = (n: number) => (aligned ? cdiv(n, spc) * spc : n);
    const reservedSectors = align(RESERVED_SECTORS[type]);
    const rootSectors = type === 32 ? 0 : align((ROOT_ENTRIES * 32) / SECTOR);
    return {
      fatType: type,
      deviceSectors,
      totalSectors: num,
      sectorsPerCluster: spc,
      reservedSectors,
      fatSectors: r.fatSectors,
      rootEntries: (rootSectors * SECTOR) / 32,
      rootSectors,
      clusters: r.clusters,
      dataStart: reservedSectors + NUM_FATS * r.fatSectors + rootSectors,
      secPerTrack,
      heads,
      aligned,
    };
  }
  return 'large';
}

/** Enough clusters that every reader determines the same FAT type (fatgen103 section 4). */
export function isValid(g: FatGeometry): boolean {
  return g.clusters >= MIN_CLUSTERS[g.fatType] && g.clusters <= MAX_CLUSTERS[g.fatType];
}

/**
 * The geometry for a device: the forced type if any; otherwise FAT32 where it
 * has enough clusters, else FAT16 where it has, else FAT12.
 */
export function chooseGeometry(deviceSectors: number, opts: GeometryOptions = {}): FatGeometry | NoGeometry {
  if (opts.fatType) return layoutFor(deviceSectors, opts.fatType, opts.sectorsPerCluster);
  const g32 = layoutFor(deviceSectors, 32, opts.sectorsPerCluster);
  if (typeof g32 === 'object' && isValid(g32)) return g32;
  const g16 = layoutFor(deviceSectors, 16, opts.sectorsPerCluster);
  if (typeof g16 === 'object' && isValid(g16)) return g16;
  const g12 = layoutFor(deviceSectors, 12, opts.sectorsPerCluster);
  // With a forced cluster size there is a gap between FAT16's largest and
  // FAT32's smallest cluster count: FAT32, short of clusters, so sizing can
  // tell how far to grow.
  return g12 === 'large' && typeof g32 === 'object' ? g32 : g12;
}

/**
 * What fixes the sizes of the structures in front of the data: within one
 * band (same key) reserved and root sectors are constant and the FAT only
 * grows with the size. Bands follow each other in one order as the size grows
 * (checked by test/fs/fat/geometry.test.ts), never coming back.
 */
export function bandKey(deviceSectors: number, opts: GeometryOptions): string {
  const g = chooseGeometry(deviceSectors, opts);
  if (typeof g === 'string') return g;
  return `${g.secPerTrack}/${g.fatType}/${g.sectorsPerCluster}/${g.aligned ? 'a' : 'u'}`;
}

/**
 * Sizes that --size auto may pick: whole 4 KiB blocks and whole tracks, so the
 * filesystem fills the image exactly (TotSec = image size) and the image suits
 * 4K-sector devices. With `exact`, any sector count.
 */
export function nextCandidate(sectors: number, exact: boolean): number {
  if (exact) return sectors;
  for (;;) {
    const spt = chs(sectors).secPerTrack;
    const unit = spt === 63 ? 504 : spt; // lcm(8, spt)
    const c = Math.ceil(sectors / unit) * unit;
    if (chs(c).secPerTrack === spt) return c;
    sectors = spt === 16 ? 4097 : 524289; // the first sector count of the next track size
  }
}

export class NoFit extends Error {
  readonly reason: 'large' | 'never';
  constructor(reason: 'large' | 'never') {
    super(reason);
    this.reason = reason;
  }
}

/**
 * The smallest device (in sectors) whose geometry holds `required(g)` clusters.
 * `required` returns Infinity when no size with this kind of geometry can fit
 * (e.g. a FAT12/16 root directory too small for the root's entries).
 *
 * Exact, not a guess: inside a band the FAT never shrinks as the size grows,
 * so a geometry with C clusters and F FAT sectors that needs N clusters cannot
 * fit below reserved + root + 2F + N*spc sectors; we jump there, or to the
 * first size of the next band if that comes sooner, and look again.
 */
export function smallestFit(opts: GeometryOptions, required: (g: FatGeometry) => number, exact: boolean): FatGeometry {
  let s = nextCandidate(16, exact);
  let reason: 'large' | 'never' = 'large';
  while (s <= MAX_SECTORS) {
    const g = chooseGeometry(s, opts);
    if (g === 'large') throw new NoFit(reason);
    if (g === 'small') {
      s = nextCandidate(s + 1, exact);
      continue;
    }
    const need = required(g);
    if (g.clusters >= need) return g;
    let target = MAX_SECTORS + 1;
    if (Number.isFinite(need)) {
      const sectors = g.reservedSectors + g.rootSectors + NUM_FATS * g.fatSectors + need * g.sectorsPerCluster;
      target = Math.min(target, Math.ceil(sectors / g.secPerTrack) * g.secPerTrack);
    } else {
      reason = 'never';
    }
    target = Math.max(target, s + 1);
    const key = bandKey(s, opts);
    // The first size of the next band, if it starts before the target.
    let hi = Math.min(target, MAX_SECTORS);
    if (bandKey(hi, opts) !== key) {
      let lo = s;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (bandKey(mid, opts) === key) lo = mid;
        else hi = mid;
      }
      target = hi;
    }
    if (target > MAX_SECTORS) break;
    s = nextCandidate(target, exact);
  }
  throw new NoFit(reason);
}
