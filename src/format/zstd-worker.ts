// Worker side of the streaming zstd decoder (zstd-input.ts, StreamFrame):
// decodes one frame of a .zst file at a time with Node's async zstd stream and
// hands the output to the waiting main thread through shared memory, at most
// ZSTD_WORKER_GROUP bytes (plus one stream chunk) per request, so memory stays
// bounded whatever the frame's size or compression ratio.
//
// Messages from the main thread: { op: 'open', id, from, to } starts decoding
// file bytes [from, to); { op: 'pull', id } asks for the next output. Each
// pull is answered by writing the output to `data`, then length, flags and an
// incremented sequence number to `ctrl`, and Atomics.notify.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { parentPort, workerData } from 'node:worker_threads';

export const ZSTD_CTRL = { seq: 0, len: 1, flags: 2, errLen: 3 } as const;
export const ZSTD_CTRL_WORDS = 4;
export const ZSTD_FLAG_END = 1;
export const ZSTD_FLAG_ERROR = 2;
/** Output per pull, before the last stream chunk. */
export const ZSTD_WORKER_GROUP = 4 << 20;
/** Largest chunk the decompression stream emits. */
export const ZSTD_WORKER_CHUNK = 256 << 10;
export const ZSTD_ERROR_BYTES = 1024;

export interface ZstdWorkerData {
  file: string;
  ctrl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  error: SharedArrayBuffer;
}

type Msg = { op: 'open'; id: number; from: number; to: number } | { op: 'pull'; id: number };

// zstd-input.ts imports the constants above, also from other worker threads
// (a library user's, a test's): only the thread started with this module's
// workerData is the decoder.
const wd = workerData as ZstdWorkerData | undefined;
if (parentPort && wd?.ctrl instanceof SharedArrayBuffer) {
  const port = parentPort;
  const ctrl = new Int32Array(wd.ctrl);
  const data = Buffer.from(wd.data);
  const errorText = Buffer.from(wd.error);
  let current: { id: number; iter: AsyncIterator<Buffer>; dec: zlib.ZstdDecompress; pending: Buffer | null; ended: boolean } | null = null;

  const answer = (len: number, flags: number) => {
    Atomics.store(ctrl, ZSTD_CTRL.len, len);
    Atomics.store(ctrl, ZSTD_CTRL.flags, flags);
    Atomics.add(ctrl, ZSTD_CTRL.seq, 1);
    Atomics.notify(ctrl, ZSTD_CTRL.seq);
  };
  const fail = (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    const text = Buffer.from(`${e?.code ?? ''}\n${e?.message ?? String(err)}`);
    const n = Math.min(text.length, errorText.length);
    text.copy(errorText, 0, 0, n);
    Atomics.store(ctrl, ZSTD_CTRL.errLen, n);
    answer(0, ZSTD_FLAG_ERROR);
  };

  const open = (m: { id: number; from: number; to: number }) => {
    current?.dec.destroy();
    const dec = zlib.createZstdDecompress({ chunkSize: ZSTD_WORKER_CHUNK });
    const input = fs.createReadStream(wd.file, { start: m.from, end: m.to - 1, highWaterMark: 1 << 20 });
    input.on('error', (err) => dec.destroy(err));
    input.pipe(dec);
    current = { id: m.id, iter: dec[Symbol.asyncIterator](), dec, pending: null, ended: false };
  };

  const pull = async (id: number) => {
    const c = current;
    if (!c || c.id !== id) throw new Error(`internal: pull for decoder ${id}, which is not open`);
    let fill = 0;
    while (fill < ZSTD_WORKER_GROUP && !c.ended) {
      let chunk = c.pending;
      c.pending = null;
      if (!chunk) {
        const r = await c.iter.next();
        if (r.done) {
          c.ended = true;
          break;
        }
        chunk = r.value as Buffer;
      }
      const k = Math.min(chunk.length, data.length - fill);
      chunk.copy(data, fill, 0, k);
      fill += k;
      if (k < chunk.length) c.pending = chunk.subarray(k);
    }
    answer(fill, c.ended && !c.pending ? ZSTD_FLAG_END : 0);
  };

  // One message at a time, in order.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (m: Msg) => {
    queue = queue.then(async () => {
      try {
        if (m.op === 'open') open(m);
        else await pull(m.id);
      } catch (err) {
        fail(err);
      }
    });
  });
}
