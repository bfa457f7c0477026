// Writing a planned image from a program: to a path, a Node Writable, or as
// an async iterator of chunks, in any output format, with progress through a
// callback and cancellation through an AbortSignal. The work takes turns
// with the event loop (1 MiB or 64 source files at a time), so a server can
// embed it.
import type { Writable } from 'node:stream';
import type { Image } from '../image/extent-map.ts';
import type { WriteResult } from '../format/raw.ts';
import { checkOutput, outputChunks, writeOutputAsync, type OutputOptions } from '../format/output.ts';
import { throwIfAborted, type ProgressListener } from '../util/progress.ts';
import type { OutputChoice } from './mkfs.ts';

export interface WriteOptions extends OutputChoice {
  /** Seed of the output's own ids (VDI, VHD UUIDs); default "diskwright". */
  seed?: string;
  /** Timestamps in the output (VHD); default 1. */
  epoch?: number;
  /** Called as the work advances: done never decreases within a phase and reaches total at its end. */
  onProgress?: ProgressListener;
  /** Aborting stops the work: the promise rejects with an AbortError and no output file is left. */
  signal?: AbortSignal;
}

/** Where the bytes go: a file path (written whole or not at all, holes kept) or a Node Writable (ended at the end). */
export type ImageTarget = string | Writable;

function outputOptions(o: WriteOptions): OutputOptions {
  const out: OutputOptions = { format: o.format ?? 'raw', compress: o.compress, level: o.compressLevel, seed: o.seed ?? 'diskwright', epoch: o.epoch ?? 1 };
  checkOutput(out);
  return out;
}

/**
 * Writes `image` (a Volume or Disk: planExt4, planFat, planImage's disk, an
 * opened image) to `target` in the chosen format. Resolves with the file's
 * apparent and allocated size for a path, undefined for a Writable.
 */
export async function writeImage(image: Image, target: ImageTarget, opts: WriteOptions = {}): Promise<WriteResult | undefined> {
  throwIfAborted(opts.signal);
  return writeOutputAsync(image, outputOptions(opts), target, { onProgress: opts.onProgress, signal: opts.signal });
}

/**
 * The output file's bytes, in order and holes as zeros, as an async iterator
 * of chunks made when asked for (about 1 MiB each; compressed, a frame's
 * output; each chunk is the caller's to keep). Stopping early (break) ends the work.
 */
export function imageChunks(image: Image, opts: WriteOptions = {}): AsyncGenerator<Buffer> {
  throwIfAborted(opts.signal);
  return outputChunks(image, outputOptions(opts), { onProgress: opts.onProgress, signal: opts.signal });
}
