// FAT12/16/32 reader: boot sector and BPB, FSInfo, the FAT and its cluster
// chains, directories with VFAT long names (checksum-verified) and 8.3 names
// (with the NT lower-case bits), attributes, times and labels.
// Spec: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103),
// sections 3 (boot sector, BPB), 4 (FAT type, entries), 5 (FSInfo), 6 (directory
// entries, dates and times) and 7 (long names); the field tables are the writer's (src/fs/fat/).
import { DiskwrightError } from '../errors.ts';
import { decodeBootSector, looksLikeFat } from '../fs/fat/boot-sector.ts';
import { ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_VOLUME_ID } from '../fs/fat/constants.ts';
import { decodeShortName, DIR, fatTimeToUnix, modeOfAttr, oemText } from '../fs/fat/dir-entry.ts';
import { FSINFO } from '../fs/fat/fsinfo.ts';
import { addLongEntry, foldName, longNameFor, type LongNameRun } from '../fs/fat/lfn.ts';
import { childPath, coalesce, displayKey, type FsEntry, type FsSummary, type OwnedRange } from './entry.ts';
import { type ContentRun, FsReaderBase } from './fs-reader.ts';
import { type ByteSource, readAt } from './source.ts';

export type FatType = 12 | 16 | 32;

export interface FatInfo {
  type: FatType;
  bytesPerSector: number;
  sectorsPerCluster: number;
  clusterSize: number;
  reservedSectors: number;
  numFats: number;
  /** FAT12/16 root directory slots (0 on FAT32). */
  rootEntries: number;
  totalSectors: number;
  /** Sectors per FAT. */
  fatSectors: number;
  media: number;
  hiddenSectors: number;
  sectorsPerTrack: number;
  heads: number;
  oemName: string;
  /** Byte offsets in the volume: the first FAT, the root directory (FAT12/16), the data area. */
  fatOffset: number;
  /** The FAT that is read: 0 unless FAT32 mirroring is off (BPB_ExtFlags). */
  activeFat: number;
  rootDirOffset: number;
  rootDirBytes: number;
  dataOffset: number;
  /** Data clusters (numbered 2 .. clusters+1). */
  clusters: number;
  /** FAT32: the root directory's first cluster. */
  rootCluster: number;
  /** Extended boot record present (BS_BootSig 0x29, or 0x28 without label and type). */
  bootSig: number;
  volumeId: number;
  /** The volume ID as blkid prints it: XXXX-XXXX. */
  volumeIdText: string;
  /** BS_VolLab, trailing spaces removed (undefined without an extended boot record). */
  bootLabel?: string;
  /** The root directory's volume-label entry, trailing spaces removed, or undefined. */
  dirLabel?: string;
  /** What blkid and mlabel show: the root directory's label, else the boot sector's unless "NO NAME", else ''. */
  label: string;
  fsTypeField: string;
  /** FAT32 fields. */
  extFlags?: number;
  fsVersion?: number;
  fsInfoSector?: number;
  backupBootSector?: number;
  fsinfo?: { valid: boolean; freeCount: number; nextFree: number };
  /** Counted from the first FAT. */
  freeClusters: number;
  badClusters: number;
  /** FAT[0] and FAT[1]. */
  fatHead: [number, number];
  /** Every BPB field by its spec name, as decoded. */
  raw: Record<string, number | Buffer>;
}

/** FAT-specific detail on FsEntry.fat. */
export interface FatEntryDetail {
  /** The 8.3 name as NAME.EXT (OEM code page 437, case as stored). */
  shortName: string;
  shortRaw: Buffer;
  /** Whether a valid long-name sequence named the entry. */
  hasLongName: boolean;
  attr: number;
  /** DIR_NTRes: 0x08 base and 0x10 extension shown in lower case. */
  ntRes: number;
  firstCluster: number;
  /** The raw date/time fields: FAT has no time zone; mtimeSec etc. read them as UTC, as diskwright writes them. */
  crtTimeTenth: number;
  crtTime: number;
  crtDate: number;
  accDate: number;
  wrtTime: number;
  wrtDate: number;
  /** Byte offset of the 8.3 entry in the volume (also FsEntry.ino). */
  entryOffset: number;
}

