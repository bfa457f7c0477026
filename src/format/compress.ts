// Compression is the last transform: a sink that takes the image's bytes in
// order (holes as zeros) and passes compressed bytes on to a stream sink.
// zstd: independent frames of 32 MiB, each compressed by libzstd with its own
// worker threads (Node's zlib runs them; nbWorkers = the machine's cores), so
// the sink stays synchronous like the emitter and output is a standard
// multi-frame .zst that `zstd -d` reads. Frames make the output independent
// of thread count and timing: same input, same bytes.
// xz: liblzma's multi-threaded encoder (through lzma-native: Node has no xz),
// driven synchronously. It cuts the input into blocks of a size fixed by the
// preset (3 x the dictionary, as `xz -T` does), so the bytes do not depend on
// the number of threads either.
// gzip (initramfs archives): one gzip member whose deflate stream is the
// chunks deflated apart, each ended by a sync flush, then one final empty
// block: a valid stream (back-references never cross chunks), made
// synchronously by node:zlib, with a header of our own (no name, mtime 0,
// OS 3) so zlib's build and the host's OS never reach the bytes.
import * as os from 'node:os';
import * as zlib from 'node:zlib';
import { Worker } from 'node:worker_threads';
import { siblingModule } from '../util/sibling-module.ts';
import { createRequire } from 'node:module';
import type lzmaNative from 'lzma-native';
import type { Sink } from './raw.ts';
import { DICTIONARY, DeflatePool, outputStride } from './deflate-pool.ts';

const FRAME = 32 << 20;

export interface ZstdOptions {
  level?: number;
  /** libzstd worker threads; default all cores. Does not change the output. */
  threads?: number;
}

/**
 * A compressing sink: takes the image's bytes in order, holes as zeros.
 * `take` gets each full chunk in a buffer reused after it returns, or, with
 * `fresh` (which supplies the buffers), a buffer that is take's to keep.
 */
export function orderedSink(chunk: number, take: (data: Buffer) => void, end: () => void, fresh?: () => Buffer): Sink {
  let buf = fresh ? fresh() : Buffer.alloc(chunk);
  let fill = 0;
  let pos = 0;
  const put = (src: Buffer | null, len: number) => {
    let done = 0;
    while (done < len) {
      const k = Math.min(len - done, chunk - fill);
      if (src) src.copy(buf, fill, done, done + k);
      else buf.fill(0, fill, fill + k);
      fill += k;
      done += k;
      if (fill === chunk) {
        take(buf);
        if (fresh) buf = fresh();
        fill = 0;
      }
    }
  };
  return {
    write(data, len, at) {
      put(null, at - pos);
      put(data, len);
      pos = at + len;
    },
    finish(size) {
      put(null, size - pos);
      pos = size;
      if (fill) take(buf.subarray(0, fill));
      end();
    },
  };
}

function zstdParams(opts: ZstdOptions) {
  return {
    [zlib.constants.ZSTD_c_compressionLevel]: opts.level ?? 3,
    [zlib.constants.ZSTD_c_nbWorkers]: opts.threads ?? os.availableParallelism(),
    [zlib.constants.ZSTD_c_checksumFlag]: 1,
  };
}

export function zstdSink(out: Sink, opts: ZstdOptions = {}): Sink {
  const params = zstdParams(opts);
  let outPos = 0;
  return orderedSink(FRAME, (frame) => {
    const c = zlib.zstdCompressSync(frame, { params });
    out.write(c, c.length, outPos);
    outPos += c.length;
  }, () => out.finish(outPos));
}

/** The zlib binding under a Node zstd stream, driven synchronously as Node's own zstdCompressSync drives it. */
interface ZstdHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  onerror?: (message: string, errno: number) => void;
}

const ZSTD_OUT = 1 << 20;
const ZSTD_JOB = 4 << 20;
const ZSTD_ZEROS = Buffer.alloc(1 << 16);

/**
 * One zstd frame of everything written, compressed by libzstd's worker
 * threads while the caller goes on reading: libzstd takes input without
 * waiting for the workers (ZSTD_e_continue) until its job queue is full. Its
 * multi-threaded format cuts jobs by size alone, so any number of workers
 * (at least one) gives the same bytes; `zstd -T0` reads them.
 */
