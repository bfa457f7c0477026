// The image on disk: one tar that is both a docker-archive (manifest.json,
// as `docker load` reads it) and an OCI image layout (oci-layout, index.json,
// blobs/sha256/...), as Docker 25+ `docker save` writes it; or the OCI layout
// as a directory. The tar is an Image whose layer members are the layers' own
// Images shifted into place, so it streams in one forward pass.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { finishImage, sliceExtent, type Image, type ImageExtent } from '../image/extent-map.ts';
import { encodeMember, padding, tarMember, END_OF_ARCHIVE_LENGTH } from '../archive/tar.ts';
import { writeImageFile } from '../format/raw.ts';
import { describeSystemError, errnoOf } from '../util/sys-error.ts';
import { blobPath, OCI_LAYOUT } from './oci.ts';

export interface ArchiveBlob {
  digest: string;
  /** The blob's bytes: a layer's Image, or a JSON document. */
  image: Image;
}

export interface LayoutFiles {
  /** Every blob, layers bottom first, then config and manifest; equal digests stored once. */
  blobs: ArchiveBlob[];
  index: Buffer;
  /** Docker's manifest.json (archives only). */
  dockerManifest: Buffer;
}

export function bufferImage(b: Buffer): Image {
  return { size: b.length, extents: b.length ? [{ offset: 0, length: b.length, buffer: b }] : [] };
}

/** The archive's members, in order: the blob directories, the blobs, then the small documents. */
function archiveEntries(f: LayoutFiles): Array<{ name: string; image?: Image }> {
  const seen = new Set<string>();
  const blobs = f.blobs.filter((b) => !seen.has(b.digest) && seen.add(b.digest));
  return [
    { name: 'blobs/' },
    { name: 'blobs/sha256/' },
    ...blobs.map((b) => ({ name: blobPath(b.digest), image: b.image })),
    { name: 'index.json', image: bufferImage(f.index) },
    { name: 'manifest.json', image: bufferImage(f.dockerManifest) },
    { name: 'oci-layout', image: bufferImage(OCI_LAYOUT) },
  ];
}

/** The docker-archive / oci-archive tar as an Image; members root-owned, at time `mtime`. */
export function archiveImage(f: LayoutFiles, mtime: number): Image {
  const extents: ImageExtent[] = [];
  let at = 0;
  for (const e of archiveEntries(f)) {
    const dir = e.image === undefined;
    const size = e.image?.size ?? 0;
    const header = encodeMember(tarMember(Buffer.from(e.name), { type: dir ? 'dir' : 'file', mode: dir ? 0o755 : 0o644, size, mtimeSec: mtime }));
    extents.push({ offset: at, length: header.length, buffer: header });
    at += header.length;
    for (const x of e.image?.extents ?? []) extents.push(sliceExtent(x, 0, x.length, at + x.offset));
    at += size + padding(size);
  }
  return finishImage(at + END_OF_ARCHIVE_LENGTH, extents);
}

/**
 * The OCI layout as a directory at `out`, made under a temporary name beside
 * it and renamed into place when complete. `out` may be missing or an empty
 * directory; anything else is refused rather than mixed with.
 */
export function writeLayoutDir(f: LayoutFiles, out: string): void {
  const abs = path.resolve(out);
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(abs);
  } catch {
    existing = undefined;
  }
  if (existing && !(existing.isDirectory() && fs.readdirSync(abs).length === 0)) {
    throw new DiskwrightError('OUTPUT_IS_DIR', `output ${out} already exists${existing.isDirectory() ? ' and is not empty' : ''}; give a new directory name for the OCI layout`, { path: out });
  }
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.diskwright-${process.pid}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    fs.mkdirSync(path.join(tmp, 'blobs', 'sha256'), { recursive: true });
    const seen = new Set<string>();
    for (const b of f.blobs) {
      if (seen.has(b.digest)) continue;
      seen.add(b.digest);
      writeImageFile(b.image, path.join(tmp, blobPath(b.digest)));
    }
    fs.writeFileSync(path.join(tmp, 'index.json'), f.index);
    fs.writeFileSync(path.join(tmp, 'oci-layout'), OCI_LAYOUT);
    if (existing) fs.rmdirSync(abs);
    fs.renameSync(tmp, abs);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (err instanceof DiskwrightError) throw err;
    if (errnoOf(err) === undefined) throw err;
    throw new DiskwrightError('OUTPUT_WRITE', describeSystemError('cannot write', out, err), { path: out, code: errnoOf(err) });
  }
}
