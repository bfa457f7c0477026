// Normalized, comparable descriptions of a file tree: one entry per path with
// everything an ext4 image must preserve. snapshotTree reads a directory (a
// source tree or a mounted image) through the kernel; snapshotViaDebugfs reads
// an image file through debugfs only, as a userspace oracle beside the mount.
//
// Not compared, on purpose: directory sizes (they depend on the on-disk
// layout), atime, ctime and crtime (set by whoever writes), link counts (hard
// links are compared as sets of paths instead; e2fsck checks the counts), inode
// numbers, flags, block counts and layout.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readXattrs } from '../../src/tree/xattr.ts';
import { debugfs, dumpe2fs, findTool, requireTools } from './tools.ts';

export type NodeType = 'file' | 'dir' | 'symlink' | 'chr' | 'blk' | 'fifo' | 'sock';

export interface SnapEntry {
  type: NodeType;
  /** Permission bits including setuid/setgid/sticky (07777), no type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds * 1e9 + nanoseconds; negative before 1970. */
  mtimeNs: bigint;
  /** Regular files and symlinks: the apparent size in bytes. */
  size?: bigint;
  /** Regular files: see contentDigest(). */
  digest?: string;
  /** Symlinks: the raw target bytes as a latin1 byte string. */
  target?: string;
  /** Character and block devices. */
  major?: number;
  minor?: number;
  /**
   * Non-directories with more than one name inside the snapshot: every key that
   * names the same inode, sorted (the same list on each member of the group).
   */
  links?: string[];
  /**
   * [name, value as hex], sorted by name. POSIX ACLs appear as
   * system.posix_acl_access/default in the kernel's xattr form, normalized by
   * canonicalAcl().
   */
  xattrs: Array<[string, string]>;
}

/**
 * Keys: '/' for the root, '/a/b' below it, where the path after the first '/'
 * is the raw name bytes as a latin1 byte string (names need not be UTF-8).
 * Iteration order is bytewise key order.
 */
export type Snapshot = Map<string, SnapEntry>;

export interface SnapshotOptions {
  /** Names directly under the root to leave out. Default ['lost+found']. */
  exclude?: string[];
}

// ---------------------------------------------------------------- content digest

const CHUNK = 64 * 1024;
const ZERO = Buffer.alloc(CHUNK);

/**
 * A sparse-aware content digest: SHA-256 over, for every 64 KiB-aligned chunk
 * that is not all zero bytes, its offset and its bytes, then the total length.
 * Two contents have equal digests iff they are byte-for-byte equal (holes and
 * written zeros are the same bytes). Only all-zero chunks skip hashing, so a
 * 6 GiB mostly-hole file costs one read pass and ~100 MiB of hashing.
 * The digest is prefixed 'zsha256:' as it is not the plain sha256 of the file.
 */
export class ContentDigest {
  private readonly hash = createHash('sha256');
  private readonly pending = Buffer.alloc(CHUNK);
  private fill = 0;
  private offset = 0n; // offset of pending[0]

  update(data: Buffer): void {
    let i = 0;
    if (this.fill > 0) {
      const n = Math.min(CHUNK - this.fill, data.length);
      data.copy(this.pending, this.fill, 0, n);
      this.fill += n;
      i = n;
      if (this.fill === CHUNK) {
        this.chunk(this.pending);
        this.fill = 0;
      }
    }
    for (; i + CHUNK <= data.length; i += CHUNK) this.chunk(data.subarray(i, i + CHUNK));
    if (i < data.length) {
      data.copy(this.pending, 0, i);
      this.fill = data.length - i;
    }
  }

  private chunk(bytes: Buffer): void {
    if (!bytes.equals(bytes.length === CHUNK ? ZERO : ZERO.subarray(0, bytes.length))) {
      const head = Buffer.alloc(12);
      head.writeBigUInt64LE(this.offset, 0);
      head.writeUInt32LE(bytes.length, 8);
      this.hash.update(head);
      this.hash.update(bytes);
    }
    this.offset += BigInt(bytes.length);
  }

