// An image is a size plus an extent map: sorted, non-overlapping byte ranges
// that may hold non-zero bytes. Everything outside them reads as zero. Each
// range is backed by a buffer the planner built or by a range of a source file
// that the emitter reads later, so planning never touches file data.

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

export type ImageExtent = BufferExtent | FileExtent;

export interface Image {
  size: number;
  extents: ImageExtent[];
}

export function isFileExtent(e: ImageExtent): e is FileExtent {
  return (e as FileExtent).path !== undefined;
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
