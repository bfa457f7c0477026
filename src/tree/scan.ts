// Directory sources -> FileTree. Reads metadata only (lstat, readdir, readlink,
// xattrs); file bytes are read later by the emitter. A sparse file's data runs
// are asked of its file system (SEEK_DATA / SEEK_HOLE), never read for.
import { errnoOf, errnoWords } from '../util/sys-error.ts';
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { placeholderDirs, type DataRun, type DirEntry, type Entry, type FileEntry, type Xattr } from './model.ts';
import { readXattrs } from './xattr.ts';
import { dataSegments } from '../util/sparse.ts';
import { tally, type PhaseCounter } from '../util/progress.ts';

export interface ScanOptions {
  /** Force every entry's owner (like fakeroot / e2fsprogs root_owner for the whole tree). */
  owner?: { uid: number; gid: number };
  /** Clamp mtimes later than this to it (seconds). */
  clampMtime?: number;
  /** Granularity at which all-zero ranges of sparse files become holes. */
  blockSize?: number;
  /** Prefix for hard-link identities, so separately copied sources never share an inode. */
  linkScope?: string;
}

/** The walk's own state beside the options: the running work's count of entries. */
interface Walk extends ScanOptions {
  found: PhaseCounter;
}

function walk(opts: ScanOptions): Walk {
  return { ...opts, found: tally('scanning', 1000) };
}

const S_IFMT = 0o170000;
const NS = 1_000_000_000n;
const SLASH = Buffer.from('/');

/** Merges the directories into one tree; later sources win on conflicts. */
export function scanSources(sources: string[], opts: ScanOptions = {}): DirEntry {
  let root: DirEntry | undefined;
  for (const src of sources) {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(src, { bigint: true });
    } catch {
      throw new DiskwrightError('SOURCE_MISSING', `source ${src} does not exist; give an existing directory`, { path: src });
    }
    if ((Number(st.mode) & S_IFMT) !== 0o040000) {
      throw new DiskwrightError('SOURCE_NOT_DIR', `source ${src} is not a directory; give a directory whose contents become the image root`, { path: src });
    }
    const dir = scanDir(Buffer.from(src), st, walk(opts));
    root = root ? mergeDir(root, dir) : dir;
  }
  if (!root) throw new DiskwrightError('SOURCE_MISSING', 'no source directory given; name at least one', {});
  return root;
}

/**
 * Merges `from` over `into` (which it modifies): `from` wins, directories
 * merge, and a placeholder `from` keeps `into`'s metadata.
 */
export function mergeDir(into: DirEntry, from: DirEntry): DirEntry {
  for (const [name, e] of from.children) {
    const old = into.children.get(name);
    into.children.set(name, old && old.type === 'dir' && e.type === 'dir' ? mergeDir(old, e) : e);
  }
  return placeholderDirs.has(from) ? into : { ...from, children: into.children };
}

function fail(code: 'SOURCE_UNREADABLE', path: Buffer, err: unknown): never {
  const reason = errnoWords(errnoOf(err) ?? 'EIO');
  throw new DiskwrightError(code, `cannot read ${path.toString()}: ${reason}; fix its permissions or leave it out`, { path: path.toString(), reason });
}

/**
 * The empty xattr list every entry without attributes shares (most of them):
 * one array per entry costs ~32 bytes of a tree of millions. Frozen, so a
 * stage that tried to add to it would fail loudly, not touch every entry.
 */
const NO_XATTRS = Object.freeze([]) as unknown as Xattr[];

function base(st: fs.BigIntStats, xattrs: Xattr[], opts: ScanOptions) {
  let sec = st.mtimeNs / NS;
  let nsec = st.mtimeNs - sec * NS;
  if (nsec < 0n) { nsec += NS; sec -= 1n; } // floor, also before 1970
  let mtimeSec = Number(sec);
  let mtimeNsec = Number(nsec);
  if (opts.clampMtime !== undefined && mtimeSec >= opts.clampMtime && (mtimeSec > opts.clampMtime || mtimeNsec > 0)) {
    mtimeSec = opts.clampMtime;
    mtimeNsec = 0;
  }
  return {
    mode: Number(st.mode) & 0o7777,
    uid: opts.owner ? opts.owner.uid : Number(st.uid),
    gid: opts.owner ? opts.owner.gid : Number(st.gid),
    mtimeSec,
    mtimeNsec,
    xattrs,
  };
}