export function zstdStreamSink(out: Sink, opts: ZstdOptions = {}): Sink {
  const C = zlib.constants;
  // A fresh context per frame: Node's reset() also resets the parameters (nbWorkers to 0, which writes other bytes).
  const stream = zlib.createZstdCompress({
    params: {
      ...zstdParams(opts),
      [C.ZSTD_c_nbWorkers]: Math.max(1, opts.threads ?? os.availableParallelism()),
      // libzstd's default at level 3 is 8 MiB jobs: 4 MiB keeps a quarter of the process's peak memory (a 2 GB closure's build stays under 300 MB) for 0.6 % more bytes.
      [C.ZSTD_c_jobSize]: ZSTD_JOB,
    },
  }) as unknown as { _handle?: ZstdHandle; _writeState?: Uint32Array; close(): void };
  const h = stream._handle;
  const state = stream._writeState;
  if (!h || typeof h.writeSync !== 'function' || !(state instanceof Uint32Array)) throw new Error('internal: this Node has no synchronous zstd stream handle');
  let error: string | null = null;
  h.onerror = (message) => {
    error = message;
  };
  const buf = Buffer.allocUnsafe(ZSTD_OUT);
  let outPos = 0;
  let pos = 0;
  const step = (flush: number, input: Buffer, len: number) => {
    let off = 0;
    for (;;) {
      h.writeSync(flush, input, off, len - off, buf, 0, ZSTD_OUT);
      if (error !== null) throw new Error(`zstd compression failed: ${error}`);
      const produced = ZSTD_OUT - state[0];
      if (produced) {
        out.write(buf, produced, outPos);
        outPos += produced;
      }
      off = len - state[1];
      // Done when all input is taken and the output buffer was not filled (a full one may hold more).
      if (off === len && state[0] !== 0) return;
    }
  };
  const zeros = (n: number) => {
    for (; n > 0; n -= ZSTD_ZEROS.length) step(C.ZSTD_e_continue, ZSTD_ZEROS, Math.min(n, ZSTD_ZEROS.length));
  };
  return {
    write(data, len, at) {
      zeros(at - pos);
      step(C.ZSTD_e_continue, data, len);
      pos = at + len;
    },
    finish(size) {
      zeros(size - pos);
      pos = size;
      step(C.ZSTD_e_end, ZSTD_ZEROS, 0);
      stream.close();
      out.finish(outPos);
    },
  };
}

/** A sink whose work is finished by `drain`, which the async emitter awaits between stages. */
export interface DeferredSink {
  sink: Sink;
  drain(): Promise<void>;
  /** Releases what the sink holds (a worker thread); also after a failure. */
  close(): void;
}

/**
 * zstdSink for the async emitter: the same frames and bytes, each frame
 * compressed by zstdSink's call in a worker thread (zstd-compress-worker.ts)
 * while the event loop runs.
 */
