// Raw emitter: walks the extent map once, front to back, gathering adjacent
// ranges into large writes. To a file, gaps stay holes (never written); to a
// pipe, gaps are written as zeros. File bytes are read (and lazy extents'
// bytes produced) here and only here.
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { DiskwrightError } from '../errors.ts';
import { type Image, isFileExtent, isLazyExtent } from '../image/extent-map.ts';
import { writeFileAtomically } from './atomic-file.ts';
import { describeSystemError } from '../util/sys-error.ts';
import { progressContext, startPhase, throwIfAborted, type PhaseCounter, type ProgressContext, type ProgressPhase } from '../util/progress.ts';
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

/** The data bytes of an image: what the emitter copies, and what its progress counts. */
export function dataBytes(image: Image): number {
  let n = 0;
  for (const e of image.extents) n += e.length;
  return n;
}

/** One stage kept between calls: a closure hashes thousands of small NARs, each an emit. */
let spareStage: Buffer | null = null;

/** `phase` names the work for progress; null: a part of other work that counts it itself (NAR hashing). */
export function emit(image: Image, sink: Sink, phase: ProgressPhase | null = 'writing'): void {
  const stage = spareStage ?? Buffer.alloc(STAGE);
  spareStage = null;
  try {
    for (const w of staged(image, stage, phase, progressContext(), sink.copy?.bind(sink))) sink.write(stage, w.len, w.at);
    sink.finish(image.size);
  } finally {
    spareStage = stage;
  }
}

/** Stage of the async emitter: about a millisecond of copying between turns of the event loop. */
const ASYNC_STAGE = 1 << 20;
/** Source files the async emitter opens per turn: a stage of small files is hundreds of open, read, close calls. */
const ASYNC_OPENS = 64;

/**
 * The emitter for a process that must stay responsive (a server): the same
 * walk and bytes, in 1 MiB stages, yielding to the event loop after each and
 * stopping with an AbortError when `ctx.signal` fires.
 */
export async function emitAsync(image: Image, sink: Sink, phase: ProgressPhase = 'writing', ctx = progressContext()): Promise<void> {
  for await (const _ of emitSteps(image, sink, phase, ctx)) {
    // Each step is one stage written.
  }
}

/**
 * The async emitter as steps: after each stage has gone to `sink`, yields
 * (on a later turn of the event loop) so the caller can pass on what the sink
 * made; the sink's finish is the last step.
 */
export async function* emitSteps(image: Image, sink: Sink, phase: ProgressPhase, ctx: ProgressContext | undefined): AsyncGenerator<void> {
  const stage = Buffer.alloc(ASYNC_STAGE);
  for (const w of staged(image, stage, phase, ctx, undefined, ASYNC_OPENS)) {
    sink.write(stage, w.len, w.at);
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(ctx?.signal);
    yield;
  }
  sink.finish(image.size);
  yield;
}

/**
 * The walk: fills `stage` with the extents' bytes, gathering adjacent ranges,
 * and yields each run to be written (at image offset `at`, `len` bytes of
 * stage) before the stage is reused. A run ends early once `maxOpens`
 * source files were opened for it (the async emitter's turn stays short).
 */