  /** Appends n zero bytes (a hole) without reading or comparing them. */
  zeros(n: bigint): void {
    if (n <= 0n) return;
    if (this.fill > 0) {
      const k = Number(n < BigInt(CHUNK - this.fill) ? n : BigInt(CHUNK - this.fill));
      this.pending.fill(0, this.fill, this.fill + k);
      this.fill += k;
      n -= BigInt(k);
      if (this.fill === CHUNK) {
        this.chunk(this.pending);
        this.fill = 0;
      }
    }
    const whole = (n / BigInt(CHUNK)) * BigInt(CHUNK);
    this.offset += whole; // all-zero chunks add nothing but their length
    n -= whole;
    if (n > 0n) {
      this.pending.fill(0, 0, Number(n));
      this.fill = Number(n);
    }
  }

  digest(): string {
    if (this.fill > 0) {
      this.chunk(this.pending.subarray(0, this.fill));
      this.fill = 0;
    }
    const tail = Buffer.alloc(8);
    tail.writeBigUInt64LE(this.offset, 0);
    this.hash.update('end');
    this.hash.update(tail);
    return 'zsha256:' + this.hash.digest('hex');
  }
}

const READ_BUF = 8 * 1024 * 1024;
let readBuf: Buffer | undefined;

/** Digest of a file's content, streamed in 8 MiB reads. Does not follow symlinks. */
export function contentDigest(path: string | Buffer): string {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    readBuf ??= Buffer.allocUnsafe(READ_BUF);
    const d = new ContentDigest();
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, readBuf, 0, READ_BUF, pos);
      if (n === 0) break;
      d.update(readBuf.subarray(0, n));
      pos += n;
    }
    return d.digest();
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- keys

function childKey(parent: string, name: Buffer | string): string {
  const n = typeof name === 'string' ? name : name.toString('latin1');
  return parent === '/' ? '/' + n : parent + '/' + n;
}

function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A snapshot key for printing: UTF-8 where valid, \xNN escapes otherwise, control characters escaped. */
export function displayPath(key: string): string {
  const bytes = Buffer.from(key, 'latin1');
  let out = '';
  let i = 0;
  const dec = new TextDecoder('utf-8', { fatal: true });
  while (i < bytes.length) {
    const b = bytes[i];
    const len = b < 0x80 ? 1 : b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
    if (len > 1 && i + len <= bytes.length) {
      try {
        out += dec.decode(bytes.subarray(i, i + len));
        i += len;
        continue;
      } catch {
        // not valid UTF-8 here: escape the byte
      }
    }
    if (b >= 0x20 && b < 0x7f && b !== 0x5c) out += String.fromCharCode(b);
    else if (b === 0x5c) out += '\\\\';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else out += '\\x' + b.toString(16).padStart(2, '0');
    i++;
  }
  return out;
}

function sortSnapshot(entries: Map<string, SnapEntry>): Snapshot {
  return new Map([...entries.entries()].sort((x, y) => compareBytes(x[0], y[0])));
}

/** Fills `links` from inode identities (non-directories only). */
function assignLinkGroups(entries: Map<string, SnapEntry>, identity: Map<string, string>): void {
  const groups = new Map<string, string[]>();
  for (const [key, id] of identity) {
    const g = groups.get(id);
    if (g) g.push(key);
    else groups.set(id, [key]);
  }
  for (const g of groups.values()) {
    if (g.length < 2) continue;
    g.sort(compareBytes);
    for (const key of g) entries.get(key)!.links = g;
  }
}

const ACL_NAMES = new Set(['system.posix_acl_access', 'system.posix_acl_default']);
const ACL_USER = 0x02;
const ACL_GROUP = 0x08;

/**
 * POSIX ACL xattr values (version 2 header, then 8-byte entries: tag u16,
 * perm u16, id u32) with the id of entries other than named users/groups set
 * to ACL_UNDEFINED_ID (0xffffffff). ext4 stores those entries without an id;
 * the kernel reports 0xffffffff, libext2fs (debugfs ea_get) reports 0.
 */
export function canonicalAcl(value: Buffer): Buffer {
  if (value.length < 4 || (value.length - 4) % 8 !== 0 || value.readUInt32LE(0) !== 2) return value;
  const out = Buffer.from(value);
  for (let off = 4; off < out.length; off += 8) {
    const tag = out.readUInt16LE(off);
    if (tag !== ACL_USER && tag !== ACL_GROUP) out.writeUInt32LE(0xffffffff, off + 4);
  }
  return out;
}

function sortXattrs(list: Array<[string, Buffer]>): Array<[string, string]> {
  return list
    .map(([n, v]): [string, string] => [n, (ACL_NAMES.has(n) ? canonicalAcl(v) : v).toString('hex')])
    .sort((x, y) => compareBytes(Buffer.from(x[0]).toString('latin1'), Buffer.from(y[0]).toString('latin1')));
}

