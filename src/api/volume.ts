// Opening what the reading commands (inspect, ls, cat, extract, diff) are
// given: an image in any format we read (openImage), optionally naming one
// partition as IMAGE:N or IMAGE:LABEL, down to the filesystem reader.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { openImage, type DiskSource } from '../format/input.ts';
import { type ByteSource, checkRange } from '../read/source.ts';
import { openFilesystem, selectVolume } from '../read/index.ts';
import type { PartitionEntry, PartitionTable } from '../read/partition.ts';
import type { FsReader } from '../read/entry.ts';

export interface ImageArg {
  /** The image file. */
  path: string;
  /** The partition it names (IMAGE:N or IMAGE:LABEL), if any. */
  part?: string;
}

const exists = (p: string) => {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
};

/**
 * Splits IMAGE[:PART]. When the whole argument names an existing file it is
 * the image, colons and all; otherwise the longest prefix before a colon that
 * exists is the image and the rest names the partition. Anything else is an
 * image path that openImage will report as missing.
 */
export function parseImageArg(arg: string): ImageArg {
  if (exists(arg)) return { path: arg };
  for (let i = arg.lastIndexOf(':'); i > 0; i = arg.lastIndexOf(':', i - 1)) {
    const part = arg.slice(i + 1);
    if (part !== '' && exists(arg.slice(0, i))) return { path: arg.slice(0, i), part };
  }
  return { path: arg };
}

export interface ReadOptions {
  /** Read the image as this format instead of detecting it (raw accepts any file). */
  inputFormat?: string;
}

/** An opened image: its decoded virtual disk, as a ByteSource for the readers. */
export interface OpenedDisk {
  path: string;
  disk: DiskSource;
  /** Reads past the end throw IMAGE_TRUNCATED naming the image. */
  source: ByteSource;
  close(): void;
}

/** Codes of errors about what an image holds: these name the image they were met in. */
const READING_CODES = new Set([
  'IMAGE_UNREADABLE', 'IMAGE_TRUNCATED', 'IMAGE_CORRUPT', 'FILESYSTEM_UNKNOWN', 'PARTITION_NOT_FOUND', 'PATH_NOT_FOUND',
  'NOT_A_DIRECTORY', 'NOT_A_FILE', 'INPUT_NOT_IMAGE', 'INPUT_UNSUPPORTED', 'SOURCE_UNREADABLE', 'SOURCE_CHANGED',
]);

/**
 * `e` as the user should see it: a reading error prefixed with the input's
 * name (once), and damage named as such, so the one line says which file
 * (and partition) is at fault and that the image, not the tool, is wrong.
 */
export function nameInput(e: unknown, what: string): unknown {
  if (!(e instanceof DiskwrightError) || !READING_CODES.has(e.code) || e.data.input !== undefined) return e;
  let message = e.message.includes(what) ? e.message : `${what}: ${e.message}`;
  if (e.code === 'IMAGE_CORRUPT' && !/damaged|corrupt/.test(message)) message += '; the image is damaged';
  const named = new DiskwrightError(e.code, message, { ...e.data, input: what });
  named.stack = e.stack;
  return named;
}

/** Runs `fn`, naming the input in a reading error it throws (see nameInput). */
export function withInput<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw nameInput(e, what);
  }
}

function* namedIterator<T>(it: Iterator<T>, what: string): Generator<T> {
  try {
    // Not yield*: the wrapped iterator's own errors are what is named here.
    while (true) {
      const r = it.next();
      if (r.done) return;
      yield r.value;
    }
  } catch (e) {
    throw nameInput(e, what);
  } finally {
    it.return?.();
  }
}

const isIterator = (v: unknown): v is Iterator<unknown> & Iterable<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as Iterator<unknown>).next === 'function' && typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function';

/**
 * The reader with every method's reading errors naming `what`, iterators
 * (walk, chunks) included: whatever a command does with it (ls, cat,
 * extract, diff), damage it meets names the image. `instanceof` still sees
 * the reader's class.
 */
export function namedReader<R extends FsReader>(reader: R, what: string): R {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(reader, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof v !== 'function') return v;
      let w = wrapped.get(key);
      if (!w) {
        w = (...args: unknown[]) => {
          const r = withInput(what, () => (v as (...a: unknown[]) => unknown).apply(target, args));
          return isIterator(r) ? namedIterator(r, what) : r;
        };
        wrapped.set(key, w);
      }
      return w;
    },
  });
}

export function openDisk(path: string, opts: ReadOptions = {}): OpenedDisk {
  const disk = openImage(path, { format: opts.inputFormat });
  const source: ByteSource = {
    size: disk.size,
    read(offset, length) {
      checkRange(this, offset, length, path);
      return disk.read(offset, length);
    },
  };
  return { path, disk, source, close: () => disk.close() };
}

export interface OpenedVolume {
  image: OpenedDisk;
  table: PartitionTable | null;
  partition?: PartitionEntry;
  source: ByteSource;
  fs: FsReader;
  /** "disk.img" or "disk.img partition 2". */
  what: string;
  /** Problems met reading the table (a broken primary GPT, ...). */
  warnings: string[];
  close(): void;
}

/** Opens IMAGE[:PART] down to its filesystem (see selectVolume for what PART may be). */
export function openVolume(arg: string, opts: ReadOptions = {}): OpenedVolume {
  const { path, part } = parseImageArg(arg);
  const image = openDisk(path, opts);
  try {
    const vol = withInput(path, () => selectVolume(image.source, part));
    const what = vol.partition ? `${path} partition ${vol.partition.index}` : path;
    const reader = namedReader(withInput(what, () => openFilesystem(vol.source, what)), what);
    return {
      image,
      table: vol.table,
      partition: vol.partition,
      source: vol.source,
      fs: reader,
      what,
      warnings: vol.table?.warnings ?? [],
      close: () => image.close(),
    };
  } catch (e) {
    image.close();
    throw e;
  }
}

/** Seconds + nanoseconds as ISO 8601 UTC; the nanoseconds shown when not zero. */
export function isoTime(sec: number, nsec = 0): string {
  const d = new Date(sec * 1000);
  if (Number.isNaN(d.getTime())) return `@${sec}.${String(nsec).padStart(9, '0')}`;
  const base = d.toISOString().replace(/\.\d{3}Z$/, '');
  return nsec ? `${base}.${String(nsec).padStart(9, '0')}Z` : `${base}Z`;
}
