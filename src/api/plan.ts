// Planning from data rather than paths: a build config as an object, or a
// FileTree for one filesystem. Planning reads metadata only (the tree, store
// path hashes) and returns the Image, size and extents, before any data byte
// is written: writeImage or imageChunks (api/write.ts) write it.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { configOf } from '../config/load.ts';
import type { ImageConfigInput } from '../config/schema.ts';
import { DiskwrightError, type ErrorCode } from '../errors.ts';
import { planBuild, type BuildInput, type BuildPlan } from './build.ts';
import type { PlanMessage, PlanRequest } from './plan-worker.ts';
import { unpackImage } from '../image/transfer.ts';
import { abortError, throwIfAborted, withProgress, type ProgressListener } from '../util/progress.ts';
import { siblingModule } from '../util/sibling-module.ts';

export interface PlanOptions {
  /** Relative paths in the config resolve against this directory; default the working directory. */
  baseDir?: string;
  /** What messages call the config; default "config". */
  name?: string;
  /** Progress of scanning the trees and hashing store paths. */
  onProgress?: ProgressListener;
  /** Aborting stops the planning: the promise rejects with an AbortError. */
  signal?: AbortSignal;
}

/**
 * Plans a whole disk from a build config given as an object (the keys of a
 * config file: partitionTableType, contents, storePaths, format, ...):
 * resolves with the disk Image, its layout (partitions, filesystems, free
 * space) and, with touchEFIVars, the EFI variable store's bytes.
 *
 * The config is checked on the caller's thread (a mistake in it rejects at
 * once); the planning itself (scanning trees, hashing store paths: seconds
 * for a large tree) runs on a worker thread, and the Image comes back in a
 * few transferred buffers rebuilt in slices of about 2 ms, so the event loop
 * keeps turning. Aborting terminates the worker. Two exceptions are planned
 * on the caller's thread in one piece, blocking it for the whole planning:
 * a config with a prepared partition image (`partitions[].image`), whose
 * extents read an open input (a qcow2's compressed clusters, a .zst) that
 * cannot cross threads, and (after the worker has planned it) an Image whose
 * other bytes made on demand (ext4 block bitmaps, 4 KiB per partly used
 * group) exceed 64 MiB; the signal is then checked only between stages.
 */
export async function planImage(config: ImageConfigInput, opts: PlanOptions = {}): Promise<BuildPlan> {
  throwIfAborted(opts.signal);
  const baseDir = path.resolve(opts.baseDir ?? '.');
  const name = opts.name ?? 'config';
  const loaded = configOf(config, name, baseDir, name);
  const input: BuildInput = { config: loaded.config, given: loaded.given, baseDir, file: name };
  const plan = loaded.config.partitions?.some((p) => p.image !== undefined)
    ? planHere(input, opts)
    : (await planInWorker(input, opts)) ?? planHere(input, opts);
  throwIfAborted(opts.signal);
  return plan;
}

function planHere(input: BuildInput, opts: PlanOptions): BuildPlan {
  throwIfAborted(opts.signal);
  return withProgress({ onProgress: opts.onProgress, signal: opts.signal }, () => planBuild(input));
}

/** The plan made on a worker thread; undefined when its Image cannot cross threads (packImage). */
function planInWorker(input: BuildInput, opts: PlanOptions): Promise<BuildPlan | undefined> {
  const { signal, onProgress } = opts;
  const request: PlanRequest = { planWorker: true, input, progress: onProgress !== undefined };
  const worker = new Worker(siblingModule(import.meta.url, 'plan-worker'), { workerData: request });
  return new Promise<BuildPlan | undefined>((resolve, reject) => {
    let settled = false;
    let stopped: Promise<number> | undefined;
    const stop = () => (stopped ??= worker.terminate());
    // Settles once the thread is gone: an abort leaves no planner running.
    const finish = (err: unknown, plan?: BuildPlan) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      const settle = () => (err ? reject(err) : resolve(plan));
      stop().then(settle, settle);
    };
    const onAbort = () => finish(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: PlanMessage) => {
      if (settled) return;
      switch (m.kind) {
        case 'progress':
          // A listener that throws fails the planning, as it does on this thread.
          try {
            onProgress?.(m.event);
          } catch (err) {
            finish(err);
          }
          return;
        case 'lazy':
          return finish(undefined, undefined);
        case 'error':
          return finish(rebuiltError(m));
        case 'plan':
          // The worker's work is done; the rebuild below runs on this thread.
          void stop();
          unpackImage(m.disk, () => throwIfAborted(signal)).then(
            (disk) => finish(undefined, { disk, layout: m.layout, efiVars: m.efiVars && Buffer.from(m.efiVars.buffer, m.efiVars.byteOffset, m.efiVars.byteLength) }),
            (err: unknown) => finish(err),
          );
      }
    });
    worker.on('error', (err) => finish(err));
    worker.on('exit', (code) => stopped || finish(new Error(`internal: the planning worker exited (${code}) without a plan`)));
  });
}

/** The worker's error on this thread: a DiskwrightError with its code, message and data. */
function rebuiltError(m: Extract<PlanMessage, { kind: 'error' }>): Error {
  const err = m.code ? new DiskwrightError(m.code as ErrorCode, m.message, m.data) : new Error(m.message);
  if (!m.code) err.name = m.name;
  if (m.stack) err.stack = m.stack;
  return err;
}
