// One worker of DeflatePool (deflate-pool.ts): takes batches from the shared
// queue, compresses each chunk as its own raw deflate stream, reports per
// chunk, marks the batch done and wakes the caller. Sleeps on the wake
// counter when the queue is empty; exits when the pool closes.
//
// zlib.deflateRawSync allocates a new zlib state and new output buffers for
// every chunk: tens of megabytes of garbage per worker before V8 collects
// it. So a worker keeps one deflate stream and, where this Node's zlib
// handle allows it, deflates each chunk straight into the shared output and
// resets the stream (deflateReset: the same bytes as a fresh stream with the
// same parameters). A self-test against deflateRawSync at start decides; if
// the handle is missing or disagrees, every chunk goes through deflateRawSync.
import { workerData } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { isAllZero } from '../image/blocks.ts';
import { CTRL, DICTIONARY, SLOT, outputStride, type DeflateWorkerData } from './deflate-pool.ts';

const data = workerData as DeflateWorkerData;
const o = data.options;
const ctrl = new Int32Array(data.ctrl);
const state = new Int32Array(data.state);
const queue = new Int32Array(data.queue);
const counts = new Int32Array(data.counts);
const results = new Int32Array(data.results);
const lengths = new Int32Array(data.lengths);
const batchBytes = o.chunkSize * o.chunksPerBatch;
const prefix = o.streamBlocks ? DICTIONARY : 0;
const stride = outputStride(o);
const zopts: zlib.ZlibOptions = { level: o.level, windowBits: o.windowBits, memLevel: o.memLevel, strategy: zlib.constants.Z_DEFAULT_STRATEGY };

/** Deflates `chunk` into out[at, at + room); returns the length, or -1 when it needs more than `room` bytes. */
type Deflater = (chunk: Buffer, out: Buffer, at: number, room: number) => number;

function syncDeflater(): Deflater {
  return (chunk, out, at, room) => {
    const z = zlib.deflateRawSync(chunk, zopts);
    if (z.length > room) return -1;
    z.copy(out, at);
    return z.length;
  };
}

/** The zlib binding under a DeflateRaw stream, as Node's own zlibBufferSync drives it. */
interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  reset(): void;
  onerror?: (message: string, errno: number) => void;
}

function handleDeflater(): Deflater | null {
  const stream = new zlib.DeflateRaw(zopts) as unknown as { _handle?: ZlibHandle; _writeState?: Uint32Array };
  const h = stream._handle;
  const ws = stream._writeState;
  if (!h || typeof h.writeSync !== 'function' || typeof h.reset !== 'function' || !(ws instanceof Uint32Array) || ws.length < 2) return null;
  let error: string | null = null;
  h.onerror = (message) => {
    error = message;
  };
  return (chunk, out, at, room) => {
    // One byte more than allowed: output that ends with room to spare is complete.
    h.writeSync(zlib.constants.Z_FINISH, chunk, 0, chunk.length, out, at, room + 1);
    const availOut = ws[0];
    const availIn = ws[1];
    h.reset();
    if (error !== null) throw new Error(`zlib: ${error}`);
    if (availOut === 0) return -1;
    if (availIn !== 0) throw new Error('zlib: deflate stopped before the end of its input');
    return room + 1 - availOut;
  };
}

/** The handle deflater if it writes exactly what deflateRawSync writes, else deflateRawSync. */
function chooseDeflater(): Deflater {
  let fast: Deflater | null = null;
  try {
    fast = handleDeflater();
  } catch {
    fast = null;
  }
  if (!fast) return syncDeflater();
  const slow = syncDeflater();
  // Text-like, noisy and constant samples; the noisy one does not fit in 512 bytes.
  const samples: Buffer[] = [Buffer.alloc(8192), Buffer.alloc(8192), Buffer.alloc(8192, 7)];
  for (let i = 0; i < 8192; i++) samples[0][i] = 'diskwright qcow2 '.charCodeAt(i % 17) ^ (i % 251 === 0 ? 1 : 0);
  let x = 0x9e3779b9;
  for (let i = 0; i < 8192; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    samples[1][i] = x & 0xff;
  }
  const a = Buffer.alloc(16384);
  const b = Buffer.alloc(16384);
  for (const room of [16383, 512]) {
    for (const s of samples) {
      const n = fast(s, a, 0, room);
      const m = slow(s, b, 0, room);
      if (n !== m || (n > 0 && !a.subarray(0, n).equals(b.subarray(0, m)))) return slow;
    }
  }
  return fast;
}

