// An Image sent between threads (the plan worker, api/plan-worker.ts) in a
// few transferable pieces instead of one structured-clone object per extent:
// cloning hundreds of thousands of extent objects would cost the receiving
// thread as long as planning them did. Buffer extents' bytes go in ArrayBuffers
// of at most CHUNK bytes, every extent's numbers in one Float64Array, and
// source paths (bytes, not necessarily UTF-8) in one byte table. The receiver
// rebuilds the extents in slices of about SLICE_MS, letting the event loop run
// between them. A producer function cannot cross: a lazy extent crosses as
// the bytes it makes (ext4's block bitmaps: 4 KiB per partly used group), up
// to LAZY_LIMIT bytes in all; past that (a prepared image's decoded input),
// packImage refuses and the caller plans on its own thread.
import { isFileExtent, isLazyExtent, type Image, type ImageExtent } from './extent-map.ts';

/** Largest ArrayBuffer of packed buffer bytes; a single larger buffer gets one of its own size. */
export const CHUNK = 64 << 20;
/** Most bytes of lazy extents made on the sending side to cross as buffers. */
export const LAZY_LIMIT = 64 << 20;
/** Time the receiver spends rebuilding extents before it yields to the event loop. */
const SLICE_MS = 2;

/** Numbers per extent in `fields`: kind, offset, length, then chunk and byte (buffer) or path, fileOffset, expectSize (file). */
const STRIDE = 6;
const BUFFER = 0;
const FILE = 1;

export interface PackedImage {
  size: number;
  fields: Float64Array;
  /** Buffer extents' bytes. */
  chunks: ArrayBuffer[];
  /** Source paths' bytes back to back; path i is [pathEnds[i - 1], pathEnds[i]). */
  paths: Uint8Array;
  pathEnds: Float64Array;
}

/** The ArrayBuffers to list as transferred when posting `p`. */
export function transferList(p: PackedImage): ArrayBuffer[] {
  return [...p.chunks, p.fields.buffer as ArrayBuffer, p.paths.buffer as ArrayBuffer, p.pathEnds.buffer as ArrayBuffer];
}

/** Packs `image`; undefined when its lazy extents hold more than `lazyLimit` bytes (only this thread can make them). */
export function packImage(image: Image, chunkSize = CHUNK, lazyLimit = LAZY_LIMIT): PackedImage | undefined {
  const n = image.extents.length;
  const fields = new Float64Array(n * STRIDE);
  // Shared buffers and paths are packed once and stay shared on the other side
  // (the emitter keeps a source file open across extents with the same path object).
  const bufferAt = new Map<Buffer, number>();
  const pathIndex = new Map<Buffer, number>();
  const pathList: Buffer[] = [];
  // First pass: where each buffer's bytes go, so every chunk is allocated at its final size.
  const chunkSizes: number[] = [];
  const placed: Buffer[] = [];
  const places: number[] = []; // chunk, byte pairs of placed[i]
  let fill = chunkSize;
  let lazyBytes = 0;
  for (let i = 0; i < n; i++) {
    let e = image.extents[i];
    const f = i * STRIDE;
    fields[f + 1] = e.offset;
    fields[f + 2] = e.length;
    if (isLazyExtent(e)) {
      if ((lazyBytes += e.length) > lazyLimit) return undefined;
      // Made in image order, as the emitter would ask for them.
      const bytes = Buffer.allocUnsafe(e.length);
      e.fill(bytes, 0, e.from, e.length);
      e = { offset: e.offset, length: e.length, buffer: bytes };
    }
    if (isFileExtent(e)) {
      let p = pathIndex.get(e.path);
      if (p === undefined) {
        pathIndex.set(e.path, (p = pathList.length));
        pathList.push(e.path);
      }
      fields[f] = FILE;
      fields[f + 3] = p;
      fields[f + 4] = e.fileOffset;
      fields[f + 5] = e.expectSize;
      continue;
    }
    fields[f] = BUFFER;
    // A buffer longer than its extent is packed for this extent alone.
    const shareable = e.buffer.length === e.length;
    let at = shareable ? bufferAt.get(e.buffer) : undefined;
    if (at === undefined) {
      if (fill + e.length > chunkSize || !chunkSizes.length) {
        chunkSizes.push(0);
        fill = 0;
      }
      places.push(chunkSizes.length - 1, fill);
      at = placed.length;
      placed.push(e.length === e.buffer.length ? e.buffer : e.buffer.subarray(0, e.length));
      fill += e.length;
      chunkSizes[chunkSizes.length - 1] = fill;
      if (shareable) bufferAt.set(e.buffer, at);
    }
    fields[f + 3] = places[2 * at];
    fields[f + 4] = places[2 * at + 1];
  }
  const chunks = chunkSizes.map((s) => new ArrayBuffer(s));
  const views = chunks.map((c) => new Uint8Array(c));
  for (let i = 0; i < placed.length; i++) views[places[2 * i]].set(placed[i], places[2 * i + 1]);
  let pathBytes = 0;
  for (const p of pathList) pathBytes += p.length;
  const paths = new Uint8Array(pathBytes);
  const pathEnds = new Float64Array(pathList.length);
  let end = 0;
  for (let i = 0; i < pathList.length; i++) {
    paths.set(pathList[i], end);
    end += pathList[i].length;
    pathEnds[i] = end;
  }
  return { size: image.size, fields, chunks, paths, pathEnds };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The Image `p` holds, its buffers views of the received chunks. Rebuilds in
 * slices of about 2 ms with a turn of the event loop between them;
 * `between` runs at each turn (an abort check).
 */
export async function unpackImage(p: PackedImage, between: () => void = () => {}): Promise<Image> {
  const n = p.fields.length / STRIDE;
  const extents: ImageExtent[] = new Array(n);
  const paths: Buffer[] = new Array(p.pathEnds.length);
  const pathOf = (k: number): Buffer => (paths[k] ??= Buffer.from(p.paths.buffer, p.paths.byteOffset + (k ? p.pathEnds[k - 1] : 0), p.pathEnds[k] - (k ? p.pathEnds[k - 1] : 0)));
  // One Buffer per packed buffer, as the sender shared them.
  const buffers = new Map<number, Buffer>();
  const { fields, chunks } = p;
  let start = performance.now();
  for (let i = 0; i < n; i++) {
    // The clock is read every 1024 extents: about 50 µs of work.
    if ((i & 1023) === 1023 && performance.now() - start > SLICE_MS) {
      await nextTurn();
      between();
      start = performance.now();
    }
    const f = i * STRIDE;
    const offset = fields[f + 1];
    const length = fields[f + 2];
    if (fields[f] === FILE) {
      extents[i] = { offset, length, path: pathOf(fields[f + 3]), fileOffset: fields[f + 4], expectSize: fields[f + 5] };
      continue;
    }
    const chunk = fields[f + 3];
    const byte = fields[f + 4];
    // Keyed by the packed bytes' place: chunk index * 2^37 + byte stays an exact double.
    const key = chunk * 2 ** 37 + byte;
    let buffer = buffers.get(key);
    if (!buffer || buffer.length !== length) {
      buffer = Buffer.from(chunks[chunk], byte, length);
      buffers.set(key, buffer);
    }
    extents[i] = { offset, length, buffer };
  }
  return { size: p.size, extents };
}
