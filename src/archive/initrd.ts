// Initramfs archives: a FileTree (directory sources merged in order, plus
// NixOS makeInitrd's `contents: [{object, symlink}]`: the objects' store
// closure under /nix/store and a symlink to each object) written as a cpio
// newc Image: headers as buffer extents, file data as file extents, so the
// raw emitter, the compressors and the atomic writer serve it as they serve
// disks. Deterministic as makeInitrd's `find | sort -z | cpio -R +0:+0
// --reproducible` after `touch -d @1`: members sorted bytewise by path,
// owners root, every time the epoch, inode numbers in archive order, device
// numbers 0.
import { DiskwrightError } from '../errors.ts';
import { withStore } from '../api/store.ts';
import type { Image, ImageExtent } from '../image/extent-map.ts';
import { emit, fileSink, streamSink, writeImageFile, type WriteResult } from '../format/raw.ts';
import { compressSink } from '../format/compress.ts';
import { byteName, type DirEntry, type Entry } from '../tree/model.ts';
import { scanSources } from '../tree/scan.ts';
import { emptyDir, targetParts } from '../tree/contents.ts';
import { resolveInStore, storeDirs } from '../nix/store-path.ts';
import { align4, encodeMember, encodeTrailer, PATH_MAX } from './cpio.ts';

export const INITRD_COMPRESSIONS = ['none', 'gzip', 'zstd', 'xz'] as const;
export type InitrdCompression = (typeof INITRD_COMPRESSIONS)[number];
export const MTIME_MODES = ['epoch', 'clamp', 'source'] as const;
export type MtimeMode = (typeof MTIME_MODES)[number];

/** makeInitrd's contents entry: `object`'s closure goes in, and `symlink` (when set) points at object + suffix. */
export interface InitrdContent {
  object: string;
  symlink?: string | null;
  suffix?: string;
}

export interface InitrdOptions {
  /** Directories merged into the archive root; later ones win. */
  sources: string[];
  contents?: InitrdContent[];
  /** Relative objects and store options resolve against this directory (a config file's); default the working directory. */
  baseDir?: string;
  /** Seconds since 1970; default 1 (SOURCE_DATE_EPOCH in the CLI). */
  epoch?: number;
  /** 'epoch' (default): every member's time is the epoch; 'clamp': the source's, at most the epoch; 'source': the source's. */
  mtime?: MtimeMode;
  /** Every member's owner; default 0:0. 'source' keeps the build machine's. */
  owner?: { uid: number; gid: number } | 'source';
  /** Where the store paths' files are on this machine, the store directory they are named under, and where references come from (as for disks). */
  storeDir?: string;
  nixStoreDir?: string;
  storeReferences?: string;
}

export interface InitrdStats {
  members: number;
  files: number;
  /** Uncompressed archive size. */
  bytes: number;
}

const S_IF: Record<Entry['type'], number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, chr: 0o020000, blk: 0o060000, fifo: 0o010000, sock: 0o140000 };
const U32 = 0xffffffff;

function invalid(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('OPTION_INVALID', message, data);
}