function* staged(image: Image, stage: Buffer, phase: ProgressPhase | null, ctx: ProgressContext | undefined, copy?: Sink['copy'], maxOpens = Infinity): Generator<{ len: number; at: number }> {
  const size = stage.length;
  const progress: PhaseCounter = phase ? startPhase(phase, dataBytes(image), undefined, ctx) : { add() {}, end() {} };
  const signal = ctx?.signal;
  let base = 0; // image offset of stage[0]
  let fill = 0;
  // Inline rather than helper generators: an image can have millions of extents.
  let fd = -1;
  let fdPath: Buffer | null = null;
  let opens = 0; // source files opened for the current run
  try {
    for (const e of image.extents) {
      const end = base + fill;
      if (e.offset !== end) {
        const gap = e.offset - end;
        if (fill && gap > 0 && gap <= SMALL_GAP && fill + gap <= size) {
          stage.fill(0, fill, fill + gap);
          fill += gap;
        } else {
          if (fill) {
            throwIfAborted(signal);
            yield { len: fill, at: base };
            opens = 0;
          }
          base = e.offset;
          fill = 0;
        }
      }
      let done = 0;
      if (isFileExtent(e) && fdPath !== e.path) {
        if (++opens > maxOpens && fill) {
          // The stage ends at this extent's offset (gaps before it were filled).
          throwIfAborted(signal);
          yield { len: fill, at: base };
          base += fill;
          fill = 0;
          opens = 1;
        }
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
      if (copy && isFileExtent(e) && e.length >= COPY_MIN) {
        if (fill) {
          throwIfAborted(signal);
          yield { len: fill, at: base };
          opens = 0;
        }
        fill = 0;
        for (let k = 1; done < e.length && k > 0; done += k) {
          k = copy(fd, e.fileOffset + done, e.length - done, e.offset + done);
          progress.add(k);
        }
        base = e.offset + done;
      }
      while (done < e.length) {
        if (fill === size) {
          throwIfAborted(signal);
          yield { len: fill, at: base };
          base += fill;
          fill = 0;
          opens = 0;
        }
        let k = Math.min(e.length - done, size - fill);
        if (isLazyExtent(e)) e.fill(stage, fill, e.from + done, k);
        else if (!isFileExtent(e)) e.buffer.copy(stage, fill, done, done + k);
        else {
          try {
            k = fs.readSync(fd, stage, fill, k, e.fileOffset + done);
          } catch (err) {
            // Told apart here: every other system error while writing is the output's.
            unreadable(e.path, err);
          }
          if (k <= 0) changed(e.path);
        }
        fill += k;
        done += k;
        progress.add(k);
      }
    }
    if (fill) yield { len: fill, at: base };
    progress.end();
  } finally {
    if (fd >= 0) fs.closeSync(fd);
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

/**
 * Positional writes on libuv's thread pool, for the async emitter: a write
 * the kernel holds up (dirty-page throttling) must not hold up the event
 * loop. The sink keeps copies of what it is given; `drain` writes them.
 */
export function deferredFileSink(fd: number): { sink: Sink; drain(): Promise<void> } {
  const pending: { buf: Buffer; len: number; at: number }[] = [];
  // Copies written are reused: a fresh MiB per turn would be garbage to collect.
  const spare: Buffer[] = [];
  let size = -1;
  const write = promisify(fs.write);
  return {
    sink: {
      write(buf, len, at) {
        let copy = spare.pop();
        if (!copy || copy.length < len) copy = Buffer.allocUnsafeSlow(len);
        buf.copy(copy, 0, 0, len);
        pending.push({ buf: copy, len, at });
      },
      finish(n) {
        size = n;
      },
    },
    async drain() {
      for (const { buf, len, at } of pending.splice(0)) {
        let done = 0;
        while (done < len) done += (await write(fd, buf, done, len - done, at + done)).bytesWritten;
        if (spare.length < 4) spare.push(buf);
      }
      if (size >= 0) await promisify(fs.ftruncate)(fd, size);
    },
  };
}

const ZEROS = Buffer.alloc(1 << 20);

/** Sequential writes to a pipe or terminal; gaps become zeros. */
export function streamSink(fd: number): Sink {
  return sequentialSink((buf, len) => {
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
  });
}

/** The bytes in order, gaps as zeros, handed to `put` (which must not keep `buf`: it is reused). */
export function sequentialSink(put: (buf: Buffer, len: number) => void): Sink {
  let pos = 0;
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
export function writeImageFile(image: Image, out: string, sinkFor: (fd: number) => Sink = fileSink, phase: ProgressPhase = 'writing'): WriteResult {
  const done = writeFileAtomically(out, 'image', (fd) => emit(image, sinkFor(fd), phase));
  return { apparentBytes: done.size, allocatedBytes: done.blocks * 512 };
}
