// Fixed-size blocks of a disk image: which hold data, and the disk's extents
// cut to each. Every format that allocates storage by block or cluster (qcow2
// clusters, VHD and VDI blocks) plans its data area from this, so "what counts
// as data" is decided in one place.
import { type FileExtent, type Image, type ImageExtent, type LazyExtent, isFileExtent, isLazyExtent, sliceExtent } from './extent-map.ts';

const ZERO_CHUNK = Buffer.alloc(64 << 10);

/** Whether every byte of `b` is zero. */
export function isAllZero(b: Uint8Array): boolean {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < buf.length; i += ZERO_CHUNK.length) {
    const n = Math.min(ZERO_CHUNK.length, buf.length - i);
    if (!buf.subarray(i, i + n).equals(ZERO_CHUNK.subarray(0, n))) return false;
  }
  return true;
}

export interface BlockPlan {
  /** Indices of the blocks that hold data, ascending: the order they are stored in. */
  blocks: number[];
  /** For blocks[i], the disk's extents cut to that block, offsets relative to the block's start. */
  pieces: ImageExtent[][];
}

/**
 * Which fixed-size blocks of the disk hold data, and the extents inside
 * each. A block holds data if a file extent touches it or a buffer extent
 * has a non-zero byte in it; all-zero buffer pieces are dropped. File bytes
 * are not read. Shared by the qcow2, VHD and VDI writers.
 */
export function planBlocks(disk: Image, blockSize: number): BlockPlan {
  const blocks: number[] = [];
  const pieces: ImageExtent[][] = [];
  for (const e of disk.extents) {
    const end = e.offset + e.length;
    for (let pos = e.offset; pos < end; ) {
      const b = Math.floor(pos / blockSize);
      const blockStart = b * blockSize;
      const len = Math.min(end, blockStart + blockSize) - pos;
      const rel = pos - e.offset;
      let piece: ImageExtent | null;
      if (isFileExtent(e) || isLazyExtent(e)) {
        piece = sliceExtent(e, rel, len, pos - blockStart);
      } else {
        const sub = e.buffer.subarray(rel, rel + len);
        piece = isAllZero(sub) ? null : { offset: pos - blockStart, length: len, buffer: sub };
      }
      if (piece) {
        if (blocks[blocks.length - 1] !== b) {
          blocks.push(b);
          pieces.push([]);
        }
        pieces[pieces.length - 1].push(piece);
      }
      pos += len;
    }
  }
  return { blocks, pieces };
}

/** Copies `p` to start at `base + p.offset` in the output file. */
export function placed(p: ImageExtent, base: number): ImageExtent {
  return { ...p, offset: base + p.offset };
}

/**
 * Joins file extents that continue each other (same file, adjacent in the
 * output and in the source), and likewise lazy extents of one producer, so
 * the emitter reads long runs instead of one piece per block.
 */
export function joinFileRuns(extents: ImageExtent[]): ImageExtent[] {
  const out: ImageExtent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && isFileExtent(last) && isFileExtent(e) && last.path === e.path
      && last.offset + last.length === e.offset && last.fileOffset + last.length === e.fileOffset) {
      out[out.length - 1] = { ...last, length: last.length + e.length } satisfies FileExtent;
    } else if (last && isLazyExtent(last) && isLazyExtent(e) && last.fill === e.fill
      && last.offset + last.length === e.offset && last.from + last.length === e.from) {
      out[out.length - 1] = { ...last, length: last.length + e.length } satisfies LazyExtent;
    } else out.push(e);
  }
  return out;
}
