// Composition: a disk is an image too. Each part's extents are shifted to
// where the part sits, the partition table's extents are added, and the result
// goes through finishImage, which rejects any overlap. See DESIGN.md, "Layout → Disk".
import { finishImage, type Image, type ImageExtent, sliceExtent } from './extent-map.ts';

/** A copy of `e` moved `by` bytes later; buffers, source files and producers are shared, not copied. */
function shifted(e: ImageExtent, by: number): ImageExtent {
  return sliceExtent(e, 0, e.length, e.offset + by);
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
