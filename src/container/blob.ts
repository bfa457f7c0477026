// A layer's blob: the tar itself (uncompressed: its digest is its diff_id,
// found by one hash pass), or the tar compressed in one pass that hashes both
// sides and keeps the compressed bytes in a temporary file, which the
// archive then names as a file extent. Both compressors use every core and
// write bytes that do not depend on how many: zstd one frame from libzstd's
// workers, gzip one member of fixed 256 KiB deflate blocks (as pigz).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Image } from '../image/extent-map.ts';
import { digestImage, hashingSink } from '../format/hash-sink.ts';
import { emit, fileSink } from '../format/raw.ts';
import { gzipBlocksSink, zstdStreamSink } from '../format/compress.ts';
import { MEDIA_TYPE } from './oci.ts';

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** Fixed levels, so the bytes depend on nothing but the tar. */
export const LAYER_LEVEL = { gzip: 6, zstd: 3 } as const;

export function layerMediaType(c: LayerCompression): string {
  return c === 'none' ? MEDIA_TYPE.layer : c === 'gzip' ? MEDIA_TYPE.layerGzip : MEDIA_TYPE.layerZstd;
}

export interface LayerBlob {
  /** sha256:<hex> of the uncompressed tar. */
  diffId: string;
  /** sha256:<hex> of the blob (equal to diffId when uncompressed). */
  digest: string;
  size: number;
  mediaType: string;
  blob: Image;
  /** zlib's crc32 of a compressed blob: what the layer cache checks an entry's blob with, a few times faster than sha256. */
  crc32?: number;
}

/** The blob of `layer`; compressed blobs are written to `scratch()`, a directory the caller removes. */
export function layerBlob(layer: Image, compression: LayerCompression, scratch: () => string, n: number): LayerBlob {
  if (compression === 'none') {
    const d = digestImage(layer, 'layers');
    return { diffId: `sha256:${d.digest}`, digest: `sha256:${d.digest}`, size: d.size, mediaType: layerMediaType('none'), blob: layer };
  }
  const file = path.join(scratch(), `layer-${n}.${compression}`);
  const fd = fs.openSync(file, 'w', 0o600);
  let raw, packed;
  let crc = 0;
  try {
    const file = fileSink(fd);
    packed = hashingSink({
      write(buf, len, at) {
        crc = zlib.crc32(buf.subarray(0, len), crc);
        file.write(buf, len, at);
      },
      finish: (n) => file.finish(n),
    });
    raw = hashingSink(compression === 'gzip' ? gzipBlocksSink(packed, { level: LAYER_LEVEL.gzip }) : zstdStreamSink(packed, { level: LAYER_LEVEL.zstd }));
    emit(layer, raw, 'layers');
  } finally {
    fs.closeSync(fd);
  }
  const size = packed.size();
  const blob: Image = { size, extents: size ? [{ offset: 0, length: size, path: Buffer.from(file), fileOffset: 0, expectSize: size }] : [] };
  return { diffId: `sha256:${raw.digest()}`, digest: `sha256:${packed.digest()}`, size, mediaType: layerMediaType(compression), blob, crc32: crc };
}
