// Reading a .zst disk image (RFC 8878) without a raw intermediate and with
// bounded memory.
//
// Node's zlib offers zstd only as whole-buffer sync calls and as async
// streams, while our emitter is synchronous and pulls bytes in order. Two
// decoders, both with bounded memory:
// - a frame that states a content size of at most 64 MiB (ours: independent
//   32 MiB frames, see compress.ts) is decoded whole with zstdDecompressSync;
// - any other frame (a foreign `zstd disk.img` is one frame of the whole disk,
//   a piped one states no size) streams through a worker thread
//   (zstd-worker.ts) running Node's async zstd stream over the frame's bytes;
//   the main thread asks for the next 4 MiB and sleeps in Atomics.wait until
//   the worker has put them in shared memory. (zlib's own sync chunk
//   processing, _processChunk, closes its handle after one call, so it cannot
//   drive a stream.)
// The frame and block headers (RFC 8878 §3.1.1) are parsed here to find the
// frames: zstd frames carry no length, only their blocks do.
//
// Structure:
// - open: walk every frame's header and block headers (reads a few bytes per
//   block; a cut-short file is found here, before anything is written).
//   Frames that state their content size (ours: independent 32 MiB frames,
//   see compress.ts) give the virtual size and a frame index at once; if one
//   does not, the data pass below runs at open to learn the sizes.
// - data pass (pass 1): decode every frame in order, noting which 4 KiB
//   granules are not zero (RunFinder); the image's extents are LazyExtents
//   over those runs.
// - emitting (pass 2): the emitter asks for bytes in increasing order; a
//   cursor decodes forward, skipping whole frames that lie in holes and
//   starting a fresh decoder at the frame that holds the wanted offset.
// - random access: the same cursor. Within a frame, reading backwards
//   restarts the decoder at the frame's start, so a read costs at most one
//   frame's decoding (32 MiB for our files). A foreign single-frame .zst is one
//   frame: forward reads stay cheap, a backward read decodes from the start of
//   the file. Recompress such a file with diskwright for cheap random access.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { DiskwrightError } from '../errors.ts';
import { type Image, type LazyExtent } from '../image/extent-map.ts';
import { preadFully } from '../image/random-access.ts';
import { RunFinder } from '../image/runs.ts';
import { Worker } from 'node:worker_threads';
import { siblingModule } from '../util/sibling-module.ts';
import {
  ZSTD_CTRL, ZSTD_CTRL_WORDS, ZSTD_ERROR_BYTES, ZSTD_FLAG_END, ZSTD_FLAG_ERROR, ZSTD_WORKER_CHUNK, ZSTD_WORKER_GROUP, type ZstdWorkerData,
} from './zstd-worker.ts';

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Block_Maximum_Size: no block holds more. */
const BLOCK_MAX = 128 << 10;
/** Frames stating at most this much content are decoded in one call. */
const WHOLE_FRAME_MAX = 64 << 20;
const HEADER_WINDOW = 64 << 10;
const WORKER_TIMEOUT_MS = 300_000;
const TWO32 = 0x100000000;

