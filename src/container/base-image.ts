// The `fromImage` base: a docker-archive (Docker's manifest.json, also the
// Docker 25+ form that holds an OCI layout beside it), an oci-archive (a tar
// of an OCI image layout) or an OCI layout directory. Its layers become the
// bottom of our image byte for byte: each blob is an Image whose bytes are a
// range of the input file (a tar member's data, or a blob file), never held
// in memory, and each is hashed here before anything is written, since a
// stranger's digests are claims. Every name, size and count read from the
// input is checked against the input itself.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import type { Image } from '../image/extent-map.ts';
import { decodeArchive, type DecodedMember } from '../archive/tar.ts';
import { digestImage } from '../format/hash-sink.ts';
import { preadFully } from '../image/random-access.ts';
import { createHash } from 'node:crypto';
import { MEDIA_TYPE, sha256Digest, type Json } from './oci.ts';
import type { LayerBlob } from './blob.ts';
import { diffIdOf } from './diff-id.ts';

/** The image config keys a base keeps unless our config sets them (nixpkgs keeps only Env, which it merges). */
export const KEPT_BASE_KEYS = ['Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal'] as const;

export interface BaseImage {
  layers: LayerBlob[];
  /** The base config's `config` object, only the keys we carry over (Env and KEPT_BASE_KEYS), checked. */
  config: Record<string, Json>;
  /** The base's history, one entry per layer (plus empty_layer entries), or null when it has none that fits. */
  history: Json[] | null;
}

export interface BaseSelect {
  name?: string;
  tag?: string;
  /** The architecture (OCI name) the base must be for; checked before its layers are read. */
  architecture: string;
}

/** JSON documents (manifests, configs, indexes) larger than this are refused, not read. */
const MAX_JSON = 8 << 20;
/** More layers than maxLayers allows is refused before any is looked at. */
const MAX_BASE_LAYERS = 126;
const MAX_LINK_HOPS = 16;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

const LAYER_TYPES: Record<string, string> = {
  [MEDIA_TYPE.layer]: MEDIA_TYPE.layer,
  [MEDIA_TYPE.layerGzip]: MEDIA_TYPE.layerGzip,
  [MEDIA_TYPE.layerZstd]: MEDIA_TYPE.layerZstd,
  // Docker's names for the same bytes; the OCI manifest we write names them as OCI does.
  'application/vnd.docker.image.rootfs.diff.tar': MEDIA_TYPE.layer,
  'application/vnd.docker.image.rootfs.diff.tar.gzip': MEDIA_TYPE.layerGzip,
  'application/vnd.docker.image.rootfs.diff.tar.zstd': MEDIA_TYPE.layerZstd,
};
const MANIFEST_TYPES = new Set([MEDIA_TYPE.manifest, 'application/vnd.docker.distribution.manifest.v2+json']);
const INDEX_TYPES = new Set([MEDIA_TYPE.index, 'application/vnd.docker.distribution.manifest.list.v2+json']);

/** A file of the input: its size and its bytes as an Image (a range of the input file). */
interface Member {
  size: number;
  image: Image;
}

/** The input's files by their path inside it (a tar's members, or a directory's files). */
interface Source {
  get(rel: string): Member | undefined;
}

