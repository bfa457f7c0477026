// `diff`: what differs between two images, for hunting non-determinism.
// The virtual disks are compared, never the container files, so a qcow2 and
// a raw build of the same disk are identical. First the bytes: both disks in
// 1 MiB chunks, equal chunks skipped with Buffer.equals, stretches that are
// holes in both containers skipped unread. Only when bytes differ is the
// structure read, top down: disk and partition-table fields, then per
// partition (matched by number) the filesystem's fields, then per file what
// differs, then every differing byte range that no reported file explains,
// named by what owns it on each side (a metadata structure, a file, or
// unallocated space) from the readers' allocation maps.
import { firstEndingAfter } from '../util/search.ts';
import { DiskwrightError } from '../errors.ts';
import { describeReader, type InspectFilesystem } from './inspect.ts';
import { isoTime, openDisk, type OpenedDisk, type ReadOptions, withInput } from './volume.ts';
import type { Image } from '../image/extent-map.ts';
import { detectFilesystem, openFilesystem } from '../read/index.ts';
import { displayKey, type FsEntry, type FsReader, type OwnedRange } from '../read/entry.ts';
import { entryNameProblem, unsafeEntryLine } from '../read/names.ts';
import { driverOf, type FsDriver } from '../fs/drivers.ts';
import { type PartitionEntry, partitionSource, type PartitionTable, readPartitionTable } from '../read/partition.ts';
import type { ByteSource } from '../read/source.ts';

export interface DiffOptions extends ReadOptions {
  /** Bytes compared per read; default 1 MiB. */
  chunkSize?: number;
  /** Differing byte ranges kept (beyond: counted only); default 100,000. */
  maxRanges?: number;
}

export interface FieldChange {
  field: string;
  a: string | null;
  b: string | null;
  /** Other fields that changed from the same `a` to the same `b` (an entry's atime, ctime, crtime following its mtime). */
  alsoIn?: string[];
  /** content: the first byte offset where the files differ (a and b: up to 16 bytes from there, in hex). */
  offset?: number;
}

export interface PartitionChange {
  partition: number;
  change: 'added' | 'removed' | 'changed';
  fields: FieldChange[];
}

export interface FileChange {
  /** The path inside the filesystem, for display (UTF-8, \xNN for other bytes). */
  path: string;
  change: 'added' | 'removed' | 'changed';
  /** The entry's type (B's for added, A's otherwise). */
  type: FsEntry['type'];
  fields: FieldChange[];
}

export interface VolumeChange {
  /** The partition number, null for a bare filesystem. */
  partition: number | null;
  /** "ext4", "fat32", ...; "ext4 -> fat32" when they differ; "none" without one, "unreadable" when it could not be read (see warnings). */
  filesystem: string;
  fields: FieldChange[];
  files: FileChange[];
}

export interface ByteRange {
  /** Byte offset in the virtual disk. */
  offset: number;
  length: number;
  /** "disk", "partition 2" or "filesystem" (a bare one). */
  area: string;
  /** What owns the bytes in A: "superblock", "inode table (group 0)", "file", "unallocated", ... */
  owner: string;
  /** Which entry, when one owns them: a path, or "inode 12 (/etc/motd)". */
  entry?: string;
  /** B's owner, when it differs from A's. */
  ownerB?: string;
  entryB?: string;
}

export interface ImageSide {
  path: string;
  format: string;
  description: string;
  size: number;
}

export interface DiffResult {
  identical: boolean;
  a: ImageSide;
  b: ImageSide;
  /** Bytes of the virtual disks that differ, and in how many ranges. */
  differingBytes: number;
  differingRanges: number;
  disk: FieldChange[];
  partitions: PartitionChange[];
  volumes: VolumeChange[];
  /** Differing byte ranges no reported file explains, split where their owner changes. */
  ranges: ByteRange[];
  /** Differing bytes inside what a reported file owns (its data, inode, xattr block, directory entry). */
  explainedBytes: number;
  /** True when more ranges differed than were kept (maxRanges). */
  rangesTruncated: boolean;
  warnings: string[];
}

