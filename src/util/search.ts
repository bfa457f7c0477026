// Binary search over sorted, non-overlapping [start, end) ranges.

/** Index of the first range that ends after `x` (ranges.length when none does). */
export function firstEndingAfter(ranges: ReadonlyArray<readonly [number, number]>, x: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid][1] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