const deflate = chooseDeflater();

/**
 * Every stream block's zlib handle keeps a copy of its 32 KiB dictionary in
 * memory V8 does not see, freed only when a full collection finds the
 * handle; V8, seeing a small heap, rarely runs one, so a worker grew by
 * about 100 MB over a 2 GB layer. A full collection every so many input
 * bytes bounds that, where V8 lets this thread have gc() (else unbounded, as before).
 */
const GC_EVERY = 8 << 20;
const collect = ((): (() => void) | undefined => {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
})();
let sinceCollect = 0;

/** Stream blocks: chunk i of the slot's input (which starts after its dictionary area), its dictionary the 32 KiB before it. */
function compressBlocks(slot: number, whole: Buffer, output: Buffer, n: number): void {
  for (let i = 0; i < n; i++) {
    const at = prefix + i * o.chunkSize;
    const len = i === n - 1 ? lengths[slot * 2 + 1] : o.chunkSize;
    const dict = whole.subarray(at - (i === 0 ? lengths[slot * 2] : DICTIONARY), at);
    const z = zlib.deflateRawSync(whole.subarray(at, at + len), { ...zopts, finishFlush: zlib.constants.Z_SYNC_FLUSH, ...(dict.length ? { dictionary: dict } : {}) });
    if (z.length > stride) throw new Error(`deflate output of ${z.length} bytes for a ${len}-byte block`);
    z.copy(output, i * stride);
    results[slot * o.chunksPerBatch + i] = z.length;
    sinceCollect += len;
  }
  if (collect && sinceCollect >= GC_EVERY) {
    sinceCollect = 0;
    collect();
  }
}

function compress(slot: number): void {
  const n = counts[slot];
  const output = Buffer.from(data.output, slot * stride * o.chunksPerBatch, stride * o.chunksPerBatch);
  if (o.streamBlocks) return compressBlocks(slot, Buffer.from(data.input, slot * (prefix + batchBytes), prefix + batchBytes), output, n);
  const input = Buffer.from(data.input, slot * batchBytes, batchBytes);
  for (let i = 0; i < n; i++) {
    const at = i * o.chunkSize;
    const chunk = input.subarray(at, at + o.chunkSize);
    results[slot * o.chunksPerBatch + i] = isAllZero(chunk) ? 0 : deflate(chunk, output, at, o.maxOutput);
  }
}

function fail(slot: number, err: unknown): void {
  const text = Buffer.from(String((err as Error)?.stack ?? err)).subarray(0, data.error.byteLength);
  const dst = Buffer.from(data.error);
  dst.fill(0);
  text.copy(dst);
  Atomics.store(state, slot, SLOT.failed);
  Atomics.notify(state, slot);
}

// Loaded and ready: the caller stops watching for a pool that never started.
Atomics.add(ctrl, CTRL.started, 1);
for (;;) {
  const wake = Atomics.load(ctrl, CTRL.wake);
  const taken = Atomics.load(ctrl, CTRL.taken);
  if (taken < Atomics.load(ctrl, CTRL.submitted)) {
    if (Atomics.compareExchange(ctrl, CTRL.taken, taken, taken + 1) !== taken) continue;
    const slot = queue[taken % o.slots];
    try {
      compress(slot);
    } catch (err) {
      fail(slot, err);
      continue;
    }
    Atomics.store(state, slot, SLOT.done);
    Atomics.notify(state, slot);
    continue;
  }
  if (Atomics.load(ctrl, CTRL.closed)) break;
  Atomics.wait(ctrl, CTRL.wake, wake);
}