function corrupt(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('IMAGE_CORRUPT', `FAT: ${message}`, data);
}

interface RawDirItem {
  name: string; // UTF-8 byte string
  detail: FatEntryDetail;
  size: number;
  /** Why the long name is not a valid one (decodeLfn). */
  nameProblem?: string;
}

export class FatReader extends FsReaderBase {
  readonly source: ByteSource;
  readonly info: FatInfo;
  protected readonly fsName = 'FAT';
  private fatCache: Uint32Array | null = null;

  constructor(source: ByteSource) {
    super();
    this.source = source;
    if (source.size < 512) throw new DiskwrightError('FILESYSTEM_UNKNOWN', `not a FAT filesystem: only ${source.size} bytes`, {});
    const bs = source.read(0, 512);
    if (!looksLikeFat(bs)) throw new DiskwrightError('FILESYSTEM_UNKNOWN', 'not a FAT filesystem (no valid BIOS parameter block)', {});
    const boot = decodeBootSector(bs);
    const { bpb, ext } = boot;
    const is32 = boot.is32;
    const bps = bpb.BPB_BytsPerSec;
    const spc = bpb.BPB_SecPerClus;
    const fatSectors = boot.is32 ? boot.ext.BPB_FATSz32 : bpb.BPB_FATSz16;
    const totalSectors = bpb.BPB_TotSec16 || bpb.BPB_TotSec32;
    const reserved = bpb.BPB_RsvdSecCnt;
    const numFats = bpb.BPB_NumFATs;
    const rootEntries = bpb.BPB_RootEntCnt;
    const rootDirSectors = Math.ceil((rootEntries * 32) / bps);
    const dataSector = reserved + numFats * fatSectors + rootDirSectors;
    if (dataSector >= totalSectors) corrupt(`the data area starts at sector ${dataSector}, past the volume's ${totalSectors} sectors`);
    const clusters = Math.floor((totalSectors - dataSector) / spc);
    const type: FatType = is32 ? 32 : clusters < 4085 ? 12 : 16;
    if (totalSectors * bps > source.size) {
      throw new DiskwrightError(
        'IMAGE_TRUNCATED',
        `FAT: the volume spans ${totalSectors * bps} bytes but the image holds only ${source.size}; is it truncated?`,
        { expected: totalSectors * bps, actual: source.size },
      );
    }
    const bootSig = ext.BS_BootSig;
    const volumeId = bootSig === 0x29 || bootSig === 0x28 ? ext.BS_VolID : 0;
    const hex = volumeId.toString(16).toUpperCase().padStart(8, '0');
    const bootLabel = bootSig === 0x29 ? oemText(ext.BS_VolLab).replace(/ +$/, '') : undefined;
    this.info = {
      type,
      bytesPerSector: bps,
      sectorsPerCluster: spc,
      clusterSize: bps * spc,
      reservedSectors: reserved,
      numFats,
      rootEntries,
      totalSectors,
      fatSectors,
      media: bpb.BPB_Media,
      hiddenSectors: bpb.BPB_HiddSec,
      sectorsPerTrack: bpb.BPB_SecPerTrk,
      heads: bpb.BPB_NumHeads,
      oemName: bpb.BS_OEMName.toString('latin1'),
      fatOffset: reserved * bps,
      activeFat: 0,
      rootDirOffset: is32 ? 0 : (reserved + numFats * fatSectors) * bps,
      rootDirBytes: rootDirSectors * bps,
      dataOffset: dataSector * bps,
      clusters,
      rootCluster: boot.is32 ? boot.ext.BPB_RootClus : 0,
      bootSig,
      volumeId,
      volumeIdText: `${hex.slice(0, 4)}-${hex.slice(4)}`,
      bootLabel,
      label: '',
      fsTypeField: bootSig === 0x29 ? ext.BS_FilSysType.toString('latin1') : '',
      freeClusters: 0,
      badClusters: 0,
      fatHead: [0, 0],
      raw: { ...bpb, ...ext },
    };
    if (boot.is32) {
      const x = boot.ext;
      this.info.extFlags = x.BPB_ExtFlags;
      this.info.fsVersion = x.BPB_FSVer;
      this.info.fsInfoSector = x.BPB_FSInfo;
      this.info.backupBootSector = x.BPB_BkBootSec;
      const fsi = this.info.fsInfoSector;
      if (fsi > 0 && fsi < reserved) {
        const f = FSINFO.decode(readAt(source, fsi * bps, 512, 'FAT FSInfo sector'), 0);
        this.info.fsinfo = {
          valid: f.FSI_LeadSig === 0x41615252 && f.FSI_StrucSig === 0x61417272 && f.FSI_TrailSig === 0xaa550000,
          freeCount: f.FSI_Free_Count,
          nextFree: f.FSI_Nxt_Free,
        };
      }
      // Mirroring off (BPB_ExtFlags bit 7): only the active FAT counts.
      if (x.BPB_ExtFlags & 0x80) {
        this.info.activeFat = x.BPB_ExtFlags & 0x0f;
        if (this.info.activeFat >= numFats) corrupt(`BPB_ExtFlags names FAT ${this.info.activeFat + 1} of ${numFats} as active`);
      }
    }
    const fat = this.fat();
    this.info.fatHead = [fat[0], fat[1]];
    const bad = type === 12 ? 0xff7 : type === 16 ? 0xfff7 : 0x0ffffff7;
    for (let c = 2; c < clusters + 2; c++) {
      if (fat[c] === 0) this.info.freeClusters++;
      else if (fat[c] === bad) this.info.badClusters++;
    }
    const root = this.readDir(this.root());
    this.info.dirLabel = root.label;
    this.info.label = root.label ?? (bootLabel && bootLabel !== 'NO NAME' ? bootLabel : '');
  }

