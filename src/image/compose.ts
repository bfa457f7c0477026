// Composition: a disk is an image too. Each part's extents are shifted to
// where the part sits, the partition table's extents are added, and the result
// goes through finishImage, which rejects any overlap. See DESIGN.md, "Layout → Disk".
import { finishImage, type Image, type ImageExtent, isFileExtent } from './extent-map.ts';

/** A copy of `e` moved `by` bytes later; buffers and source files are shared, not copied. */
function shifted(e: ImageExtent, by: number): ImageExtent {
  if (isFileExtent(e)) {
    return { offset: e.offset + by, length: e.length, path: e.path, fileOffset: e.fileOffset, expectSize: e.expectSize };
  }
  return { offset: e.offset + by, length: e.length, buffer: e.buffer };
}

/**
 * An image of `size` bytes holding each part's image at its offset plus the
 * `extra` extents (MBR, GPT). Callers check that each part fits its slot; an
 * overlap between parts or with the table is an internal error here.
 */
export function composeDisk(size: number, parts: { offset: number; image: Image }[], extra: ImageExtent[]): Image {
  const extents: ImageExtent[] = [...extra];
  for (const { offset, image } of parts) {
    for (const e of image.extents) extents.push(shifted(e, offset));
  }
  return finishImage(size, extents);
}
