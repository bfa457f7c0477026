// What every filesystem reader hands out: one entry shape for ext4 and FAT, so
// ls, cat, extract and diff treat filesystems alike. Field names follow the
// FileTree model (src/tree/model.ts): type, mode (07777), uid, gid,
// mtimeSec/mtimeNsec, xattrs (sorted by name bytes), linkKey, target, major,
// minor; names and paths are byte strings (one latin1 char per byte, so
// plain `<` is bytewise order and names that are not UTF-8 survive).
import type { DataRun, EntryType, Xattr } from '../tree/model.ts';
import type { ByteSource } from './source.ts';

export type { DataRun, EntryType, Xattr };

export interface FsTime {
  sec: number;
  nsec: number;
}

export interface FsEntry {
  /** '/' for the root, '/a/b' below it: raw name bytes as a latin1 byte string. */
  path: string;
  /** Last path component ('' for the root), a byte string. */
  name: string;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (07777), no type bits. */
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: number;
  mtimeNsec: number;
  atime: FsTime;
  ctime: FsTime;
  /** Creation time where the filesystem keeps one (ext4 with large inodes, FAT). */
  crtime?: FsTime;
  /** Files and symlinks: bytes; directories: what the filesystem records (ext4: i_size, FAT: 0). */
  size: number;
  nlink: number;
  /** ext4: the inode number. FAT: the byte offset of the 8.3 entry in the volume (0 for the root). */
  ino: number;
  /** Identity of the inode behind the entry: equal for hard links (ext4 non-directories only). */
  linkKey?: string;
  xattrs: Xattr[];
  /** Symlinks: the target's raw bytes. */
  target?: Buffer;
  major?: number;
  minor?: number;
  /** Set by the reader when the filesystem's own rules reject the name (FAT: not a valid long name); see names.ts. */
  nameProblem?: string;
  /** ext4: i_flags; FAT: DIR_Attr. */
  flags: number;
  /** Filesystem-specific detail (see Ext4EntryDetail and FatEntryDetail). */
  ext4?: import('./ext4.ts').Ext4EntryDetail;
  fat?: import('./fat.ts').FatEntryDetail;
}

/**
 * A byte range of the filesystem and what it holds. `kind` 'metadata' covers
 * structures (superblocks, tables, bitmaps, journal, extent-tree and xattr
 * blocks, directories' index blocks); 'data' is file, directory and symlink content.
 */
export interface OwnedRange {
  /** Byte offset in the filesystem. */
  offset: number;
  length: number;
  kind: 'metadata' | 'data';
  /** "superblock", "group descriptors", "inode table 3", "journal", "FAT 1", "file", "directory", "extent tree", ... */
  what: string;
  /** The owning entry, when one owns the range. */
  path?: string;
  ino?: number;
}

/** A summary every reader gives (inspect's per-filesystem line). */
export interface FsSummary {
  type: 'ext2' | 'ext3' | 'ext4' | 'fat12' | 'fat16' | 'fat32';
  label: string;
  /** ext4: the UUID; FAT: the volume ID as XXXX-XXXX. */
  uuid: string;
  /** Bytes the filesystem spans. */
  size: number;
  /** Allocation unit: ext4 block, FAT cluster. */
  blockSize: number;
  blocks: number;
  freeBlocks: number;
  /** ext4 only. */
  inodes?: number;
  freeInodes?: number;
  features: string[];
}

/** A byte range of an entry's content to read, and the largest piece to hand out (default 1 MiB). */
export interface ChunkOptions {
  offset?: number;
  length?: number;
  chunkSize?: number;
}

/** The reader interface both filesystems implement. */
export interface FsReader {
  readonly source: ByteSource;
  summary(): FsSummary;
  root(): FsEntry;
  /** The entry at `path` ('/a/b'; text is UTF-8, a Buffer raw bytes). Symlinks are not followed. Throws PATH_NOT_FOUND, NOT_A_DIRECTORY. */
  lookup(path: string | Buffer): FsEntry;
  /** The directory's entries without '.' and '..', in bytewise name order. */
  readdir(dir: FsEntry | string | Buffer): FsEntry[];
  /** Bytes [offset, offset+length) of a file (or symlink/directory content), holes as zeros, cut at its size. */
  read(entry: FsEntry, offset?: number, length?: number): Buffer;
  /** The content in order as pieces of at most `chunkSize` bytes; holes are left out (the gaps between offsets). */
  chunks(entry: FsEntry, opts?: ChunkOptions): Generator<{ offset: number; data: Buffer }>;
  /** Byte ranges of the content that hold data (everything else reads as zeros), cut at the size. */
  dataRuns(entry: FsEntry): DataRun[];
  /**
   * Every entry from `from` (default the root) down, parents before children,
   * names in bytewise order; not below a directory whose name is unsafe
   * (names.ts entryNameProblem), which is handed out itself.
   */
  walk(from?: FsEntry | string | Buffer): Generator<FsEntry>;
  /** What every allocated byte range of the filesystem holds, sorted by offset. */
  allocation(): OwnedRange[];
}

/**
 * '/a/b' as a byte-string key from text (UTF-8) or raw bytes; '' and '/' are
 * the root; '.' and '..' resolve lexically (symlinks are not followed).
 */
export function pathKey(path: string | Buffer): string {
  const bytes = typeof path === 'string' ? Buffer.from(path, 'utf8') : path;
  const parts: string[] = [];
  for (const p of bytes.toString('latin1').split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return '/' + parts.join('/');
}

/** Components of a byte-string key. */
export function keyParts(key: string): string[] {
  return key.split('/').filter((p) => p !== '');
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? '/' + name : parent + '/' + name;
}

/** A byte-string path for display, one line of text (see escapePath in names.ts). */
export { escapePath as displayKey } from './names.ts';

/** Bytewise order of byte-string names. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorts ranges and merges neighbours with the same owner. */
export function coalesce(ranges: OwnedRange[]): OwnedRange[] {
  ranges.sort((a, b) => a.offset - b.offset || a.length - b.length);
  const out: OwnedRange[] = [];
  for (const r of ranges) {
    if (r.length <= 0) continue;
    const last = out[out.length - 1];
    if (last && last.offset + last.length === r.offset && last.kind === r.kind && last.what === r.what && last.path === r.path && last.ino === r.ino) {
      last.length += r.length;
    } else {
      out.push({ ...r });
    }
  }
  return out;
}
