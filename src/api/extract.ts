// `extract`: a tree inside an image written back to a host directory, as
// close to the original as the host allows: contents with their holes,
// modes, owners (as root), atime and mtime to the nanosecond, symlinks, hard
// links, device nodes (as root), FIFOs, sockets and xattrs.
//
// The image is hostile input, so the tree is confined to DIR: an entry whose
// name cannot be one path component ('', '.', '..', a '/' or NUL in it, an
// invalid FAT long name: read/names.ts) is skipped with a warning; every
// entry is created by name relative to a directory handle extract made
// itself, never through a symlink and never over an existing name (the *at
// calls of the native addon, src/native/dirfd.c); hard links only join
// entries written in this run. A DIR that does not exist yet is written as a
// temporary sibling and renamed at the end, so a failure leaves nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { openVolume, type ReadOptions, withInput } from './volume.ts';
import { displayKey, type FsEntry, type FsReader, keyParts } from '../read/entry.ts';
import { driverOf } from '../fs/drivers.ts';
import { entryNameProblem, escapePath, unsafeEntryLine } from '../read/names.ts';
import { describeSystemError, errnoOf } from '../util/sys-error.ts';

import { ADDON_MISSING, addon as native } from '../native/addon.ts';
/** Directory-handle calls; a name is one component as raw bytes, '' the handle itself (attribute calls). */
const addon = native as unknown as {
  openDirAt(dirfd: number, name: Buffer): number;
  mkdirAt(dirfd: number, name: Buffer, mode: number): void;
  createFileAt(dirfd: number, name: Buffer, mode: number): number;
  symlinkAt(target: Buffer, dirfd: number, name: Buffer): void;
  linkAt(oldDirfd: number, oldName: Buffer, newDirfd: number, newName: Buffer): void;
  mknodAt(dirfd: number, name: Buffer, mode: number, major: number, minor: number): void;
  chownAt(dirfd: number, name: Buffer, uid: number, gid: number): void;
  chmodAt(dirfd: number, name: Buffer, mode: number): void;
  utimensAt(dirfd: number, name: Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  setXattrAt(dirfd: number, name: Buffer, xattr: string, value: Buffer): void;
};

export interface ExtractOptions extends ReadOptions {
  /** Set owners: default when running as root. Without, owners are skipped (one warning). */
  owners?: boolean;
  /** Called once per kind of thing the host refused (owners, devices, an xattr namespace) and once per entry skipped. */
  onWarning?: (line: string) => void;
  /** Stop (and throw UNSAFE_NAME) at the first entry that cannot be extracted under its name, instead of skipping it. */
  strict?: boolean;
  /** How messages name the input (extractImage: the image, and its partition). */
  what?: string;
}

export interface ExtractResult {
  /** Entries written (hard links count once per name). */
  entries: number;
  files: number;
  /** Bytes of file data written (holes excluded). */
  dataBytes: number;
  /** Kinds of things skipped, one line each (also given to onWarning). */
  warnings: string[];
  /** Entries not extracted for their names, one line each naming the image, the entry and why (also in warnings). */
  skipped: string[];
}

const S_IF: Partial<Record<FsEntry['type'], number>> = { chr: 0o020000, blk: 0o060000, fifo: 0o010000, sock: 0o140000 };
const SELF = Buffer.alloc(0);

/** The image path of the directory holding `e`. */
const parentKey = (e: FsEntry) => e.path.slice(0, e.path.length - e.name.length - 1) || '/';
const within = (dir: string, key: string) => dir === key || dir === '/' || key.startsWith(dir + '/');

/** An open directory extract made: its image path, its handle, and its entry (attributes set when it is closed). */
interface OpenDir {
  key: string;
  fd: number;
  e?: FsEntry;
}

/**
 * Writes `from` (a directory: its contents go into `dir`, which takes its
 * attributes; anything else: `dir`/its name) from the reader to `dir`.
 * `dir` must not exist or be an empty directory; when it does not exist,
 * it appears only once everything is written.
 */
export function extractTree(r: FsReader, from: FsEntry, dir: string, opts: ExtractOptions = {}): ExtractResult {
  // Every entry is created through the addon's *at calls: no safe way without them.
  if (!native) throw new DiskwrightError('NATIVE_ADDON_MISSING', `cannot extract to ${dir}: ${ADDON_MISSING}`, { path: dir });
  const fresh = !checkDir(dir);
  const target = fresh ? makeTempSibling(dir) : dir;
  let rootFd: number;
  try {
    rootFd = fs.openSync(target, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    if (fresh) removeTree(target);
    throw new DiskwrightError('OUTPUT_WRITE', describeSystemError('cannot open', dir, e), { path: dir });
  }
  const w = new TreeWriter(r, from, rootFd, dir, opts);
  try {
    w.run();
  } catch (err) {
    w.closeAll();
    if (fresh) removeTree(target);
    if (!(err instanceof DiskwrightError)) throw err;
    // DIR itself counts as an entry of the result, not as something written into it.
    const n = w.result.entries - (from.type === 'dir' ? 1 : 0);
    const note = fresh
      ? `nothing written (${dir} not created)`
      : n <= 0 ? `${dir} is left empty` : `${dir} holds the ${n} ${n === 1 ? 'entry' : 'entries'} written before this; remove them to start again`;
    throw new DiskwrightError(err.code, `${err.message}; ${note}`, { ...err.data, written: fresh ? 0 : n });
  }
  if (fresh) {
    try {
      fs.renameSync(target, dir);
    } catch (e) {
      removeTree(target);
      throw new DiskwrightError('OUTPUT_WRITE', `${describeSystemError('cannot create', dir, e)}; nothing written`, { path: dir });
    }
  }
  return w.result;
}

/** One extraction: the walk, the open directories along it, the hard links written so far. */
class TreeWriter {
  readonly result: ExtractResult = { entries: 0, files: 0, dataBytes: 0, warnings: [], skipped: [] };
  private readonly warned = new Set<string>();
  private readonly owners: boolean;
  private readonly what: string;
  /** The directories from the root down to the one being written; the root's key is `base`. */
  private readonly open: OpenDir[];
  private readonly base: string;
  /** linkKey -> where its first name was written. */
  private readonly linked = new Map<string, { dir: string; name: Buffer }>();

  private readonly r: FsReader;
  private readonly from: FsEntry;
  private readonly dir: string;
  private readonly opts: ExtractOptions;

  constructor(r: FsReader, from: FsEntry, rootFd: number, dir: string, opts: ExtractOptions) {
    this.r = r;
    this.from = from;
    this.dir = dir;
    this.opts = opts;
    this.owners = opts.owners ?? (typeof process.getuid === 'function' && process.getuid() === 0);
    this.what = opts.what ?? 'image';
    this.base = from.type === 'dir' ? from.path : parentKey(from);
    this.open = [{ key: this.base, fd: rootFd, e: from.type === 'dir' ? from : undefined }];
  }

  run(): void {
    for (const e of this.r.walk(this.from)) {
      if (e === this.from && e.type === 'dir') {
        // DIR itself: writable while it fills, its attributes when it is closed.
        this.guard(e, () => addon.chmodAt(this.open[0].fd, SELF, 0o700));
        this.result.entries++;
        continue;
      }
      while (this.open.length > 1 && !within(this.open[this.open.length - 1].key, parentKey(e))) this.close(this.open.pop()!);
      // Below a directory that was skipped (its line said so).
      if (this.open[this.open.length - 1].key !== parentKey(e)) continue;
      const problem = entryNameProblem(e) ?? (e.target?.includes(0) ? 'its symlink target holds a NUL byte' : undefined);
      if (problem) {
        this.skip(e, problem);
        continue;
      }
      this.guard(e, () => this.write(e, this.open[this.open.length - 1].fd, Buffer.from(e.name, 'latin1')));
    }
    while (this.open.length > 0) this.close(this.open.pop()!);
  }

  /** Closes every directory still open, without setting attributes (after a failure). */
  closeAll(): void {
    for (const d of this.open.splice(0)) fs.closeSync(d.fd);
  }

  private warnOnce(kind: string, line: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.result.warnings.push(line);
    this.opts.onWarning?.(line);
  }

  private skip(e: FsEntry, problem: string): void {
    const line = unsafeEntryLine(this.what, e, problem);
    if (this.opts.strict) throw new DiskwrightError('UNSAFE_NAME', `${line}; stopped there (strict)`, { path: displayKey(e.path), ino: e.ino });
    this.result.skipped.push(line);
    this.result.warnings.push(line);
    this.opts.onWarning?.(line);
  }

  /** Where an entry goes on the host, for messages only. */
  private hostPath(e: FsEntry): string {
    const rel = e.path.slice(this.base === '/' ? 1 : this.base.length + 1);
    return rel === '' ? this.dir : path.join(this.dir, escapePath(rel));
  }

  /** Runs a host call for `e`; a refusal becomes OUTPUT_WRITE naming where it went. */
  private guard(e: FsEntry, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof DiskwrightError || !errnoOf(err)) throw err;
      throw new DiskwrightError('OUTPUT_WRITE', describeSystemError('cannot write', this.hostPath(e), err), { path: this.hostPath(e), errno: errnoOf(err) });
    }
  }

  /** Owner, then mode (chown clears setuid/setgid), then xattrs (after chmod: an ACL sets the group bits), then times. */
  private finish(e: FsEntry, fd: number, name: Buffer): void {
    // A root without attributes of its own (FAT's has no directory entry): no owner or times to give DIR.
    const bare = e.path === '/' && !driverOf(this.r).rootAttributes;
    if (!bare) {
      if (this.owners) addon.chownAt(fd, name, e.uid, e.gid);
      else if (e.uid !== process.getuid?.() || e.gid !== process.getgid?.()) this.warnOnce('owners', 'owners not set: run as root to keep them');
    }
    if (e.type !== 'symlink') addon.chmodAt(fd, name, e.mode);
    for (const x of e.xattrs) {
      try {
        addon.setXattrAt(fd, name, x.name, x.value);
      } catch (err) {
        const code = errnoOf(err) ?? 'EIO';
        const ns = x.name.slice(0, x.name.indexOf('.') + 1) || x.name;
        const why = code === 'ENOTSUP' ? `the target filesystem does not support ${ns}* xattrs` : `the host refused ${ns}* xattrs (${code})${this.owners ? '' : '; run as root'}`;
        this.warnOnce(`xattr ${ns} ${code}`, `xattrs not set: ${why}; first: ${x.name} on ${displayKey(e.path)}`);
      }
    }
    if (!bare) addon.utimensAt(fd, name, e.atime.sec, e.atime.nsec, e.mtimeSec, e.mtimeNsec);
  }

  /** A directory is done: everything in it is written, so its attributes (a mode like 0555, its times) go on last. */
  private close(d: OpenDir): void {
    try {
      if (d.e) this.guard(d.e, () => this.finish(d.e!, d.fd, SELF));
    } finally {
      fs.closeSync(d.fd);
    }
  }

  /** A handle on the directory `key` extract wrote: an open one, or opened again component by component from the root. */
  private dirFd(key: string): { fd: number; opened: boolean } {
    const d = this.open.find((o) => o.key === key);
    if (d) return { fd: d.fd, opened: false };
    let fd = this.open[0].fd;
    for (const part of keyParts(key.slice(this.base.length))) {
      const next = addon.openDirAt(fd, Buffer.from(part, 'latin1'));
      if (fd !== this.open[0].fd) fs.closeSync(fd);
      fd = next;
    }
    return { fd, opened: true };
  }

  private write(e: FsEntry, dirfd: number, name: Buffer): void {
    try {
      this.create(e, dirfd, name);
    } catch (err) {
      // Only an entry of this run can hold the name: the image has two of it (a symlink and a directory, say).
      if (errnoOf(err) !== 'EEXIST') throw err;
      this.skip(e, 'an entry of the same name was extracted before it');
    }
  }

  private create(e: FsEntry, dirfd: number, name: Buffer): void {
    if (e.type === 'dir') {
      addon.mkdirAt(dirfd, name, 0o700);
      this.result.entries++;
      this.open.push({ key: e.path, fd: addon.openDirAt(dirfd, name), e });
      return;
    }
    const first = e.linkKey ? this.linked.get(e.linkKey) : undefined;
    if (first) {
      const src = this.dirFd(first.dir);
      try {
        addon.linkAt(src.fd, first.name, dirfd, name);
      } finally {
        if (src.opened) fs.closeSync(src.fd);
      }
      this.result.entries++;
      return;
    }
    switch (e.type) {
      case 'file': {
        const fd = addon.createFileAt(dirfd, name, 0o600);
        try {
          this.result.entries++;
          for (const c of this.r.chunks(e, { chunkSize: 4 << 20 })) {
            let done = 0;
            while (done < c.data.length) done += fs.writeSync(fd, c.data, done, c.data.length - done, c.offset + done);
            this.result.dataBytes += c.data.length;
          }
          fs.ftruncateSync(fd, e.size);
          this.finish(e, fd, SELF);
        } finally {
          fs.closeSync(fd);
        }
        this.result.files++;
        break;
      }
      case 'symlink':
        addon.symlinkAt(e.target!, dirfd, name);
        this.result.entries++;
        this.finish(e, dirfd, name);
        break;
      default: {
        const isDevice = e.type === 'chr' || e.type === 'blk';
        try {
          addon.mknodAt(dirfd, name, S_IF[e.type]! | 0o600, isDevice ? e.major ?? 0 : 0, isDevice ? e.minor ?? 0 : 0);
        } catch (err) {
          if (isDevice && errnoOf(err) === 'EPERM') {
            this.warnOnce('devices', `device nodes not created: run as root to create them; first: ${displayKey(e.path)}`);
            return;
          }
          throw err;
        }
        this.result.entries++;
        this.finish(e, dirfd, name);
      }
    }
    if (e.linkKey) this.linked.set(e.linkKey, { dir: parentKey(e), name });
  }
}

