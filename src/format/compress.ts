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
import * as os from 'node:os';
import * as zlib from 'node:zlib';
import lzma from 'lzma-native';
import type { Sink } from './raw.ts';

const FRAME = 32 << 20;

export interface ZstdOptions {
  level?: number;
  /** libzstd worker threads; default all cores. Does not change the output. */
  threads?: number;
}

/** A compressing sink: takes the image's bytes in order, holes as zeros. */
export function orderedSink(chunk: number, take: (data: Buffer) => void, end: () => void): Sink {
  const buf = Buffer.alloc(chunk);
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

export function zstdSink(out: Sink, opts: ZstdOptions = {}): Sink {
  const params = {
    [zlib.constants.ZSTD_c_compressionLevel]: opts.level ?? 3,
    [zlib.constants.ZSTD_c_nbWorkers]: opts.threads ?? os.availableParallelism(),
    [zlib.constants.ZSTD_c_checksumFlag]: 1,
  };
  let outPos = 0;
  return orderedSink(FRAME, (frame) => {
    const c = zlib.zstdCompressSync(frame, { params });
    out.write(c, c.length, outPos);
    outPos += c.length;
  }, () => out.finish(outPos));
}

export interface XzOptions {
  /** xz preset, 0-9 (default 6, as the xz tool). */
  level?: number;
  /** liblzma threads; default all cores. Does not change the output. */
  threads?: number;
}

/** Input handed to liblzma per call; its output arrives synchronously. */
const XZ_CHUNK = 4 << 20;

export function xzSink(out: Sink, opts: XzOptions = {}): Sink {
  const stream = new lzma.Stream();
  // Always the multi-threaded encoder, even on one core: it splits blocks by
  // size alone, so one thread and many write the same bytes.
  stream.mtEncoder_({ preset: opts.level ?? 6, filters: null, check: lzma.CHECK_CRC64, threads: opts.threads ?? os.availableParallelism() });
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
