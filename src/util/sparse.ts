// Where a file's data lies, asked of the file system (lseek SEEK_DATA /
// SEEK_HOLE through the addon) instead of found by reading: a 10 GB hole
// costs two system calls, not 10 GB of reads. File systems that cannot tell
// report the whole file as data, so callers still scan what they get for
// zeros where that matters. Without the addon, every file is one data range.
import { addon } from '../native/addon.ts';

// Without the addon every file counts as all data (-2: "cannot tell").
const seekData = (addon?.seekData ?? (() => -2)) as (fd: number, offset: number) => number;
const seekHole = (addon?.seekHole ?? (() => -2)) as (fd: number, offset: number) => number;

/**
 * The [start, end) byte ranges of the open file `fd` (of `size` bytes) that
 * hold data, ascending and disjoint; everything else is a hole. At most
 * `maxRuns` ranges: past that the rest of the file counts as one range
 * (memory stays bounded on a file fragmented on purpose).
 */
export function dataSegments(fd: number, size: number, maxRuns = 1 << 20): [number, number][] {
  const out: [number, number][] = [];
  let at = 0;
  while (at < size) {
    const start = seekData(fd, at);
    if (start === -2) return size > at ? [...out, [at, size]] : out; // no SEEK_DATA here: all data
    if (start < 0 || start >= size) break;
    let end = seekHole(fd, start);
    if (end < 0 || end > size) end = size;
    if (end <= start) break; // the file changed under us; what is known stands
    if (out.length === maxRuns - 1) end = size;
    out.push([start, end]);
    at = end;
  }
  return out;
}
