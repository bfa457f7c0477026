// The FileTree: every source becomes this one in-memory tree. File contents are
// referenced (path + size + data runs), never loaded.

export type EntryType = 'file' | 'dir' | 'symlink' | 'chr' | 'blk' | 'fifo' | 'sock';

/** A run of bytes that holds data; everything outside the runs of a file is a hole. */
export interface DataRun {
  offset: number;
  length: number;
}

export interface Xattr {
  /** Full name as the kernel shows it, e.g. `user.foo`, `security.selinux`, `system.posix_acl_access`. */
  name: string;
  value: Buffer;
}

/** The largest uid or gid: ext4 keeps 32 bits, a larger id would wrap silently. */
export const ID_MAX = 0xffffffff;

interface EntryBase {
  mode: number; // permission bits incl. setuid/setgid/sticky (07777), no type bits
  uid: number;
  gid: number;
  mtimeSec: number; // may be negative or beyond 2038
  mtimeNsec: number;
  xattrs: Xattr[]; // sorted by name bytes
  /** Identity of a non-directory's inode on the host, so hard links map to one inode in the image. */
  linkKey?: string;
}

export interface FileEntry extends EntryBase {
  type: 'file';
  size: number;
  /** Where the bytes come from on the build machine (raw bytes: host names need not be UTF-8). */
  sourcePath: Buffer;
  /**
   * Bytes diskwright made itself (e.g. /nix-path-registration): then they are
   * the content and sourcePath only names the file in messages.
   */
  content?: Buffer;
  /** Data runs in block-aligned form; undefined means the whole file is data. */
  runs?: DataRun[];
}

export interface DirEntry extends EntryBase {
  type: 'dir';
  /**
   * Key: the name's raw bytes as a latin1 "byte string" (one char per byte), so
   * names that are not valid UTF-8 survive and plain `<` on keys is bytewise order.
   */
  children: Map<string, Entry>;
}

export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  target: Buffer;
}

export interface DeviceEntry extends EntryBase {
  type: 'chr' | 'blk';
  major: number;
  minor: number;
}

export interface SpecialEntry extends EntryBase {
  type: 'fifo' | 'sock';
}

export type Entry = FileEntry | DirEntry | SymlinkEntry | DeviceEntry | SpecialEntry;

/**
 * Directories made only to hold something (`mkdir -p` for a contents target):
 * merged over a real directory they keep its metadata instead of their own.
 */
export const placeholderDirs = new WeakSet<DirEntry>();

/** Bytewise order of byte-string names: deterministic and locale-free. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A byte-string name from UTF-8 text (for names diskwright makes itself). */
export function byteName(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}
