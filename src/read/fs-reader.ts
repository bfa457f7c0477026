// What the ext4 and FAT readers do alike, once: path lookup, readdir, the
// tree walk and content reads. A filesystem says how to find one name in a
// directory, list a directory, and where an entry's content lies (ContentRun);
// the rest follows the same way for both, with the same errors.
import { DiskwrightError } from '../errors.ts';
import {
  type ChunkOptions, compareKeys, type DataRun, displayKey, type FsEntry, type FsReader, type FsSummary, keyParts, type OwnedRange,
  pathKey,
} from './entry.ts';
import { entryNameProblem } from './names.ts';
import { type ByteSource, readAt } from './source.ts';

/**
 * Bytes [logical, logical+length) of an entry's content: at byte `physical` of
 * the filesystem, or held in metadata (`bytes`: ext4 inline data). Runs come
 * in increasing logical order; what no run covers reads as zeros (a hole).
 */
export type ContentRun = { logical: number; length: number } & ({ physical: number } | { bytes: Buffer });

/**
 * The content in pieces of at most `chunkSize` bytes, cut at `size`; holes are
 * left out. `runs` is asked for only when there is something to read, so an
 * empty range never walks a cluster chain or extent tree.
 */
export function* contentChunks(
  source: ByteSource, runs: () => readonly ContentRun[], size: number, opts: ChunkOptions, what: string,
): Generator<{ offset: number; data: Buffer }> {
  const from = opts.offset ?? 0;
  const to = Math.min(size, opts.length === undefined ? size : from + opts.length);
  const chunk = opts.chunkSize ?? 1 << 20;
  if (to <= from) return;
  for (const r of runs()) {
    const s = Math.max(from, r.logical);
    const t = Math.min(to, r.logical + r.length);
    for (let p = s; p < t; p += chunk) {
      const n = Math.min(chunk, t - p);
      const at = p - r.logical;
      yield { offset: p, data: 'bytes' in r ? Buffer.from(r.bytes.subarray(at, at + n)) : readAt(source, r.physical + at, n, what) };
    }
  }
}

/** Bytes [offset, offset+length) of the content, holes as zeros, cut at `size`. */
export function readContent(source: ByteSource, runs: () => readonly ContentRun[], size: number, offset: number, length: number | undefined, what: string): Buffer {
  const end = Math.min(size, length === undefined ? size : offset + length);
  if (end <= offset) return Buffer.alloc(0);
  const out = Buffer.alloc(end - offset);
  for (const c of contentChunks(source, runs, size, { offset, length: end - offset, chunkSize: 8 << 20 }, what)) c.data.copy(out, c.offset - offset);
  return out;
}

/** The byte ranges the runs cover, cut at `size`, neighbours merged. */
export function contentDataRuns(runs: readonly ContentRun[], size: number): DataRun[] {
  const out: DataRun[] = [];
  for (const r of runs) {
    const s = r.logical;
    const t = Math.min(size, r.logical + r.length);
    if (t <= s) continue;
    const last = out[out.length - 1];
    if (last && last.offset + last.length === s) last.length += t - s;
    else out.push({ offset: s, length: t - s });
  }
  return out;
}

export abstract class FsReaderBase implements FsReader {
  abstract readonly source: ByteSource;
  /** How IMAGE_CORRUPT messages name the filesystem: 'ext4', 'FAT'. */
  protected abstract readonly fsName: string;
  abstract summary(): FsSummary;
  abstract root(): FsEntry;
  abstract allocation(): OwnedRange[];
  /** The entry called `name` (a byte string) in directory `dir`, or undefined. */
  protected abstract child(dir: FsEntry, name: string): FsEntry | undefined;
  /** A directory's entries without '.' and '..', in any order. */
  protected abstract children(dir: FsEntry): FsEntry[];
  /** Where the entry's content lies. */
  protected abstract content(entry: FsEntry): ContentRun[];
  /** What a directory is on disk (ext4: its inode, FAT: its first cluster): reaching one twice is a loop. */
  protected abstract dirIdentity(dir: FsEntry): { id: number; what: string };

  lookup(path: string | Buffer): FsEntry {
    const key = pathKey(path);
    let cur = this.root();
    for (const part of keyParts(key)) {
      if (cur.type !== 'dir') {
        throw new DiskwrightError('NOT_A_DIRECTORY', `${displayKey(cur.path)} is not a directory (looking up ${displayKey(key)})`, { path: displayKey(key) });
      }
      const next = this.child(cur, part);
      if (!next) throw new DiskwrightError('PATH_NOT_FOUND', `${displayKey(key)}: no such file or directory`, { path: displayKey(key) });
      cur = next;
    }
    return cur;
  }

  stat(path: string | Buffer): FsEntry {
    return this.lookup(path);
  }

  protected entryOf(e: FsEntry | string | Buffer): FsEntry {
    return typeof e === 'string' || Buffer.isBuffer(e) ? this.lookup(e) : e;
  }

  readdir(dir: FsEntry | string | Buffer): FsEntry[] {
    const d = this.entryOf(dir);
    if (d.type !== 'dir') throw new DiskwrightError('NOT_A_DIRECTORY', `${displayKey(d.path)} is not a directory`, { path: displayKey(d.path) });
    return this.children(d).sort((a, b) => compareKeys(a.name, b.name));
  }

  *walk(from?: FsEntry | string | Buffer): Generator<FsEntry> {
    const seen = new Set<number>();
    const stack: FsEntry[] = [from === undefined ? this.root() : this.entryOf(from)];
    while (stack.length > 0) {
      const e = stack.pop()!;
      yield e;
      // A directory whose name cannot be a path component ('..', 'a/b') gives its children no usable path.
      if (e.type !== 'dir' || entryNameProblem(e) !== undefined) continue;
      const { id, what } = this.dirIdentity(e);
      if (seen.has(id)) throw new DiskwrightError('IMAGE_CORRUPT', `${this.fsName}: directory ${what} (${displayKey(e.path)}) is reachable twice`, {});
      seen.add(id);
      const kids = this.readdir(e);
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]);
    }
  }

  read(entry: FsEntry, offset = 0, length?: number): Buffer {
    return readContent(this.source, () => this.content(entry), entry.size, offset, length, displayKey(entry.path));
  }

  chunks(entry: FsEntry, opts: ChunkOptions = {}): Generator<{ offset: number; data: Buffer }> {
    return contentChunks(this.source, () => this.content(entry), entry.size, opts, displayKey(entry.path));
  }

  dataRuns(entry: FsEntry): DataRun[] {
    return entry.size > 0 ? contentDataRuns(this.content(entry), entry.size) : [];
  }
}