/** The tree the archive holds: sources, then the contents' closure and symlinks. */
export function initrdTree(opts: InitrdOptions): DirEntry {
  const epoch = opts.epoch ?? 1;
  const owner = opts.owner === 'source' ? undefined : (opts.owner ?? { uid: 0, gid: 0 });
  const contents = opts.contents ?? [];
  if (!opts.sources.length && !contents.length) {
    throw new DiskwrightError('SOURCE_MISSING', 'no source directory and no contents given; name at least one', {});
  }
  const baseDir = opts.baseDir ?? process.cwd();
  const tree = opts.sources.length ? scanSources(opts.sources, { owner }) : emptyDir(epoch, owner);
  if (!contents.length) return tree;
  const store = { storePaths: contents.map((c) => c.object), nixPathRegistration: false as const, storeDir: opts.storeDir, nixStoreDir: opts.nixStoreDir, storeReferences: opts.storeReferences };
  const root = withStore(tree, store, baseDir, epoch, owner)!;
  const dirs = storeDirs({ nixStoreDir: opts.nixStoreDir, storeDir: opts.storeDir === undefined ? undefined : opts.storeDir.startsWith('/') ? opts.storeDir : `${baseDir}/${opts.storeDir}` });
  contents.forEach((c, i) => {
    if (c.symlink === undefined || c.symlink === null) return;
    const where = `contents[${i}]`;
    const { name, rest } = resolveInStore(c.object.startsWith('/') ? c.object : `${baseDir}/${c.object}`, dirs);
    const parts = targetParts(c.symlink, `${where}.symlink`);
    if (!parts.length) throw new DiskwrightError('CONTENTS_INVALID', `${where}: symlink "/" would replace the archive root; name a path such as /init`, {});
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      let next = dir.children.get(byteName(p));
      if (!next) dir.children.set(byteName(p), (next = emptyDir(epoch, owner)));
      if (next.type !== 'dir') throw new DiskwrightError('CONTENTS_INVALID', `${where}: ${c.symlink} needs a directory where a ${next.type} already is; change the symlink`, {});
      dir = next;
    }
    const key = byteName(parts[parts.length - 1]);
    if (dir.children.has(key)) throw new DiskwrightError('DUPLICATE_ENTRY', `${where}: ${c.symlink} is already in the archive; each path may appear once`, {});
    const target = Buffer.from(`${dirs.nixStoreDir}/${name}${rest}${c.suffix ?? ''}`);
    dir.children.set(key, { type: 'symlink', mode: 0o777, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtimeSec: epoch, mtimeNsec: 0, xattrs: [], target });
  });
  return root;
}

interface Member {
  /** The path in the archive as bytes: "." for the root, "bin/sh" below it. */
  name: Buffer;
  entry: Entry;
}

/** Every entry with its path, the root first, then bytewise by path as `find . | sort -z` orders them. */
function members(root: DirEntry): Member[] {
  const out: Member[] = [];
  const walk = (dir: DirEntry, prefix: string) => {
    for (const [name, e] of dir.children) {
      const path = prefix + name;
      out.push({ name: Buffer.from(path, 'latin1'), entry: e });
      if (e.type === 'dir') walk(e, path + '/');
    }
  };
  walk(root, '');
  out.sort((a, b) => Buffer.compare(a.name, b.name));
  return [{ name: Buffer.from('.'), entry: root }, ...out];
}

function mtimeOf(m: Member, mode: MtimeMode, epoch: number): number {
  const t = mode === 'epoch' ? epoch : mode === 'clamp' ? Math.min(m.entry.mtimeSec, epoch) : m.entry.mtimeSec;
  if (t < 0 || t > U32) invalid(`${m.name.toString()}: time ${t} is outside what cpio newc holds (1970 to 2106); use --mtime epoch or clamp`, { path: m.name.toString() });
  return t;
}

