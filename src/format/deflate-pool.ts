// Raw deflate on every core: worker threads (deflate-worker.ts) compress
// fixed-size chunks, each independently, in batches the caller fills in
// shared memory. The caller stays synchronous (like the raw emitter): it
// fills a batch's input, submits it, and later waits for that batch with
// Atomics.wait, while the workers compress the batches in between. Which
// worker takes which batch depends on timing; what a chunk compresses to
// does not, so the caller, consuming batches in order, writes the same bytes
// with any number of threads.
//
// Shared memory, per batch slot: input chunks, output chunks, one result per
// chunk (0: all zero, not compressed; -1: did not fit in maxOutput bytes;
// n > 0: n compressed bytes at the chunk's place in the output). Control
// words: jobs submitted and taken (a queue of slot numbers), a wake counter
// the idle workers sleep on, and a closed flag.
import { Worker } from 'node:worker_threads';
import { siblingModule } from '../util/sibling-module.ts';

export interface DeflatePoolOptions {
  /** Bytes per chunk; every chunk is compressed as one independent raw deflate stream. */
  chunkSize: number;
  /** Chunks per batch (one submit, one wait). */
  chunksPerBatch: number;
  /** Batch slots: how many batches can be filled, in flight or waiting to be consumed. */
  slots: number;
  /** Worker threads (at least 1). */
  threads: number;
  /** zlib level 1-9. */
  level: number;
  /** zlib windowBits 8..15 (raw deflate). */
  windowBits: number;
  /** zlib memLevel 1..9. */
  memLevel: number;
  /** A chunk whose deflate output is longer than this is reported as -1 (store it raw). */
  maxOutput: number;
}

/** Control word indices (Int32). */
export const CTRL = { submitted: 0, taken: 1, wake: 2, closed: 3, started: 4 } as const;
const CTRL_WORDS = 5;
/** How long the caller waits for a first worker to come up before giving up on a pool that never started. */
const START_TIMEOUT_MS = 60_000;
/** Slot states. */
export const SLOT = { idle: 0, busy: 1, done: 2, failed: 3 } as const;
export const ERROR_TEXT_BYTES = 1024;

/** What the worker gets: the shared buffers and the zlib parameters. */
export interface DeflateWorkerData {
  options: DeflatePoolOptions;
  ctrl: SharedArrayBuffer;
  /** Per slot: state. */
  state: SharedArrayBuffer;
  /** Queue of slot numbers, indexed by job number modulo slots. */
  queue: SharedArrayBuffer;
  /** Per slot: chunk count of the submitted batch. */
  counts: SharedArrayBuffer;
  /** Per slot and chunk: the result. */
  results: SharedArrayBuffer;
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
  /** A failed worker's message, UTF-8, NUL-padded. */
  error: SharedArrayBuffer;
}

export class DeflatePool {
  readonly options: DeflatePoolOptions;
  private readonly data: DeflateWorkerData;
  private readonly ctrl: Int32Array;
  private readonly state: Int32Array;
  private readonly queue: Int32Array;
  private readonly counts: Int32Array;
  private readonly results: Int32Array;
  private readonly inputs: Buffer[] = [];
  private readonly outputs: Buffer[] = [];
  private workers: Worker[] = [];
  private submitted = 0;