/** Refuses a `dir` that is not a new or empty directory; true when it exists. */
function checkDir(dir: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return false;
    throw new DiskwrightError('OUTPUT_WRITE', describeSystemError('cannot use', dir, e), { path: dir });
  }
  if (!st.isDirectory()) throw new DiskwrightError('OUTPUT_WRITE', `${dir} exists and is not a directory; give a new or empty directory`, { path: dir });
  if (fs.readdirSync(dir).length) throw new DiskwrightError('OUTPUT_WRITE', `${dir} is not empty; give a new or empty directory`, { path: dir });
  return true;
}

/** A new directory beside `dir` (its parents made as needed), to be renamed to `dir` when everything is in it. */
function makeTempSibling(dir: string): string {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  try {
    fs.mkdirSync(parent, { recursive: true });
    // Named by the process and a counter, not at random: a name left by a crashed run is stepped over.
    for (let n = 0; n < 1000; n++) {
      const tmp = path.join(parent, `.${path.basename(abs)}.extract-${process.pid}-${n}`);
      try {
        fs.mkdirSync(tmp, 0o777);
        return tmp;
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw e;
      }
    }
    throw Object.assign(new Error('no free temporary name'), { code: 'EEXIST' });
  } catch (e) {
    throw new DiskwrightError('OUTPUT_WRITE', describeSystemError('cannot create', dir, e), { path: dir });
  }
}