// ---------------------------------------------------------------- kernel view

function typeOf(st: fs.BigIntStats): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chr';
  if (st.isBlockDevice()) return 'blk';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'sock';
  throw new Error(`snapshot: unknown file type, mode ${st.mode.toString(8)}`);
}

/** Linux dev_t split (glibc gnu_dev_major/minor). */
export function devMajorMinor(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * Walks `root` without following symlinks (lstat, O_NOFOLLOW, l*xattr) and
 * describes every entry. Works on a source tree and on a mounted image alike.
 */
export function snapshotTree(root: string, opts: SnapshotOptions = {}): Snapshot {
  const exclude = new Set((opts.exclude ?? ['lost+found']).map((n) => Buffer.from(n, 'utf8').toString('latin1')));
  const entries = new Map<string, SnapEntry>();
  const identity = new Map<string, string>();
  const rootBuf = Buffer.from(root, 'utf8');

  const visit = (key: string, path: Buffer): void => {
    const st = fs.lstatSync(path, { bigint: true });
    const type = typeOf(st);
    const e: SnapEntry = {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      xattrs: sortXattrs(readXattrs(path)),
    };
    if (type === 'file') {
      e.size = st.size;
      e.digest = contentDigest(path);
    } else if (type === 'symlink') {
      e.size = st.size;
      e.target = (fs.readlinkSync(path, { encoding: 'buffer' }) as Buffer).toString('latin1');
    } else if (type === 'chr' || type === 'blk') {
      Object.assign(e, devMajorMinor(st.rdev));
    }
    entries.set(key, e);
    // Grouped by inode identity, not by st_nlink: a wrong link count in an
    // image must not hide (or fake) a hard link.
    if (type !== 'dir') identity.set(key, `${st.dev}:${st.ino}`);
    if (type === 'dir') {
      const names = fs.readdirSync(path, { encoding: 'buffer' }) as Buffer[];
      names.sort(Buffer.compare);
      for (const name of names) {
        if (key === '/' && exclude.has(name.toString('latin1'))) continue;
        visit(childKey(key, name), Buffer.concat([path, Buffer.from('/'), name]));
      }
    }
  };
  visit('/', rootBuf);
  assignLinkGroups(entries, identity);
  return sortSnapshot(entries);
}

// ---------------------------------------------------------------- debugfs view

interface DirEntryRef {
  key: string;
  ino: number;
  isDir: boolean;
}

/** Parses `ls -p` output: "/ino/mode/uid/gid/name/size/" per entry (size empty for directories). */
function parseLsP(out: Buffer): Array<{ ino: number; mode: number; name: string }> {
  const text = out.toString('latin1');
  const re = /\/(\d+)\/([0-7]+)\/(-?\d+)\/(-?\d+)\/([^/]*)\/(\d*)\/\n/g;
  const list: Array<{ ino: number; mode: number; name: string }> = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[5] === '.' || m[5] === '..') continue;
    // Inode 0 marks an unused slot: debugfs lists one (with an empty name) for
    // the free space of an empty inline-data directory. The kernel never shows it.
    if (m[1] === '0') continue;
    list.push({ ino: Number(m[1]), mode: parseInt(m[2], 8), name: m[5] });
  }
  return list;
}

interface StatInfo {
  type: NodeType;
  flags: number;
  /** "Size of inline data" for inline-data inodes. */
  inlineSize?: bigint;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  xattrNames: string[];
  fastTarget?: string;
  major?: number;
  minor?: number;
}

const DEBUGFS_TYPES: Record<string, NodeType> = {
  regular: 'file',
  directory: 'dir',
  symlink: 'symlink',
  'character special': 'chr',
  'block special': 'blk',
  FIFO: 'fifo',
  socket: 'sock',
};

/**
 * Parses debugfs `stat` (e2fsprogs 1.47 internal_dump_inode). Times: debugfs
 * prints the raw 32-bit field and, with large inodes, the raw *_extra word; we
 * decode them the way the kernel does: seconds = (s32)lo + (extra & 3) << 32,
 * nanoseconds = extra >> 2. With 128-byte inodes (no extra word) the seconds
 * are (s32)lo and nanoseconds 0.
 */
