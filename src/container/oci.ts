// The JSON documents of an image: the OCI image config (also Docker's), the
// OCI manifest and index (image-spec v1.1: config.md, manifest.md,
// image-index.md, image-layout.md) and Docker's manifest.json (the docker save
// format), all in one canonical form (keys sorted bytewise, no whitespace) so
// equal inputs give equal digests.
// https://github.com/opencontainers/image-spec/blob/v1.1.0/spec.md
import { createHash } from 'node:crypto';

export const MEDIA_TYPE = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

export const OCI_LAYOUT = Buffer.from('{"imageLayoutVersion":"1.0.0"}');

export interface Descriptor {
  mediaType: string;
  /** sha256:<hex> */
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json | undefined };

/** JSON with object keys sorted by their UTF-8 bytes and no whitespace; undefined members left out. */
export function canonicalJson(v: Json | undefined): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x)).join(',')}]`;
  const keys = Object.keys(v)
    .filter((k) => v[k] !== undefined)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
}

export function sha256Digest(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export function descriptorOf(mediaType: string, blob: Buffer): Descriptor {
  return { mediaType, digest: sha256Digest(blob), size: blob.length };
}

export interface ImageConfigInput {
  architecture: string;
  variant?: string;
  /** RFC 3339. */
  created: string;
  /** The `config` object (Cmd, Env, ...), as given. */
  config: Record<string, Json | undefined>;
  /** sha256 of each uncompressed layer, bottom first. */
  diffIds: string[];
  /** One comment per layer we made (what it holds). */
  comments: string[];
  /** History entries before ours: a base image's (fromImage). */
  baseHistory?: Json[];
}

export function imageConfigBlob(i: ImageConfigInput): Buffer {
  return Buffer.from(
    canonicalJson({
      architecture: i.architecture,
      variant: i.variant,
      os: 'linux',
      created: i.created,
      config: i.config,
      rootfs: { type: 'layers', diff_ids: i.diffIds },
      history: [...(i.baseHistory ?? []), ...i.comments.map((c) => ({ created: i.created, created_by: 'diskwright', comment: c }))],
    }),
  );
}

export function manifestBlob(config: Descriptor, layers: Descriptor[]): Buffer {
  return Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPE.manifest, config: desc(config), layers: layers.map(desc) }));
}

/** index.json naming the manifest by tag (as `docker save` of Docker 25+ and skopeo's oci: write it). */
export function indexBlob(manifest: Descriptor, ref: { name: string; tag: string }): Buffer {
  const annotations = { 'io.containerd.image.name': `${ref.name}:${ref.tag}`, 'org.opencontainers.image.ref.name': ref.tag };
  return Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [desc({ ...manifest, annotations })] }));
}

/** Docker's manifest.json: where the config and layers are in the archive, and the tags to load it as. */
export function dockerManifestBlob(configPath: string, repoTag: string, layerPaths: string[]): Buffer {
  return Buffer.from(canonicalJson([{ Config: configPath, RepoTags: [repoTag], Layers: layerPaths }]));
}

function desc(d: Descriptor): Json {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: d.annotations };
}

/** blobs/sha256/<hex>: where a digest lives in an image layout. */
export function blobPath(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}