function xattrsOf(path: Buffer): Xattr[] {
  let list: Array<[string, Buffer]>;
  try {
    list = readXattrs(path);
  } catch (err) {
    fail('SOURCE_UNREADABLE', path, err);
  }
  if (list.length === 0) return NO_XATTRS;
  return list
    .map(([name, value]) => ({ name, value }))
    .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

function scanDir(path: Buffer, st: fs.BigIntStats, opts: Walk): DirEntry {
  let names: Buffer[];
  try {
    names = fs.readdirSync(path, { encoding: 'buffer' });
  } catch (err) {
    fail('SOURCE_UNREADABLE', path, err);
  }
  const b = base(st, xattrsOf(path), opts);
  const dir: DirEntry = { type: 'dir', mode: b.mode, uid: b.uid, gid: b.gid, mtimeSec: b.mtimeSec, mtimeNsec: b.mtimeNsec, xattrs: b.xattrs, children: new Map() };
  // Bytewise order, so the OS's listing order never reaches the image.
  names.sort(Buffer.compare);
  opts.found.add(names.length);
  for (const name of names) {
    const child = Buffer.concat([path, SLASH, name]);
    dir.children.set(name.toString('latin1'), scanEntry(child, opts));
  }
  return dir;
}

/**
 * One source of any type, as `rsync -a` copies it: a symlink stays a symlink,
 * unless `followTop` (a directory reached through a symlink, as `src/` does).
 */
export function scanPath(path: string, opts: ScanOptions & { followTop?: boolean } = {}): Entry {
  const p = Buffer.from(path);
  if (opts.followTop) {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(p, { bigint: true });
    } catch (err) {
      fail('SOURCE_UNREADABLE', p, err);
    }
    if ((Number(st.mode) & S_IFMT) === 0o040000) return scanDir(p, st, walk(opts));
  }
  return scanEntry(p, walk(opts));
}

function scanEntry(path: Buffer, opts: Walk): Entry {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(path, { bigint: true });
  } catch (err) {
    fail('SOURCE_UNREADABLE', path, err);
  }
  const fmt = Number(st.mode) & S_IFMT;
  if (fmt === 0o040000) return scanDir(path, st, opts);
  const b = base(st, xattrsOf(path), opts);
  const e = typed(fmt, b, path, st);
  if (st.nlink > 1n) e.linkKey = `${opts.linkScope ?? ''}${st.dev}:${st.ino}`;
  // Allocated less than the apparent size: find the holes now.
  if (e.type === 'file' && e.size > 0 && Number(st.blocks) * 512 < e.size) e.runs = dataRuns(path, e.size, opts.blockSize ?? 4096);
  return e;
}

/**
 * The entry of a non-directory. Literals spelled out rather than spread from
 * `b`: a spread adds the fields one by one into a separate property store,
 * some 60 bytes more per entry of a tree of millions.
 */
function typed(fmt: number, b: ReturnType<typeof base>, path: Buffer, st: fs.BigIntStats): Entry {
  const { mode, uid, gid, mtimeSec, mtimeNsec, xattrs } = b;
  switch (fmt) {
    case 0o100000:
      return { type: 'file', mode, uid, gid, mtimeSec, mtimeNsec, xattrs, size: Number(st.size), sourcePath: path };
    case 0o120000: {
      let target: Buffer;
      try {
        target = fs.readlinkSync(path, { encoding: 'buffer' });
      } catch (err) {
        fail('SOURCE_UNREADABLE', path, err);
      }
      return { type: 'symlink', mode, uid, gid, mtimeSec, mtimeNsec, xattrs, target };
    }
    case 0o020000:
    case 0o060000: {
      const rdev = st.rdev;
      const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
      const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
      return { type: fmt === 0o020000 ? 'chr' : 'blk', mode, uid, gid, mtimeSec, mtimeNsec, xattrs, major, minor };
    }
    case 0o010000:
      return { type: 'fifo', mode, uid, gid, mtimeSec, mtimeNsec, xattrs };
    case 0o140000:
      return { type: 'sock', mode, uid, gid, mtimeSec, mtimeNsec, xattrs };
    default:
      fail('SOURCE_UNREADABLE', path, new Error(`unknown file type ${fmt.toString(8)}`));
  }
}

/**
 * Block-aligned runs holding the file's data, as its file system reports them
 * (SEEK_DATA / SEEK_HOLE): the holes are found without reading a byte, and
 * everything outside the runs becomes a hole in the image.
 */
export function dataRuns(path: Buffer | string, size: number, blockSize: number): DataRun[] {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    fail('SOURCE_UNREADABLE', Buffer.from(path), err);
  }
  const runs: DataRun[] = [];
  try {
    for (const [s, t] of dataSegments(fd, size)) {
      const start = Math.floor(s / blockSize) * blockSize;
      const end = Math.min(size, Math.ceil(t / blockSize) * blockSize);
      const last = runs[runs.length - 1];
      if (last && last.offset + last.length >= start) last.length = Math.max(last.length, end - last.offset);
      else runs.push({ offset: start, length: end - start });
    }
  } catch (err) {
    fail('SOURCE_UNREADABLE', Buffer.from(path), err);
  } finally {
    fs.closeSync(fd);
  }
  return runs;
}
