// `diskwright convert`: a disk image in any format we read to any format we
// write. The input is decoded to its virtual disk's extent map (openImage)
// and written through the same writeOutput every build uses, so every output
// format, compression and the stream/temp-file behaviour come for free.
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { defaultEpoch, MAX_EPOCH } from './epoch.ts';
import { openImage, type InputFormat } from '../format/input.ts';
import { COMPRESSIONS, FORMATS, checkOutput, checkTarget, writeOutput, type Compression, type Format } from '../format/output.ts';
import type { WriteResult } from '../format/raw.ts';
import { writeQcow2Scanned } from '../format/qcow2-scan.ts';

export interface ConvertOptions {
  /** The image to read. */
  input: string;
  /** The file to write, or '-' for standard output. */
  output: string;
  /** Output format; default from the output's extension (required for '-'). */
  format?: Format;
  /** Compression of a raw output; default from the extension (.zst, .xz), else none. */
  compress?: Compression;
  compressLevel?: number;
  /** Read the input as this format instead of detecting it (raw accepts any bytes). */
  inputFormat?: string;
  /** Seed for the output's ids (VDI and VHD UUIDs); default "diskwright". */
  seed?: string;
  /** Timestamps in the output (VHD); default SOURCE_DATE_EPOCH, else 1. */
  epoch?: number;
}

export interface ConvertResult {
  input: {
    path: string;
    format: InputFormat;
    description: string;
    /** Virtual disk size. */
    size: number;
    /** Bytes the extent map marks as data (the rest are holes). */
    dataBytes: number;
  };
  format: Format;
  compress: Compression;
  /** Apparent and allocated size of the output file; undefined for '-'. */
  write?: WriteResult;
}

const BY_EXTENSION: Record<string, Format> = {
  '.qcow2': 'qcow2',
  '.vdi': 'vdi',
  '.vhd': 'vpc',
  '.img': 'raw',
  '.raw': 'raw',
};
const COMPRESSION_EXTENSIONS: Record<string, string> = { '.zst': 'zstd', '.xz': 'xz' };

function invalid(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('OPTION_INVALID', message, data);
}

/**
 * The output format and compression: given ones win; otherwise from the
 * output's name (.qcow2, .vdi, .vhd -> vpc, .img/.raw -> raw; a trailing
 * .zst or .xz -> raw plus that compression). '-' needs an explicit format.
 */
export function outputChoice(output: string, format?: string, compress?: string): { format: Format; compress: Compression } {
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) {
    invalid(`output format ${format}: use one of ${FORMATS.join(', ')}`, { format });
  }
  if (compress !== undefined && !(COMPRESSIONS as readonly string[]).includes(compress)) {
    invalid(`compression ${compress}: use one of ${COMPRESSIONS.join(', ')}`, { compress });
  }
  if (output === '-') {
    if (format === undefined) invalid(`the output is standard output ('-'): give --format (${FORMATS.join(', ')})`);
    return { format: format as Format, compress: (compress ?? 'none') as Compression };
  }
  let name = path.basename(output).toLowerCase();
  let byName: string | undefined;
  const cext = path.extname(name);
  if (COMPRESSION_EXTENSIONS[cext]) {
    byName = COMPRESSION_EXTENSIONS[cext];
    name = name.slice(0, -cext.length);
    if (!(COMPRESSIONS as readonly string[]).includes(byName)) invalid(`${output}: ${byName} output is not supported; name it otherwise or give --compress`);
  }
  const resolvedCompress = (compress ?? byName ?? 'none') as Compression;
  if (format !== undefined) return { format: format as Format, compress: resolvedCompress };
  const fext = path.extname(name);
  const byExt = BY_EXTENSION[fext] ?? (byName && fext === '' ? 'raw' : undefined);
  if (!byExt) {
    invalid(`cannot tell the output format from the name ${output}; name it .img, .qcow2, .vdi, .vhd, .img.zst or .img.xz, or give --format (${FORMATS.join(', ')})`, { output });
  }
  return { format: byExt, compress: resolvedCompress };
}

/** Converts `input` to `output`; the output appears only when complete. */
export function convertImage(o: ConvertOptions): ConvertResult {
  const { format, compress } = outputChoice(o.output, o.format, o.compress);
  const out = { format, compress, level: o.compressLevel, seed: o.seed ?? 'diskwright', epoch: o.epoch ?? defaultEpoch(process.env, MAX_EPOCH), phase: 'converting' as const, dataFirst: true };
  // Option mistakes before reading anything.
  checkTarget(out, o.output);
  checkOutput(out);
  if (o.output !== '-' && path.resolve(o.output) === path.resolve(o.input)) {
    invalid(`the output ${o.output} is the input; write the converted image to another file`, { output: o.output });
  }
  const src = openImage(o.input, { format: o.inputFormat });
  try {
    const input = { path: src.path, format: src.format, description: src.description, size: src.size };
    if (src.format === 'raw' && format === 'qcow2' && o.output !== '-') {
      // One pass over the input: no scan for zeros before the copy.
      const { dataBytes, ...write } = writeQcow2Scanned(src, o.output);
      return { input: { ...input, dataBytes }, format, compress, write };
    }
    const disk = src.image();
    let dataBytes = 0;
    for (const e of disk.extents) dataBytes += e.length;
    const write = writeOutput(disk, out, o.output);
    return {
      input: { ...input, dataBytes },
      format,
      compress,
      write,
    };
  } finally {
    src.close();
  }
}