export function readBaseImage(given: string, baseDir: string, select: BaseSelect): BaseImage {
  const what = `fromImage ${given}`;
  const bad = (why: string, code: 'INPUT_NOT_IMAGE' | 'IMAGE_CORRUPT' = 'IMAGE_CORRUPT'): never => {
    throw new DiskwrightError(code, `${what}${/^(is|has|holds) /.test(why) ? ' ' : ': '}${why}`, { path: given });
  };
  const abs = path.resolve(baseDir, given);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new DiskwrightError('SOURCE_MISSING', `${what}: no such file or directory; give a docker-archive, oci-archive or OCI layout directory (relative to the config)`, { path: given });
  }
  const source = st.isDirectory() ? dirSource(abs, bad) : st.isFile() ? tarSource(abs, st.size, what, bad) : bad('is neither a file nor a directory', 'INPUT_NOT_IMAGE');
  const json = (rel: string, expect?: { digest: string; size?: number }): unknown => {
    const m = source.get(rel) ?? bad(`${rel} is missing; the image is incomplete`);
    if (m.size > MAX_JSON) bad(`${rel} is ${m.size} bytes, more than a ${MAX_JSON >> 20} MiB document can be`);
    if (expect?.size !== undefined && m.size !== expect.size) bad(`${rel} is ${m.size} bytes where its descriptor says ${expect.size}`);
    const bytes = readMember(m);
    if (expect && sha256Digest(bytes) !== expect.digest) bad(`${rel} does not match its digest ${expect.digest}; the image is corrupt`);
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch {
      return bad(`${rel} is not valid JSON`);
    }
  };
  const parts =
    source.get('manifest.json') !== undefined
      ? dockerParts(json('manifest.json'), select, bad)
      : source.get('index.json') !== undefined
        ? ociParts(source, json, select, bad)
        : bad('is neither a docker-archive (no manifest.json) nor an OCI image layout (no index.json); give an image written by docker save, skopeo or diskwright', 'INPUT_NOT_IMAGE');
  const config = object(json(parts.config, parts.configDesc), 'the image config', bad);
  const rootfs = object(config.rootfs, 'the image config\'s rootfs', bad);
  const diffIds = array(rootfs.diff_ids, 'rootfs.diff_ids', bad);
  if (diffIds.length !== parts.layers.length) bad(`the config names ${diffIds.length} layers (rootfs.diff_ids) where the manifest has ${parts.layers.length}`);
  const architecture = typeof config.architecture === 'string' && config.architecture ? config.architecture : bad('the image config has no architecture');
  const os = typeof config.os === 'string' && config.os ? config.os : bad('the image config has no os');
  if (architecture !== select.architecture || os !== 'linux') {
    bad(`is an image for ${os}/${architecture}, this one for linux/${select.architecture}; set system or architecture to match, or use a base built for linux/${select.architecture}`, 'INPUT_NOT_IMAGE');
  }
  const carried = carriedConfig(config.config, bad);
  const layers = parts.layers.map((l, i): LayerBlob => {
    const diffId = diffIds[i];
    if (typeof diffId !== 'string' || !DIGEST.test(diffId)) bad(`rootfs.diff_ids[${i}] is not a sha256 digest`);
    const m = source.get(l.path) ?? bad(`layer ${i + 1} (${l.path}) is missing; the image is incomplete`);
    if (l.size !== undefined && m.size !== l.size) bad(`layer ${i + 1} (${l.path}) is ${m.size} bytes where the manifest says ${l.size}`);
    const mediaType = l.mediaType ?? sniffLayer(m);
    // The one read of the base before writing: what the manifest claims is checked, not trusted.
    const digest = `sha256:${digestImage(m.image).digest}`;
    if (l.digest !== undefined && digest !== l.digest) bad(`layer ${i + 1} (${l.path}) does not match its digest ${l.digest}; the image is corrupt`);
    if (mediaType === MEDIA_TYPE.layer && digest !== diffId) bad(`layer ${i + 1} (${l.path}) is an uncompressed tar whose sha256 is not its diff_id ${diffId as string}; the image is corrupt`);
    if (mediaType !== MEDIA_TYPE.layer && compressedDiffId(m, mediaType === MEDIA_TYPE.layerGzip ? 'gzip' : 'zstd', (why) => bad(`layer ${i + 1} (${l.path}) does not decompress: ${why}`)) !== diffId) {
      bad(`layer ${i + 1} (${l.path}) decompresses to a tar whose sha256 is not its diff_id ${diffId as string}; the image is corrupt`);
    }
    return { digest, diffId: diffId as string, size: m.size, mediaType, blob: checkedBlob(m, digest, `${what} layer ${i + 1}`) };
  });
  return { layers, config: carried, history: fittingHistory(config.history, layers.length) };
}

