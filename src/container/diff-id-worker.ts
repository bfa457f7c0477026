// Worker side of diffIdOf (diff-id.ts): sha256 of a compressed layer's tar,
// decompressed with Node's async gzip or zstd stream over a range of a file;
// the answer goes to shared memory and the waiting main thread is woken.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { workerData } from 'node:worker_threads';

export interface DiffIdWorkerData {
  file: string;
  from: number;
  length: number;
  method: 'gzip' | 'zstd';
  /** Most decompressed bytes accepted (a bomb is refused, not hashed for hours). */
  limit: number;
  /** Int32 [done, status]: status 1 ok (hex in `out`), 2 error (text in `out`). */
  ctrl: SharedArrayBuffer;
  out: SharedArrayBuffer;
}

export const DIFF_ID_OUT_BYTES = 1024;

const wd = workerData as DiffIdWorkerData | undefined;
if (wd?.ctrl instanceof SharedArrayBuffer) {
  const ctrl = new Int32Array(wd.ctrl);
  const out = Buffer.from(wd.out);
  const answer = (status: number, text: string) => {
    out.fill(0);
    out.write(text.slice(0, DIFF_ID_OUT_BYTES - 1));
    Atomics.store(ctrl, 1, status);
    Atomics.store(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
  };
  process.on('uncaughtException', (e) => answer(2, e.message));
  const h = createHash('sha256');
  let total = 0;
  const input = wd.length ? fs.createReadStream(wd.file, { start: wd.from, end: wd.from + wd.length - 1 }) : null;
  const dec = wd.method === 'gzip' ? zlib.createGunzip() : zlib.createZstdDecompress();
  dec.on('data', (b: Buffer) => {
    total += b.length;
    if (total > wd.limit) {
      dec.destroy(new Error(`decompresses to more than ${wd.limit} bytes`));
      return;
    }
    h.update(b);
  });
  dec.on('end', () => answer(1, h.digest('hex')));
  dec.on('error', (e) => answer(2, e.message));
  if (input) {
    input.on('error', (e) => answer(2, e.message));
    input.pipe(dec);
  } else dec.end();
}