  summary(): FsSummary {
    const i = this.info;
    return {
      type: `fat${i.type}`,
      label: i.label,
      uuid: i.volumeIdText,
      size: i.totalSectors * i.bytesPerSector,
      blockSize: i.clusterSize,
      blocks: i.clusters,
      freeBlocks: i.freeClusters,
      features: [],
    };
  }

  // ------------------------------------------------------------ the FAT

  /** The first FAT, one entry per cluster number (0 .. clusters+1), entries masked to 28 bits on FAT32. */
  fat(): Uint32Array {
    if (this.fatCache) return this.fatCache;
    const { type, clusters, fatOffset, fatSectors, bytesPerSector, activeFat } = this.info;
    const count = clusters + 2;
    const need = type === 12 ? Math.ceil((count * 3) / 2) : count * (type / 8);
    if (need > fatSectors * bytesPerSector) corrupt(`the FAT (${fatSectors} sectors) cannot map ${clusters} clusters`);
    const raw = readAt(this.source, fatOffset + activeFat * fatSectors * bytesPerSector, need, 'FAT');
    const out = new Uint32Array(count);
    if (type === 12) {
      for (let c = 0; c < count; c++) {
        const o = (c * 3) >> 1;
        const v = raw[o] | (raw[o + 1] << 8);
        out[c] = c & 1 ? v >> 4 : v & 0xfff;
      }
    } else if (type === 16) {
      for (let c = 0; c < count; c++) out[c] = raw.readUInt16LE(c * 2);
    } else {
      for (let c = 0; c < count; c++) out[c] = raw.readUInt32LE(c * 4) & 0x0fffffff;
    }
    this.fatCache = out;
    return out;
  }

