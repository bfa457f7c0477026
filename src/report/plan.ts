// Where an image's bytes go, as a tree: the disk, then its partition table,
// partitions and the gaps between them, then each filesystem's metadata, free
// space and directories down to files. Pure: it gets byte ranges and what
// owns them (collect.ts reads those from an image) and cuts the disk into
// pieces that never overlap, so every node's figures are exactly the sums of
// its children's, and the root's are the disk's.
//
// Each node has two figures: `span`, the bytes of the virtual disk it covers,
// and `size`, how many of those the image file stores (a raw image's
// non-hole bytes, a qcow2's allocated clusters). Sizes add up to the stored
// bytes; the root adds what the file holds beyond them (its container
// headers and tables, or the host filesystem's blocks for it), so the root's
// size is the image file's allocated size as `inspect` reports it.
import type { OwnedRange } from '../read/entry.ts';
import { isStorePathName } from '../nix/store-path.ts';

export type NodeKind =
  | 'disk' | 'table' | 'partition' | 'filesystem' | 'metadata' | 'free' | 'slack' | 'unpartitioned' | 'overhead'
  | 'dir' | 'file' | 'store' | 'store-path' | 'other';

export interface SizeNode {
  /** Display text (a file name as its bytes decode in UTF-8). */
  name: string;
  kind: NodeKind;
  /** Bytes of it the image file stores. */
  size: number;
  /** Bytes of the virtual disk it covers. */
  span: number;
  children?: SizeNode[];
}

/** A filesystem inside a volume: its reader's allocation map (offsets relative to the volume). */
export interface FsLayout {
  type: string;
  label: string;
  /** Bytes the filesystem spans (the rest of its volume is slack). */
  size: number;
  ranges: readonly OwnedRange[];
  /** Directories (byte-string paths) holding store paths: '/nix/store', or '/' for a store-only filesystem. */
  storeDirs: readonly string[];
  /** How the filesystem's store paths are named: their store directory ('/nix/store'). */
  nixStoreDir: string;
}

export interface VolumeLayout {
  /** "partition 2 (root)", "filesystem". */
  name: string;
  offset: number;
  length: number;
  fs?: FsLayout;
}

export interface DiskLayoutInput {
  diskSize: number;
  /** Byte ranges [start, end) of the virtual disk the image file stores, ascending and disjoint; null: all of it. */
  stored: ReadonlyArray<readonly [number, number]> | null;
  /** The image file's allocated bytes; the root's size is this when the stored bytes fit in it. */
  allocatedSize: number;
  /** Partition table structures: MBR, GPT headers and entry arrays. */
  table: ReadonlyArray<{ offset: number; length: number; what: string }>;
  volumes: readonly VolumeLayout[];
  /** At most this many nodes below a directory before the smallest are merged (default 4000). */
  maxChildren?: number;
  /** About this many nodes in all before small directories fold (default 50,000). */
  maxNodes?: number;
}

/** One store path's figures: where it is, its size as stored and as spanned. */
export interface StorePathSize {
  /** Full store path, /nix/store/<hash>-<name>. */
  path: string;
  size: number;
  span: number;
}

export interface SizePlan {
  root: SizeNode;
  storePaths: StorePathSize[];
  /** Problems that did not stop the plan: ranges claimed twice. */
  warnings: string[];
}

/** Stored bytes below any offset, by binary search over the stored ranges' running sums. */
export function storedCounter(stored: DiskLayoutInput['stored']): (from: number, to: number) => number {
  if (stored === null) return (from, to) => Math.max(0, to - from);
  const starts = stored.map((r) => r[0]);
  const ends = stored.map((r) => r[1]);
  const before: number[] = [0];
  for (const [s, t] of stored) before.push(before[before.length - 1] + (t - s));
  const upTo = (x: number): number => {
    // The last range starting before x.
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return 0;
    const i = lo - 1;
    return before[i] + Math.min(ends[i], x) - starts[i];
  };
  return (from, to) => (to > from ? upTo(to) - upTo(from) : 0);
}

/**
 * Cuts [0, length) into the given pieces in offset order, each clipped so
 * none overlaps one before it; the uncovered gaps go to `gap`. Calls `piece`
 * with what remains of each range.
 */