/** True when `head` starts with a zstd frame or a skippable frame. */
export function isZstd(head: Buffer): boolean {
  if (head.length < 4) return false;
  const m = head.readUInt32LE(0);
  return m === ZSTD_MAGIC || (m & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC;
}

interface Frame {
  /** Compressed bytes [cOff, cEnd) of the file, header to checksum. */
  cOff: number;
  cEnd: number;
  headerLength: number;
  /** Frame_Content_Size, when the header gives it. */
  contentSize: number | null;
  /** Virtual offset of the frame's first decoded byte, and how many it decodes to (-1 until known). */
  uOff: number;
  uLen: number;
}


/** Reads small header fields through a window, so walking block headers costs few syscalls. */
class HeaderReader {
  private buf = Buffer.alloc(HEADER_WINDOW);
  private start = 0;
  private len = 0;
  private readonly fd: number;
  private readonly fileSize: number;

  constructor(fd: number, fileSize: number) {
    this.fd = fd;
    this.fileSize = fileSize;
  }

  /** Bytes [pos, pos + n), or null if they run past the end of the file. */
  bytes(pos: number, n: number): Buffer | null {
    if (pos + n > this.fileSize) return null;
    if (pos < this.start || pos + n > this.start + this.len) {
      this.start = pos;
      this.len = preadFully(this.fd, this.buf, 0, Math.min(HEADER_WINDOW, this.fileSize - pos), pos);
      if (pos + n > this.start + this.len) return null;
    }
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }
}

interface Block {
  /** Offset of the block after this one (header included). */
  next: number;
  last: boolean;
}

/** Decodes one frame front to back. */
interface FrameDecoder {
  readonly frame: Frame;
  /** The next decoded bytes of the frame (possibly empty), or null after its end. */
  next(): Buffer | null;
  close(): void;
}

/** The frames and virtual disk of a .zst file; random access and lazy extents over it. */
export class ZstdDisk {
  readonly file: string;
  readonly frames: Frame[] = [];
  size = 0;
  private readonly fd: number;
  private readonly fileSize: number;
  private readonly headers: HeaderReader;
  private runs: [number, number][] | null = null;
  private cursor: FrameDecoder | null = null;
  private worker: ZstdWorker | null = null;
  /** Decoded bytes the cursor holds, and their virtual offset. */
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  /** Shared by every extent, so extents of this disk join (joinFileRuns) and slice freely. */
  readonly fill = (dst: Buffer, dstOff: number, at: number, len: number): void => this.readInto(dst, dstOff, at, len);

  /** Takes ownership of `fd` (closed by close()). */
  constructor(file: string, fd: number, fileSize: number) {
    this.file = file;
    this.fd = fd;
    this.fileSize = fileSize;
    this.headers = new HeaderReader(fd, fileSize);
    this.walkFrames();
    if (this.frames.every((f) => f.contentSize !== null)) {
      let off = 0;
      for (const f of this.frames) {
        f.uOff = off;
        f.uLen = f.contentSize as number;
        off += f.uLen;
      }
      this.size = off;
    } else {
      this.scan();
    }
  }

  // ---------------------------------------------------------------- errors

  private truncated(what: string): never {
    throw new DiskwrightError('SOURCE_UNREADABLE', `${this.file} is truncated: ${what} runs past its end (${this.fileSize} bytes); the file is damaged or still being written`, { path: this.file, fileSize: this.fileSize });
  }

  private damaged(what: string): never {
    throw new DiskwrightError('SOURCE_UNREADABLE', `${this.file} is damaged: ${what}; check it with zstd -t`, { path: this.file });
  }

  // ---------------------------------------------------------------- headers

  private u32(pos: number, what: string): number {
    const b = this.headers.bytes(pos, 4);
    if (!b) this.truncated(what);
    return b.readUInt32LE(0);
  }

  /** Every frame's extent in the file, from its header and block headers. */
  private walkFrames(): void {
    let pos = 0;
    while (pos < this.fileSize) {
      if (this.fileSize - pos < 4) this.damaged(`${this.fileSize - pos} stray bytes at offset ${pos} after the last frame`);
      const magic = this.u32(pos, `the frame at ${pos}`);
      if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        const len = this.u32(pos + 4, `the skippable frame at ${pos}`);
        if (pos + 8 + len > this.fileSize) this.truncated(`the skippable frame at ${pos}`);
        pos += 8 + len;
        continue;
      }
      if (magic !== ZSTD_MAGIC) {
        if (pos === 0) this.damaged('it does not start with the zstd magic 28 B5 2F FD');
        this.damaged(`the bytes at offset ${pos}, after a complete frame, are not a zstd frame`);
      }
      const frame = this.frameHeader(pos);
      let p = pos + frame.headerLength;
      for (;;) {
        const b = this.block(p, pos);
        p = b.next;
        if (b.last) break;
      }
      const checksum = (this.headers.bytes(pos + 4, 1) as Buffer)[0] & 0x04;
      if (checksum) p += 4;
      if (p > this.fileSize) this.truncated(`the zstd frame at ${pos}`);
      frame.cEnd = p;
      this.frames.push(frame);
      pos = p;
    }
  }

  private frameHeader(pos: number): Frame {
    const d = this.headers.bytes(pos + 4, 1);
    if (!d) this.truncated(`the header of the zstd frame at ${pos}`);
    const fhd = d[0];
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    const dictFlag = fhd & 3;
    if (fhd & 0x08) this.damaged(`the zstd frame at ${pos} sets a reserved header bit`);
    const dictBytes = [0, 1, 2, 4][dictFlag];
    const fcsBytes = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag];
    const headerLength = 5 + (single ? 0 : 1) + dictBytes + fcsBytes;
    const h = this.headers.bytes(pos, headerLength);
    if (!h) this.truncated(`the header of the zstd frame at ${pos}`);
    let at = 5 + (single ? 0 : 1);
    const dictId = dictBytes === 0 ? 0 : dictBytes === 1 ? h[at] : dictBytes === 2 ? h.readUInt16LE(at) : h.readUInt32LE(at);
    if (dictId !== 0) {
      throw new DiskwrightError('SOURCE_UNREADABLE', `${this.file} needs zstd dictionary ${dictId}; decompress it with zstd -d -D <dictionary> first`, { path: this.file });
    }
    at += dictBytes;
    let contentSize: number | null = null;
    if (fcsBytes === 1) contentSize = h[at];
    else if (fcsBytes === 2) contentSize = h.readUInt16LE(at) + 256;
    else if (fcsBytes === 4) contentSize = h.readUInt32LE(at);
    else if (fcsBytes === 8) {
      contentSize = h.readUInt32LE(at + 4) * TWO32 + h.readUInt32LE(at);
      if (!Number.isSafeInteger(contentSize)) this.damaged(`the zstd frame at ${pos} claims ${contentSize} bytes of content`);
    }
    return { cOff: pos, cEnd: -1, headerLength, contentSize, uOff: -1, uLen: -1 };
  }

  /** The block whose header is at `p` (in the frame at `framePos`). */
  private block(p: number, framePos: number): Block {
    const b = this.headers.bytes(p, 3);
    if (!b) this.truncated(`the zstd frame at ${framePos}`);
    const h = b[0] | (b[1] << 8) | (b[2] << 16);
    const type = (h >> 1) & 3;
    const size = h >>> 3;
    if (type === 3) this.damaged(`the block at offset ${p} has the reserved block type 3`);
    if (size > BLOCK_MAX) this.damaged(`the block at offset ${p} is ${size} bytes, more than the 128 KiB a block may hold`);
    const next = p + 3 + (type === 1 ? 1 : size);
    if (next > this.fileSize) this.truncated(`the zstd frame at ${framePos}`);
    return { next, last: (h & 1) === 1 };
  }

  // ---------------------------------------------------------------- decoding

  /** Pass 1: decode everything in order, learning frame sizes and the non-zero runs. */
  private scan(): void {
    const finder = new RunFinder();
    for (const f of this.frames) {
      f.uOff = finder.pos;
      const dec = this.decoder(f);
      try {
        for (let out = dec.next(); out; out = dec.next()) finder.push(out);
      } finally {
        dec.close();
      }
      f.uLen = finder.pos - f.uOff;
    }
    this.size = finder.pos;
    this.runs = finder.finish();
  }

  /** The virtual disk: a LazyExtent per run of non-zero 4 KiB granules (the first call decodes the whole file). */
  image(): Image {
    if (!this.runs) this.scan();
    const runs = this.runs as [number, number][];
    const extents: LazyExtent[] = runs.map(([s, e]) => ({ offset: s, length: e - s, from: s, fill: this.fill }));
    return { size: this.size, extents };
  }

  /** Compressed bytes [from, to) of the file; they were seen to exist by the header walk. */
  readCompressed(from: number, to: number): Buffer {
    const b = Buffer.alloc(to - from);
    if (preadFully(this.fd, b, 0, b.length, from) < b.length) this.truncated(`the zstd frame holding offset ${from}`);
    return b;
  }

  decodeError(f: Frame, err: unknown): never {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ZSTD_error_frameParameter_windowTooLarge') {
      throw new DiskwrightError('SOURCE_UNREADABLE', `${this.file} was compressed with a window larger than 128 MiB (zstd --long); decompress it with zstd -d --long=31 first`, { path: this.file });
    }
    this.damaged(`the zstd frame at ${f.cOff} does not decode (${e.message})`);
  }

  private decoder(f: Frame): FrameDecoder {
    if (f.contentSize !== null && f.contentSize <= WHOLE_FRAME_MAX) return new WholeFrame(this, f);
    this.worker ??= new ZstdWorker(this.file);
    return this.worker.decoder(this, f);
  }

  /** Checks what a frame decoded to against its header and against pass 1. */
  checkLength(f: Frame, produced: number): void {
    const want = f.contentSize ?? (f.uLen >= 0 ? f.uLen : produced);
    if (produced !== want) this.decodeError(f, new Error(`it decodes to ${produced} bytes, not the ${want} its header states`));
  }

  /** Index of the frame holding virtual offset `off` (frames with content only). */
  private frameAt(off: number): Frame {
    let lo = 0;
    let hi = this.frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.frames[mid].uOff <= off) lo = mid;
      else hi = mid - 1;
    }
    // Empty frames share their offset with the next one: step past them.
    while (lo < this.frames.length - 1 && this.frames[lo].uOff + this.frames[lo].uLen <= off) lo++;
    return this.frames[lo];
  }

  /** Bytes [offset, offset + length) of the virtual disk. */
  read(offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    this.readInto(out, 0, offset, length);
    return out;
  }

  readInto(dst: Buffer, dstOff: number, offset: number, length: number): void {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.size)) {
      throw new RangeError(`read of ${length} bytes at ${offset} is outside the ${this.size}-byte image`);
    }
    let off = offset;
    let done = 0;
    while (done < length) {
      const bufEnd = this.bufStart + this.buf.length;
      if (off >= this.bufStart && off < bufEnd) {
        const n = Math.min(length - done, bufEnd - off);
        this.buf.copy(dst, dstOff + done, off - this.bufStart, off - this.bufStart + n);
        done += n;
        off += n;
        continue;
      }
      const f = this.frameAt(off);
      if (!this.cursor || this.cursor.frame !== f || off < this.bufStart) {
        this.cursor?.close();
        this.cursor = this.decoder(f);
        this.bufStart = f.uOff;
        this.buf = Buffer.alloc(0);
      }
      const next = this.cursor.next();
      if (!next) this.damaged(`the zstd frame at ${f.cOff} decodes to fewer bytes than it did before`);
      this.bufStart += this.buf.length;
      this.buf = next;
    }
  }

  close(): void {
    this.cursor?.close();
    this.cursor = null;
    this.worker?.close();
    this.worker = null;
    fs.closeSync(this.fd);
  }
}

