// Block allocation over a sorted list of free ranges, handed out strictly in
// address order so the image is written front to back. Past the end of the
// filesystem it keeps counting (virtual blocks), which tells the sizer how far
// short a candidate size falls.

export interface Run {
  start: number;
  length: number;
}

export class Allocator {
  private readonly free: Run[];
  private index = 0;
  private readonly end: number;
  /** Blocks handed out beyond the end of the filesystem. */
  overflow = 0;
  used = 0;

  constructor(free: Run[], end: number) {
    this.free = free.map((r) => ({ ...r }));
    this.end = end;
  }

  /** n blocks as one or more runs in address order. */
  take(n: number): Run[] {
    const out: Run[] = [];
    this.used += n;
    while (n > 0) {
      const r = this.free[this.index];
      if (!r) {
        out.push({ start: this.end + this.overflow, length: n });
        this.overflow += n;
        return out;
      }
      const k = Math.min(n, r.length);
      const last = out[out.length - 1];
      if (last && last.start + last.length === r.start) last.length += k;
      else out.push({ start: r.start, length: k });
      r.start += k;
      r.length -= k;
      n -= k;
      if (r.length === 0) this.index++;
    }
    return out;
  }

  /** The free runs not handed out yet. */
  remaining(): Run[] {
    return this.free.slice(this.index).filter((r) => r.length > 0);
  }

  one(): number {
    return this.take(1)[0].start;
  }
}

/** The complement of sorted, non-overlapping used ranges within [0, end). */
export function freeRuns(used: Run[], end: number): Run[] {
  const sorted = [...used].sort((a, b) => a.start - b.start);
  const out: Run[] = [];
  let at = 0;
  for (const u of sorted) {
    if (u.start > at) out.push({ start: at, length: Math.min(u.start, end) - at });
    at = Math.max(at, u.start + u.length);
    if (at >= end) break;
  }
  if (at < end) out.push({ start: at, length: end - at });
  return out.filter((r) => r.length > 0);
}
