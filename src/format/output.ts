// Output formats and compression, as make-disk-image names them: the disk's
// extent map goes through the format's transform (itself an extent map of the
// output file) and then the raw emitter, to a file or a stream, in one pass.
import { DiskwrightError } from '../errors.ts';
import type { Image } from '../image/extent-map.ts';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { deferredFileSink, emit, emitSteps, fileSink, sequentialSink, streamSink, writeImageFile, type Sink, type WriteResult } from './raw.ts';
import { writeFileAtomicallyAsync } from './atomic-file.ts';
import { throwIfAborted, withProgress, type ProgressContext, type ProgressPhase } from '../util/progress.ts';
import { compressSink, deferredZstdSink, type DeferredSink } from './compress.ts';
import { toQcow2, toQcow2DataFirst } from './qcow2.ts';
import { notStreamable, writeQcow2Compressed } from './qcow2-compressed.ts';
import { toVdi } from './vdi.ts';
import { toVhdDynamic, toVhdFixed } from './vhd.ts';

export const FORMATS = ['raw', 'qcow2', 'qcow2-compressed', 'vdi', 'vpc', 'vhd-fixed'] as const;
export type Format = (typeof FORMATS)[number];
export const COMPRESSIONS = ['none', 'zstd', 'xz'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export interface OutputOptions {
  format: Format;
  compress?: Compression;
  /** Compression level: zstd 1-19 (default 3), xz 0-9 (default 6), qcow2-compressed (zlib) 1-9 (default 6). */
  level?: number;
  seed: string;
  epoch: number;
  /** What progress calls the work: writing by default, converting for convert; compressing when compressed. */
  phase?: 'writing' | 'converting';
  /** qcow2 in convert's layout, data before the tables (qcow2.ts dataFirstTables), not a build's. */
  dataFirst?: boolean;
}

/** make-disk-image's file extension for a format, plus the compressor's. */
export function extension(o: Pick<OutputOptions, 'format' | 'compress'>): string {
  const base = { raw: 'img', qcow2: 'qcow2', 'qcow2-compressed': 'qcow2', vdi: 'vdi', vpc: 'vhd', 'vhd-fixed': 'vhd' }[o.format];
  return o.compress === 'zstd' ? `${base}.zst` : o.compress === 'xz' ? `${base}.xz` : base;
}

/** The name hydra-build-products gives the output (`file raw-image ...`). */
export function productType(o: Pick<OutputOptions, 'format'>): string {
  // make-disk-image turns qcow2-compressed into format qcow2 plus qemu-img -c.
  return `${o.format === 'qcow2-compressed' ? 'qcow2' : o.format}-image`;
}

/** Refuses, before any work, an output the format cannot be written to ('-': a stream). */
export function checkTarget(o: Pick<OutputOptions, 'format'>, out: string): void {
  if (out === '-' && o.format === 'qcow2-compressed') throw notStreamable();
}

export function checkOutput(o: OutputOptions): void {
  if (o.compress && o.compress !== 'none' && o.format !== 'raw') {
    throw new DiskwrightError('OPTION_INVALID', `compress ${o.compress} applies to raw output only; ${o.format} has its own layout (use qcow2-compressed for a compressed qcow2)`, {});
  }
  const [min, max] = levelRange(o);
  if (o.level !== undefined && !(Number.isInteger(o.level) && o.level >= min && o.level <= max)) {
    throw new DiskwrightError('OPTION_INVALID', `compression level ${o.level}: ${levelName(o)} takes a whole number from ${min} to ${max}`, {});
  }
}

/** The output file as an extent map. */
export function encodeOutput(disk: Image, o: OutputOptions): Image {
  checkOutput(o);
  switch (o.format) {
    case 'raw':
      return disk;
    case 'qcow2':
      return o.dataFirst ? toQcow2DataFirst(disk) : toQcow2(disk);
    case 'qcow2-compressed':
      // Its L2 entries exist only after compressing: writeOutput writes it.
      throw new Error('internal: qcow2-compressed has no extent map; use writeOutput');
    case 'vdi':
      return toVdi(disk, o);
    case 'vpc':
      return toVhdDynamic(disk, o);
    case 'vhd-fixed':
      return toVhdFixed(disk, o);
  }
}

/** The levels the chosen compressor takes. */
function levelRange(o: Pick<OutputOptions, 'format' | 'compress'>): [number, number] {
  if (o.compress === 'xz') return [0, 9];
  if (o.format === 'qcow2-compressed') return [1, 9];
  return [1, 19];
}

function levelName(o: Pick<OutputOptions, 'format' | 'compress'>): string {
  return o.compress && o.compress !== 'none' ? o.compress : o.format;
}

function sinkFor(o: OutputOptions, base: Sink): Sink {
  return compressSink(o.compress, base, { level: o.level });
}

/** sinkFor for the async emitter: zstd frames are compressed off the event loop's thread. */
function deferredSinkFor(o: OutputOptions, base: Sink): DeferredSink {
  if (o.compress === 'zstd') return deferredZstdSink(base, { level: o.level });
  return { sink: sinkFor(o, base), drain: async () => {}, close() {} };
}

function phaseOf(o: OutputOptions): ProgressPhase {
  return o.compress && o.compress !== 'none' ? 'compressing' : o.phase ?? 'writing';
}

/** Writes the disk in the chosen format to `out`, or to standard output for '-'. */
export function writeOutput(disk: Image, o: OutputOptions, out: string): WriteResult | undefined {
  checkTarget(o, out);
  if (o.format === 'qcow2-compressed') {
    checkOutput(o);
    return writeQcow2Compressed(disk, out, { level: o.level });
  }
  const file = encodeOutput(disk, o);
  if (out === '-') {
    emit(file, sinkFor(o, streamSink(1)), phaseOf(o));
    return undefined;
  }
  return writeImageFile(file, out, (fd) => sinkFor(o, fileSink(fd)), phaseOf(o));
}

/**
 * writeOutput taking turns with the event loop (emitAsync), to a file
 * (holes kept) or a Node Writable. qcow2-compressed deflates on its worker
 * pool while this thread waits, so it goes to a file only, in one piece.
 */
export async function writeOutputAsync(disk: Image, o: OutputOptions, out: string | Writable, ctx?: ProgressContext): Promise<WriteResult | undefined> {
  throwIfAborted(ctx?.signal);
  if (typeof out !== 'string') {
    await pipeline(Readable.from(outputChunks(disk, o, ctx)), out, ctx?.signal ? { signal: ctx.signal } : {});
    return undefined;
  }
  checkTarget(o, out);
  if (o.format === 'qcow2-compressed') return withProgress(ctx ?? {}, () => writeOutput(disk, o, out));
  const file = encodeOutput(disk, o);
  const done = await writeFileAtomicallyAsync(out, 'image', async (fd) => {
    const target = deferredFileSink(fd);
    const chain = deferredSinkFor(o, target.sink);
    try {
      for await (const _ of emitSteps(file, chain.sink, phaseOf(o), ctx)) {
        await chain.drain();
        await target.drain();
      }
    } finally {
      chain.close();
    }
  });
  return { apparentBytes: done.size, allocatedBytes: done.blocks * 512 };
}

/**
 * The output file's bytes in order (holes as zeros), as chunks of about a
 * MiB made as they are asked for: the emitter runs only as fast as they are taken.
 */
export async function* outputChunks(disk: Image, o: OutputOptions, ctx?: ProgressContext): AsyncGenerator<Buffer> {
  checkTarget(o, '-');
  const file = encodeOutput(disk, o);
  const made: Buffer[] = [];
  // Copies: the emitter and compressors reuse their buffers.
  const chain = deferredSinkFor(o, sequentialSink((buf, len) => made.push(Buffer.from(buf.subarray(0, len)))));
  try {
    for await (const _ of emitSteps(file, chain.sink, phaseOf(o), ctx)) {
      await chain.drain();
      yield* made.splice(0);
    }
  } finally {
    chain.close();
  }
}