/** A frame of known, bounded size: one zstdDecompressSync call. */
class WholeFrame implements FrameDecoder {
  readonly frame: Frame;
  private readonly disk: ZstdDisk;
  private done = false;

  constructor(disk: ZstdDisk, frame: Frame) {
    this.disk = disk;
    this.frame = frame;
  }

  next(): Buffer | null {
    if (this.done) return null;
    this.done = true;
    const f = this.frame;
    let out: Buffer;
    try {
      // One output buffer of the stated size: no gathering of 64 KiB chunks.
      const size = Math.max(64, f.contentSize as number);
      out = zlib.zstdDecompressSync(this.disk.readCompressed(f.cOff, f.cEnd), { chunkSize: size, maxOutputLength: size });
    } catch (err) {
      this.disk.decodeError(f, err);
    }
    this.disk.checkLength(f, out.length);
    return out;
  }

  close(): void {}
}

/** The worker thread that streams frames too large to decode in one call (zstd-worker.ts). */
class ZstdWorker {
  private readonly worker: Worker;
  private readonly ctrl: Int32Array;
  private readonly data: Buffer;
  private readonly error: Buffer;
  private nextId = 1;

  constructor(file: string) {
    const wd: ZstdWorkerData = {
      file,
      ctrl: new SharedArrayBuffer(ZSTD_CTRL_WORDS * 4),
      data: new SharedArrayBuffer(ZSTD_WORKER_GROUP + ZSTD_WORKER_CHUNK),
      error: new SharedArrayBuffer(ZSTD_ERROR_BYTES),
    };
    this.ctrl = new Int32Array(wd.ctrl);
    this.data = Buffer.from(wd.data);
    this.error = Buffer.from(wd.error);
    this.worker = new Worker(siblingModule(import.meta.url, 'zstd-worker'), { workerData: wd });
    // A source someone forgot to close must not keep the process alive.
    this.worker.unref();
    // The worker reports its own errors through shared memory; this only
    // keeps a thread that died some other way from crashing the process later.
    this.worker.on('error', () => {});
  }

