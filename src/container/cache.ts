// The layer cache: a layer's digest (and, compressed, its blob) kept under a
// key that is cheap to compute, so a rebuild reads an unchanged store layer's
// files once, to stream them (uncompressed), or not at all (compressed).
//
// The key is sha256 over every byte of the layer's tar except file data (the
// headers: names, modes, owners, times, link targets, hard links, sizes), where
// each file's data comes from (path, offset, length), the compression with the
// compressor's version and level, and the narHash of every store path whose
// files supply the data. It trusts that store paths are immutable: a file
// changed in place under an unchanged narHash is not seen (--no-cache is for
// that). Layers whose data is not all covered by narHashes (the customisation
// layer, which holds arbitrary files) are never cached: they are hashed.
//
// An entry is one file named by its key: the compressed blob (none for an
// uncompressed layer), then a JSON trailer, then a line with the trailer's
// sha256 and length. Entries are written under a temporary name and renamed
// into place, so concurrent builds of one key each publish a whole file and
// readers see one or the other (both the same bytes). A lookup checks the
// trailer's checksum, that it names this key and compression, the file's
// size, and the blob's sha256 against its digest; anything else is a damaged
// or foreign entry: ignored with a warning and rewritten. No fsync: a crash
// leaves at worst an entry that fails those checks. A cache that cannot be
// read or written is a warning; the build goes on without it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { FileExtent, Image } from '../image/extent-map.ts';
import { isFileExtent, isLazyExtent } from '../image/extent-map.ts';
import { describeSystemError } from '../util/sys-error.ts';
import { LAYER_LEVEL, layerBlob, layerMediaType, type LayerBlob, type LayerCompression } from './blob.ts';

/** Bumped whenever the entry format or the key's inputs change meaning. */
const FORMAT = 1;
const MAGIC = 'diskwright-layer-cache';
/** The trailer is a few hundred bytes; more than this is not one of ours. */
const MAX_TRAILER = 4096;
/** Scratch directories older than this are a killed build's leftovers. */
const STALE_SCRATCH_MS = 24 * 3600 * 1000;
const SCRATCH_PREFIX = '.scratch-';

/** A store path whose files supply (some of) a layer's data. */
export interface StoreContent {
  /** The store path as named (e.g. /nix/store/<hash>-name). */
  path: string;
  /** Where its files are on this machine: file extents under it are covered by narHash. */
  physical: string;
  narHash: Buffer;
}

export interface CachedLayerBlob extends LayerBlob {
  /** True when the digest came from the cache (the layer's files were not hashed). */
  cached: boolean;
}

interface Trailer {
  magic: string;
  format: number;
  key: string;
  compression: LayerCompression;
  mediaType: string;
  diffId: string;
  digest: string;
  /** Blob bytes before the trailer (0 when uncompressed: the blob is the tar). */
  blobSize: number;
  /** The uncompressed tar's size. */
  tarSize: number;
}

/** `$XDG_CACHE_HOME/diskwright/layers`, or `~/.cache/diskwright/layers` (a relative XDG_CACHE_HOME is ignored, as the XDG spec says). */
export function defaultLayerCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'diskwright', 'layers');
}

/**
 * The cache directory to use: the command line's choice (a directory, or
 * false for --no-cache) over the config's `layerCache` (relative to the
 * config's directory) over the default.
 */
export function resolveLayerCacheDir(cli: string | false | undefined, config: string | false | undefined, baseDir: string): string | false {
  if (cli !== undefined) return cli === false ? false : path.resolve(cli);
  if (config !== undefined) return config === false ? false : path.resolve(baseDir, config);
  return defaultLayerCacheDir();
}

/** The compressor and its settings as they reach the blob's bytes; another zstd or zlib may compress differently. */
function compressorId(c: LayerCompression): string {
  if (c === 'none') return 'none';
  return c === 'gzip' ? `gzip ${LAYER_LEVEL.gzip} zlib ${process.versions.zlib}` : `zstd ${LAYER_LEVEL.zstd} libzstd ${process.versions.zstd}`;
}

/**
 * The key of `layer` (hex), or undefined when a file's data is not under one
 * of `content`'s store paths (or is made on demand), so no narHash vouches for it.
 */
