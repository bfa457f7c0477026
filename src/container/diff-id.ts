// The diff_id of a compressed layer (sha256 of its tar), for checking a base
// image's claim: Node decompresses gzip and zstd only as async streams (or
// whole buffers), and planning is synchronous, so a worker thread streams the
// blob through the decompressor and the main thread waits for its answer;
// memory stays bounded whatever the layer's size.
import { siblingModule } from '../util/sibling-module.ts';
import { Worker } from 'node:worker_threads';
import { DIFF_ID_OUT_BYTES, type DiffIdWorkerData } from './diff-id-worker.ts';

/**
 * The most a byte of each can expand to, so a bomb is refused instead of
 * hashed for hours: deflate about 1032:1; zstd 32768:1 (a block gives at most
 * 128 KiB and costs at least 4 bytes, an RLE block: RFC 8878 §3.1.1.2).
 */
const RATIO = { gzip: 1032, zstd: 32768 } as const;

/** sha256 (hex) of bytes [from, from + length) of `file` decompressed; throws Error(reason) when they do not decompress. */
export function diffIdOf(file: string, from: number, length: number, method: 'gzip' | 'zstd'): string {
  const ctrl = new SharedArrayBuffer(8);
  const out = new SharedArrayBuffer(DIFF_ID_OUT_BYTES);
  const limit = RATIO[method] * length + (1 << 20);
  const data: DiffIdWorkerData = { file, from, length, method, limit, ctrl, out };
  const worker = new Worker(siblingModule(import.meta.url, 'diff-id-worker'), { workerData: data });
  // Failures come back through shared memory; this only keeps a thread that died otherwise from crashing us later.
  worker.on('error', () => {});
  const state = new Int32Array(ctrl);
  try {
    Atomics.wait(state, 0, 0);
  } finally {
    void worker.terminate();
  }
  const text = Buffer.from(out).toString('utf8').replace(/\0+$/, '');
  if (Atomics.load(state, 1) !== 1) throw new Error(text);
  return text;
}