function parseStat(out: Buffer, ino: number): StatInfo {
  const text = out.toString('latin1');
  const fail = (what: string): never => {
    throw new Error(`snapshotViaDebugfs: cannot parse ${what} in stat <${ino}>:\n${text.slice(0, 2000)}`);
  };
  const head = /^Inode: (\d+)\s+Type: (.+?)\s+Mode:\s+0?([0-7]+)\s+Flags: 0x([0-9a-f]+)$/m.exec(text) ?? fail('Inode/Type/Mode/Flags');
  const type = DEBUGFS_TYPES[head[2]] ?? fail(`type "${head[2]}"`);
  const ids = /^User:\s+(-?\d+)\s+Group:\s+(-?\d+)(?:\s+Project:\s+-?\d+)?\s+Size: (\d+)$/m.exec(text) ?? fail('User/Group/Size');
  const mt = /^\s*mtime: 0x([0-9a-f]{8})(?::([0-9a-f]{8}))? -- /m.exec(text) ?? fail('mtime');
  const lo = BigInt.asIntN(32, BigInt('0x' + mt[1]));
  const extra = mt[2] === undefined ? 0n : BigInt('0x' + mt[2]);
  const sec = lo + ((extra & 3n) << 32n);
  const nsec = extra >> 2n;
  const info: StatInfo = {
    type,
    flags: parseInt(head[4], 16),
    mode: parseInt(head[3], 8) & 0o7777,
    uid: Number(ids[1]) >>> 0,
    gid: Number(ids[2]) >>> 0,
    size: BigInt(ids[3]),
    mtimeNs: sec * 1_000_000_000n + nsec,
    xattrNames: [],
  };
  // "Extended attributes:" then one "  name (len)[ = value]" line per attribute.
  // Names are printed as C strings; the value (if any) is escaped, so it never
  // contains a newline. debugfs prints names that are mostly unprintable in hex:
  // such names would not round-trip here (no real-world name is like that).
  const xa = text.indexOf('\nExtended attributes:\n');
  if (xa >= 0) {
    for (const line of text.slice(xa + '\nExtended attributes:\n'.length).split('\n')) {
      if (!line.startsWith('  ')) break;
      const m = /^ {2}(.+?) \((\d+)\)(?: = .*)?$/.exec(line) ?? fail(`xattr line "${line}"`);
      // system.data holds inline file data, not an attribute the kernel lists.
      if (m[1] !== 'system.data') info.xattrNames.push(m[1]);
    }
  }
  const inline = /^Size of inline data: (\d+)$/m.exec(text);
  if (inline) info.inlineSize = BigInt(inline[1]);
  if (type === 'symlink') {
    const marker = '\nFast link dest: "';
    const at = text.indexOf(marker);
    if (at >= 0) {
      // Printed raw ("%.*s"), so slice by the size, not up to a quote. Fast
      // symlinks (target in i_block) and inline-data symlinks both print this;
      // every other symlink is read with `cat`.
      info.fastTarget = text.slice(at + marker.length, at + marker.length + Number(info.size));
      if (text.slice(at + marker.length + Number(info.size), at + marker.length + Number(info.size) + 2) !== '"\n') {
        fail('fast symlink target of i_size bytes');
      }
    }
  }
  if (type === 'chr' || type === 'blk') {
    const dev = /Device major\/minor number: (\d+):(\d+)/.exec(text) ?? fail('device number');
    info.major = Number(dev[1]);
    info.minor = Number(dev[2]);
  }
  return info;
}

/**
 * The same Snapshot as snapshotTree(mountpoint) would give, read from the image
 * file through debugfs only (no mount, no kernel ext4 code):
 *   structure   `ls -p <ino>` level by level from the root (inode 2), names raw;
 *   metadata    `stat <ino>` (type, mode, uid/gid incl. high halves, size,
 *               mtime with extra epoch/nanosecond word, device numbers,
 *               fast-symlink target, xattr names);
 *   xattrs      `ea_get -f file <ino> name` (libext2fs converts POSIX ACLs
 *               from the ext4 on-disk form back to the system.posix_acl_* xattr
 *               form, as the kernel does);
 *   contents    `cat <ino>` for regular files and slow symlinks, all in one
 *               debugfs process whose stdout is streamed into the digests
 *               (cat flushes stdio first, then writes exactly i_size bytes —
 *               for inline-data inodes the whole inline area — so the stream
 *               is the echo line followed by the content); extent-mapped
 *               files above 64 MiB through their extent map instead (`ex -l`,
 *               see readViaExtents: `cat` needs ~15 s for the 6 GiB fixture file).
 * Limits (debugfs cannot express them, or they would need raw inode decoding):
 *   - xattr names debugfs would print in hex (mostly unprintable) are not supported;
 *   - times of inodes whose i_extra_isize < 24 are read without the extra word
 *     (debugfs only prints it from 24 on) — the kernel would use it from 8/12 on.
 * Hard links are grouped by inode number. Entries are looked up by inode number
 * (`<ino>`), so names with spaces, newlines or non-UTF-8 bytes need no quoting.
 */
