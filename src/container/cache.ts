// The layer cache: a layer's digest (and, compressed, its blob) kept under a
// key that is cheap to compute, so a rebuild reads an unchanged store layer's
// files once, to stream them (uncompressed), or not at all (compressed).
//
// A store layer's key is sha256 over what is known before any file is
// scanned: its store paths with their narHashes (from the registration), the
// tar's settings (owners, names, mtime, perms rules, store dir), the
// compressor with its version and level, and the entry format. So a hit on a
// compressed layer costs no lstat and no read of its files. The key trusts
// that store paths are immutable: a file changed in place under an unchanged
// narHash, or a store re-linked by `nix-store --optimise` (which changes
// which files are tar hard links) between builds, is not seen; --no-cache is
// for a store where that does not hold. (An uncompressed hit still builds
// its tar to stream it; a tar whose size differs from the entry's is
// re-hashed.) The customisation layer, arbitrary files, is never cached.
//
// An entry is one file named by its key: the compressed blob (none for an
// uncompressed layer), then a JSON trailer, then a line with the trailer's
// sha256 and length. Entries are written under a temporary name and renamed
// into place, so concurrent builds of one key each publish a whole file and
// readers see one or the other (both the same bytes). A lookup checks the
// trailer's checksum, that it names this key and compression, the file's
// size, and the blob's crc32 (taken while it was written; it finds damage,
// not forgery, at a third of sha256's cost); anything else is a damaged
// or foreign entry: ignored with a warning and rewritten. No fsync: a crash
// leaves at worst an entry that fails those checks. A cache that cannot be
// read or written is a warning; the build goes on without it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import type { FileExtent, Image } from '../image/extent-map.ts';
import { describeSystemError } from '../util/sys-error.ts';
import { LAYER_LEVEL, layerBlob, layerMediaType, type LayerBlob, type LayerCompression } from './blob.ts';

/** Bumped whenever the entry format or the key's inputs change meaning. */
const FORMAT = 2;
const MAGIC = 'diskwright-layer-cache';
/** The trailer is a few hundred bytes; more than this is not one of ours. */
const MAX_TRAILER = 4096;
/** Scratch directories older than this are a killed build's leftovers. */
const STALE_SCRATCH_MS = 24 * 3600 * 1000;
const SCRATCH_PREFIX = '.scratch-';

/** What a store layer's tar is made of, all known before any file is read. */
export interface StoreLayerInput {
  /** Its store paths (full, as named in the image) and their narHashes, from the registration. */
  paths: ReadonlyArray<{ path: string; narHash: Buffer }>;
  /** Everything else that reaches the tar's bytes: owners, names, mtime, perms rules, store dir. */
  tar: unknown;
}

/** What building a layer's tar found that the caller reports; kept in the entry, as a hit builds no tar. */
export interface LayerNotes {
  /** Indexes of perms rules that matched a member. */
  matchedPerms: number[];
  /** Members tar cannot hold (sockets), left out. */
  skipped: string[];
}

/** A layer to hash or fetch: its key (undefined: never cached) and how to build its tar, which scans its files. */
export interface LayerSource {
  key: string | undefined;
  tar(): { image: Image; notes: LayerNotes };
}

export interface CachedLayerBlob extends LayerBlob {
  /** True when the digest came from the cache (the layer's files were not hashed). */
  cached: boolean;
  notes: LayerNotes;
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
  /** zlib crc32 of the blob bytes (0 when uncompressed). */
  blobCrc32: number;
  notes: LayerNotes;
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
  return c === 'gzip' ? `gzip ${LAYER_LEVEL.gzip} blocks 256k zlib ${process.versions.zlib}` : `zstd ${LAYER_LEVEL.zstd} one frame 4m jobs libzstd ${process.versions.zstd}`;
}

/**
 * The key of a store layer (hex), from the registration alone: no file is
 * scanned or read, so a compressed layer that hits is never looked at.
 */
export function storeLayerKey(layer: StoreLayerInput, compression: LayerCompression): string {
  const paths = [...layer.paths].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return createHash('sha256')
    .update(JSON.stringify([MAGIC, 'key', FORMAT, compressorId(compression), layer.tar, paths.map((p) => [p.path, p.narHash.toString('hex')])]))
    .digest('hex');
}

