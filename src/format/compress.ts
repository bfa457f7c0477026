// Compression is the last transform: a sink that takes the image's bytes in
// order (holes as zeros) and passes compressed bytes on to a stream sink.
// zstd: independent frames of 32 MiB, each compressed by libzstd with its own
// worker threads (Node's zlib runs them; nbWorkers = the machine's cores), so
// the sink stays synchronous like the emitter and output is a standard
// multi-frame .zst that `zstd -d` reads. Frames make the output independent
// of thread count and timing: same input, same bytes.
import * as os from 'node:os';
import * as zlib from 'node:zlib';
import type { Sink } from './raw.ts';

const FRAME = 32 << 20;

export interface ZstdOptions {
  level?: number;
  /** libzstd worker threads; default all cores. Does not change the output. */
  threads?: number;
}

export function zstdSink(out: Sink, opts: ZstdOptions = {}): Sink {
  const params = {
    [zlib.constants.ZSTD_c_compressionLevel]: opts.level ?? 3,
    [zlib.constants.ZSTD_c_nbWorkers]: opts.threads ?? os.availableParallelism(),
    [zlib.constants.ZSTD_c_checksumFlag]: 1,
  };
  const frame = Buffer.alloc(FRAME);
  let fill = 0;
  let pos = 0; // uncompressed bytes taken so far
  let outPos = 0;
  const flush = () => {
    if (!fill) return;
    const c = zlib.zstdCompressSync(frame.subarray(0, fill), { params });
    out.write(c, c.length, outPos);
    outPos += c.length;
    fill = 0;
  };
  const take = (src: Buffer | null, len: number) => {
    let done = 0;
    while (done < len) {
      const k = Math.min(len - done, FRAME - fill);
      if (src) src.copy(frame, fill, done, done + k);
      else frame.fill(0, fill, fill + k);
      fill += k;
      done += k;
      if (fill === FRAME) flush();
    }
  };
  return {
    write(buf, len, at) {
      take(null, at - pos);
      take(buf, len);
      pos = at + len;
    },
    finish(size) {
      take(null, size - pos);
      pos = size;
      flush();
      out.finish(outPos);
    },
  };
}