/** Removes a tree extract made, after a failure: directories it already gave a read-only mode are made writable first. */
function removeTree(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
    return;
  } catch {
    // a directory without write permission for us: open them up, then again
  }
  const openUp = (d: Buffer) => {
    fs.chmodSync(d, 0o700);
    for (const n of fs.readdirSync(d, { encoding: 'buffer' })) {
      const c = Buffer.concat([d, Buffer.from('/'), n]);
      if (fs.lstatSync(c).isDirectory()) openUp(c);
    }
  };
  try {
    openUp(Buffer.from(p));
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    // What cannot be removed stays; the error being reported says why the extraction stopped.
  }
}

/** Extracts IMAGE[:PART] [PATH] into `dir` (see extractTree). */
export function extractImage(image: string, path: string, dir: string, opts: ExtractOptions = {}): ExtractResult {
  checkDir(dir);
  const vol = openVolume(image, opts);
  try {
    for (const w of vol.warnings) opts.onWarning?.(w);
    const from = withInput(vol.what, () => vol.fs.lookup(path));
    return withInput(vol.what, () => extractTree(vol.fs, from, dir, { ...opts, what: vol.what }));
  } catch (e) {
    // Writing errors name the image too, so one line says what was being extracted where.
    if (e instanceof DiskwrightError && e.code === 'OUTPUT_WRITE' && !e.message.startsWith(`${vol.what}: `)) {
      throw new DiskwrightError(e.code, `${vol.what}: ${e.message}`, { ...e.data, input: vol.what });
    }
    throw e;
  } finally {
    vol.close();
  }
}