export function deferredZstdSink(out: Sink, opts: ZstdOptions = {}): DeferredSink {
  const frames: Buffer[] = [];
  let ended = false;
  let outPos = 0;
  let worker: Worker | undefined;
  // Frames travel to the worker and back (transferred, not copied) and are reused.
  const spare: ArrayBuffer[] = [];
  const fresh = () => Buffer.from(spare.pop() ?? new ArrayBuffer(FRAME));
  const sink = orderedSink(FRAME, (frame) => frames.push(frame), () => { ended = true; }, fresh);
  const compress = (frame: Buffer) => new Promise<Buffer>((resolve, reject) => {
    if (!worker) {
      worker = new Worker(siblingModule(import.meta.url, 'zstd-compress-worker'), { workerData: { zstdParams: zstdParams(opts) } });
      worker.unref();
    }
    const w = worker;
    const done = (m: { out?: Uint8Array; frame: ArrayBuffer; error?: string }) => {
      w.off('error', reject);
      spare.push(m.frame);
      if (m.out) resolve(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
      else reject(new Error(`zstd compression failed: ${m.error}`));
    };
    w.once('message', done);
    w.once('error', reject);
    // Frames are whole ArrayBuffers of their own (fresh): sent, not copied.
    w.postMessage({ id: 0, frame: frame.buffer, length: frame.length }, [frame.buffer as ArrayBuffer]);
  });
  return {
    sink,
    async drain() {
      while (frames.length) {
        const c = await compress(frames.shift()!);
        out.write(c, c.length, outPos);
        outPos += c.length;
      }
      if (ended) {
        ended = false;
        out.finish(outPos);
      }
    },
    close() {
      void worker?.terminate();
      worker = undefined;
    },
  };
}

export interface XzOptions {
  /** xz preset, 0-9 (default 6, as the xz tool). */
  level?: number;
  /** liblzma threads; default all cores. Does not change the output. */
  threads?: number;
  /** Integrity check; default crc64 as the xz tool. The kernel's initramfs decoder wants crc32. */
  check?: 'crc32' | 'crc64';
}

/**
 * lzma-native (and the stream library it pulls in) is loaded by the first xz
 * output: every other run would pay for loading it at start-up.
 */
let lzmaLoaded: typeof lzmaNative | undefined;
const loadLzma = (): typeof lzmaNative => (lzmaLoaded ??= createRequire(import.meta.url)('lzma-native') as typeof lzmaNative);

/** Input handed to liblzma per call; its output arrives synchronously. */
const XZ_CHUNK = 4 << 20;

export function xzSink(out: Sink, opts: XzOptions = {}): Sink {
  const lzma = loadLzma();
  const stream = new lzma.Stream();
  // Always the multi-threaded encoder, even on one core: it splits blocks by
  // size alone, so one thread and many write the same bytes.
  stream.mtEncoder_({ preset: opts.level ?? 6, filters: null, check: opts.check === 'crc32' ? lzma.CHECK_CRC32 : lzma.CHECK_CRC64, threads: opts.threads ?? os.availableParallelism() });
  let outPos = 0;
  let failed: Error | null = null;
  stream.bufferHandler = (buf, _chunks, err) => {
    if (err) failed = err;
    else if (buf) {
      out.write(buf, buf.length, outPos);
      outPos += buf.length;
    }
  };
  const code = (chunk: Buffer | null) => {
    stream.code(chunk, false);
    if (failed) throw new Error(`xz compression failed: ${(failed as Error).message}`);
  };
  // lzma-native copies each chunk in before coding it, so the staging buffer can be reused.
  return orderedSink(XZ_CHUNK, code, () => {
    code(null);
    out.finish(outPos);
  });
}

export interface GzipOptions {
  /** deflate level 1-9; default 9 (makeInitrd's gzip -9n). */
  level?: number;
}

const GZIP_CHUNK = 4 << 20;

export function gzipSink(out: Sink, opts: GzipOptions = {}): Sink {
  const level = opts.level ?? 9;
  const header = gzipHeader(level);
  out.write(header, header.length, 0);
  let outPos = header.length;
  let crc = 0;
  let size = 0;
  const put = (b: Buffer) => {
    out.write(b, b.length, outPos);
    outPos += b.length;
  };
  return orderedSink(GZIP_CHUNK, (chunk) => {
    crc = zlib.crc32(chunk, crc);
    size += chunk.length;
    put(zlib.deflateRawSync(chunk, { level, finishFlush: zlib.constants.Z_SYNC_FLUSH }));
  }, () => {
    put(gzipEnd(level, crc, size));
    out.finish(outPos);
  });
}

/** A gzip member's end: the final deflate block (empty, BFINAL set), then crc32 and size mod 2^32. */
function gzipEnd(level: number, crc: number, size: number): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(size % 0x100000000, 4);
  return Buffer.concat([zlib.deflateRawSync(Buffer.alloc(0), { level }), trailer]);
}

/** gzip's header as `gzip -n` writes it on Linux: no name, mtime 0, OS 3 (Unix); XFL 2 at level 9, 4 at level 1. */
function gzipHeader(level: number): Buffer {
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level === 9 ? 2 : level === 1 ? 4 : 0, 3]);
}

/** A stream block's input: fixed, so the bytes do not depend on how many threads deflate them. */
const GZIP_BLOCK = 256 << 10;
const GZIP_BATCH_BLOCKS = 8;