interface Parts {
  config: string;
  configDesc?: { digest: string; size?: number };
  layers: Array<{ path: string; digest?: string; size?: number; mediaType?: string }>;
}

type Bad = (why: string, code?: 'INPUT_NOT_IMAGE' | 'IMAGE_CORRUPT') => never;

/** Docker's manifest.json: [{Config, RepoTags, Layers}], one entry picked. */
function dockerParts(doc: unknown, select: BaseSelect, bad: Bad): Parts {
  const entries = array(doc, 'manifest.json', bad);
  if (entries.length === 0) bad('manifest.json names no image');
  const named = entries.map((e, i) => {
    const o = object(e, `manifest.json[${i}]`, bad);
    const tags = o.RepoTags === null || o.RepoTags === undefined ? [] : array(o.RepoTags, `manifest.json[${i}].RepoTags`, bad);
    return { entry: o, refs: tags.map((t) => (typeof t === 'string' ? t : bad(`manifest.json[${i}].RepoTags holds a non-string`))) };
  });
  const e = pick(named, select, bad);
  const config = relPath(e.Config, 'manifest.json Config', bad);
  // Docker names the config by its digest (<hex>.json, or blobs/sha256/<hex> since Docker 25): a claim checked too.
  const configHex = /^(?:blobs\/sha256\/([0-9a-f]{64})|([0-9a-f]{64})\.json)$/.exec(config);
  const layerPaths = array(e.Layers, 'manifest.json Layers', bad);
  if (layerPaths.length > MAX_BASE_LAYERS) bad(`has ${layerPaths.length} layers; at most ${MAX_BASE_LAYERS} fit under maxLayers`);
  return {
    config,
    configDesc: configHex ? { digest: `sha256:${configHex[1] ?? configHex[2]}` } : undefined,
    layers: layerPaths.map((p, i) => {
      const rel = relPath(p, `manifest.json Layers[${i}]`, bad);
      // Docker 25+ names layers by digest (blobs/sha256/<hex>): a claim checked too. Older names
      // (<id>/layer.tar, <hex>.tar) promise nothing; an uncompressed layer is still checked against its diff_id.
      const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(rel);
      return { path: rel, digest: m ? `sha256:${m[1]}` : undefined };
    }),
  };
}

/** An OCI layout: oci-layout, index.json, one manifest picked, its config and layer descriptors. */
function ociParts(source: Source, json: (rel: string, expect?: { digest: string; size?: number }) => unknown, select: BaseSelect, bad: Bad): Parts {
  if (source.get('oci-layout') === undefined) bad('has index.json but no oci-layout; it is not an OCI image layout');
  const index = object(json('index.json'), 'index.json', bad);
  const manifests = array(index.manifests, 'index.json manifests', bad);
  if (manifests.length === 0) bad('index.json names no image');
  const named = manifests.map((m, i) => {
    const d = descriptor(m, `index.json manifests[${i}]`, bad);
    const ann = d.annotations;
    const refs = [ann['io.containerd.image.name'], ann['org.opencontainers.image.ref.name']].filter((r): r is string => typeof r === 'string' && r !== '');
    return { entry: d, refs };
  });
  const d = pick(named, select, bad);
  if (INDEX_TYPES.has(d.mediaType)) bad(`the picked entry is an index of several platforms; copy one platform out first (skopeo copy --override-arch ARCH)`);
  if (!MANIFEST_TYPES.has(d.mediaType)) bad(`the picked entry has media type ${d.mediaType}, not an image manifest`);
  const manifest = object(json(blobRel(d.digest), d), `manifest ${d.digest}`, bad);
  const config = descriptor(manifest.config, 'the manifest\'s config', bad);
  const layers = array(manifest.layers, 'the manifest\'s layers', bad);
  if (layers.length > MAX_BASE_LAYERS) bad(`has ${layers.length} layers; at most ${MAX_BASE_LAYERS} fit under maxLayers`);
  return {
    config: blobRel(config.digest),
    configDesc: config,
    layers: layers.map((l, i) => {
      const ld = descriptor(l, `the manifest's layers[${i}]`, bad);
      const mediaType = LAYER_TYPES[ld.mediaType] ?? bad(`layer ${i + 1} has media type ${ld.mediaType}, which diskwright cannot carry over (plain, gzip or zstd tar layers only)`);
      return { path: blobRel(ld.digest), digest: ld.digest, size: ld.size, mediaType };
    }),
  };
}