function sweep<T extends { offset: number; length: number }>(
  length: number, items: readonly T[], piece: (item: T, from: number, to: number) => void, gap: (from: number, to: number) => void,
  overlap?: (item: T) => void,
): void {
  const sorted = [...items].sort((a, b) => a.offset - b.offset || a.length - b.length);
  let at = 0;
  for (const it of sorted) {
    const from = Math.max(it.offset, at, 0);
    const to = Math.min(it.offset + it.length, length);
    if (from > it.offset && it.offset + it.length > at && overlap) overlap(it);
    if (to <= from) continue;
    if (from > at) gap(at, from);
    piece(it, from, to);
    at = to;
  }
  if (at < length) gap(at, length);
}

const decode = (bytes: string) => Buffer.from(bytes, 'latin1').toString('utf8');

/** What a metadata range is grouped under: "inode tables", "bitmaps", "FAT tables", ... */
export function metadataCategory(what: string): string {
  const w = what.replace(/ \((meta )?group \d+\)$/, '');
  if (/^superblock|^boot block$/.test(w)) return 'superblocks';
  if (/^group descriptors/.test(w)) return 'group descriptors';
  if (/^reserved GDT blocks$|^resize inode$/.test(w)) return 'reserved GDT blocks';
  if (/bitmap$/.test(w)) return 'bitmaps';
  if (/^inode table$/.test(w)) return 'inode tables';
  if (/^FAT \d+$/.test(w)) return 'FAT tables';
  if (/^boot sector$|^FSInfo sector$|^backup boot sectors$|^reserved sectors$/.test(w)) return 'reserved sectors';
  if (/^root directory$/.test(w)) return 'root directory (fixed)';
  if (/^reserved inode \d+$/.test(w)) return 'reserved inodes';
  return w;
}

/** A node being built: figures so far and children by name. */
interface Acc {
  name: string;
  kind: NodeKind;
  size: number;
  span: number;
  kids?: Map<string, Acc>;
  /** Bytes the node owns itself (a directory's blocks), kept apart from its children's. */
  own?: { size: number; span: number };
}

function acc(name: string, kind: NodeKind): Acc {
  return { name, kind, size: 0, span: 0 };
}

function kid(parent: Acc, key: string, kind: NodeKind, name = key): Acc {
  parent.kids ??= new Map();
  let k = parent.kids.get(key);
  if (!k) parent.kids.set(key, (k = acc(name, kind)));
  return k;
}

function add(node: Acc, size: number, span: number): void {
  node.size += size;
  node.span += span;
}

const bySizeThenName = (a: SizeNode, b: SizeNode) => b.size - a.size || b.span - a.span || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The finished node: children sorted largest first, a directory's own blocks
 * as a child of their own, and past `maxChildren` the smallest merged into
 * one (store paths are never merged: each keeps its box).
 */
function finish(a: Acc, maxChildren: number): SizeNode {
  const out: SizeNode = { name: a.name, kind: a.kind, size: a.size, span: a.span };
  if (!a.kids || a.kids.size === 0) return out;
  let kids = [...a.kids.values()].map((k) => finish(k, maxChildren));
  if (a.own && (a.own.span > 0 || a.own.size > 0)) kids.push({ name: '(directory blocks)', kind: 'metadata', size: a.own.size, span: a.own.span });
  kids.sort(bySizeThenName);
  const mergeable = kids.filter((k) => k.kind !== 'store-path');
  if (mergeable.length > maxChildren) kids = merged(kids, new Set(mergeable.slice(maxChildren - 1)));
  out.children = kids;
  return out;
}

/** `kids` with those in `rest` replaced by one node holding their sums. */
function merged(kids: SizeNode[], rest: Set<SizeNode>): SizeNode[] {
  let size = 0;
  let span = 0;
  for (const k of rest) {
    size += k.size;
    span += k.span;
  }
  const out = kids.filter((k) => !rest.has(k));
  out.push({ name: `(${rest.size} smaller entries)`, kind: 'other', size, span });
  return out.sort(bySizeThenName);
}

function countNodes(n: SizeNode): number {
  let c = 1;
  for (const k of n.children ?? []) c += countNodes(k);
  return c;
}