  constructor(options: DeflatePoolOptions) {
    this.options = options;
    const { chunkSize, chunksPerBatch, slots } = options;
    if (!(options.maxOutput < chunkSize)) throw new Error('internal: deflate maxOutput must be below the chunk size');
    const batchBytes = chunkSize * chunksPerBatch;
    this.data = {
      options,
      ctrl: new SharedArrayBuffer(CTRL_WORDS * 4),
      state: new SharedArrayBuffer(slots * 4),
      queue: new SharedArrayBuffer(slots * 4),
      counts: new SharedArrayBuffer(slots * 4),
      results: new SharedArrayBuffer(slots * chunksPerBatch * 4),
      input: new SharedArrayBuffer(slots * batchBytes),
      output: new SharedArrayBuffer(slots * batchBytes),
      error: new SharedArrayBuffer(ERROR_TEXT_BYTES),
    };
    this.ctrl = new Int32Array(this.data.ctrl);
    this.state = new Int32Array(this.data.state);
    this.queue = new Int32Array(this.data.queue);
    this.counts = new Int32Array(this.data.counts);
    this.results = new Int32Array(this.data.results);
    for (let s = 0; s < slots; s++) {
      this.inputs.push(Buffer.from(this.data.input, s * batchBytes, batchBytes));
      this.outputs.push(Buffer.from(this.data.output, s * batchBytes, batchBytes));
    }
  }

  /** The input chunks of a slot, to fill before submit. */
  input(slot: number): Buffer {
    return this.inputs[slot];
  }

  /** The compressed chunks of a slot, after wait: chunk i's bytes start at i * chunkSize. */
  output(slot: number): Buffer {
    return this.outputs[slot];
  }

  /** Chunk i's result after wait: 0 all zero, -1 did not fit, n > 0 compressed length. */
  result(slot: number, i: number): number {
    return this.results[slot * this.options.chunksPerBatch + i];
  }

  /** Queues the first `count` chunks of `slot` for compression. The slot must be idle. */
  submit(slot: number, count: number): void {
    if (Atomics.load(this.state, slot) !== SLOT.idle) throw new Error(`internal: deflate slot ${slot} submitted while in use`);
    // Workers start at the first submit: no threads for an image with no data.
    if (this.workers.length === 0) this.start();
    this.counts[slot] = count;
    Atomics.store(this.state, slot, SLOT.busy);
    this.queue[this.submitted % this.options.slots] = slot;
    this.submitted++;
    Atomics.store(this.ctrl, CTRL.submitted, this.submitted);
    Atomics.add(this.ctrl, CTRL.wake, 1);
    Atomics.notify(this.ctrl, CTRL.wake, 1);
  }

  /** Blocks until `slot` is compressed, then marks it idle again (its buffers stay readable until the next submit). */
  wait(slot: number): void {
    let waited = 0;
    for (;;) {
      const s = Atomics.load(this.state, slot);
      if (s === SLOT.done) break;
      if (s === SLOT.failed) {
        const text = Buffer.from(this.data.error).toString('utf8').replace(/\0+$/, '');
        throw new Error(`internal: deflate worker failed: ${text}`);
      }
      if (s !== SLOT.busy) throw new Error(`internal: waiting for deflate slot ${slot}, which was not submitted`);
      // A worker that dies while loading cannot say so (the main thread is
      // blocked here, so no error event runs): give up if none ever started.
      if (Atomics.wait(this.state, slot, SLOT.busy, 1000) === 'timed-out' && Atomics.load(this.ctrl, CTRL.started) === 0) {
        waited += 1000;
        if (waited >= START_TIMEOUT_MS) throw new Error('internal: no deflate worker started within a minute (the worker script failed to load)');
      }
    }
    Atomics.store(this.state, slot, SLOT.idle);
  }

  /** Stops the workers (idle ones exit at once; a busy one after its batch). */
  close(): void {
    Atomics.store(this.ctrl, CTRL.closed, 1);
    Atomics.add(this.ctrl, CTRL.wake, 1);
    Atomics.notify(this.ctrl, CTRL.wake);
    for (const w of this.workers) void w.terminate();
    this.workers = [];
  }

  private start(): void {
    for (let i = 0; i < this.options.threads; i++) {
      const w = new Worker(siblingModule(import.meta.url, 'deflate-worker'), { workerData: this.data });
      // The main thread may be blocked in Atomics.wait; an error event could
      // not be handled there anyway: the worker reports failures through the
      // slot state instead.
      w.on('error', () => {});
      w.unref();
      this.workers.push(w);
    }
  }
}
