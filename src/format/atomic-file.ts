// Output files appear whole or not at all, and nothing of a killed build
// survives it. The bytes go to an anonymous file (O_TMPFILE) that gets its
// name only when complete (linkat, src/native/tmpfile.c): a kill, even
// SIGKILL, leaves nothing behind. Where the file system has no anonymous
// files (NFS, some FUSE), a named temporary beside the output takes its
// place: removed on failure, removed by the native signal handler on SIGINT,
// SIGTERM and SIGHUP, locked (flock) while written so that the next build in
// that directory removes it once its writer is gone (after SIGKILL).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { addon } from '../native/addon.ts';
import { describeSystemError, errnoOf } from '../util/sys-error.ts';

interface Native {
  openTmpfile(dir: string, mode: number): number;
  linkFd(path: string, fd: number): void;
  lockFd(path: string, fd: number, wait: boolean): boolean;
  guardPath(path: string): number;
  unguardPath(slot: number): void;
}

const unsupported = (): never => {
  throw Object.assign(new Error('no native addon'), { code: 'EOPNOTSUPP' });
};
/**
 * Without the addon: named temporaries, no locks and no signal guard; a
 * temporary left by a killed build goes at the next build's sweep (its PID
 * no longer runs).
 */
const WITHOUT_ADDON: Native = { openTmpfile: unsupported, linkFd: unsupported, lockFd: unsupported, guardPath: () => -1, unguardPath: () => {} };

const native = (addon as unknown as Native | undefined) ?? WITHOUT_ADDON;

/**
 * Set to 1, output always goes through a named temporary file, as on a file
 * system without O_TMPFILE (tests use it to exercise that path).
 */
export const NO_TMPFILE_ENV = 'DISKWRIGHT_NO_TMPFILE';

/** Errors from open(O_TMPFILE) that mean "not on this file system / kernel". */
const NO_TMPFILE = new Set(['EOPNOTSUPP', 'ENOTSUP', 'EISDIR', 'EINVAL']);

/** `.NAME.diskwright-PID.tmp` (being written) and `.NAME.diskwright-PID.new` (complete, about to be renamed). */
const TEMP_NAME = /^\..+\.diskwright-(\d+)\.(tmp|new)$/;

const tempName = (out: string, kind: 'tmp' | 'new') => path.join(path.dirname(out), `.${path.basename(out)}.diskwright-${process.pid}.${kind}`);

function outputError(doing: string, p: string, err: unknown): DiskwrightError {
  return new DiskwrightError('OUTPUT_WRITE', describeSystemError(doing, p, err), { path: p, code: errnoOf(err) });
}

/**
 * Creates `out` (and its directory) from what `fill` writes to the file
 * descriptor it is handed; returns the complete file's stats. `what` names
 * the content in messages ("image", "NAR"). A failure of the output (full
 * disk, read-only file system) becomes OUTPUT_WRITE naming the path.
 */
export function writeFileAtomically(out: string, what: string, fill: (fd: number) => void): fs.Stats {
  const f = beginOutput(out, what);
  try {
    try {
      fill(f.fd);
    } catch (err) {
      throw asOutputError(err, what, out);
    }
    return completeOutput(f, out, what);
  } finally {
    endOutput(f);
  }
}

/** writeFileAtomically for a `fill` that takes turns with the event loop; an abort leaves no file either. */
export async function writeFileAtomicallyAsync(out: string, what: string, fill: (fd: number) => Promise<void>): Promise<fs.Stats> {
  const f = beginOutput(out, what);
  try {
    try {
      await fill(f.fd);
    } catch (err) {
      throw asOutputError(err, what, out);
    }
    return completeOutput(f, out, what);
  } finally {
    endOutput(f);
  }
}

function beginOutput(out: string, what: string): OpenOutput {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(out);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) throw new DiskwrightError('OUTPUT_IS_DIR', `output ${out} is a directory; give a file name for the ${what}`, { path: out });
  // The finished file is renamed over the name: over a device, fifo or
  // socket (-o /dev/null as root) that would replace the node itself.
  if (st && !st.isFile()) {
    throw new DiskwrightError('OUTPUT_WRITE', `output ${out} is not a regular file (a device, fifo or socket); give a file name for the ${what}, or '-' to write it to standard output`, { path: out });
  }
  const dir = path.dirname(out);
  makeDirs(dir);
  sweepStale(dir);
  return openOutput(out, dir);
}

/** A system error while filling is the output's; ours and aborts pass through. */
function asOutputError(err: unknown, what: string, out: string): unknown {
  if (err instanceof DiskwrightError || !errnoOf(err)) return err;
  return outputError(`cannot write the ${what}`, out, err);
}