/**
 * The pool a finished gzipBlocksSink leaves, all its slots idle, for the next
 * one: an image has up to a hundred layers, and starting workers for each
 * costs more CPU than deflating a small layer. Its workers are unref'd, so
 * they never keep the process alive.
 */
let spare: { pool: DeflatePool; key: string } | undefined;

function blockPool(level: number, threads: number, slots: number): DeflatePool {
  const got = spare;
  spare = undefined;
  if (got?.key === `${level} ${threads}`) return got.pool;
  got?.pool.close();
  return new DeflatePool({ chunkSize: GZIP_BLOCK, chunksPerBatch: GZIP_BATCH_BLOCKS, slots, threads, level, windowBits: 15, memLevel: 8, maxOutput: GZIP_BLOCK - 1, streamBlocks: true });
}

export interface GzipBlocksOptions extends GzipOptions {
  /** Deflate worker threads; default all cores. Does not change the output. */
  threads?: number;
}

/**
 * One gzip member deflated on every core, as pigz does: the input cut into
 * fixed blocks of 256 KiB, each deflated on a worker with the 32 KiB before it
 * as dictionary and ended by a sync flush, so the blocks join into one
 * deflate stream with back-references across them; the crc32 is taken here,
 * in order. The block size alone decides the bytes, not the thread count.
 */
export function gzipBlocksSink(out: Sink, opts: GzipBlocksOptions = {}): Sink {
  const level = opts.level ?? 9;
  const threads = Math.max(1, opts.threads ?? os.availableParallelism());
  const slots = threads + 2;
  const pool = blockPool(level, threads, slots);
  const batch = GZIP_BLOCK * GZIP_BATCH_BLOCKS;
  const stride = outputStride(pool.options);
  const header = gzipHeader(level);
  out.write(header, header.length, 0);
  let outPos = header.length;
  let crc = 0;
  let size = 0;
  // Slots are filled and drained in ring order: `next` fills, `inFlight` are submitted and not yet written.
  let next = 0;
  let fill = 0;
  let inFlight = 0;
  let prevTail: Buffer = Buffer.alloc(0);
  const counts = new Array<number>(slots).fill(0);
  const drain = (slot: number) => {
    pool.wait(slot);
    const o = pool.output(slot);
    for (let i = 0; i < counts[slot]; i++) {
      const n = pool.result(slot, i);
      out.write(o.subarray(i * stride), n, outPos);
      outPos += n;
    }
    inFlight--;
  };
  const submit = () => {
    const input = pool.input(next);
    crc = zlib.crc32(input.subarray(0, fill), crc);
    size += fill;
    const count = Math.ceil(fill / GZIP_BLOCK);
    counts[next] = count;
    pool.submit(next, count, fill - (count - 1) * GZIP_BLOCK);
    inFlight++;
    prevTail = input.subarray(fill - Math.min(fill, DICTIONARY), fill);
    next = (next + 1) % slots;
    fill = 0;
    // The slot to fill next is the oldest in flight when all are: write it out first.
    if (inFlight === slots) drain(next);
    pool.setDictionary(next, prevTail);
  };
  pool.setDictionary(0, prevTail);
  // Batches are staged apart and copied into a slot: the dictionary of the next is the tail of the one before.
  return orderedSink(batch, (chunk) => {
    chunk.copy(pool.input(next));
    fill = chunk.length;
    submit();
  }, () => {
    for (let s = (next - inFlight + slots) % slots; inFlight > 0; s = (s + 1) % slots) drain(s);
    spare = { pool, key: `${level} ${threads}` };
    const end = gzipEnd(level, crc, size);
    out.write(end, end.length, outPos);
    out.finish(outPos + end.length);
  });
}

/** A compressing sink for a method; 'none' is the sink itself. */
export function compressSink(method: 'none' | 'gzip' | 'zstd' | 'xz' | undefined, out: Sink, opts: { level?: number; xzCheck?: 'crc32' | 'crc64' } = {}): Sink {
  if (method === 'zstd') return zstdSink(out, { level: opts.level });
  if (method === 'xz') return xzSink(out, { level: opts.level, check: opts.xzCheck });
  if (method === 'gzip') return gzipSink(out, { level: opts.level });
  return out;
}
