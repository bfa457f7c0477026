// Random-access byte sources: what every reader in src/read/ reads from. A raw
// file, a decoded container (openImage in src/format/ gives the same shape) or
// a partition inside either: readers never learn which.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { describeSystemError, errnoOf } from '../util/sys-error.ts';
import { type Image, type ImageExtent, isFileExtent, isLazyExtent } from '../image/extent-map.ts';

export interface ByteSource {
  /** Bytes the source holds; reads must stay inside [0, size). */
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws IMAGE_TRUNCATED past the end. */
  read(offset: number, length: number): Buffer;
}

/** A source that owns an open file. */
export interface FileSource extends ByteSource {
  readonly path: string;
  close(): void;
}

function pastEnd(what: string, offset: number, length: number, size: number): never {
  throw new DiskwrightError(
    'IMAGE_TRUNCATED',
    `${what}: bytes ${offset}..${offset + length} lie past the end (${size} bytes); is the image truncated?`,
    { offset, length, size },
  );
}

/** Throws IMAGE_TRUNCATED unless [offset, offset+length) lies inside the source. */
export function checkRange(src: ByteSource, offset: number, length: number, what = 'image'): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    pastEnd(what, offset, length, src.size);
  }
}

/** `src.read` with a named range check, so the error says which structure lies past the end. */
export function readAt(src: ByteSource, offset: number, length: number, what: string): Buffer {
  checkRange(src, offset, length, what);
  return src.read(offset, length);
}

/** A raw image file (or block device) opened read-only. */
export function fileSource(path: string): FileSource {
  let fd: number;
  let size: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new DiskwrightError('IMAGE_UNREADABLE', describeSystemError('cannot open', path, e), { path, errno: errnoOf(e) });
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new DiskwrightError('IMAGE_UNREADABLE', `${path} is a directory, not an image`, { path });
    size = st.size;
    if (st.isBlockDevice()) {
      // fstat reports 0 for block devices: seek-free way is to read the sysfs size; fall back to probing.
      size = blockDeviceSize(fd);
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let open = true;
  return {
    path,
    size,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) pastEnd(path, offset, length, size);
      const b = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, b, done, length - done, offset + done);
        if (n === 0) pastEnd(path, offset + done, length - done, offset + done);
        done += n;
      }
      return b;
    },
    close() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

/** Size of a block device by binary search on readable offsets (no ioctl in Node). */
function blockDeviceSize(fd: number): number {
  const one = Buffer.alloc(1);
  const readable = (at: number) => {
    try {
      return fs.readSync(fd, one, 0, 1, at) === 1;
    } catch {
      return false;
    }
  };
  let lo = 0;
  let hi = 512;
  while (readable(hi - 1)) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (readable(mid - 1)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** A source over bytes in memory. */
export function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > buf.length) pastEnd('buffer', offset, length, buf.length);
      return Buffer.from(buf.subarray(offset, offset + length));
    },
  };
}

/**
 * The bytes [offset, offset+length) of `parent` as a source of their own: a
 * partition. A range reaching past the parent's end is cut at it (reads past
 * that point fail with IMAGE_TRUNCATED), so a truncated disk still opens and
 * the filesystem reader reports what is missing.
 */
export function subSource(parent: ByteSource, offset: number, length: number, what = 'partition'): ByteSource {
  if (offset < 0 || length < 0) throw new RangeError(`subSource: negative range ${offset}+${length}`);
  const size = Math.max(0, Math.min(length, parent.size - offset));
  return {
    size,
    read(at, n) {
      if (at < 0 || n < 0 || at + n > size) pastEnd(what, at, n, size);
      return parent.read(offset + at, n);
    },
  };
}

/**
 * A planned Image (size + extent map) read in place, before or instead of
 * writing it: buffers, source-file ranges and on-demand producers alike;
 * bytes outside every extent read as zeros.
 */
export function imageSource(image: Image): ByteSource {
  const ext = image.extents;
  const fillFrom = (e: ImageExtent, dst: Buffer, dstOff: number, rel: number, n: number) => {
    if (isLazyExtent(e)) e.fill(dst, dstOff, e.from + rel, n);
    else if (isFileExtent(e)) {
      const fd = fs.openSync(e.path, 'r');
      try {
        let done = 0;
        while (done < n) {
          const k = fs.readSync(fd, dst, dstOff + done, n - done, e.fileOffset + rel + done);
          if (k === 0) throw new DiskwrightError('SOURCE_CHANGED', `${e.path.toString()}: shorter than planned`, { path: e.path.toString() });
          done += k;
        }
      } finally {
        fs.closeSync(fd);
      }
    } else e.buffer.copy(dst, dstOff, rel, rel + n);
  };
  return {
    size: image.size,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > image.size) pastEnd('image', offset, length, image.size);
      const out = Buffer.alloc(length);
      // First extent ending after `offset` (extents are sorted and disjoint).
      let lo = 0;
      let hi = ext.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ext[mid].offset + ext[mid].length <= offset) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < ext.length && ext[i].offset < offset + length; i++) {
        const e = ext[i];
        const s = Math.max(offset, e.offset);
        const t = Math.min(offset + length, e.offset + e.length);
        if (t > s) fillFrom(e, out, s - offset, s - e.offset, t - s);
      }
      return out;
    },
  };
}

/**
 * Caches aligned blocks of a source: metadata is read in small pieces, often
 * the same ones again (inode table blocks, FAT sectors, directory blocks).
 * Entries beyond `capacity` are dropped oldest first.
 */
export class BlockCache {
  private readonly map = new Map<number, Buffer>();
  private readonly src: ByteSource;
  readonly blockSize: number;
  private readonly capacity: number;
  private readonly what: string;
  constructor(src: ByteSource, blockSize: number, capacity = 4096, what = 'image') {
    this.src = src;
    this.blockSize = blockSize;
    this.capacity = capacity;
    this.what = what;
  }

  /** Block `n` (the last block of the source may be short: it is zero-padded). */
  block(n: number): Buffer {
    const hit = this.map.get(n);
    if (hit) {
      this.map.delete(n);
      this.map.set(n, hit);
      return hit;
    }
    const at = n * this.blockSize;
    if (n < 0 || at >= this.src.size) pastEnd(this.what, at, this.blockSize, this.src.size);
    let b = this.src.read(at, Math.min(this.blockSize, this.src.size - at));
    if (b.length < this.blockSize) b = Buffer.concat([b, Buffer.alloc(this.blockSize - b.length)]);
    this.map.set(n, b);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as number);
    return b;
  }

  /** `length` bytes at byte `offset`, through the cache. */
  bytes(offset: number, length: number): Buffer {
    checkRange(this.src, offset, length, this.what);
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((offset + length - 1) / this.blockSize);
    if (length === 0) return Buffer.alloc(0);
    if (first === last) {
      const b = this.block(first);
      const o = offset - first * this.blockSize;
      return b.subarray(o, o + length);
    }
    const parts: Buffer[] = [];
    for (let n = first; n <= last; n++) parts.push(this.block(n));
    const all = Buffer.concat(parts);
    const o = offset - first * this.blockSize;
    return all.subarray(o, o + length);
  }
}