/** Gives the complete file its name; returns its stats. */
function completeOutput(f: OpenOutput, out: string, what: string): fs.Stats {
  const done = fs.fstatSync(f.fd);
  try {
    if (f.named) fs.renameSync(f.named, out);
    else publish(f.fd, out);
  } catch (err) {
    throw outputError(`cannot create the ${what}`, out, err);
  }
  f.named = undefined;
  return done;
}

/** Closes the file; a temporary name still there (a failure) goes with it. */
function endOutput(f: OpenOutput): void {
  fs.closeSync(f.fd);
  if (f.named) fs.rmSync(f.named, { force: true });
  if (f.slot !== undefined) native.unguardPath(f.slot);
}

/**
 * `mkdir -p` that reports the error of the directory that failed: Node's
 * recursive mkdir says ENOENT on a read-only file system.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      if (fs.statSync(d).isDirectory()) break;
      throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || path.dirname(d) === d) throw outputError('cannot create the directory', d, err);
      missing.push(d);
    }
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, 0o755);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw outputError('cannot create the directory', d, err);
    }
  }
}

interface OpenOutput {
  fd: number;
  /** The temporary name, while there is one; undefined for an anonymous file. */
  named?: string;
  /** The signal guard of the temporary name. */
  slot?: number;
}

/** An anonymous file in `dir` if it can have one, else a named temporary, locked either way. */
function openOutput(out: string, dir: string): OpenOutput {
  if (process.env[NO_TMPFILE_ENV] !== '1' && fs.existsSync('/proc/self/fd')) {
    try {
      const fd = native.openTmpfile(dir, 0o644);
      native.lockFd(out, fd, true);
      return { fd };
    } catch (err) {
      if (!NO_TMPFILE.has(errnoOf(err) ?? '')) throw outputError('cannot create', out, err);
    }
  }
  const named = tempName(out, 'tmp');
  // Guarded before it exists: a signal between open and guard would leave it.
  const slot = native.guardPath(named);
  let fd: number;
  try {
    fd = fs.openSync(named, 'wx', 0o644);
  } catch (err) {
    native.unguardPath(slot);
    if (errnoOf(err) !== 'EEXIST') throw outputError('cannot create', out, err);
    // Left by an earlier process with our PID (a PID reused): not ours to keep.
    try {
      fs.unlinkSync(named);
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') throw outputError('cannot remove the stale', named, e);
    }
    return openOutput(out, dir);
  }
  lock(named, fd);
  return { fd, named, slot };
}

/** flock where the file system has it; without, the sweep goes by PID alone. */
function lock(p: string, fd: number): void {
  try {
    native.lockFd(p, fd, true);
  } catch {
    // No locks here (ENOLCK, EOPNOTSUPP): nothing to do.
  }
}

/**
 * Names the complete anonymous file `out`. linkat cannot replace a file, so
 * an existing output is replaced through a unique name and rename, guarded
 * against signals and removed by the sweep after a SIGKILL in between.
 */
function publish(fd: number, out: string): void {
  try {
    native.linkFd(out, fd);
    return;
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err;
  }
  const next = tempName(out, 'new');
  const slot = native.guardPath(next);
  try {
    fs.rmSync(next, { force: true });
    native.linkFd(next, fd);
    fs.renameSync(next, out);
  } catch (err) {
    fs.rmSync(next, { force: true });
    throw err;
  } finally {
    native.unguardPath(slot);
  }
}

/**
 * Removes the temporary files of writers that are gone: named after a PID
 * that no longer runs and not locked by anyone. A PID in use again keeps its
 * file until that process ends; a lock held (a writer in another PID
 * namespace) keeps it for good reason.
 */
export function sweepStale(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || Number(m[1]) === process.pid || running(Number(m[1]))) continue;
    const p = path.join(dir, name);
    let fd: number;
    try {
      fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch {
      continue;
    }
    try {
      let free = true;
      try {
        free = native.lockFd(p, fd, false);
      } catch {
        // No locks on this file system: the PID said enough.
      }
      if (free && fs.fstatSync(fd).isFile()) fs.rmSync(p, { force: true });
    } catch {
      // Not ours to fight over: another build may be sweeping too.
    } finally {
      fs.closeSync(fd);
    }
  }
}

function running(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) !== 'ESRCH';
  }
}

/** A small output (layout.json, hydra-build-products, closure files) written whole. */
export function writeSmallFile(out: string, what: string, data: string | Buffer): void {
  writeFileAtomically(out, what, (fd) => {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    let done = 0;
    while (done < b.length) done += fs.writeSync(fd, b, done, b.length - done);
  });
}
