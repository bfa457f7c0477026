// Progress and cancellation for long work, reached from deep inside the
// pipeline (the tree scan, NAR hashing, the emitter) without threading a
// parameter through every layer: the API entry runs the work inside a context
// (AsyncLocalStorage, so concurrent builds in one process keep theirs apart)
// and the stages ask it for a counter. Without a listener a counter costs one
// addition and one comparison per chunk; listeners hear about every ~0.1 % of
// a phase, not every chunk. Progress never reaches the output bytes.
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * scanning: entries found in source trees (done counts entries; no total);
 * hashing: bytes of store paths NAR-hashed (total: their size);
 * writing, compressing, converting, layers: data bytes of the image emitted
 * (total: the bytes the extent map holds; holes cost nothing).
 */
export type ProgressPhase = 'scanning' | 'hashing' | 'writing' | 'compressing' | 'converting' | 'layers';

export interface ProgressEvent {
  phase: ProgressPhase;
  /** Never decreases within a phase; equals total at the phase's end. */
  done: number;
  /** Absent where it is not known in advance (scanning). */
  total?: number;
}

export type ProgressListener = (e: ProgressEvent) => void;

export interface ProgressContext {
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  /** Counters of phases without a total, kept across the calls that add to them. */
  tallies?: Map<ProgressPhase, PhaseCounter>;
}

const current = new AsyncLocalStorage<ProgressContext>();

/** Runs `fn` with `ctx`: its stages report to ctx.onProgress and stop when ctx.signal aborts. */
export function withProgress<T>(ctx: ProgressContext, fn: () => T): T {
  return current.run(ctx, fn);
}

/** The context of the work running now, if any. */
export function progressContext(): ProgressContext | undefined {
  return current.getStore();
}

/** An AbortError as fetch and Node's streams throw it, carrying the signal's reason. */
export function abortError(signal: AbortSignal): DOMException {
  const e = new DOMException('the operation was aborted', 'AbortError');
  if (signal.reason !== undefined) Object.defineProperty(e, 'cause', { value: signal.reason });
  return e;
}

/** Throws an AbortError if the running work's signal has fired. */
export function throwIfAborted(signal = current.getStore()?.signal): void {
  if (signal?.aborted) throw abortError(signal);
}

export interface PhaseCounter {
  /** Counts `n` more units done. */
  add(n: number): void;
  /** The phase is complete: done becomes total (or stays, without one). */
  end(): void;
}

const NOOP: PhaseCounter = { add() {}, end() {} };

/**
 * A counter for one phase of the running work; a no-op outside a context with
 * a listener. `step` is the least progress worth reporting when there is no total.
 */
export function startPhase(phase: ProgressPhase, total?: number, step = 1 << 20, ctx = current.getStore()): PhaseCounter {
  const listener = ctx?.onProgress;
  if (!listener) return NOOP;
  const every = total !== undefined ? Math.max(1, Math.floor(total / 1000)) : step;
  let done = 0;
  let next = every;
  listener(total === undefined ? { phase, done } : { phase, done, total });
  return {
    add(n) {
      done += n;
      if (done < next) return;
      next = done + every;
      if (total !== undefined && done > total) done = total;
      listener(total === undefined ? { phase, done } : { phase, done, total });
    },
    end() {
      if (total !== undefined) done = total;
      listener(total === undefined ? { phase, done } : { phase, done, total });
    },
  };
}

/**
 * The running work's counter for a phase without a total (scanning), shared
 * by every call that adds to it: a tree is scanned in many pieces (sources,
 * store paths, contents), and the count must not restart with each.
 */
export function tally(phase: ProgressPhase, step: number, ctx = current.getStore()): PhaseCounter {
  if (!ctx?.onProgress) return NOOP;
  ctx.tallies ??= new Map();
  let c = ctx.tallies.get(phase);
  if (!c) ctx.tallies.set(phase, (c = startPhase(phase, undefined, step, ctx)));
  return c;
}