/** The one entry `select` names, or the only one; else an error listing the names there are. */
function pick<T>(named: Array<{ entry: T; refs: string[] }>, select: BaseSelect, bad: Bad): T {
  const wanted = select.name !== undefined || select.tag !== undefined;
  // The names, a few of them: the error stays one readable line whatever the input holds.
  const list = () => named.slice(0, 10).map((n) => n.refs[0] ?? '(unnamed)').join(', ') + (named.length > 10 ? `, and ${named.length - 10} more` : '');
  if (!wanted) {
    if (named.length === 1) return named[0].entry;
    bad(`holds ${named.length} images (${list()}); set fromImageName and/or fromImageTag to pick one`);
  }
  const hits = named.filter((n) => n.refs.some((r) => refMatches(r, select)));
  if (hits.length === 1) return hits[0].entry;
  const asked = `${select.name ?? '*'}:${select.tag ?? '*'}`;
  return bad(hits.length ? `${hits.length} images match ${asked} (${list()}); give both fromImageName and fromImageTag` : `no image matches ${asked}; it holds ${list()}`);
}

/** `ref` is name:tag (docker.io/ and registries may precede the name), or a bare tag as OCI's ref.name holds it. */
function refMatches(ref: string, s: BaseSelect): boolean {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  let name: string | undefined;
  let tag: string | undefined;
  if (colon > slash) [name, tag] = [ref.slice(0, colon), ref.slice(colon + 1)];
  else if (slash >= 0) name = ref;
  else tag = ref;
  const want = s.name?.toLowerCase();
  const nameOk = want === undefined || (name !== undefined && (name === want || name.endsWith(`/${want}`)));
  return nameOk && (s.tag === undefined || tag === s.tag);
}

/** Env (checked) and the kept keys of the base config's `config`; null and absent alike. */
function carriedConfig(v: unknown, bad: Bad): Record<string, Json> {
  if (v === null || v === undefined) return {};
  const c = object(v, 'the image config\'s config', bad);
  const out: Record<string, Json> = {};
  const strings = (k: string): string[] => array(c[k], `config.${k}`, bad).map((s) => (typeof s === 'string' ? s : bad(`config.${k} holds a non-string`)));
  const keys = (k: string): Record<string, Json> => Object.fromEntries(Object.keys(object(c[k], `config.${k}`, bad)).map((p) => [p, {}]));
  for (const k of ['Env', ...KEPT_BASE_KEYS]) {
    if (c[k] === null || c[k] === undefined) continue;
    if (k === 'Env' || k === 'Cmd' || k === 'Entrypoint') out[k] = strings(k);
    else if (k === 'ExposedPorts' || k === 'Volumes') out[k] = keys(k);
    else if (k === 'Labels') out[k] = Object.fromEntries(Object.entries(object(c[k], 'config.Labels', bad)).map(([l, s]) => [l, typeof s === 'string' ? s : bad(`config.Labels.${l} is not a string`)]));
    else out[k] = typeof c[k] === 'string' ? c[k] : bad(`config.${k} is not a string`);
  }
  if (out.Env) for (const e of out.Env as string[]) if (!e.includes('=')) bad(`config.Env holds ${JSON.stringify(e)}, not NAME=value`);
  return out;
}

/** The base's history when it has one entry per layer (not counting empty_layer entries), else null. */
function fittingHistory(v: unknown, layers: number): Json[] | null {
  if (!Array.isArray(v)) return null;
  const entries = v.filter((h): h is Record<string, Json> => h !== null && typeof h === 'object' && !Array.isArray(h));
  if (entries.length !== v.length) return null;
  return entries.filter((h) => h.empty_layer !== true).length === layers ? entries : null;
}