export async function snapshotViaDebugfs(image: string, opts: SnapshotOptions = {}): Promise<Snapshot> {
  requireTools('debugfs');
  const exclude = new Set((opts.exclude ?? ['lost+found']).map((n) => Buffer.from(n, 'utf8').toString('latin1')));

  // 1. Structure, breadth first: one debugfs run per directory level.
  const refs: DirEntryRef[] = [{ key: '/', ino: 2, isDir: true }];
  let level: DirEntryRef[] = [refs[0]];
  const seenDirs = new Set<number>([2]);
  while (level.length > 0) {
    const r = debugfs(image, level.map((d) => `ls -p <${d.ino}>`));
    if (r.stderr.split('\n').some((l) => l.trim() !== '' && !/^debugfs \d/.test(l))) {
      throw new Error(`snapshotViaDebugfs: ls failed:\n${r.stderr}`);
    }
    const next: DirEntryRef[] = [];
    level.forEach((dir, i) => {
      for (const ent of parseLsP(r.outputs[i])) {
        if (dir.key === '/' && exclude.has(ent.name)) continue;
        const ref = { key: childKey(dir.key, ent.name), ino: ent.ino, isDir: (ent.mode & 0o170000) === 0o040000 };
        refs.push(ref);
        if (ref.isDir) {
          // A directory reachable twice (a directory hard link, a cycle) would
          // otherwise be walked forever; the kernel view would also be broken.
          if (seenDirs.has(ref.ino)) throw new Error(`snapshotViaDebugfs: directory inode ${ref.ino} is linked more than once (${displayPath(ref.key)})`);
          seenDirs.add(ref.ino);
          next.push(ref);
        }
      }
    });
    level = next;
  }

  // 2. Metadata of every distinct inode.
  const inos = [...new Set(refs.map((r) => r.ino))];
  const statRun = debugfs(image, inos.map((ino) => `stat <${ino}>`));
  const stats = new Map<number, StatInfo>();
  inos.forEach((ino, i) => stats.set(ino, parseStat(statRun.outputs[i], ino)));

  // 3. Extended attribute values, each into its own file.
  const tmp = fs.mkdtempSync(join(tmpdir(), 'oracle-ea-'));
  const xattrs = new Map<number, Array<[string, Buffer]>>();
  try {
    const cmds: string[] = [];
    const where: Array<[number, string, string]> = [];
    for (const ino of inos) {
      for (const name of stats.get(ino)!.xattrNames) {
        if (/\s/.test(name)) throw new Error(`snapshotViaDebugfs: cannot pass xattr name ${JSON.stringify(name)} to debugfs`);
        const file = join(tmp, String(where.length));
        cmds.push(`ea_get -f ${file} <${ino}> ${name}`);
        where.push([ino, name, file]);
      }
    }
    if (cmds.length > 0) {
      const r = debugfs(image, cmds);
      if (r.stderr.split('\n').some((l) => l.trim() !== '' && !/^debugfs \d/.test(l))) {
        throw new Error(`snapshotViaDebugfs: ea_get failed:\n${r.stderr}`);
      }
    }
    for (const [ino, name, file] of where) {
      const list = xattrs.get(ino) ?? [];
      list.push([name, fs.readFileSync(file)]);
      xattrs.set(ino, list);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  // 4. Contents of regular files and slow symlinks: `cat` for most, the extent
  //    map for big extent-mapped files (see readViaExtents).
  const big = (s: StatInfo) => s.type === 'file' && (s.flags & EXT4_EXTENTS_FL) !== 0 && s.size > CAT_LIMIT;
  const wanted = inos.filter((ino) => {
    const s = stats.get(ino)!;
    return (s.type === 'file' && !big(s)) || (s.type === 'symlink' && s.fastTarget === undefined);
  });
  const contents = await catInodes(image, wanted, stats);
  const viaExtents = inos.filter((ino) => big(stats.get(ino)!));
  if (viaExtents.length > 0) {
    for (const [ino, digest] of readViaExtents(image, viaExtents, stats)) contents.set(ino, digest);
  }

  // 5. Assemble.
  const entries = new Map<string, SnapEntry>();
  const identity = new Map<string, string>();
  for (const ref of refs) {
    const s = stats.get(ref.ino)!;
    const e: SnapEntry = {
      type: s.type,
      mode: s.mode,
      uid: s.uid,
      gid: s.gid,
      mtimeNs: s.mtimeNs,
      xattrs: sortXattrs(xattrs.get(ref.ino) ?? []),
    };
    if (s.type === 'file') {
      e.size = s.size;
      e.digest = contents.get(ref.ino) as string;
    } else if (s.type === 'symlink') {
      e.size = s.size;
      e.target = s.fastTarget ?? (contents.get(ref.ino) as Buffer).toString('latin1');
    } else if (s.type === 'chr' || s.type === 'blk') {
      e.major = s.major;
      e.minor = s.minor;
    }
    if (ref.isDir !== (s.type === 'dir')) throw new Error(`snapshotViaDebugfs: ${displayPath(ref.key)}: ls and stat disagree on the type`);
    entries.set(ref.key, e);
    if (s.type !== 'dir') identity.set(ref.key, String(ref.ino));
  }
  assignLinkGroups(entries, identity);
  return sortSnapshot(entries);
}

const EXT4_EXTENTS_FL = 0x80000;
/** Files above this size are read through their extent map instead of `cat`. */
const CAT_LIMIT = 64n * 1024n * 1024n;

/**
 * Digests big extent-mapped files from the extent map debugfs prints
 * (`ex -l <ino>`: every leaf extent as walked by libext2fs's extent code) and
 * the image bytes at the physical blocks it names. Reason: debugfs `cat` maps
 * every logical block separately through the extent tree, which takes ~15 s
 * for a 6 GiB file with 1,536 extents; this reads only the mapped blocks.
 * Unwritten (Uninit) extents and gaps read as zeros; blocks past i_size are
 * ignored. Overlapping or unordered extents are an error.
 */
function readViaExtents(image: string, inos: number[], stats: Map<number, StatInfo>): Map<number, string> {
  const blockSize = BigInt(dumpe2fs(image)['Block size']);
  const r = debugfs(image, inos.map((ino) => `ex -l <${ino}>`));
  const errors = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^debugfs \d/.test(l));
  if (errors.length > 0) throw new Error(`snapshotViaDebugfs: ex failed:\n${errors.join('\n')}`);
  const out = new Map<number, string>();
  const fd = fs.openSync(image, 'r');
  try {
    readBuf ??= Buffer.allocUnsafe(READ_BUF);
    inos.forEach((ino, i) => {
      const size = stats.get(ino)!.size;
      const d = new ContentDigest();
      let pos = 0n; // next logical byte to digest
      const re = /^\s*\d+\/\s*\d+\s+\d+\/\s*\d+\s+(\d+) -\s+(\d+)\s+(\d+) -\s+(\d+)\s+(\d+) ?(Uninit)?\s*$/;
      for (const line of r.outputs[i].toString('latin1').split('\n')) {
        if (line.trim() === '' || line.startsWith('Level Entries')) continue;
        const m = re.exec(line);
        if (!m) throw new Error(`snapshotViaDebugfs: cannot parse extent line of <${ino}>: ${JSON.stringify(line)}`);
        const lblk = BigInt(m[1]);
        const len = BigInt(m[5]);
        const start = lblk * blockSize;
        if (start < pos) throw new Error(`snapshotViaDebugfs: <${ino}>: extents overlap or are out of order at block ${lblk}`);
        if (start >= size) continue;
        const end = start + len * blockSize < size ? start + len * blockSize : size;
        d.zeros(start - pos);
        if (m[6] === 'Uninit') {
          d.zeros(end - start);
        } else {
          let phys = BigInt(m[3]) * blockSize;
          for (let left = end - start; left > 0n; ) {
            const n = Number(left < BigInt(READ_BUF) ? left : BigInt(READ_BUF));
            const got = fs.readSync(fd, readBuf!, 0, n, Number(phys));
            if (got !== n) throw new Error(`snapshotViaDebugfs: <${ino}>: short read of the image at ${phys}`);
            d.update(readBuf!.subarray(0, n));
            phys += BigInt(n);
            left -= BigInt(n);
          }
        }
        pos = end;
      }
      d.zeros(size - pos);
      out.set(ino, d.digest());
    });
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/**
 * Runs `cat <ino>` for every inode in one debugfs process and splits the
 * stream: "debugfs: cat <ino>\n" then exactly size bytes. Regular files become
 * digests, symlinks their raw target bytes.
 */
async function catInodes(image: string, inos: number[], stats: Map<number, StatInfo>): Promise<Map<number, string | Buffer>> {
  const result = new Map<number, string | Buffer>();
  if (inos.length === 0) return result;
  const tmp = fs.mkdtempSync(join(tmpdir(), 'oracle-cat-'));
  try {
    const cmdfile = join(tmp, 'commands');
    fs.writeFileSync(cmdfile, inos.map((ino) => `cat <${ino}>\n`).join(''));
    const child = spawn(findTool('debugfs') as string, ['-f', cmdfile, image], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', DEBUGFS_PAGER: '__none__' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => (stderr += s));

    let idx = 0; // inode being read
    let marker = Buffer.from(`debugfs: cat <${inos[0]}>\n`);
    let head = Buffer.alloc(0); // partial marker bytes
    let remaining = -1n; // bytes of the current cat still to come; -1: expecting a marker
    let keep = 0n; // of those, how many still belong to the file (the rest is past i_size)
    let pad = 0n; // zeros to append after the stream (i_size beyond the inline data)
    let digest: ContentDigest | null = null;
    let parts: Buffer[] = [];
    const startNext = (): void => {
      const s = stats.get(inos[idx])!;
      // For inline-data inodes debugfs (1.47) cats the whole inline area, not
      // i_size bytes: expect that many, keep the first i_size, and like the
      // kernel read zeros past the inline data.
      remaining = s.inlineSize ?? s.size;
      keep = s.size < remaining ? s.size : remaining;
      pad = s.size - keep;
      digest = s.type === 'file' ? new ContentDigest() : null;
      parts = [];
    };
    const finish = (): void => {
      const s = stats.get(inos[idx])!;
      if (pad > 0n) {
        if (digest) digest.zeros(pad);
        else parts.push(Buffer.alloc(Number(pad)));
      }
      result.set(inos[idx], s.type === 'file' ? digest!.digest() : Buffer.concat(parts));
      idx++;
      remaining = -1n;
      if (idx < inos.length) marker = Buffer.from(`debugfs: cat <${inos[idx]}>\n`);
    };
    const consume = (chunk: Buffer): void => {
      let pos = 0;
      while (pos < chunk.length) {
        if (remaining < 0n) {
          if (idx >= inos.length) throw new Error(`unexpected output after the last file: ${JSON.stringify(chunk.subarray(pos, pos + 200).toString('latin1'))}`);
          const need = marker.length - head.length;
          const take = chunk.subarray(pos, pos + need);
          head = Buffer.concat([head, take]);
          pos += take.length;
          if (!marker.subarray(0, head.length).equals(head)) {
            throw new Error(`expected ${JSON.stringify(marker.toString())}, got ${JSON.stringify(head.toString('latin1'))}`);
          }
          if (head.length === marker.length) {
            head = Buffer.alloc(0);
            startNext();
            if (remaining === 0n) finish();
          }
        } else {
          const n = Number(remaining < BigInt(chunk.length - pos) ? remaining : BigInt(chunk.length - pos));
          const kept = Number(keep < BigInt(n) ? keep : BigInt(n));
          const piece = chunk.subarray(pos, pos + kept);
          if (digest) (digest as ContentDigest).update(piece);
          else parts.push(Buffer.from(piece));
          keep -= BigInt(kept);
          pos += n;
          remaining -= BigInt(n);
          if (remaining === 0n) finish();
        }
      }
    };
    let failure: Error | null = null;
    child.stdout.on('data', (chunk: Buffer) => {
      if (failure) return;
      try {
        consume(chunk);
      } catch (e) {
        failure = e as Error;
        child.kill();
      }
    });
    const status: number | null = await new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code));
    });
    if (failure) throw new Error(`snapshotViaDebugfs: cat stream: ${(failure as Error).message}\n${stderr}`);
    if (status !== 0 || idx !== inos.length) {
      throw new Error(`snapshotViaDebugfs: cat read ${idx} of ${inos.length} inodes (exit ${status})\n${stderr}`);
    }
    const errors = stderr.split('\n').filter((l) => l.trim() !== '' && !/^debugfs \d/.test(l));
    if (errors.length > 0) throw new Error(`snapshotViaDebugfs: cat reported errors:\n${errors.join('\n')}`);
    return result;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- diff

export interface DiffOptions {
  /** Names for the two sides in messages. Default ['a', 'b']. */
  labels?: [string, string];
  /**
   * Leave a difference out: field is one of type, mode, uid, gid, mtime, size,
   * content, target, device, links, or 'xattr:<name>'.
   */
  ignore?: (key: string, field: string) => boolean;
}

/** "-1.500000000 s (1969-12-31T23:59:58.500000000Z)": exact decimal seconds, then UTC. */
export function fmtTime(ns: bigint): string {
  const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n); // floor
  const nsec = (ns - sec * 1_000_000_000n).toString().padStart(9, '0');
  const abs = ns < 0n ? -ns : ns;
  const decimal = `${ns < 0n ? '-' : ''}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
  let iso = '?';
  try {
    iso = new Date(Number(sec) * 1000).toISOString().replace('.000Z', `.${nsec}Z`);
  } catch {
    // outside the Date range
  }
  return `${decimal} s (${iso})`;
}

function preview(hex: string): string {
  const bytes = hex.length / 2;
  const text = Buffer.from(hex, 'hex');
  const printable = /^[\x20-\x7e]*$/.test(text.toString('latin1'));
  const shown = printable ? JSON.stringify(text.toString('latin1')) : '0x' + hex;
  return shown.length > 80 ? `${shown.slice(0, 76)}... (${bytes} bytes)` : `${shown} (${bytes} bytes)`;
}

/** Human-readable differences between two snapshots; empty when they are equal. */
export function diffSnapshots(a: Snapshot, b: Snapshot, opts: DiffOptions = {}): string[] {
  const [la, lb] = opts.labels ?? ['a', 'b'];
  const ignore = opts.ignore ?? (() => false);
  const out: string[] = [];
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort(compareBytes);
  for (const key of keys) {
    const x = a.get(key);
    const y = b.get(key);
    const p = displayPath(key);
    if (!x || !y) {
      if (!ignore(key, 'presence')) out.push(`${p}: only in ${x ? la : lb} (${(x ?? y)!.type})`);
      continue;
    }
    const field = (name: string, vx: string, vy: string): void => {
      if (vx !== vy && !ignore(key, name)) out.push(`${p}: ${name} ${la}=${vx} ${lb}=${vy}`);
    };
    if (x.type !== y.type) {
      field('type', x.type, y.type);
      continue;
    }
    field('mode', '0' + x.mode.toString(8).padStart(4, '0'), '0' + y.mode.toString(8).padStart(4, '0'));
    field('uid', String(x.uid), String(y.uid));
    field('gid', String(x.gid), String(y.gid));
    if (x.mtimeNs !== y.mtimeNs) field('mtime', fmtTime(x.mtimeNs), fmtTime(y.mtimeNs));
    field('size', String(x.size ?? '-'), String(y.size ?? '-'));
    field('content', x.digest ?? '-', y.digest ?? '-');
    if (x.target !== y.target) {
      const t = (s: string | undefined) => (s === undefined ? '-' : JSON.stringify(displayPath(s)).slice(0, 120) + ` (${s.length} bytes)`);
      field('target', t(x.target), t(y.target));
    }
    field('device', x.major === undefined ? '-' : `${x.major}:${x.minor}`, y.major === undefined ? '-' : `${y.major}:${y.minor}`);
    field('links', (x.links ?? []).map(displayPath).join(' | ') || '-', (y.links ?? []).map(displayPath).join(' | ') || '-');
    const xa = new Map(x.xattrs);
    const ya = new Map(y.xattrs);
    for (const name of [...new Set([...xa.keys(), ...ya.keys()])].sort()) {
      const vx = xa.get(name);
      const vy = ya.get(name);
      if (vx === vy) continue;
      if (ignore(key, `xattr:${name}`)) continue;
      out.push(`${p}: xattr ${name} ${la}=${vx === undefined ? 'absent' : preview(vx)} ${lb}=${vy === undefined ? 'absent' : preview(vy)}`);
    }
  }
  return out;
}
