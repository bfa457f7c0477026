// Store layers for container images. `popularity` is nixpkgs'
// references-by-popularity (pkgs/build-support/references-by-popularity/
// closure-graph.py) and dockerTools' cut; `size` is diskwright's variant that
// spends the layer budget on the paths whose bytes are worth sharing.
//
// The popularity recurrence, for the graph without self-references:
//   C(x) = the contest of x's references: for each reference r of x,
//          C(x)[r] += 1, and for each y in C(r), C(x)[y] += C(r)[y] + 1.
//   popularity = the same over the roots (paths no other path refers to):
//          pop[root] += 1, pop[y] += C(root)[y] + 1.
// Paths are ordered by popularity, most popular first; equal ones by name
// with the hash part moved last ("hash-name-1.0" -> "name-1.0-hash"), so an
// unchanged package keeps its place when only its hash changed. Counts grow
// with the number of paths through the graph, so they are bigints.
import { DiskwrightError } from '../errors.ts';

export interface GraphPath {
  /** Full store path. */
  path: string;
  /** Full store paths it refers to (a self-reference is ignored). */
  references: readonly string[];
  /** Bytes the path adds to a layer (its NAR size will do). */
  narSize?: number;
}

/** The sort key of a path among equally popular ones: its name first, its hash part last. */
export function packageNameKey(storePath: string): string {
  const parts = storePath.split('-');
  const first = parts.shift()!;
  parts.push(first);
  return parts.join('-');
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Each path's popularity (paths not reachable from a root, which a valid closure has none of, get none). */
export function popularity(paths: readonly GraphPath[]): Map<string, bigint> {
  const refs = new Map<string, string[]>();
  for (const p of paths) refs.set(p.path, [...new Set(p.references)].filter((r) => r !== p.path));
  const referenced = new Set<string>();
  for (const [, rs] of refs) for (const r of rs) referenced.add(r);
  const contest = new Map<string, Map<string, bigint>>();
  const contestOf = (start: string): Map<string, bigint> => {
    // Post-order without recursion: a deep chain of references must not overflow the stack.
    const stack: Array<[string, number]> = [[start, 0]];
    const onStack = new Set([start]);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const rs = refs.get(top[0]) ?? [];
      if (top[1] < rs.length) {
        const r = rs[top[1]++];
        if (contest.has(r)) continue;
        if (onStack.has(r)) {
          throw new DiskwrightError('REGISTRATION_INVALID', `store path ${r} refers to itself through ${top[0]}; store paths cannot form a cycle, check the references source`, { path: r });
        }
        onStack.add(r);
        stack.push([r, 0]);
        continue;
      }
      stack.pop();
      onStack.delete(top[0]);
      contest.set(top[0], merge(rs, contest));
    }
    return contest.get(start)!;
  };
  const roots = paths.map((p) => p.path).filter((p) => !referenced.has(p));
  for (const r of roots) contestOf(r);
  return merge(roots, contest);
}

/** One level of the contest: each child counts 1, each of its descendants its own count + 1. */
function merge(children: readonly string[], contest: Map<string, Map<string, bigint>>): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const add = (k: string, v: bigint) => out.set(k, (out.get(k) ?? 0n) + v);
  for (const c of children) {
    add(c, 1n);
    for (const [y, n] of contest.get(c) ?? []) add(y, n + 1n);
  }
  return out;
}

/**
 * Every path, most popular first, equally popular ones by packageNameKey;
 * then, as closure-graph.py appends them, paths only named as references
 * (bytewise, where closure-graph.py's set order is arbitrary).
 */
export function popularityOrder(paths: readonly GraphPath[]): string[] {
  const pop = popularity(paths);
  const keys = new Map([...pop.keys()].map((p) => [p, packageNameKey(p)]));
  const ordered = [...pop.keys()].sort((a, b) => {
    const d = pop.get(b)! - pop.get(a)!;
    return d > 0n ? 1 : d < 0n ? -1 : byBytes(keys.get(a)!, keys.get(b)!);
  });
  const seen = new Set(ordered);
  const missing = new Set<string>();
  for (const p of paths) for (const q of [p.path, ...p.references]) if (!seen.has(q)) missing.add(q);
  return [...ordered, ...[...missing].sort(byBytes)];
}

/**
 * dockerTools' cut of a popularity order into at most `layers` store layers
 * (maxLayers - 1 - base layers): the first layers - 1 paths get a layer each,
 * and the rest share the last one.
 */
export function cutLayers(order: readonly string[], layers: number): string[][] {
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`internal: ${layers} store layers`);
  const out = order.slice(0, layers - 1).map((p) => [p]);
  if (order.length > layers - 1) out.push(order.slice(layers - 1));
  return out;
}

export interface SizeLayering {
  /** A path smaller than this never gets a layer of its own (default 1 MiB). */
  minOwnLayer?: number;
}

/**
 * The size-aware variant: the layer budget goes to the paths with the most
 * bytes times popularity (a big library many paths use is what two images
 * share), at most layers - 1 of them and none below minOwnLayer. The other
 * paths keep their popularity order and are packed, in that order, into the
 * layers left, in runs of roughly equal bytes; the last layer takes what
 * remains. Layers come out in the popularity order of their first path.
 */
export function sizeLayers(paths: readonly GraphPath[], layers: number, opts: SizeLayering = {}): string[][] {
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`internal: ${layers} store layers`);
  const min = opts.minOwnLayer ?? 1 << 20;
  const order = popularityOrder(paths);
  const rank = new Map(order.map((p, i) => [p, i]));
  const pop = popularity(paths);
  const size = new Map(paths.map((p) => [p.path, p.narSize ?? 0]));
  const score = (p: string) => BigInt(size.get(p) ?? 0) * (pop.get(p) ?? 1n);
  if (order.length <= layers) return order.map((p) => [p]);
  const candidates = order.filter((p) => (size.get(p) ?? 0) >= min);
  candidates.sort((a, b) => {
    const d = score(b) - score(a);
    return d > 0n ? 1 : d < 0n ? -1 : rank.get(a)! - rank.get(b)!;
  });
  // At least one layer stays for the rest.
  const ownCount = Math.min(candidates.length, layers - 1);
  const own = new Set(candidates.slice(0, ownCount));
  const rest = order.filter((p) => !own.has(p));
  const groups: string[][] = [...own].map((p) => [p]);
  const bins = layers - own.size;
  if (rest.length > 0) {
    const total = rest.reduce((s, p) => s + (size.get(p) ?? 0), 0);
    const target = total / bins;
    let current: string[] = [];
    let bytes = 0;
    for (const p of rest) {
      current.push(p);
      bytes += size.get(p) ?? 0;
      // Close a run once it holds its share, keeping a layer for what remains.
      if (bytes >= target && groups.length < layers - 1) {
        groups.push(current);
        current = [];
        bytes = 0;
      }
    }
    if (current.length) groups.push(current);
  }
  return groups.sort((a, b) => rank.get(a[0])! - rank.get(b[0])!);
}
