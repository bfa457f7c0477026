// Output files appear whole or not at all: written under a temporary name
// beside the target and renamed into place when complete, so a failed or
// interrupted write (a full disk, a bad source) never leaves a partial image
// or NAR where a finished one is expected.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../api/errors.ts';

/**
 * Creates `out` (and its directory) through a temporary file that `fill`
 * writes. `what` names the content in the OUTPUT_IS_DIR message ("image",
 * "NAR"); running out of space or an I/O error becomes OUTPUT_WRITE.
 */
export function writeFileAtomically(out: string, what: string, fill: (fd: number) => void): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(out);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) throw new DiskwrightError('OUTPUT_IS_DIR', `output ${out} is a directory; give a file name for the ${what}`, { path: out });
  const dir = path.dirname(path.resolve(out));
  const tmp = path.join(dir, `.${path.basename(out)}.diskwright-${process.pid}.tmp`);
  let fd: number;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fd = fs.openSync(tmp, 'w', 0o644);
  } catch (err) {
    throw new DiskwrightError('OUTPUT_WRITE', `cannot create ${out}: ${(err as NodeJS.ErrnoException).code}; check that ${dir} exists and is writable`, { path: out });
  }
  try {
    try {
      fill(fd);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (err instanceof DiskwrightError) throw err;
      if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' || code === 'EIO') {
        throw new DiskwrightError('OUTPUT_WRITE', `cannot write ${out}: ${code === 'ENOSPC' ? 'no space left on device' : code}; free space or choose another output`, { path: out, code });
      }
      throw err;
    }
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, out);
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
