// Closure sizes, as `nix path-info -rsS` gives them: for each store path,
// what it pulls in (itself and everything it references, transitively) and
// the bytes those take in the image. Pure: sizes and references in, rows out.
import type { StorePathSize } from './plan.ts';

export interface StorePathRow extends StorePathSize {
  /** The NAR size the registration or database records, null when neither does. */
  narSize: number | null;
  /** Bytes the path and everything it references take in the image (stored, and spanned). */
  closureSize: number;
  closureSpan: number;
  /** Paths in the closure, the path itself included. */
  closureCount: number;
}

export interface References {
  /** Where they came from: "/nix/var/nix/db/db.sqlite", "/nix-path-registration", "scanning file contents for store hashes". */
  source: string;
  /** Full store path -> the full store paths it references (itself included or not). */
  refs: Map<string, readonly string[]>;
  /** NAR sizes by full store path, when the source records them. */
  narSizes?: Map<string, number>;
}

/**
 * A row per store path, biggest (stored bytes) first. References to paths the
 * image does not hold are left out: their bytes are not in the image.
 */
export function closureSizes(paths: readonly StorePathSize[], references: References | null): StorePathRow[] {
  const index = new Map(paths.map((p, i) => [p.path, i]));
  const edges: number[][] = paths.map((p) => {
    const out: number[] = [];
    for (const r of references?.refs.get(p.path) ?? []) {
      const j = index.get(r);
      if (j !== undefined) out.push(j);
    }
    return out;
  });
  // A visit stamp per path: one array for every root's walk.
  const seen = new Uint32Array(paths.length);
  const stack: number[] = [];
  const rows = paths.map((p, i): StorePathRow => {
    const stamp = i + 1;
    let size = 0;
    let span = 0;
    let count = 0;
    stack.push(i);
    seen[i] = stamp;
    while (stack.length > 0) {
      const j = stack.pop()!;
      size += paths[j].size;
      span += paths[j].span;
      count++;
      for (const k of edges[j]) {
        if (seen[k] !== stamp) {
          seen[k] = stamp;
          stack.push(k);
        }
      }
    }
    return { ...p, narSize: references?.narSizes?.get(p.path) ?? null, closureSize: size, closureSpan: span, closureCount: count };
  });
  return rows.sort((a, b) => b.size - a.size || b.closureSize - a.closureSize || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