  /** The clusters of the chain starting at `first`, in order ([] for 0). */
  chain(first: number, what = `chain from cluster ${first}`): number[] {
    const out: number[] = [];
    this.followChain(first, what, (c) => out.push(c));
    return out;
  }

  /** How many clusters the chain from `first` has, checked as chain() checks it, without keeping the list. */
  chainLength(first: number, what: string): number {
    return this.followChain(first, what, () => {});
  }

  /** Calls `visit` for each cluster of the chain from `first`; the length. Loops, free and bad links and clusters out of range are damage. */
  private followChain(first: number, what: string, visit: (c: number) => void): number {
    if (first === 0) return 0;
    const fat = this.fat();
    const { type, clusters } = this.info;
    const eoc = type === 12 ? 0xff8 : type === 16 ? 0xfff8 : 0x0ffffff8;
    let n = 0;
    for (let c = first; ; ) {
      if (c < 2 || c >= clusters + 2) corrupt(`${what}: cluster ${c} is out of range (2..${clusters + 1})`);
      visit(c);
      if (++n > clusters) corrupt(`${what}: the chain loops`);
      const next = fat[c];
      if (next >= eoc) return n;
      if (next === 0) corrupt(`${what}: cluster ${c} is marked free in the middle of the chain`);
      if (next === eoc - 1) corrupt(`${what}: cluster ${c} links to a bad cluster`);
      c = next;
    }
  }

  clusterOffset(c: number): number {
    return this.info.dataOffset + (c - 2) * this.info.clusterSize;
  }

  /** Runs of contiguous clusters: [byte offset in the content, byte offset in the volume, bytes]. */
  private runs(chain: number[]): Array<ContentRun & { physical: number }> {
    const cs = this.info.clusterSize;
    const out: Array<ContentRun & { physical: number }> = [];
    chain.forEach((c, i) => {
      const last = out[out.length - 1];
      const phys = this.clusterOffset(c);
      if (last && last.physical + last.length === phys) last.length += cs;
      else out.push({ logical: i * cs, physical: phys, length: cs });
    });
    return out;
  }

  private chainBytes(chain: number[]): Buffer {
    const parts = this.runs(chain).map((r) => readAt(this.source, r.physical, r.length, 'FAT cluster'));
    return Buffer.concat(parts);
  }

  // ------------------------------------------------------------ directories

  private rootBytes(): Buffer {
    const i = this.info;
    if (i.type === 32) return this.chainBytes(this.chain(i.rootCluster, 'root directory'));
    return readAt(this.source, i.rootDirOffset, i.rootDirBytes, 'FAT root directory');
  }

  /** Byte offset in the volume of byte `at` of a directory's content. */
  private dirOffsetOf(chain: number[] | null, at: number): number {
    if (chain === null) return this.info.rootDirOffset + at;
    const cs = this.info.clusterSize;
    return this.clusterOffset(chain[Math.floor(at / cs)]) + (at % cs);
  }