// ---------------------------------------------------------------- bytes

type Span = [number, number];

/** Union of both disks' stored ranges: outside it both read as zeros. */
function storedUnion(a: Image, b: Image): Span[] {
  const all: Span[] = [];
  for (const e of a.extents) all.push([e.offset, e.offset + e.length]);
  for (const e of b.extents) all.push([e.offset, e.offset + e.length]);
  all.sort((x, y) => x[0] - y[0]);
  const out: Span[] = [];
  for (const s of all) {
    const last = out[out.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else out.push([s[0], s[1]]);
  }
  return out;
}

/** `length` bytes at `offset`; past the source's end, zeros. */
function readPadded(src: ByteSource, offset: number, length: number, into: Buffer): Buffer {
  const have = Math.max(0, Math.min(length, src.size - offset));
  const out = into.subarray(0, length);
  if (have > 0) src.read(offset, have).copy(out, 0);
  if (have < length) out.fill(0, Math.max(0, have));
  return out;
}

interface ByteDiff {
  ranges: Span[];
  bytes: number;
  count: number;
  truncated: boolean;
}

function compareBytes(A: OpenedDisk, B: OpenedDisk, chunk: number, maxRanges: number): ByteDiff {
  const size = Math.max(A.source.size, B.source.size);
  const union = storedUnion(A.disk.stored(), B.disk.stored());
  // Past the shorter disk's end its bytes are zeros; the longer one's stored ranges cover its data there.
  const out: ByteDiff = { ranges: [], bytes: 0, count: 0, truncated: false };
  const bufA = Buffer.alloc(chunk);
  const bufB = Buffer.alloc(chunk);
  const add = (s: number, e: number) => {
    out.bytes += e - s;
    const last = out.ranges[out.ranges.length - 1];
    if (last && last[1] === s) {
      last[1] = e;
      return;
    }
    out.count++;
    if (out.ranges.length < maxRanges) out.ranges.push([s, e]);
    else out.truncated = true;
  };
  let done = 0;
  for (const [us, ue] of union) {
    for (let c = Math.max(done, Math.floor(us / chunk) * chunk); c < Math.min(ue, size); c += chunk) {
      const n = Math.min(chunk, size - c);
      const a = readPadded(A.source, c, n, bufA);
      const b = readPadded(B.source, c, n, bufB);
      done = c + n;
      if (a.equals(b)) continue;
      const G = 4096;
      for (let s = 0; s < n; s += G) {
        const e = Math.min(n, s + G);
        if (a.compare(b, s, e, s, e) === 0) continue;
        for (let i = s; i < e; i++) {
          if (a[i] === b[i]) continue;
          let j = i + 1;
          while (j < e && a[j] !== b[j]) j++;
          add(c + i, c + j);
          i = j;
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- fields

const str = (v: unknown): string | null =>
  v === undefined || v === null ? null : Array.isArray(v) ? v.join(' ') : typeof v === 'object' ? JSON.stringify(v) : String(v);

function fieldChanges(a: Record<string, unknown>, b: Record<string, unknown>, skip: Set<string> = new Set()): FieldChange[] {
  const out: FieldChange[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])]) {
    if (skip.has(k)) continue;
    const x = str(a[k]);
    const y = str(b[k]);
    if (x !== y) out.push({ field: k, a: x, b: y });
  }
  return out;
}

function tableFields(t: PartitionTable | null, size: number): Record<string, unknown> {
  const r: Record<string, unknown> = { 'disk size': size, 'partition table': t?.kind ?? 'none' };
  if (!t) return r;
  r['sector size'] = t.sectorSize;
  if (t.diskGuid) r['disk GUID'] = t.diskGuid;
  r['disk signature'] = `0x${t.diskSignature.toString(16).padStart(8, '0')}`;
  if (t.gpt) {
    r['first usable LBA'] = t.gpt.firstUsableLba;
    r['last usable LBA'] = t.gpt.lastUsableLba;
    r['GPT copy read'] = t.gpt.used;
    r['GPT entries'] = `${t.gpt[t.gpt.used].entryCount} of ${t.gpt[t.gpt.used].entrySize} bytes`;
  }
  return r;
}

function partitionFields(p: PartitionEntry, t: PartitionTable): Record<string, unknown> {
  const r: Record<string, unknown> = { start: p.start, size: p.size, type: `${p.typeName} (${p.type})` };
  if (p.name !== undefined) r.name = JSON.stringify(p.name);
  if (p.guid !== undefined) r.GUID = p.guid;
  if (p.attributes !== undefined) r.attributes = `0x${p.attributes.toString(16).padStart(16, '0')}${p.attributeNames.length ? ` (${p.attributeNames.join(' ')})` : ''}`;
  r.bootable = p.bootable;
  if (p.mbrType !== undefined && t.kind !== 'gpt') r['MBR type'] = `0x${p.mbrType.toString(16).padStart(2, '0')}`;
  if (p.extended) r.extended = true;
  return r;
}

/** A filesystem's fields, flat: inspect's figures with the ext4 and FAT details inlined. */
function fsFields(f: InspectFilesystem): Record<string, unknown> {
  const { partition: _p, ext4, fat, ...top } = f;
  const r: Record<string, unknown> = { ...top };
  if (ext4) {
    const { journal, ...rest } = ext4;
    Object.assign(r, rest);
    if (journal) for (const [k, v] of Object.entries(journal)) r[`journal ${k}`] = v;
  }
  if (fat) Object.assign(r, fat);
  return r;
}

// ---------------------------------------------------------------- files

const octal = (m: number) => '0' + m.toString(8).padStart(4, '0');

function preview(v: Buffer): string {
  const text = v.toString('latin1');
  const shown = /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : `0x${v.toString('hex')}`;
  return shown.length > 80 ? `${shown.slice(0, 76)}... (${v.length} bytes)` : `${shown} (${v.length} bytes)`;
}

/** What is compared of an entry, besides content and hard links. */
function entryFields(e: FsEntry): Record<string, unknown> {
  const r: Record<string, unknown> = {
    type: e.type,
    mode: octal(e.mode),
    uid: e.uid,
    gid: e.gid,
  };
  if (e.type !== 'dir') r.size = e.size;
  r.mtime = isoTime(e.mtimeSec, e.mtimeNsec);
  r.atime = isoTime(e.atime.sec, e.atime.nsec);
  r.ctime = isoTime(e.ctime.sec, e.ctime.nsec);
  if (e.crtime) r.crtime = isoTime(e.crtime.sec, e.crtime.nsec);
  if (e.type === 'symlink' && e.target) r.target = displayKey(e.target.toString('latin1'));
  if (e.type === 'chr' || e.type === 'blk') r.device = `${e.major}:${e.minor}`;
  if (e.ext4) r.flags = `0x${e.flags.toString(16).padStart(8, '0')}`;
  if (e.fat) {
    r['8.3 name'] = e.fat.shortName;
    r.attributes = `0x${e.fat.attr.toString(16).padStart(2, '0')}`;
  }
  for (const x of e.xattrs) r[`xattr ${x.name}`] = preview(x.value);
  return r;
}

/**
 * Writers commonly set every time of an entry from its source's mtime: when
 * atime, ctime or crtime changed exactly as mtime did, they are one change,
 * reported as mtime (alsoIn names the others).
 */
function foldTimes(fields: FieldChange[]): FieldChange[] {
  const m = fields.find((f) => f.field === 'mtime');
  if (!m) return fields;
  const same = fields.filter((f) => ['atime', 'ctime', 'crtime'].includes(f.field) && f.a === m.a && f.b === m.b);
  if (!same.length) return fields;
  m.alsoIn = same.map((f) => f.field);
  return fields.filter((f) => !same.includes(f));
}

/** Tree order: parents before children, siblings by name bytes. */
const treeKey = (path: string) => path.replaceAll('/', '\0');

interface Side {
  reader: FsReader;
  driver: FsDriver;
  /** Partition start in the disk (0 for a bare filesystem). */
  base: number;
  entries: Map<string, FsEntry>;
  /** linkKey -> every path of it. */
  links: Map<string, string[]>;
  allocation: OwnedRange[];
  /** Content ranges (disk offsets) by owner key. */
  data: Map<string, Span[]>;
  /** Filesystems with inode identity (ext4): inode -> a path of it. */
  inoPath: Map<number, string>;
  /** Filesystems with path identity (FAT): the entry's record offset (in the volume) -> path. */
  direntPath: Map<number, string>;
}

/** The key ranges and reported entries are matched by: inode numbers or paths, as the filesystem's driver says. */
const ownerKey = (d: FsDriver, ino: number | undefined, path: string | undefined) =>
  d.identity === 'inode' ? (ino === undefined ? undefined : `ino:${ino}`) : path === undefined ? undefined : `path:${path}`;

/** `warnings` gets a line for each entry left out because its name cannot be a path component (its path would alias another's). */
function loadSide(reader: FsReader, base: number, what: string, warnings: string[]): Side {
  const entries = new Map<string, FsEntry>();
  const links = new Map<string, string[]>();
  const inoPath = new Map<number, string>();
  const direntPath = new Map<number, string>();
  const driver = driverOf(reader);
  withInput(what, () => {
    for (const e of reader.walk()) {
      const problem = entryNameProblem(e);
      if (problem) {
        warnings.push(unsafeEntryLine(what, e, problem));
        continue;
      }
      entries.set(e.path, e);
      if (e.linkKey) {
        const l = links.get(e.linkKey) ?? [];
        l.push(e.path);
        links.set(e.linkKey, l);
      }
      if (driver.identity === 'inode') {
        if (!inoPath.has(e.ino)) inoPath.set(e.ino, e.path);
      } else if (e.path !== '/') direntPath.set(e.ino, e.path); // the root has no record
    }
  });
  const allocation = withInput(what, () => reader.allocation());
  const data = new Map<string, Span[]>();
  for (const r of allocation) {
    if (r.kind !== 'data') continue;
    const k = ownerKey(driver, r.ino, r.path);
    if (k === undefined) continue;
    const l = data.get(k) ?? [];
    l.push([base + r.offset, base + r.offset + r.length]);
    data.set(k, l);
  }
  return { reader, driver, base, entries, links, allocation, data, inoPath, direntPath };
}

function intersects(ranges: Span[], s: number, e: number): boolean {
  const i = firstEndingAfter(ranges, s);
  return i < ranges.length && ranges[i][0] < e;
}

/** Union of two sorted run lists, cut at `end`. */
function runUnion(a: Array<{ offset: number; length: number }>, b: Array<{ offset: number; length: number }>, end: number): Span[] {
  const all: Span[] = [...a, ...b].map((r) => [r.offset, Math.min(end, r.offset + r.length)] as Span).filter((r) => r[1] > r[0]);
  all.sort((x, y) => x[0] - y[0]);
  const out: Span[] = [];
  for (const s of all) {
    const last = out[out.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else out.push(s);
  }
  return out;
}

/** The first offset where two files' contents differ, or null when they are equal. */
function firstDifference(ra: FsReader, a: FsEntry, rb: FsReader, b: FsEntry): number | null {
  const common = Math.min(a.size, b.size);
  const CH = 1 << 20;
  for (const [s, e] of runUnion(ra.dataRuns(a), rb.dataRuns(b), common)) {
    for (let p = s; p < e; p += CH) {
      const n = Math.min(CH, e - p);
      const x = ra.read(a, p, n);
      const y = rb.read(b, p, n);
      if (x.equals(y)) continue;
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return p + i;
    }
  }
  return a.size === b.size ? null : common;
}

/** What differs per entry, and the byte-string keys of the entries reported. */
function compareFiles(A: Side, B: Side, diff: ByteDiff): { changes: FileChange[]; keys: string[] } {
  const out: FileChange[] = [];
  const reported: string[] = [];
  const keys = [...new Set([...A.entries.keys(), ...B.entries.keys()])].sort((x, y) => {
    const p = treeKey(x);
    const q = treeKey(y);
    return p < q ? -1 : p > q ? 1 : 0;
  });
  const linkPeers = (s: Side, e: FsEntry): string | null => {
    const l = e.linkKey ? s.links.get(e.linkKey) : undefined;
    if (!l || l.length < 2) return null;
    return l.filter((p) => p !== e.path).map(displayKey).sort().join(' ');
  };
  const sameSpans = (x: Span[], y: Span[]) => x.length === y.length && x.every((s, i) => s[0] === y[i][0] && s[1] === y[i][1]);
  for (const k of keys) {
    const a = A.entries.get(k);
    const b = B.entries.get(k);
    const path = displayKey(k);
    if (!a || !b) {
      const e = (a ?? b)!;
      out.push({ path, change: a ? 'removed' : 'added', type: e.type, fields: [{ field: 'type', a: a ? e.type : null, b: b ? e.type : null }] });
      reported.push(k);
      continue;
    }
    const fields = foldTimes(fieldChanges(entryFields(a), entryFields(b)));
    const la = linkPeers(A, a);
    const lb = linkPeers(B, b);
    if (la !== lb) fields.push({ field: 'hard links', a: la, b: lb });
    if (a.type === 'file' && b.type === 'file') {
      const ka = ownerKey(A.driver, a.ino, a.path);
      const kb = ownerKey(B.driver, b.ino, b.path);
      const da = (ka && A.data.get(ka)) || [];
      const db = (kb && B.data.get(kb)) || [];
      const mustRead =
        a.size !== b.size ||
        diff.truncated ||
        (a.size > 0 && (da.length === 0 || db.length === 0)) ||
        !sameSpans(da, db) ||
        da.some(([s, e]) => intersects(diff.ranges, s, e));
      if (mustRead) {
        const at = firstDifference(A.reader, a, B.reader, b);
        if (at !== null) {
          const bytes = (r: FsReader, e: FsEntry) => r.read(e, at, 16).toString('hex');
          fields.push({ field: 'content', a: bytes(A.reader, a), b: bytes(B.reader, b), offset: at });
        }
      }
    }
    if (fields.length) {
      out.push({ path, change: 'changed', type: a.type, fields });
      reported.push(k);
    }
  }
  return { changes: out, keys: reported };
}

// ---------------------------------------------------------------- owners

interface Segment {
  start: number;
  end: number;
  area: string;
  owner: string;
  entry?: string;
  /** Explains a difference when this key's entry is reported. */
  key?: string;
  /** An inode table: first inode number and inode size, for per-inode detail. */
  inodes?: { first: number; size: number };
  /** Directory bytes of fixed-size entries, looked up in direntPath. */
  dirEntries?: { side: Side; size: number };
  side?: Side;
}

function tableSegments(t: PartitionTable | null): Segment[] {
  if (!t) return [];
  const out: Segment[] = [{ start: 0, end: 512, area: 'disk', owner: t.kind === 'mbr' ? 'MBR' : t.kind === 'hybrid' ? 'hybrid MBR' : 'protective MBR' }];
  if (t.gpt) {
    const ss = t.sectorSize;
    for (const [h, name] of [[t.gpt.primary, 'primary'], [t.gpt.backup, 'backup']] as const) {
      if (h.lba > 0) out.push({ start: h.lba * ss, end: (h.lba + 1) * ss, area: 'disk', owner: `GPT header (${name})` });
      if (h.entriesLba > 0 && h.entryCount > 0) {
        out.push({ start: h.entriesLba * ss, end: h.entriesLba * ss + Math.ceil((h.entryCount * h.entrySize) / ss) * ss, area: 'disk', owner: `GPT entries (${name})` });
      }
    }
  }
  return out;
}

function volumeSegments(side: Side | null, start: number, size: number, area: string, note: string): Segment[] {
  if (!side) return [{ start, end: start + size, area, owner: note }];
  const out: Segment[] = [];
  let at = start;
  for (const r of side.allocation) {
    const s = start + r.offset;
    const e = s + r.length;
    if (s > at) out.push({ start: at, end: s, area, owner: 'unallocated' });
    const seg: Segment = { start: s, end: e, area, owner: r.what, side };
    if (r.path !== undefined) seg.entry = displayKey(r.path);
    else if (r.ino !== undefined) seg.entry = `inode ${r.ino}`;
    seg.key = ownerKey(side.driver, r.ino, r.path);
    const records = side.driver.records?.(side.reader, r);
    if (records?.kind === 'inodes') seg.inodes = { first: records.first, size: records.size };
    if (records?.kind === 'dir-entries') seg.dirEntries = { side, size: records.size };
    out.push(seg);
    at = Math.max(at, e);
  }
  if (at < start + size) out.push({ start: at, end: start + size, area, owner: 'unallocated' });
  return out;
}

class Owners {
  private readonly segs: Segment[];
  constructor(segs: Segment[]) {
    this.segs = segs.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start);
  }

  /** The segment holding `offset` (a gap between segments: disk-level unallocated space). */
  at(offset: number): Segment {
    const s = this.segs;
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid].start <= offset) lo = mid + 1;
      else hi = mid;
    }
    const prev = s[lo - 1];
    if (prev && prev.end > offset) return prev;
    return { start: prev ? prev.end : 0, end: lo < s.length ? s[lo].start : Infinity, area: 'disk', owner: 'unallocated' };
  }
}