/**
 * The base's image config with ours over it. Env as nixpkgs merges it: the
 * base's variables then ours, one entry per name in the order names first
 * appear, a name both set taking our value. Beyond nixpkgs (which keeps only
 * Env), the KEPT_BASE_KEYS stay unless our config sets them.
 */
export function mergeBaseConfig(base: Record<string, Json>, ours: Record<string, Json | undefined>): Record<string, Json | undefined> {
  const out: Record<string, Json | undefined> = { ...ours };
  for (const k of KEPT_BASE_KEYS) if (out[k] === undefined && base[k] !== undefined) out[k] = base[k];
  const env = [...((base.Env as string[] | undefined) ?? []), ...((ours.Env as string[] | undefined) ?? [])];
  if (env.length) {
    const byName = new Map<string, string>();
    for (const e of env) byName.set(e.slice(0, e.indexOf('=')), e);
    out.Env = [...byName.values()];
  }
  return out;
}

/**
 * The blob as it is written: read from the base as it goes out and hashed on
 * the way, so a base changed since it was checked is an error at the blob's
 * last byte (a file output is then not made: the writer is atomic; a stream
 * is cut short, which its reader refuses).
 */
function checkedBlob(m: Member, digest: string, what: string): Image {
  const e = m.image.extents[0];
  if (e === undefined || !('path' in e)) return m.image;
  const file = e.path;
  let h = createHash('sha256');
  let next = 0;
  let ordered = true;
  const fill = (dst: Buffer, dstOff: number, at: number, len: number) => {
    const fd = fs.openSync(file, 'r');
    try {
      if (preadFully(fd, dst, dstOff, len, e.fileOffset + at) < len) changed();
    } finally {
      fs.closeSync(fd);
    }
    // Emitted again from the start (another output): hash again. Read out of order: nothing to check.
    if (at === 0) [h, next, ordered] = [createHash('sha256'), 0, true];
    if (at !== next) ordered = false;
    if (!ordered) return;
    h.update(dst.subarray(dstOff, dstOff + len));
    next += len;
    if (next === m.size && `sha256:${h.digest('hex')}` !== digest) changed();
  };
  const changed = (): never => {
    throw new DiskwrightError('SOURCE_CHANGED', `${what} changed after it was checked; build when nobody is writing to the base image`, { path: file.toString() });
  };
  return { size: m.size, extents: [{ offset: 0, length: m.size, from: 0, fill }] };
}

function compressedDiffId(m: Member, method: 'gzip' | 'zstd', bad: (why: string) => never): string {
  const e = m.image.extents[0];
  if (e === undefined || !('path' in e)) return bad('it is empty');
  try {
    return `sha256:${diffIdOf(e.path.toString(), e.fileOffset, m.size, method)}`;
  } catch (err) {
    return bad((err as Error).message);
  }
}

/** A layer's media type from its first bytes (docker-archives do not say): gzip, zstd, else tar. */
function sniffLayer(m: Member): string {
  const head = readMember(m, 4);
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return MEDIA_TYPE.layerGzip;
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return MEDIA_TYPE.layerZstd;
  return MEDIA_TYPE.layer;
}