/**
 * At most about `budget` nodes: below directories whose figures are under a
 * threshold (raised until the tree fits), the contents fold into the
 * directory itself. Store paths and everything above them stay.
 */
export function limitNodes(root: SizeNode, budget: number): SizeNode {
  if (countNodes(root) <= budget) return root;
  const fold = (n: SizeNode, min: number): SizeNode => {
    if (!n.children) return n;
    if (n.kind !== 'store' && n.kind !== 'disk' && n.kind !== 'partition' && n.kind !== 'filesystem' && Math.max(n.size, n.span) < min && !n.children.some((k) => k.kind === 'store-path' || k.kind === 'store')) {
      return { name: n.name, kind: n.kind, size: n.size, span: n.span };
    }
    return { ...n, children: n.children.map((k) => fold(k, min)) };
  };
  let min = Math.max(1, Math.max(root.size, root.span) / 1e6);
  for (let i = 0; i < 40; i++, min *= 2) {
    const folded = fold(root, min);
    if (countNodes(folded) <= budget) return folded;
  }
  return fold(root, Infinity);
}

/** The size tree of a disk and the store paths its filesystems hold. */
export function planSizes(input: DiskLayoutInput): SizePlan {
  const stored = storedCounter(input.stored);
  const maxChildren = input.maxChildren ?? 4000;
  const warnings: string[] = [];
  const root = acc('disk', 'disk');
  const storePaths: StorePathSize[] = [];
  type DiskItem = { offset: number; length: number; table?: string; volume?: VolumeLayout };
  const items: DiskItem[] = [
    ...input.table.map((t) => ({ offset: t.offset, length: t.length, table: t.what })),
    ...input.volumes.map((v) => ({ offset: v.offset, length: v.length, volume: v })),
  ];
  const bare = input.volumes.length === 1 && input.volumes[0].offset === 0 && input.table.length === 0;
  sweep(
    input.diskSize,
    items,
    (it, from, to) => {
      if (it.table !== undefined) {
        const t = kid(root, 'partition table', 'table');
        const leaf = kid(t, it.table, 'table');
        add(leaf, stored(from, to), to - from);
        add(t, stored(from, to), to - from);
        add(root, stored(from, to), to - from);
        return;
      }
      const v = it.volume!;
      const node = bare ? root : kid(root, v.name, 'partition');
      if (bare && v.fs) {
        root.name = `${v.fs.type} filesystem${v.fs.label ? ` "${v.fs.label}"` : ''}`;
        root.kind = 'filesystem';
      }
      planVolume(node, v, from, to, stored, storePaths, warnings);
    },
    (from, to) => {
      const g = kid(root, 'outside partitions', 'unpartitioned');
      add(g, stored(from, to), to - from);
      add(root, stored(from, to), to - from);
    },
    (it) => warnings.push(`${it.volume ? it.volume.name : it.table}: overlaps what comes before it; counted once, for the first`),
  );
  if (!bare) {
    // The root's figures are its children's.
    root.size = 0;
    root.span = 0;
    for (const k of root.kids?.values() ?? []) add(root, k.size, k.span);
  }
  const storedTotal = root.size;
  if (input.allocatedSize > storedTotal) {
    const o = kid(root, 'image file overhead', 'overhead', 'image file overhead (container headers and tables, host filesystem blocks)');
    add(o, input.allocatedSize - storedTotal, 0);
    add(root, input.allocatedSize - storedTotal, 0);
  }
  // A path two filesystems hold counts once, with both copies' bytes.
  const byPath = new Map<string, StorePathSize>();
  for (const p of storePaths) {
    const hit = byPath.get(p.path);
    if (hit) {
      hit.size += p.size;
      hit.span += p.span;
    } else byPath.set(p.path, { ...p });
  }
  const paths = [...byPath.values()].sort((a, b) => b.size - a.size || b.span - a.span || (a.path < b.path ? -1 : 1));
  return { root: limitNodes(finish(root, maxChildren), input.maxNodes ?? 50_000), storePaths: paths, warnings };
}

/** Deepest a path goes in the tree: what lies deeper counts for its ancestor at this depth (bounds every recursion over the tree). */
export const MAX_DEPTH = 128;

