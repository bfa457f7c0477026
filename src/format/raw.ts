// Raw emitter: walks the extent map once, front to back, gathering adjacent
// ranges into large writes. To a file, gaps stay holes (never written); to a
// pipe, gaps are written as zeros. File bytes are read (and lazy extents'
// bytes produced) here and only here.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { type Image, isFileExtent, isLazyExtent } from '../image/extent-map.ts';
import { writeFileAtomically } from './atomic-file.ts';
import { describeSystemError } from '../util/sys-error.ts';
import { copyFileRange } from '../util/copy-range.ts';

const STAGE = 8 << 20;
/** One copy_file_range call at most: bounded time between checks. */
const COPY_CHUNK = 64 << 20;
/**
 * Gaps up to this are written as zeros rather than splitting a write: a
 * file's tail short of its block. Whole free blocks stay holes, or a big
 * ext4's 15 all-free block bitmaps after each flex group's first one would
 * allocate 60 KiB each (512 MiB at 16 TiB).
 */
const SMALL_GAP = 4095;
/** File extents this long go through sink.copy (in the kernel) when the sink has it. */
const COPY_MIN = 1 << 20;

export interface Sink {
  /** Writes `buf[0, len)` at image offset `at` (always increasing). */
  write(buf: Buffer, len: number, at: number): void;
  /** Called once at the end with the image size. */
  finish(size: number): void;
  /**
   * Copies up to `length` bytes of the file `fd` from `fileOffset` to image
   * offset `at` without passing them through memory; returns the bytes
   * copied, 0 when it cannot (the emitter then reads and writes them).
   */
  copy?(fd: number, fileOffset: number, length: number, at: number): number;
}

/** One stage kept between calls: a closure hashes thousands of small NARs, each an emit. */
let spareStage: Buffer | null = null;

export function emit(image: Image, sink: Sink): void {
  const stage = spareStage ?? Buffer.alloc(STAGE);
  spareStage = null;
  let base = 0; // image offset of stage[0]
  let fill = 0;
  const flush = () => {
    if (fill) sink.write(stage, fill, base);
    base += fill;
    fill = 0;
  };
  const moveTo = (offset: number) => {
    const end = base + fill;
    if (offset === end) return;
    if (fill && offset > end && offset - end <= SMALL_GAP && fill + (offset - end) <= STAGE) {
      stage.fill(0, fill, fill + (offset - end));
      fill += offset - end;
      return;
    }
    flush();
    base = offset;
  };
  let fd = -1;
  let fdPath: Buffer | null = null;
  try {
    for (const e of image.extents) {
      moveTo(e.offset);
      if (isLazyExtent(e)) {
        let done = 0;
        while (done < e.length) {
          if (fill === STAGE) flush();
          const k = Math.min(e.length - done, STAGE - fill);
          e.fill(stage, fill, e.from + done, k);
          fill += k;
          done += k;
        }
        continue;
      }
      if (!isFileExtent(e)) {
        let done = 0;
        while (done < e.length) {
          if (fill === STAGE) flush();
          const k = Math.min(e.length - done, STAGE - fill);
          e.buffer.copy(stage, fill, done, done + k);
          fill += k;
          done += k;
        }
        continue;
      }
      if (fdPath !== e.path) {
        if (fd >= 0) fs.closeSync(fd);
        fd = -1;
        fdPath = e.path;
        try {
          fd = fs.openSync(e.path, 'r');
        } catch (err) {
          unreadable(e.path, err);
        }
        if (fs.fstatSync(fd).size !== e.expectSize) changed(e.path);
      }
      let done = 0;
      if (sink.copy && e.length >= COPY_MIN) {
        flush();
        for (let k = 1; done < e.length && k > 0; done += k) k = sink.copy(fd, e.fileOffset + done, e.length - done, e.offset + done);
        base = e.offset + done;
      }
      while (done < e.length) {
        if (fill === STAGE) flush();
        const want = Math.min(e.length - done, STAGE - fill);
        let n: number;
        try {
          n = fs.readSync(fd, stage, fill, want, e.fileOffset + done);
        } catch (err) {
          // Told apart here: every other system error while writing is the output's.
          unreadable(e.path, err);
        }
        if (n <= 0) changed(e.path);
        fill += n;
        done += n;
      }
    }
    flush();
    sink.finish(image.size);
  } finally {
    if (fd >= 0) fs.closeSync(fd);
    spareStage = stage;
  }
}

function unreadable(p: Buffer, err: unknown): never {
  throw new DiskwrightError('SOURCE_UNREADABLE', describeSystemError('cannot read', p.toString(), err), { path: p.toString() });
}

function changed(p: Buffer): never {
  throw new DiskwrightError('SOURCE_CHANGED', `${p.toString()} changed size while being copied; build from a tree nobody is writing to`, { path: p.toString() });
}

/**
 * Positional writes; gaps are never written, so they stay holes. Long file
 * runs are copied by the kernel (copy_file_range) until it says it cannot.
 */
export function fileSink(fd: number): Sink {
  let canCopy = true;
  return {
    write(buf, len, at) {
      let done = 0;
      while (done < len) done += fs.writeSync(fd, buf, done, len - done, at + done);
    },
    finish(size) {
      fs.ftruncateSync(fd, size);
    },
    copy(from, fileOffset, length, at) {
      if (!canCopy) return 0;
      const n = copyFileRange(from, fileOffset, fd, at, Math.min(length, COPY_CHUNK));
      if (n < 0) canCopy = false;
      return Math.max(n, 0);
    },
  };
}

const ZEROS = Buffer.alloc(1 << 20);

/** Sequential writes to a pipe or terminal; gaps become zeros. */
export function streamSink(fd: number): Sink {
  let pos = 0;
  const put = (buf: Buffer, len: number) => {
    let done = 0;
    while (done < len) {
      try {
        done += fs.writeSync(fd, buf, done, len - done);
      } catch (err) {
        // A non-blocking pipe that is full: wait for the reader.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
  };
  const zeros = (n: number) => {
    while (n > 0) {
      const k = Math.min(n, ZEROS.length);
      put(ZEROS, k);
      n -= k;
    }
  };
  return {
    write(buf, len, at) {
      zeros(at - pos);
      put(buf, len);
      pos = at + len;
    },
    finish(size) {
      zeros(size - pos);
      pos = size;
    },
  };
}

export interface WriteResult {
  apparentBytes: number;
  allocatedBytes: number;
}

/**
 * Writes the image to `out`, renamed into place only when complete: a failed
 * build leaves no file at `out` (format/atomic-file.ts). `sinkFor` turns the
 * file into a sink: positional writes with holes by default, or a compressing stream.
 */
export function writeImageFile(image: Image, out: string, sinkFor: (fd: number) => Sink = fileSink): WriteResult {
  const done = writeFileAtomically(out, 'image', (fd) => emit(image, sinkFor(fd)));
  return { apparentBytes: done.size, allocatedBytes: done.blocks * 512 };
}
