// Random access to an image's bytes: read(offset, length) of any extent map,
// whatever backs its extents (buffers, source files, lazy producers); gaps
// read as zero. Used by the input decoders (src/format/input.ts) and by the
// readers that sit on them (inspect, ls, cat, extract, diff), and by anything
// that must look at a few bytes of a planned image without emitting it.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { type Image, type ImageExtent, isFileExtent, isLazyExtent } from './extent-map.ts';
import { describeSystemError, errnoOf } from '../util/sys-error.ts';

/**
 * A file opened read-only; failing that, SOURCE_UNREADABLE in words naming it
 * (SOURCE_MISSING for a missing one when `missing`, as openImage reports it).
 */
export function openForReading(file: string | Buffer, missing = false): number {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    const name = file.toString();
    if (missing && errnoOf(err) === 'ENOENT') throw new DiskwrightError('SOURCE_MISSING', `input ${name} does not exist; check the path`, { path: name });
    throw new DiskwrightError('SOURCE_UNREADABLE', describeSystemError('cannot read', name, err), { path: name, errno: errnoOf(err) });
  }
}

/**
 * Open read-only descriptors by path, so repeated reads of the same file cost
 * one open. Whoever creates it closes it.
 */
export class FileHandles {
  private readonly fds = new Map<string, number>();

  fd(file: Buffer | string): number {
    const key = typeof file === 'string' ? file : file.toString('latin1');
    let fd = this.fds.get(key);
    if (fd === undefined) {
      fd = openForReading(file);
      this.fds.set(key, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

/** Reads up to `len` bytes at `pos` into dst[dstOff...]; returns how many (fewer only at the end of the file). */
export function preadFully(fd: number, dst: Buffer, dstOff: number, len: number, pos: number): number {
  let done = 0;
  while (done < len) {
    const n = fs.readSync(fd, dst, dstOff + done, len - done, pos + done);
    if (n <= 0) break;
    done += n;
  }
  return done;
}

/** Index of the first extent that ends after `offset` (extents sorted, non-overlapping). */
export function firstExtentAfter(extents: readonly ImageExtent[], offset: number): number {
  let lo = 0;
  let hi = extents.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const e = extents[mid];
    if (e.offset + e.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Random access to the bytes of `image`: a binary search in the extent map, then a copy, a pread or a fill. */
export class ImageReader {
  readonly image: Image;
  private readonly handles: FileHandles;
  private readonly ownHandles: boolean;

  constructor(image: Image, handles?: FileHandles) {
    this.image = image;
    this.handles = handles ?? new FileHandles();
    this.ownHandles = handles === undefined;
  }

  get size(): number {
    return this.image.size;
  }

  /** Bytes [offset, offset + length) of the image; reading past its end is a RangeError. */
  read(offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    this.readInto(out, 0, offset, length);
    return out;
  }

  /** Writes bytes [offset, offset + length) of the image to dst[dstOff...]. */
  readInto(dst: Buffer, dstOff: number, offset: number, length: number): void {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.image.size)) {
      throw new RangeError(`read of ${length} bytes at ${offset} is outside the ${this.image.size}-byte image`);
    }
    const extents = this.image.extents;
    const end = offset + length;
    let pos = offset;
    for (let i = firstExtentAfter(extents, offset); i < extents.length && pos < end; i++) {
      const e = extents[i];
      if (e.offset >= end) break;
      if (e.offset > pos) {
        dst.fill(0, dstOff + (pos - offset), dstOff + (e.offset - offset));
        pos = e.offset;
      }
      const rel = pos - e.offset;
      const n = Math.min(end, e.offset + e.length) - pos;
      const at = dstOff + (pos - offset);
      if (isFileExtent(e)) {
        const got = preadFully(this.handles.fd(e.path), dst, at, n, e.fileOffset + rel);
        if (got < n) {
          throw new DiskwrightError('SOURCE_CHANGED', `${e.path.toString()} is shorter than when it was opened (${e.expectSize} bytes); read it when nobody is writing to it`, { path: e.path.toString() });
        }
      } else if (isLazyExtent(e)) {
        e.fill(dst, at, e.from + rel, n);
      } else {
        e.buffer.copy(dst, at, rel, rel + n);
      }
      pos += n;
    }
    if (pos < end) dst.fill(0, dstOff + (pos - offset), dstOff + length);
  }

  close(): void {
    if (this.ownHandles) this.handles.close();
  }
}