export interface LayerCache {
  /** Where compressed blobs and entries are made before they are published. */
  scratch(): string;
  /**
   * The blob of layer `n`: from the cache when its key has an entry (a
   * compressed layer's tar is then never built), else its tar built, hashed
   * (or compressed) and stored. No key: never cached (the customisation layer).
   */
  blob(layer: LayerSource, compression: LayerCompression, n: number): CachedLayerBlob;
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

  /** An uncompressed hit builds the tar (it is streamed), and the entry must know its size. */
  const lookup = (key: string, compression: LayerCompression, tarOf: () => Image, n: number): CachedLayerBlob | undefined => {
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
    const tar = t !== undefined && compression === 'none' ? tarOf() : undefined;
    const ok =
      t !== undefined &&
      t.key === key &&
      t.compression === compression &&
      Number.isSafeInteger(t.tarSize) &&
      Number.isSafeInteger(t.blobCrc32) &&
      (tar === undefined || t.tarSize === tar.size) &&
      validNotes(t.notes) &&
      t.mediaType === layerMediaType(compression) &&
      (compression === 'none' ? t.blobSize === 0 && t.digest === t.diffId : t.blobSize > 0) &&
      /^sha256:[0-9a-f]{64}$/.test(t.digest) &&
      /^sha256:[0-9a-f]{64}$/.test(t.diffId);
    let blob: Image | undefined;
    if (ok && compression !== 'none') {
      blob = { size: t!.blobSize, extents: [{ offset: 0, length: t!.blobSize, path: Buffer.from(file), fileOffset: 0, expectSize: fileSize } satisfies FileExtent] };
      try {
        if (crc32Prefix(file, t!.blobSize) !== t!.blobCrc32) blob = undefined;
      } catch {
        blob = undefined;
      }
    }
    if (!ok || (compression !== 'none' && !blob)) {
      warn(`layer cache: entry ${entry} is damaged or not for this layer; ignored and rewritten`);
      return undefined;
    }
    return { diffId: t!.diffId, digest: t!.digest, size: compression === 'none' ? t!.tarSize : t!.blobSize, mediaType: t!.mediaType, blob: blob ?? tar!, cached: true, notes: t!.notes };
  };

  const store = (key: string, compression: LayerCompression, made: LayerBlob, tarSize: number, notes: LayerNotes, n: number): LayerBlob => {
    const t: Trailer = { magic: MAGIC, format: FORMAT, key, compression, mediaType: made.mediaType, diffId: made.diffId, digest: made.digest, blobSize: compression === 'none' ? 0 : made.size, tarSize, blobCrc32: made.crc32 ?? 0, notes };
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
    blob(layer, compression, n) {
      const key = dir === false ? undefined : layer.key;
      let built: ReturnType<LayerSource['tar']> | undefined;
      const tar = () => (built ??= layer.tar());
      if (key !== undefined) {
        const hit = lookup(key, compression, () => tar().image, n);
        if (hit) return hit;
      }
      const { image, notes } = tar();
      const made = layerBlob(image, compression, scratch, n);
      return { ...(key === undefined ? made : store(key, compression, made, image.size, notes, n)), cached: false, notes };
    },
    cleanup() {
      if (scratchDir) fs.rmSync(scratchDir, { recursive: true, force: true });
      scratchDir = undefined;
    },
  };
}

class BadEntry extends Error {}

function validNotes(n: unknown): n is LayerNotes {
  const x = n as LayerNotes;
  return typeof x === 'object' && x !== null && Array.isArray(x.matchedPerms) && x.matchedPerms.every((i) => Number.isSafeInteger(i)) && Array.isArray(x.skipped) && x.skipped.every((p) => typeof p === 'string');
}

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

/** zlib crc32 of the first `length` bytes of `file`, through one shared buffer (a build checks up to a hundred blobs). */
function crc32Prefix(file: string, length: number): number {
  let crc = 0;
  const fd = fs.openSync(file, 'r');
  try {
    for (let at = 0; at < length; ) {
      const n = fs.readSync(fd, CHUNK, 0, Math.min(CHUNK.length, length - at), at);
      if (n <= 0) throw new BadEntry();
      crc = zlib.crc32(CHUNK.subarray(0, n), crc);
      at += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return crc;
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
