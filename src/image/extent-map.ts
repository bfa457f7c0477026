// An image is a size plus an extent map: sorted, non-overlapping byte ranges
// that may hold non-zero bytes. Everything outside them reads as zero. Each
// range is backed by a buffer the planner built, by a range of a source file
// that the emitter reads later, so planning never touches file data, or by a
// producer that makes the bytes on demand (a compressed qcow2 cluster inflated,
// a stretch of a .zst decoded) so a decoded input never sits in memory whole.

export interface BufferExtent {
  offset: number;
  length: number;
  buffer: Buffer;
}

export interface FileExtent {
  offset: number;
  length: number;
  /** Source file on the build machine, and where in it the bytes start. */
  path: Buffer;
  fileOffset: number;
  /** The file's size when planned: a change while copying is an error. */
  expectSize: number;
}

/**
 * Bytes made on demand. `fill(dst, dstOff, at, len)` writes the producer's
 * bytes [at, at + len) to dst[dstOff, dstOff + len); this extent's first byte
 * is the producer's byte `from`, so a slice is { ...e, offset, length, from:
 * e.from + rel } and shares the producer. The emitter calls fill in
 * increasing image order; producers that decode a stream (.zst) rely on that
 * for speed, and must still answer out-of-order calls (random access).
 */
export interface LazyExtent {
  offset: number;
  length: number;
  from: number;
  fill(dst: Buffer, dstOff: number, at: number, len: number): void;
}

export type ImageExtent = BufferExtent | FileExtent | LazyExtent;

export interface Image {
  size: number;
  extents: ImageExtent[];
}

export function isFileExtent(e: ImageExtent): e is FileExtent {
  return (e as FileExtent).path !== undefined;
}

export function isLazyExtent(e: ImageExtent): e is LazyExtent {
  return typeof (e as LazyExtent).fill === 'function';
}

/** Bytes [rel, rel + length) of `e` as an extent of their own at `offset`; shares the buffer, file or producer. */
export function sliceExtent(e: ImageExtent, rel: number, length: number, offset: number): ImageExtent {
  if (isFileExtent(e)) return { offset, length, path: e.path, fileOffset: e.fileOffset + rel, expectSize: e.expectSize };
  if (isLazyExtent(e)) return { offset, length, from: e.from + rel, fill: e.fill };
  const whole = rel === 0 && length === e.buffer.length;
  return { offset, length, buffer: whole ? e.buffer : e.buffer.subarray(rel, rel + length) };
}

/** Sorts by offset and checks that ranges do not overlap and stay inside the image. */
export function finishImage(size: number, extents: ImageExtent[]): Image {
  extents.sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const e of extents) {
    if (e.offset < end) throw new Error(`internal: overlapping extents at ${e.offset}`);
    end = e.offset + e.length;
  }
  if (end > size) throw new Error(`internal: extent past the end of the image (${end} > ${size})`);
  return { size, extents };
}