  /** `chain`: the directory's clusters, null for the fixed FAT12/16 root. */
  private rawDir(bytes: Buffer, isRoot: boolean, chain: number[] | null): {
    items: RawDirItem[]; label?: string; dot?: number; dotdot?: number;
  } {
    const items: RawDirItem[] = [];
    let label: string | undefined;
    let dot: number | undefined;
    let dotdot: number | undefined;
    let lfn: LongNameRun = null;
    const fat32 = this.info.type === 32;
    for (let at = 0; at + 32 <= bytes.length; at += 32) {
      const first = bytes[at];
      if (first === 0) break;
      if (first === 0xe5) {
        lfn = null;
        continue;
      }
      const attr = bytes[at + 11];
      if ((attr & 0x3f) === ATTR_LONG_NAME) {
        lfn = addLongEntry(lfn, bytes, at);
        continue;
      }
      const d = DIR.decode(bytes, at);
      const shortRaw = d.DIR_Name;
      if (attr & ATTR_VOLUME_ID) {
        if (isRoot && label === undefined && !(attr & ATTR_DIRECTORY)) label = oemText(shortRaw).replace(/ +$/, '');
        lfn = null;
        continue;
      }
      const cluster = (fat32 ? d.DIR_FstClusHI * 65536 : 0) + d.DIR_FstClusLO;
      const raw11 = shortRaw.toString('latin1');
      if (raw11 === '.          ') {
        dot = cluster;
        lfn = null;
        continue;
      }
      if (raw11 === '..         ') {
        dotdot = cluster;
        lfn = null;
        continue;
      }
      const ntRes = d.DIR_NTRes;
      const { shortName, name: plainName } = decodeShortName(shortRaw, ntRes);
      const long = longNameFor(lfn, shortRaw);
      lfn = null;
      const name = long ? long.name : plainName;
      const detail: FatEntryDetail = {
        shortName,
        shortRaw,
        hasLongName: long !== undefined,
        attr,
        ntRes,
        firstCluster: cluster,
        crtTimeTenth: d.DIR_CrtTimeTenth,
        crtTime: d.DIR_CrtTime,
        crtDate: d.DIR_CrtDate,
        accDate: d.DIR_LstAccDate,
        wrtTime: d.DIR_WrtTime,
        wrtDate: d.DIR_WrtDate,
        entryOffset: this.dirOffsetOf(chain, at),
      };
      items.push({ name: Buffer.from(name, 'utf8').toString('latin1'), detail, size: d.DIR_FileSize, nameProblem: long?.problem });
    }
    return { items, label, dot, dotdot };
  }

  private dirChain(dir: FsEntry): number[] | null {
    if (dir.path === '/' || dir.ino === 0) return this.info.type === 32 ? this.chain(this.info.rootCluster, 'root directory') : null;
    return this.chain(dir.fat!.firstCluster, displayKey(dir.path));
  }

  private readDir(dir: FsEntry): ReturnType<FatReader['rawDir']> {
    const chain = this.dirChain(dir);
    const bytes = chain === null ? this.rootBytes() : this.chainBytes(chain);
    return this.rawDir(bytes, dir.path === '/', chain);
  }

  /** A directory's '.' and '..' cluster numbers as stored (undefined for the root, which has none). */
  dots(dir: FsEntry): { dot?: number; dotdot?: number } {
    const { dot, dotdot } = this.readDir(dir);
    return { dot, dotdot };
  }

  /**
   * A directory item as an entry. A file's size must fit the clusters its
   * chain holds (hence the data area): a larger DIR_FileSize is damage, not
   * a file to read past its end.
   */
  private toEntry(parent: string, it: RawDirItem): FsEntry {
    const f = it.detail;
    const isDir = (f.attr & ATTR_DIRECTORY) !== 0;
    if (!isDir && it.size > 0) {
      const path = displayKey(childPath(parent, it.name));
      const held = this.chainLength(f.firstCluster, path) * this.info.clusterSize;
      if (it.size > held) corrupt(`${path}: DIR_FileSize ${it.size} is more than its ${held / this.info.clusterSize} clusters hold (${held} bytes)`, { size: it.size });
    }
    const m = fatTimeToUnix(f.wrtDate, f.wrtTime);
    return {
      path: childPath(parent, it.name),
      name: it.name,
      type: isDir ? 'dir' : 'file',
      mode: modeOfAttr(f.attr),
      uid: 0,
      gid: 0,
      mtimeSec: m.sec,
      mtimeNsec: m.nsec,
      atime: fatTimeToUnix(f.accDate, 0),
      ctime: m,
      crtime: fatTimeToUnix(f.crtDate, f.crtTime, f.crtTimeTenth),
      size: isDir ? 0 : it.size,
      nlink: 1,
      ino: f.entryOffset,
      xattrs: [],
      flags: f.attr,
      fat: f,
      ...(it.nameProblem === undefined ? {} : { nameProblem: it.nameProblem }),
    };
  }