/** The first `max` bytes (default all) of a member, which is one file extent or empty. */
function readMember(m: Member, max = m.size): Buffer {
  const len = Math.min(max, m.size);
  const b = Buffer.alloc(len);
  const e = m.image.extents[0];
  if (len === 0 || e === undefined || !('path' in e)) return b;
  const fd = fs.openSync(e.path, 'r');
  try {
    let got = 0;
    while (got < len) {
      const n = fs.readSync(fd, b, got, len - got, e.fileOffset + got);
      if (n === 0) break;
      got += n;
    }
    return got === len ? b : b.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

function fileImage(file: string, offset: number, size: number, fileSize: number): Image {
  return { size, extents: size ? [{ offset: 0, length: size, path: Buffer.from(file), fileOffset: offset, expectSize: fileSize }] : [] };
}

/** An OCI layout directory: files under it by relative path, regular files only (no symlinks out of it). */
function dirSource(dir: string, bad: Bad): Source {
  return {
    get(rel) {
      const p = path.join(dir, rel);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        return undefined;
      }
      if (!st.isFile()) bad(`${rel} is not a regular file`);
      return { size: st.size, image: fileImage(p, 0, st.size, st.size) };
    },
  };
}

/** A tar archive's members by name ("./" and trailing "/" dropped); symlinks and hard links to members followed. */
function tarSource(file: string, size: number, what: string, bad: Bad): Source {
  const fd = fs.openSync(file, 'r');
  let members: DecodedMember[];
  try {
    const read = (at: number, len: number) => {
      const b = Buffer.alloc(len);
      return b.subarray(0, fs.readSync(fd, b, 0, len, at));
    };
    // At most one member per 512-byte header the file can hold.
    members = decodeArchive(read, size, what, { maxMembers: Math.floor(size / 512) + 1 });
  } finally {
    fs.closeSync(fd);
  }
  const byName = new Map<string, DecodedMember>();
  for (const m of members) {
    const name = normalName(m.name.toString('utf8'));
    if (name === null) bad(`member ${JSON.stringify(m.name.toString('utf8'))} names a path outside the archive; it is not an image docker or skopeo writes`);
    byName.set(name, m); // a later member of one name replaces the earlier, as tar extracts them
  }
  return {
    get(rel) {
      let name = rel;
      for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
        const m = byName.get(name);
        if (m === undefined) return undefined;
        if (m.kind === 'file') return { size: m.size, image: fileImage(file, m.dataOffset, m.size, size) };
        const target = m.linkname.toString('utf8');
        // Hard links name archive paths; symlinks are relative to their directory (docker save links repeated layers so).
        const next = m.kind === 'hardlink' ? normalName(target) : m.kind === 'symlink' ? normalName(path.posix.join(path.posix.dirname(name), target)) : bad(`${rel} is not a file in the archive`);
        if (next === null || target.startsWith('/')) bad(`${rel} links to ${JSON.stringify(target)}, outside the archive`);
        name = next;
      }
      return bad(`${rel}: more than ${MAX_LINK_HOPS} links in a row`);
    },
  };
}

/** A relative archive path without "./", "//" or a trailing "/"; null when it is absolute or climbs out with "..". */
function normalName(n: string): string | null {
  if (n.startsWith('/')) return null;
  const parts: string[] = [];
  for (const p of n.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') return null;
    parts.push(p);
  }
  return parts.join('/');
}

function relPath(v: unknown, where: string, bad: Bad): string {
  const n = typeof v === 'string' ? normalName(v) : null;
  return n ? n : bad(`${where} is not a relative path inside the archive: ${JSON.stringify(v)}`);
}

function blobRel(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

function descriptor(v: unknown, where: string, bad: Bad): { mediaType: string; digest: string; size: number; annotations: Record<string, unknown> } {
  const d = object(v, where, bad);
  if (typeof d.mediaType !== 'string') bad(`${where} has no mediaType`);
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) bad(`${where} has digest ${JSON.stringify(d.digest)}, not sha256:<64 hex digits>`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) bad(`${where} has size ${JSON.stringify(d.size)}, not a byte count`);
  const annotations = d.annotations === undefined || d.annotations === null ? {} : object(d.annotations, `${where}.annotations`, bad);
  return { mediaType: d.mediaType as string, digest: d.digest as string, size: d.size as number, annotations };
}

function object(v: unknown, where: string, bad: Bad): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : bad(`${where} is not a JSON object`);
}

function array(v: unknown, where: string, bad: Bad): unknown[] {
  return Array.isArray(v) ? v : bad(`${where} is not a JSON array`);
}