export function layerKey(layer: Image, compression: LayerCompression, content: readonly StoreContent[]): string | undefined {
  const h = createHash('sha256');
  h.update(`${MAGIC} key ${FORMAT}\0${compressorId(compression)}\0${layer.size}\0`);
  const sorted = [...content].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  for (const c of sorted) h.update(`${c.path}\0${c.narHash.toString('hex')}\0`);
  const roots = sorted.map((c) => Buffer.from(c.physical + '/'));
  const under = (p: Buffer, r: Buffer) => p.length >= r.length && r.equals(p.subarray(0, r.length));
  // Files come in tar order, a store path's together: the last path matched is nearly always the next one's.
  let last = 0;
  const covered = (p: Buffer) => {
    if (last < roots.length && under(p, roots[last])) return true;
    const i = roots.findIndex((r) => under(p, r));
    if (i >= 0) last = i;
    return i >= 0;
  };
  for (const e of layer.extents) {
    if (isLazyExtent(e)) return undefined;
    if (isFileExtent(e)) {
      if (!covered(e.path)) return undefined;
      h.update(`\0F ${e.offset} ${e.length} ${e.fileOffset} ${e.expectSize} ${e.path.length}\0`);
      h.update(e.path);
    } else {
      h.update(`\0B ${e.offset} ${e.length}\0`);
      h.update(e.buffer.subarray(0, e.length));
    }
  }
  return h.digest('hex');
}

export interface LayerCache {
  /** Where compressed blobs and entries are made before they are published. */
  scratch(): string;
  /**
   * The blob of layer `n`: from the cache when `content` vouches for every
   * file of it and an entry is there, else hashed (or compressed) and stored.
   * `content` undefined: never cached (the customisation layer).
   */
  blob(layer: Image, compression: LayerCompression, content: readonly StoreContent[] | undefined, n: number): CachedLayerBlob;
  /** Removes this build's scratch directory (entries stay). */
  cleanup(): void;
}