/** The finest owner of `offset` inside `seg`: one inode of an inode table, one FAT directory entry. */
function refine(seg: Segment, offset: number): { owner: string; entry?: string; key?: string; end: number } {
  if (seg.inodes && seg.side) {
    const idx = Math.floor((offset - seg.start) / seg.inodes.size);
    const ino = seg.inodes.first + idx;
    const path = seg.side.inoPath.get(ino);
    return {
      owner: seg.owner,
      entry: `inode ${ino}${path ? ` (${displayKey(path)})` : ''}`,
      key: `ino:${ino}`,
      end: seg.start + (idx + 1) * seg.inodes.size,
    };
  }
  if (seg.dirEntries) {
    const { side: d, size } = seg.dirEntries;
    const slotStart = offset - ((offset - seg.start) % size);
    const path = d.direntPath.get(slotStart - d.base);
    if (path !== undefined) return { owner: `${seg.owner} entry`, entry: displayKey(path), key: `path:${path}`, end: slotStart + size };
    return { owner: seg.owner, entry: seg.entry, key: seg.key, end: slotStart + size };
  }
  return { owner: seg.owner, entry: seg.entry, key: seg.key, end: seg.end };
}

// ---------------------------------------------------------------- the diff

function side(img: OpenedDisk): ImageSide {
  return { path: img.path, format: img.disk.format, description: img.disk.description, size: img.disk.size };
}

