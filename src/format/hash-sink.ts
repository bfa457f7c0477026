// A sink that hashes the image's bytes as they go by (gaps as the zeros they
// read as), optionally passing them on: a layer's digest and size while it is
// written, or without writing anything for a hash pass.
import { createHash } from 'node:crypto';
import type { Image } from '../image/extent-map.ts';
import { emit, type Sink } from './raw.ts';
import type { ProgressPhase } from '../util/progress.ts';

export interface HashingSink extends Sink {
  /** sha256 of every byte so far, lower-case hex; valid after finish. */
  digest(): string;
  size(): number;
}

const ZEROS = Buffer.alloc(1 << 16);

export function hashingSink(next?: Sink): HashingSink {
  const h = createHash('sha256');
  let pos = 0;
  let hex = '';
  const zeros = (n: number) => {
    for (; n > 0; n -= ZEROS.length) h.update(ZEROS.subarray(0, Math.min(n, ZEROS.length)));
  };
  return {
    write(buf, len, at) {
      zeros(at - pos);
      h.update(buf.subarray(0, len));
      pos = at + len;
      next?.write(buf, len, at);
    },
    finish(size) {
      zeros(size - pos);
      pos = size;
      hex = h.digest('hex');
      next?.finish(size);
    },
    digest() {
      if (!hex) throw new Error('internal: digest before finish');
      return hex;
    },
    size: () => pos,
  };
}

/** sha256 (hex) and size of an image's bytes, reading its files once and writing nothing. */
export function digestImage(image: Image, phase: ProgressPhase = 'writing'): { digest: string; size: number } {
  const sink = hashingSink();
  emit(image, sink, phase);
  return { digest: sink.digest(), size: sink.size() };
}