/** The cache at `dir` (false: none); problems with it go to `warn` and make it do less, never fail. */
export function openLayerCache(dir: string | false, warn: (message: string) => void): LayerCache {
  let scratchDir: string | undefined;
  let writable = dir !== false;
  let warned = false;
  const problem = (what: string, p: string, err: unknown) => {
    if (warned) return;
    warned = true;
    warn(`layer cache: ${describeSystemError(what, p, err)}; layers are hashed without it (give --cache DIR, or --no-cache)`);
  };
  const scratch = () => {
    if (scratchDir) return scratchDir;
    if (dir !== false && writable) {
      try {
        fs.mkdirSync(dir, { recursive: true });
        removeStaleScratch(dir);
        // In the cache directory, so finished blobs are published by link and rename, never copied.
        return (scratchDir = fs.mkdtempSync(path.join(dir, `${SCRATCH_PREFIX}${process.pid}-`)));
      } catch (err) {
        writable = false;
        problem('cannot write', dir, err);
      }
    }
    return (scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'diskwright-layers-')));
  };

  const lookup = (key: string, compression: LayerCompression, layer: Image, n: number): CachedLayerBlob | undefined => {
    const tarSize = layer.size;
    const entry = path.join(dir as string, key);
    let file = entry;
    if (compression !== 'none') {
      // Our own name for the inode, so a cache cleaned or rewritten meanwhile cannot pull it from under the stream.
      const own = path.join(scratch(), `cached-${n}`);
      try {
        fs.linkSync(entry, own);
        file = own;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        // Another file system (a read-only cache, scratch elsewhere): read the entry in place.
      }
    }
    let t: Trailer | undefined;
    let fileSize = 0;
    try {
      ({ trailer: t, fileSize } = readTrailer(file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (!(err instanceof BadEntry)) {
        problem('cannot read', entry, err);
        return undefined;
      }
    }
    const ok =
      t !== undefined &&
      t.key === key &&
      t.compression === compression &&
      t.tarSize === tarSize &&
      t.mediaType === layerMediaType(compression) &&
      (compression === 'none' ? t.blobSize === 0 && t.digest === t.diffId : t.blobSize > 0) &&
      /^sha256:[0-9a-f]{64}$/.test(t.digest) &&
      /^sha256:[0-9a-f]{64}$/.test(t.diffId);
    let blob: Image | undefined;
    if (ok && compression !== 'none') {
      blob = { size: t!.blobSize, extents: [{ offset: 0, length: t!.blobSize, path: Buffer.from(file), fileOffset: 0, expectSize: fileSize } satisfies FileExtent] };
      try {
        if (`sha256:${sha256Prefix(file, t!.blobSize)}` !== t!.digest) blob = undefined;
      } catch {
        blob = undefined;
      }
    }
    if (!ok || (compression !== 'none' && !blob)) {
      warn(`layer cache: entry ${entry} is damaged or not for this layer; ignored and rewritten`);
      return undefined;
    }
    return { diffId: t!.diffId, digest: t!.digest, size: compression === 'none' ? tarSize : t!.blobSize, mediaType: t!.mediaType, blob: blob ?? layer, cached: true };
  };

  const store = (key: string, compression: LayerCompression, made: LayerBlob, tarSize: number, n: number): LayerBlob => {
    const t: Trailer = { magic: MAGIC, format: FORMAT, key, compression, mediaType: made.mediaType, diffId: made.diffId, digest: made.digest, blobSize: compression === 'none' ? 0 : made.size, tarSize };
    const json = Buffer.from(JSON.stringify(t));
    const tail = Buffer.concat([json, Buffer.from(`\n${createHash('sha256').update(json).digest('hex')} ${json.length}\n`)]);
    const s = scratch();
    if (!writable) return made;
    const blobFile = compression === 'none' ? '' : (made.blob.extents[0] as FileExtent).path.toString();
    let result = made;
    try {
      let file = blobFile;
      if (compression === 'none') {
        file = path.join(s, `entry-${n}`);
        fs.writeFileSync(file, tail);
      } else {
        // The compressed blob in scratch becomes the entry: the trailer goes after it, the stream reads before it.
        fs.appendFileSync(blobFile, tail);
        result = { ...made, blob: { size: made.size, extents: [{ offset: 0, length: made.size, path: Buffer.from(blobFile), fileOffset: 0, expectSize: made.size + tail.length }] } };
      }
      const publish = path.join(s, `publish-${n}`);
      fs.linkSync(file, publish);
      fs.renameSync(publish, path.join(dir as string, key));
    } catch (err) {
      problem('cannot write', dir as string, err);
      if (compression !== 'none') {
        // Back to the bare blob, as planned (a partly appended trailer would read as a changed file).
        try {
          fs.truncateSync(blobFile, made.size);
          result = made;
        } catch {
          // Then the stream finds the file changed and says so: nothing half-written goes out.
        }
      }
    }
    return result;
  };

  return {
    scratch,
    blob(layer, compression, content, n) {
      const key = dir === false || content === undefined ? undefined : layerKey(layer, compression, content);
      if (key !== undefined) {
        const hit = lookup(key, compression, layer, n);
        if (hit) return hit;
      }
      const made = layerBlob(layer, compression, scratch, n);
      return { ...(key === undefined ? made : store(key, compression, made, layer.size, n)), cached: false };
    },
    cleanup() {
      if (scratchDir) fs.rmSync(scratchDir, { recursive: true, force: true });
      scratchDir = undefined;
    },
  };
}

class BadEntry extends Error {}

/** The entry's trailer, checked against its own checksum and the file's size. */
function readTrailer(file: string): { trailer: Trailer; fileSize: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const n = Math.min(fileSize, MAX_TRAILER + 80);
    const tail = Buffer.alloc(n);
    if (fs.readSync(fd, tail, 0, n, fileSize - n) !== n) throw new BadEntry();
    const m = /\n([0-9a-f]{64}) ([0-9]{1,4})\n$/.exec(tail.subarray(Math.max(0, n - 80)).toString('latin1'));
    if (!m) throw new BadEntry();
    const jsonLen = Number(m[2]);
    const lineLen = m[0].length;
    if (jsonLen > MAX_TRAILER || jsonLen + lineLen > n) throw new BadEntry();
    const json = tail.subarray(n - lineLen - jsonLen, n - lineLen);
    if (createHash('sha256').update(json).digest('hex') !== m[1]) throw new BadEntry();
    let t: Trailer;
    try {
      t = JSON.parse(json.toString('utf8')) as Trailer;
    } catch {
      throw new BadEntry();
    }
    if (t.magic !== MAGIC || t.format !== FORMAT || !Number.isSafeInteger(t.blobSize) || t.blobSize + jsonLen + lineLen !== fileSize) throw new BadEntry();
    return { trailer: t, fileSize };
  } finally {
    fs.closeSync(fd);
  }
}

const CHUNK = Buffer.allocUnsafe(1 << 20);

/** sha256 (hex) of the first `length` bytes of `file`, through one shared buffer (a build checks up to a hundred blobs). */
function sha256Prefix(file: string, length: number): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    for (let at = 0; at < length; ) {
      const n = fs.readSync(fd, CHUNK, 0, Math.min(CHUNK.length, length - at), at);
      if (n <= 0) throw new BadEntry();
      h.update(CHUNK.subarray(0, n));
      at += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Removes scratch directories of builds that were killed (older than a day). */
function removeStaleScratch(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(SCRATCH_PREFIX)) continue;
    const p = path.join(dir, name);
    try {
      if (Date.now() - fs.statSync(p).mtimeMs > STALE_SCRATCH_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // Gone already, or another build's: either way not ours to insist on.
    }
  }
}
