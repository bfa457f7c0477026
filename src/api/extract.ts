// `extract`: a tree inside an image written back to a host directory, as
// close to the original as the host allows: contents with their holes,
// modes, owners (as root), atime and mtime to the nanosecond, symlinks, hard
// links, device nodes (as root), FIFOs, sockets and xattrs. Node lacks
// lsetxattr, mknod and nanosecond-exact lutimes: the native addon
// (src/native/xattr.c) does those syscalls, nothing else.
import * as fs from 'node:fs';
import { DiskwrightError } from './errors.ts';
import { openVolume, type ReadOptions, withInput } from './volume.ts';
import { displayKey, type FsEntry, type FsReader } from '../read/entry.ts';
import { FatReader } from '../read/fat.ts';

import { addon as native } from '../native/addon.ts';
const addon = native as unknown as {
  setXattr(path: Buffer, name: string, value: Buffer): void;
  mknod(path: Buffer, mode: number, major: number, minor: number): void;
  utimens(path: Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
};

export interface ExtractOptions extends ReadOptions {
  /** Set owners: default when running as root. Without, owners are skipped (one warning). */
  owners?: boolean;
  /** Called once per kind of thing the host refused (owners, devices, an xattr namespace). */
  onWarning?: (line: string) => void;
}

export interface ExtractResult {
  /** Entries written (hard links count once per name). */
  entries: number;
  files: number;
  /** Bytes of file data written (holes excluded). */
  dataBytes: number;
  /** Kinds of things skipped, one line each (also given to onWarning). */
  warnings: string[];
}

const S_IF: Partial<Record<FsEntry['type'], number>> = { chr: 0o020000, blk: 0o060000, fifo: 0o010000, sock: 0o140000 };

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/**
 * Writes `from` (a directory: its contents go into `dir`, which takes its
 * attributes; anything else: `dir`/its name) from the reader to `dir`.
 * `dir` must not exist or be an empty directory.
 */
export function extractTree(r: FsReader, from: FsEntry, dir: string, opts: ExtractOptions = {}): ExtractResult {
  const owners = opts.owners ?? (typeof process.getuid === 'function' && process.getuid() === 0);
  const result: ExtractResult = { entries: 0, files: 0, dataBytes: 0, warnings: [] };
  const warned = new Set<string>();
  const warnOnce = (kind: string, line: string) => {
    if (warned.has(kind)) return;
    warned.add(kind);
    result.warnings.push(line);
    opts.onWarning?.(line);
  };
  prepareDir(dir);
  const dirBuf = Buffer.from(fs.realpathSync(dir), 'utf8');
  // Byte-string path inside the image -> host path (raw bytes).
  const base = from.type === 'dir' ? from.path : from.path.slice(0, from.path.lastIndexOf('/')) || '/';
  const hostPath = (key: string): Buffer => {
    const rel = base === '/' ? key.slice(1) : key.slice(base.length + 1);
    return rel === '' ? dirBuf : Buffer.concat([dirBuf, Buffer.from('/' + rel, 'latin1')]);
  };
  const linked = new Map<string, Buffer>();
  const dirs: Array<{ e: FsEntry; p: Buffer }> = [];

  const setOwner = (e: FsEntry, p: Buffer) => {
    if (!owners) {
      if (e.uid !== process.getuid?.() || e.gid !== process.getgid?.()) warnOnce('owners', 'owners not set: run as root to keep them');
      return;
    }
    fs.lchownSync(p, e.uid, e.gid);
  };
  const setXattrs = (e: FsEntry, p: Buffer) => {
    for (const x of e.xattrs) {
      try {
        addon.setXattr(p, x.name, x.value);
      } catch (err) {
        const ns = x.name.slice(0, x.name.indexOf('.') + 1) || x.name;
        const why = errno(err) === 'ENOTSUP' ? `the target filesystem does not support ${ns}* xattrs` : `the host refused ${ns}* xattrs (${errno(err)})${owners ? '' : '; run as root'}`;
        warnOnce(`xattr ${ns} ${errno(err)}`, `xattrs not set: ${why}; first: ${x.name} on ${displayKey(e.path)}`);
      }
    }
  };
  const setTimes = (e: FsEntry, p: Buffer) => {
    addon.utimens(p, e.atime.sec, e.atime.nsec, e.mtimeSec, e.mtimeNsec);
  };
  /** Owner, then mode (chown clears setuid/setgid), then xattrs (after chmod: an ACL sets the group bits), then times. */
  const finish = (e: FsEntry, p: Buffer) => {
    // FAT's root has no directory entry: no owner or times to give DIR.
    const bare = r instanceof FatReader && e.path === '/';
    if (!bare) setOwner(e, p);
    if (e.type !== 'symlink') fs.chmodSync(p, e.mode);
    setXattrs(e, p);
    if (!bare) setTimes(e, p);
  };

  const hostError = (err: unknown, p: Buffer): never => {
    if (err instanceof DiskwrightError || !errno(err)) throw err;
    throw new DiskwrightError('OUTPUT_WRITE', `cannot write ${p.toString()}: ${errno(err)} (${(err as Error).message.split(',')[0]})`, { path: p.toString(), errno: errno(err) });
  };
  for (const e of r.walk(from)) {
    const p = hostPath(e.path);
    try {
      if (writeEntry(e, p)) finish(e, p);
    } catch (err) {
      hostError(err, p);
    }
  }
  // Directories last, deepest first: writing into them changed their times, and a mode like 0555 would have stopped it.
  for (let i = dirs.length - 1; i >= 0; i--) {
    try {
      finish(dirs[i].e, dirs[i].p);
    } catch (err) {
      hostError(err, dirs[i].p);
    }
  }
  return result;

  /** Creates the entry; true when its attributes are to be set now. */
  function writeEntry(e: FsEntry, p: Buffer): boolean {
    result.entries++;
    if (e.type === 'dir') {
      if (p !== dirBuf) fs.mkdirSync(p, { mode: 0o700 });
      else fs.chmodSync(p, 0o700);
      dirs.push({ e, p });
      return false;
    }
    if (e.linkKey) {
      const first = linked.get(e.linkKey);
      if (first) {
        fs.linkSync(first, p);
        return false;
      }
      linked.set(e.linkKey, p);
    }
    switch (e.type) {
      case 'file': {
        const fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
        try {
          for (const c of r.chunks(e, { chunkSize: 4 << 20 })) {
            let done = 0;
            while (done < c.data.length) done += fs.writeSync(fd, c.data, done, c.data.length - done, c.offset + done);
            result.dataBytes += c.data.length;
          }
          fs.ftruncateSync(fd, e.size);
        } finally {
          fs.closeSync(fd);
        }
        result.files++;
        break;
      }
      case 'symlink':
        fs.symlinkSync(e.target!, p);
        break;
      default: {
        const isDevice = e.type === 'chr' || e.type === 'blk';
        try {
          addon.mknod(p, S_IF[e.type]! | 0o600, isDevice ? e.major ?? 0 : 0, isDevice ? e.minor ?? 0 : 0);
        } catch (err) {
          if (isDevice && errno(err) === 'EPERM') {
            warnOnce('devices', `device nodes not created: run as root to create them; first: ${displayKey(e.path)}`);
            linked.delete(e.linkKey ?? '');
            result.entries--;
            return false;
          }
          throw err;
        }
      }
    }
    return true;
  }
}

/** Refuses a `dir` that is not a new or empty directory; true when it exists. */
function checkDir(dir: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    if (errno(e) === 'ENOENT') return false;
    throw new DiskwrightError('OUTPUT_WRITE', `cannot use ${dir}: ${errno(e)}; check the path and its permissions`, { path: dir });
  }
  if (!st.isDirectory()) throw new DiskwrightError('OUTPUT_WRITE', `${dir} exists and is not a directory; give a new or empty directory`, { path: dir });
  if (fs.readdirSync(dir).length) throw new DiskwrightError('OUTPUT_WRITE', `${dir} is not empty; give a new or empty directory`, { path: dir });
  return true;
}

function prepareDir(dir: string): void {
  if (checkDir(dir)) return;
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DiskwrightError('OUTPUT_WRITE', `cannot create ${dir}: ${errno(e)}; check the path and its permissions`, { path: dir });
  }
}

/** Extracts IMAGE[:PART] [PATH] into `dir` (see extractTree). */
export function extractImage(image: string, path: string, dir: string, opts: ExtractOptions = {}): ExtractResult {
  checkDir(dir);
  const vol = openVolume(image, opts);
  try {
    for (const w of vol.warnings) opts.onWarning?.(w);
    const from = withInput(vol.what, () => vol.fs.lookup(path));
    return extractTree(vol.fs, from, dir, opts);
  } finally {
    vol.close();
  }
}