interface VolumePair {
  partition: number | null;
  area: string;
  a?: { src: ByteSource; start: number; size: number };
  b?: { src: ByteSource; start: number; size: number };
}

function openSide(src: ByteSource, start: number, what: string, warnings: string[]): { side: Side | null; note: string; fs?: InspectFilesystem } {
  let kind: string;
  try {
    kind = detectFilesystem(src);
  } catch (e) {
    if (!(e instanceof DiskwrightError)) throw e;
    warnings.push(`${what}: ${e.message}`);
    return { side: null, note: 'filesystem unreadable' };
  }
  if (kind === 'unknown') return { side: null, note: 'no filesystem' };
  try {
    const reader = openFilesystem(src, what);
    const fs = describeReader(reader, null, what);
    return { side: loadSide(reader, start, what, warnings), note: '', fs };
  } catch (e) {
    if (!(e instanceof DiskwrightError)) throw e;
    warnings.push(e.message.startsWith(what) ? e.message : `${what}: ${e.message}`);
    return { side: null, note: 'filesystem unreadable' };
  }
}

/** Compares two images (any formats we read) by their virtual disks. */
export function diffImages(pathA: string, pathB: string, opts: DiffOptions = {}): DiffResult {
  const chunk = opts.chunkSize ?? 1 << 20;
  const A = openDisk(pathA, opts);
  let B: OpenedDisk;
  try {
    B = openDisk(pathB, opts);
  } catch (e) {
    A.close();
    throw e;
  }
  try {
    const bytes = compareBytes(A, B, chunk, opts.maxRanges ?? 100_000);
    const result: DiffResult = {
      identical: bytes.bytes === 0 && A.disk.size === B.disk.size,
      a: side(A),
      b: side(B),
      differingBytes: bytes.bytes,
      differingRanges: bytes.count,
      disk: [],
      partitions: [],
      volumes: [],
      ranges: [],
      explainedBytes: 0,
      rangesTruncated: bytes.truncated,
      warnings: [],
    };
    if (result.identical) return result;
    explain(A, B, bytes, result);
    return result;
  } finally {
    A.close();
    B.close();
  }
}