  decoder(disk: ZstdDisk, frame: Frame): FrameDecoder {
    const id = this.nextId++;
    this.worker.postMessage({ op: 'open', id, from: frame.cOff, to: frame.cEnd });
    let done = false;
    let produced = 0;
    return {
      frame,
      next: () => {
        if (done) return null;
        const seq = Atomics.load(this.ctrl, ZSTD_CTRL.seq);
        this.worker.postMessage({ op: 'pull', id });
        // Minutes, not milliseconds: a 4 MiB step takes a few ms; no answer means the thread is gone.
        if (Atomics.wait(this.ctrl, ZSTD_CTRL.seq, seq, WORKER_TIMEOUT_MS) === 'timed-out') {
          throw new Error(`internal: the zstd decoding thread did not answer in ${WORKER_TIMEOUT_MS / 1000} s`);
        }
        const flags = Atomics.load(this.ctrl, ZSTD_CTRL.flags);
        if (flags & ZSTD_FLAG_ERROR) {
          const [code, ...rest] = this.error.subarray(0, Atomics.load(this.ctrl, ZSTD_CTRL.errLen)).toString().split('\n');
          done = true;
          disk.decodeError(frame, Object.assign(new Error(rest.join(' ')), { code }));
        }
        const out = Buffer.from(this.data.subarray(0, Atomics.load(this.ctrl, ZSTD_CTRL.len)));
        produced += out.length;
        if (flags & ZSTD_FLAG_END) {
          done = true;
          disk.checkLength(frame, produced);
        }
        return out;
      },
      close: () => {},
    };
  }

  close(): void {
    void this.worker.terminate();
  }
}
