// Data-run detection: which stretches of a byte stream are not all zero, at a
// fixed granularity. Raw and .zst inputs are scanned with it so their zeros
// become holes; memory grows with the number of runs, never with the data.
//
// Granularity 4 KiB: the block size of the filesystems in disk images (ext4,
// FAT clusters are at least as large in practice), the page size, and
// qemu-img convert's default sparse threshold (-S 4k). A raw output then keeps
// holes as fine as the filesystem left them; qcow2 (64 KiB), VDI (1 MiB) and
// VHD (2 MiB) regroup the runs into their own blocks anyway. 512 bytes would
// multiply the work for holes no filesystem makes; 64 KiB would turn sparse
// small files' gaps into written zeros in raw output.
export const RUN_GRANULE = 4096;

/** Zeros compared in one call where a granule starts a stretch of zeros. */
const ZERO_SPAN = 16 * RUN_GRANULE;
const ZERO = Buffer.alloc(ZERO_SPAN);

/** Feed it the stream's bytes in order; `runs` are the [start, end) ranges holding a non-zero byte, granule-aligned. */
export class RunFinder {
  /** Stream offset of the next byte pushed. */
  pos = 0;
  readonly runs: [number, number][] = [];
  private readonly carry = Buffer.alloc(RUN_GRANULE);
  private carryLen = 0;

  push(buf: Buffer): void {
    let i = 0;
    if (this.carryLen) {
      const k = Math.min(RUN_GRANULE - this.carryLen, buf.length);
      buf.copy(this.carry, this.carryLen, 0, k);
      this.carryLen += k;
      i = k;
      if (this.carryLen < RUN_GRANULE) {
        this.pos += buf.length;
        return;
      }
      this.mark(this.pos - (this.carryLen - k), RUN_GRANULE, this.carry);
      this.carryLen = 0;
    }
    const base = this.pos; // stream offset of buf[0]
    while (i + RUN_GRANULE <= buf.length) {
      // Cheap tests first: a data granule rarely has zeros at both ends and in
      // the middle; a long stretch of zeros is checked in one comparison.
      if (buf[i] !== 0 || buf[i + RUN_GRANULE - 1] !== 0 || buf[i + (RUN_GRANULE >> 1)] !== 0) {
        this.data(base + i, RUN_GRANULE);
        i += RUN_GRANULE;
      } else if (i + ZERO_SPAN <= buf.length && buf.subarray(i, i + ZERO_SPAN).equals(ZERO)) {
        i += ZERO_SPAN;
      } else {
        this.mark(base + i, RUN_GRANULE, buf.subarray(i, i + RUN_GRANULE));
        i += RUN_GRANULE;
      }
    }
    if (i < buf.length) {
      buf.copy(this.carry, 0, i);
      this.carryLen = buf.length - i;
    }
    this.pos += buf.length;
  }

  /** Classifies the last partial granule; call once at the end. */
  finish(): [number, number][] {
    if (this.carryLen) this.mark(this.pos - this.carryLen, this.carryLen, this.carry.subarray(0, this.carryLen));
    this.carryLen = 0;
    return this.runs;
  }

  private mark(start: number, len: number, bytes: Buffer): void {
    if (!bytes.equals(ZERO.subarray(0, len))) this.data(start, len);
  }

  private data(start: number, len: number): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last[1] === start) last[1] = start + len;
    else this.runs.push([start, start + len]);
  }
}