function clampDepth(path: string): string {
  let at = 0;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    at = path.indexOf('/', at + 1);
    if (at < 0) return path;
  }
  return path.slice(0, at);
}

function planVolume(
  node: Acc, v: VolumeLayout, from: number, to: number, stored: (a: number, b: number) => number,
  storePaths: StorePathSize[], warnings: string[],
): void {
  const base = v.offset;
  if (!v.fs) {
    add(node, stored(from, to), to - from);
    return;
  }
  const fs = v.fs;
  const fsNode = node;
  if (node.kind === 'partition') node.name = `${v.name}: ${fs.type}${fs.label ? ` "${fs.label}"` : ''}`;
  // Volume-relative bounds of what is left of the volume after clipping.
  const lo = from - base;
  const hi = to - base;
  const fsEnd = Math.min(fs.size, hi);
  const at = (rel: number) => base + rel;
  const meta = () => kid(fsNode, 'filesystem metadata', 'metadata');
  const dirs = new Map<string, Acc>();
  const storeNames = new Map<Acc, string>();
  const top = () => kid(fsNode, '/', storeDirs.has('/') ? 'store' : 'dir', '/');
  const storeDirs = new Set(fs.storeDirs);
  const nodeFor = (path: string): Acc => {
    if (path === '/') return top();
    const hit = dirs.get(path);
    if (hit) return hit;
    const cut = path.lastIndexOf('/');
    const parentPath = cut <= 0 ? '/' : path.slice(0, cut);
    const parent = nodeFor(parentPath);
    const name = path.slice(cut + 1);
    const isStorePath = storeDirs.has(parentPath) && isStorePathName(name);
    const n = kid(parent, name, isStorePath ? 'store-path' : storeDirs.has(path) ? 'store' : 'file', decode(name));
    if (isStorePath) storeNames.set(n, `${fs.nixStoreDir}/${decode(name)}`);
    if (parent.kind === 'file') parent.kind = 'dir';
    dirs.set(path, n);
    return n;
  };
  // Adds bytes to a path (its own: a directory's blocks, a file's content and
  // extent tree) and to every directory above it, up to the root.
  const addToPath = (full: string, size: number, span: number) => {
    const path = clampDepth(full);
    const n = nodeFor(path);
    n.own ??= { size: 0, span: 0 };
    n.own.size += size;
    n.own.span += span;
    for (let p = path; ; p = p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/'))) {
      add(nodeFor(p), size, span);
      if (p === '/') break;
    }
  };
  sweep(
    fsEnd,
    fs.ranges.filter((r) => r.offset + r.length > lo),
    (r, f, t) => {
      if (f < lo) f = lo;
      if (t <= f) return;
      const size = stored(at(f), at(t));
      const span = t - f;
      if (r.path !== undefined && r.path !== '') {
        addToPath(r.path, size, span);
        if (r.what === 'directory' && nodeFor(r.path).kind === 'file') nodeFor(r.path).kind = 'dir';
      } else {
        const m = meta();
        add(kid(m, metadataCategory(r.what), 'metadata'), size, span);
        add(m, size, span);
      }
      add(fsNode, size, span);
    },
    (f, t) => {
      if (f < lo) f = lo;
      if (t <= f) return;
      const free = kid(fsNode, 'free space', 'free');
      add(free, stored(at(f), at(t)), t - f);
      add(fsNode, stored(at(f), at(t)), t - f);
    },
    (r) => {
      if (warnings.length < 20) warnings.push(`${v.name}: ${r.what}${r.path ? ` of ${decode(r.path)}` : ''} at byte ${r.offset} overlaps what comes before it; counted once`);
    },
  );
  if (hi > Math.max(fsEnd, lo)) {
    const f = Math.max(fsEnd, lo);
    const slack = kid(fsNode, 'after the filesystem', 'slack', 'after the filesystem (unused part of the partition)');
    add(slack, stored(at(f), at(hi)), hi - f);
    add(fsNode, stored(at(f), at(hi)), hi - f);
  }
  for (const n of dirs.values()) if (n.kids && n.kind === 'file') n.kind = 'dir';
  for (const [n, path] of storeNames) storePaths.push({ path, size: n.size, span: n.span });
  const t = fsNode.kids?.get('/');
  if (t) t.name = '/ (files)';
}
