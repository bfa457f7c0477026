// The diff_id of a compressed layer (sha256 of its tar), for checking a base
// image's claim: Node decompresses gzip and zstd only as async streams (or
// whole buffers), and planning is synchronous, so a worker thread streams the
// blob through the decompressor and the main thread waits for its answer;
// memory stays bounded whatever the layer's size.
import { Worker } from 'node:worker_threads';
import { DIFF_ID_OUT_BYTES, type DiffIdWorkerData } from './diff-id-worker.ts';

/** Deflate expands at most about 1032:1; zstd's bound is far looser, so a fixed ceiling serves it. */
const GZIP_RATIO = 1032;
const ZSTD_LIMIT = 2 ** 50;

/** sha256 (hex) of bytes [from, from + length) of `file` decompressed; throws Error(reason) when they do not decompress. */
export function diffIdOf(file: string, from: number, length: number, method: 'gzip' | 'zstd'): string {
  const ctrl = new SharedArrayBuffer(8);
  const out = new SharedArrayBuffer(DIFF_ID_OUT_BYTES);
  const limit = method === 'gzip' ? GZIP_RATIO * length + (1 << 20) : ZSTD_LIMIT;
  const data: DiffIdWorkerData = { file, from, length, method, limit, ctrl, out };
  const worker = new Worker(new URL('./diff-id-worker.ts', import.meta.url), { workerData: data });
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