  root(): FsEntry {
    return {
      path: '/', name: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0,
      atime: { sec: 0, nsec: 0 }, ctime: { sec: 0, nsec: 0 }, size: 0, nlink: 1, ino: 0, xattrs: [], flags: ATTR_DIRECTORY,
    };
  }

  protected children(dir: FsEntry): FsEntry[] {
    return this.readDir(dir).items.map((it) => this.toEntry(dir.path, it));
  }

  /** Names match exactly, else case-insensitively (as FAT compares), else by their 8.3 alias. */
  protected child(dir: FsEntry, name: string): FsEntry | undefined {
    const items = this.readDir(dir).items;
    const folded = foldName(Buffer.from(name, 'latin1').toString('utf8'));
    const hit =
      items.find((it) => it.name === name) ??
      items.find((it) => foldName(Buffer.from(it.name, 'latin1').toString('utf8')) === folded) ??
      items.find((it) => it.detail.shortName === folded);
    return hit && this.toEntry(dir.path, hit);
  }

  protected dirIdentity(dir: FsEntry): { id: number; what: string } {
    const id = dir.fat?.firstCluster ?? 0;
    return { id, what: `cluster ${id}` };
  }

  // ------------------------------------------------------------ content

  /** The clusters of an entry's content. */
  clustersOf(entry: FsEntry): number[] {
    if (entry.path === '/' && !entry.fat) return this.info.type === 32 ? this.chain(this.info.rootCluster, 'root directory') : [];
    const first = entry.fat?.firstCluster ?? 0;
    const chain = this.chain(first, displayKey(entry.path));
    if (entry.type === 'file' && chain.length * this.info.clusterSize < entry.size) {
      corrupt(`${displayKey(entry.path)}: ${entry.size} bytes but only ${chain.length} clusters`);
    }
    return chain;
  }

  /** FAT has no holes: the cluster chain covers the whole size. */
  protected content(entry: FsEntry): ContentRun[] {
    return this.runs(this.clustersOf(entry));
  }

  // ------------------------------------------------------------ allocation map

  allocation(): OwnedRange[] {
    const i = this.info;
    const bps = i.bytesPerSector;
    const out: OwnedRange[] = [];
    const meta = (offset: number, length: number, what: string) => out.push({ offset, length, kind: 'metadata', what });
    const rsv: Array<[number, number, string]> = [[0, 1, 'boot sector']];
    if (i.type === 32) {
      if (i.fsInfoSector && i.fsInfoSector < i.reservedSectors) rsv.push([i.fsInfoSector, 1, 'FSInfo sector']);
      if (i.backupBootSector && i.backupBootSector + 3 <= i.reservedSectors) rsv.push([i.backupBootSector, 3, 'backup boot sectors']);
    }
    rsv.sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [s, n, what] of rsv) {
      if (s > at) meta(at * bps, (s - at) * bps, 'reserved sectors');
      meta(s * bps, n * bps, what);
      at = s + n;
    }
    if (at < i.reservedSectors) meta(at * bps, (i.reservedSectors - at) * bps, 'reserved sectors');
    for (let f = 0; f < i.numFats; f++) meta(i.fatOffset + f * i.fatSectors * bps, i.fatSectors * bps, `FAT ${f + 1}`);
    if (i.type !== 32) meta(i.rootDirOffset, i.rootDirBytes, 'root directory');
    const own = (chain: number[], what: string, path: string) => {
      for (const r of this.runs(chain)) out.push({ offset: r.physical, length: r.length, kind: 'data', what, path });
    };
    for (const e of this.walk()) {
      if (e.path === '/') {
        if (i.type === 32) own(this.chain(i.rootCluster, 'root directory'), 'root directory', '/');
        continue;
      }
      own(this.clustersOf(e), e.type === 'dir' ? 'directory' : 'file', e.path);
    }
    return coalesce(out);
  }
}

export function openFat(source: ByteSource): FatReader {
  return new FatReader(source);
}