/** The archive as an Image: planning reads metadata only; file bytes are read when it is written. */
export function planInitrd(opts: InitrdOptions): { image: Image; stats: InitrdStats } {
  const epoch = opts.epoch ?? 1;
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > U32) invalid(`epoch ${epoch}: cpio newc holds times from 0 to ${U32}`);
  const mode = opts.mtime ?? 'epoch';
  const list = members(initrdTree(opts));

  // Hard links (newc): every name of a file shares its inode number and link
  // count; the data goes with the last name, the others have size 0.
  const groups = new Map<string, { count: number; last: number; ino: number }>();
  list.forEach((m, i) => {
    const k = m.entry.type === 'file' ? m.entry.linkKey : undefined;
    if (k === undefined) return;
    const g = groups.get(k);
    if (g) {
      g.count++;
      g.last = i;
    } else groups.set(k, { count: 1, last: i, ino: 0 });
  });

  const extents: ImageExtent[] = [];
  let pending: Buffer[] = [];
  let pendingAt = 0;
  let at = 0;
  const flush = () => {
    if (!pending.length) return;
    const buffer = pending.length === 1 ? pending[0] : Buffer.concat(pending);
    extents.push({ offset: pendingAt, length: buffer.length, buffer });
    pending = [];
  };
  const put = (b: Buffer) => {
    if (!pending.length) pendingAt = at;
    pending.push(b);
    at += b.length;
  };
  let nextIno = 1;
  let files = 0;
  list.forEach((m, i) => {
    const e = m.entry;
    if (m.name.length + 1 > PATH_MAX) throw new DiskwrightError('NAME_TOO_LONG', `${m.name.toString()}: path is longer than ${PATH_MAX - 1} bytes, which the kernel's unpacker skips; shorten it`, { path: m.name.toString() });
    const g = e.type === 'file' && e.linkKey !== undefined ? groups.get(e.linkKey)! : undefined;
    let ino: number;
    if (g && g.ino) ino = g.ino;
    else {
      ino = nextIno++;
      if (g) g.ino = ino;
    }
    let size = 0;
    let data: Buffer | undefined;
    if (e.type === 'file' && (!g || g.last === i)) {
      size = e.size;
      if (size > U32) throw new DiskwrightError('TOO_LARGE', `${e.sourcePath.toString()}: ${size} bytes is more than a cpio newc member holds (4 GiB - 1); leave it out`, { path: e.sourcePath.toString() });
      data = e.content;
    } else if (e.type === 'symlink') {
      data = e.target;
      size = data.length;
    }
    let nlink = g ? g.count : 1;
    if (e.type === 'dir') {
      nlink = 2;
      for (const c of e.children.values()) if (c.type === 'dir') nlink++;
    }
    const dev = e.type === 'chr' || e.type === 'blk' ? e : { major: 0, minor: 0 };
    put(encodeMember({
      c_ino: ino, c_mode: S_IF[e.type] | e.mode, c_uid: e.uid, c_gid: e.gid, c_nlink: nlink,
      c_mtime: mtimeOf(m, mode, epoch), c_filesize: size, c_maj: 0, c_min: 0, c_rmaj: dev.major, c_rmin: dev.minor,
    }, m.name));
    if (!size) return;
    if (e.type === 'file') files++;
    if (data) put(data);
    else if (e.type === 'file') {
      flush();
      // Sparse sources: only their data runs are read; holes stay zero.
      for (const r of e.runs ?? [{ offset: 0, length: size }]) {
        extents.push({ offset: at + r.offset, length: r.length, path: e.sourcePath, fileOffset: r.offset, expectSize: size });
      }
      at += size;
    }
    // Zero padding to 4 bytes: a gap, which reads as zeros.
    const padded = align4(at);
    if (padded !== at) {
      if (pending.length) put(Buffer.alloc(padded - at));
      at = padded;
    }
  });
  put(encodeTrailer());
  flush();
  return { image: { size: at, extents }, stats: { members: list.length, files, bytes: at } };
}

export interface WriteInitrdOptions extends InitrdOptions {
  /** Output file, or '-' for standard output. */
  output: string;
  compress?: InitrdCompression;
  /** gzip 1-9 (default 9, makeInitrd's gzip -9n), zstd 1-19 (default 10, makeInitrd's zstd -10), xz 0-9 (default 6). */
  compressLevel?: number;
}

const LEVELS: Record<InitrdCompression, [number, number, number]> = { none: [0, 0, 0], gzip: [1, 9, 9], zstd: [1, 19, 10], xz: [0, 9, 6] };

/** `diskwright initrd`: plans the archive, then writes it (compressed) in one pass, whole or not at all. */
export function writeInitrd(opts: WriteInitrdOptions): { stats: InitrdStats; write?: WriteResult } {
  const method = opts.compress ?? 'none';
  const [min, max, def] = LEVELS[method];
  const level = opts.compressLevel ?? def;
  if (opts.compressLevel !== undefined && (method === 'none' || !Number.isInteger(level) || level < min || level > max)) {
    invalid(method === 'none' ? 'a compression level needs --compress gzip, zstd or xz' : `compression level ${opts.compressLevel}: ${method} takes a whole number from ${min} to ${max}`);
  }
  const { image, stats } = planInitrd(opts);
  // xz with a CRC32 check, as the kernel's decoder requires (makeInitrd: xz --check=crc32).
  const sinkOpts = { level, xzCheck: 'crc32' as const };
  if (opts.output === '-') {
    emit(image, compressSink(method, streamSink(1), sinkOpts));
    return { stats };
  }
  return { stats, write: writeImageFile(image, opts.output, (fd) => compressSink(method, fileSink(fd), sinkOpts)) };
}
