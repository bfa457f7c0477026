// Output formats and compression, as make-disk-image names them: the disk's
// extent map goes through the format's transform (itself an extent map of the
// output file) and then the raw emitter, to a file or a stream, in one pass.
import { DiskwrightError } from '../api/errors.ts';
import type { Image } from '../image/extent-map.ts';
import { emit, fileSink, streamSink, writeImageFile, type Sink, type WriteResult } from './raw.ts';
import { zstdSink } from './compress.ts';
import { toQcow2 } from './qcow2.ts';
import { toVdi } from './vdi.ts';
import { toVhdDynamic, toVhdFixed } from './vhd.ts';

export const FORMATS = ['raw', 'qcow2', 'vdi', 'vpc', 'vhd-fixed'] as const;
export type Format = (typeof FORMATS)[number];
export const COMPRESSIONS = ['none', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export interface OutputOptions {
  format: Format;
  compress?: Compression;
  /** zstd level (1-19, default 3). */
  level?: number;
  seed: string;
  epoch: number;
}

/** make-disk-image's file extension for a format, plus the compressor's. */
export function extension(o: Pick<OutputOptions, 'format' | 'compress'>): string {
  const base = { raw: 'img', qcow2: 'qcow2', vdi: 'vdi', vpc: 'vhd', 'vhd-fixed': 'vhd' }[o.format];
  return o.compress === 'zstd' ? `${base}.zst` : base;
}

/** The name hydra-build-products gives the output (`file raw-image ...`). */
export function productType(o: Pick<OutputOptions, 'format'>): string {
  return `${o.format}-image`;
}

export function checkOutput(o: OutputOptions): void {
  if (o.compress && o.compress !== 'none' && o.format !== 'raw') {
    throw new DiskwrightError('OPTION_INVALID', `compress ${o.compress} applies to raw output only; ${o.format} has its own layout (use qcow2-compressed for a compressed qcow2)`, {});
  }
  if (o.level !== undefined && !(Number.isInteger(o.level) && o.level >= 1 && o.level <= 19)) {
    throw new DiskwrightError('OPTION_INVALID', `compression level ${o.level}: give a whole number from 1 to 19`, {});
  }
}

/** The output file as an extent map. */
export function encodeOutput(disk: Image, o: OutputOptions): Image {
  checkOutput(o);
  switch (o.format) {
    case 'raw':
      return disk;
    case 'qcow2':
      return toQcow2(disk);
    case 'vdi':
      return toVdi(disk, o);
    case 'vpc':
      return toVhdDynamic(disk, o);
    case 'vhd-fixed':
      return toVhdFixed(disk, o);
  }
}

function sinkFor(o: OutputOptions, base: Sink): Sink {
  return o.compress === 'zstd' ? zstdSink(base, { level: o.level }) : base;
}

/** Writes the disk in the chosen format to `out`, or to standard output for '-'. */
export function writeOutput(disk: Image, o: OutputOptions, out: string): WriteResult | undefined {
  const file = encodeOutput(disk, o);
  if (out === '-') {
    emit(file, sinkFor(o, streamSink(1)));
    return undefined;
  }
  return writeImageFile(file, out, (fd) => sinkFor(o, fileSink(fd)));
}