function explain(A: OpenedDisk, B: OpenedDisk, bytes: ByteDiff, result: DiffResult): void {
  const warnings = result.warnings;
  const readTable = (img: OpenedDisk) => {
    const t = withInput(img.path, () => readPartitionTable(img.source));
    for (const w of t?.warnings ?? []) warnings.push(`${img.path}: ${w}`);
    return t;
  };
  const ta = readTable(A);
  const tb = readTable(B);
  result.disk = fieldChanges(tableFields(ta, A.disk.size), tableFields(tb, B.disk.size));

  // Partitions by number.
  const pa = new Map((ta?.partitions ?? []).map((p) => [p.index, p]));
  const pb = new Map((tb?.partitions ?? []).map((p) => [p.index, p]));
  for (const n of [...new Set([...pa.keys(), ...pb.keys()])].sort((x, y) => x - y)) {
    const x = pa.get(n);
    const y = pb.get(n);
    if (x && y) {
      const fields = fieldChanges(partitionFields(x, ta!), partitionFields(y, tb!));
      if (fields.length) result.partitions.push({ partition: n, change: 'changed', fields });
    } else {
      const p = (x ?? y)!;
      const fields = fieldChanges(x ? partitionFields(p, ta!) : {}, y ? partitionFields(p, tb!) : {});
      result.partitions.push({ partition: n, change: x ? 'removed' : 'added', fields });
    }
  }

  // Volumes: a bare filesystem on both sides, or the partitions (by number) of each.
  const pairs: VolumePair[] = [];
  if (!ta && !tb) {
    pairs.push({ partition: null, area: 'filesystem', a: { src: A.source, start: 0, size: A.source.size }, b: { src: B.source, start: 0, size: B.source.size } });
  } else {
    const nums = [...new Set([...pa.keys(), ...pb.keys()])].sort((x, y) => x - y);
    for (const n of nums) {
      const x = pa.get(n);
      const y = pb.get(n);
      if ((x && x.extended) || (y && y.extended)) continue;
      pairs.push({
        partition: n,
        area: `partition ${n}`,
        a: x ? { src: partitionSource(A.source, x), start: x.start, size: x.size } : undefined,
        b: y ? { src: partitionSource(B.source, y), start: y.start, size: y.size } : undefined,
      });
    }
    // One side bare, the other partitioned: the bare side's filesystem has no partner.
    if (!ta) pairs.push({ partition: null, area: 'filesystem', a: { src: A.source, start: 0, size: A.source.size } });
    if (!tb) pairs.push({ partition: null, area: 'filesystem', b: { src: B.source, start: 0, size: B.source.size } });
  }

  const segsA: Segment[] = tableSegments(ta);
  const segsB: Segment[] = tableSegments(tb);
  const explained = { a: new Set<string>(), b: new Set<string>() };
  for (const pair of pairs) {
    const whatA = pair.partition === null ? A.path : `${A.path} partition ${pair.partition}`;
    const whatB = pair.partition === null ? B.path : `${B.path} partition ${pair.partition}`;
    const sa = pair.a ? openSide(pair.a.src, pair.a.start, whatA, warnings) : null;
    const sb = pair.b ? openSide(pair.b.src, pair.b.start, whatB, warnings) : null;
    if (pair.a && sa) segsA.push(...volumeSegments(sa.side, pair.a.start, pair.a.size, pair.area, sa.note));
    if (pair.b && sb) segsB.push(...volumeSegments(sb.side, pair.b.start, pair.b.size, pair.area, sb.note));
    if (!sa || !sb) continue;
    const kind = (x: { fs?: InspectFilesystem; note: string }) => x.fs?.type ?? (x.note === 'no filesystem' ? 'none' : 'unreadable');
    const typeA = kind(sa);
    const typeB = kind(sb);
    const vol: VolumeChange = {
      partition: pair.partition,
      filesystem: typeA === typeB ? typeA : `${typeA} -> ${typeB}`,
      fields: sa.fs && sb.fs ? fieldChanges(fsFields(sa.fs), fsFields(sb.fs)) : [],
      files: [],
    };
    if (typeA !== typeB) vol.fields.unshift({ field: 'filesystem', a: typeA, b: typeB });
    if (sa.side && sb.side && typeA === typeB) {
      const files = compareFiles(sa.side, sb.side, bytes);
      vol.files = files.changes;
      for (const key of files.keys) {
        for (const [s, set] of [[sa.side, explained.a], [sb.side, explained.b]] as const) {
          for (const e of entriesNamed(s, key)) {
            const k = ownerKey(s.driver, e.ino, e.path);
            if (k) set.add(`${pair.area}|${k}`);
          }
        }
      }
    }
    if (vol.fields.length || vol.files.length) result.volumes.push(vol);
  }

  // The differing bytes no reported entry explains.
  const ownA = new Owners(segsA);
  const ownB = new Owners(segsB);
  const maxOut = 100_000;
  for (const [s0, e0] of bytes.ranges) {
    let s = s0;
    while (s < e0) {
      const ga = ownA.at(s);
      const gb = ownB.at(s);
      const ra = refine(ga, s);
      const rb = refine(gb, s);
      const e = Math.min(e0, ra.end, rb.end);
      const isExplained = (ra.key && explained.a.has(`${ga.area}|${ra.key}`)) || (rb.key && explained.b.has(`${gb.area}|${rb.key}`));
      if (isExplained) result.explainedBytes += e - s;
      else {
        const r: ByteRange = { offset: s, length: e - s, area: ga.area, owner: ra.owner };
        if (ra.entry !== undefined) r.entry = ra.entry;
        if (rb.owner !== ra.owner || rb.entry !== ra.entry || gb.area !== ga.area) {
          r.ownerB = gb.area !== ga.area ? `${gb.area}: ${rb.owner}` : rb.owner;
          if (rb.entry !== undefined) r.entryB = rb.entry;
        }
        const last = result.ranges[result.ranges.length - 1];
        if (last && last.offset + last.length === s && last.area === r.area && last.owner === r.owner && last.entry === r.entry && last.ownerB === r.ownerB && last.entryB === r.entryB) {
          last.length += r.length;
        } else if (result.ranges.length < maxOut) result.ranges.push(r);
        else result.rangesTruncated = true;
      }
      s = e;
    }
  }
}

/** The entry of `s` at `key` and every other name of the same inode (hard links). */
function entriesNamed(s: Side, key: string): FsEntry[] {
  const e = s.entries.get(key);
  if (!e) return [];
  const names = e.linkKey ? s.links.get(e.linkKey) ?? [key] : [key];
  return names.map((n) => s.entries.get(n)!).filter(Boolean);
}
