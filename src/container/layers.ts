// The trees that become layers: store layers (the store paths of one group
// under /nix/store, with the parent directories), and the customisation layer
// (the merged `contents`: host directories copied, store paths linked in as
// symlinkJoin links them, contents entries placed as disk configs place them).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { byteName, type DirEntry, type Entry } from '../tree/model.ts';
import { applyOwners, contentsTree, emptyDir, targetParts, type ContentSpec } from '../tree/contents.ts';
import { mergeDir, scanPath } from '../tree/scan.ts';
import { isStorePathName, physicalPath, type StoreDirs } from '../nix/store-path.ts';
import type { Closure } from '../nix/closure.ts';
import { popularityOrder, cutLayers, sizeLayers, type GraphPath } from './popularity.ts';

export interface LayerOwner {
  uid: number;
  gid: number;
  /** Seconds: the time of directories diskwright makes (and, for store layers, of everything). */
  mtime: number;
}

/** A directory chain `parts` holding `leaf`'s children, each made directory 0755 owned by `o`. */
function under(parts: string[], leaf: DirEntry, o: LayerOwner): DirEntry {
  let tree = leaf;
  for (let i = parts.length - 1; i >= 0; i--) {
    const up = emptyDir(o.mtime, o);
    up.children.set(byteName(parts[i]), tree);
    tree = up;
  }
  return tree;
}

/** One store layer's tree: the store paths (base names) under the store dir, as the store has them. */
export function storeLayerTree(names: readonly string[], dirs: StoreDirs, o: LayerOwner): DirEntry {
  const store = emptyDir(o.mtime, o);
  for (const name of names) {
    // One hard-link scope per layer: store-optimised files shared by paths of this layer stay one inode (tar typeflag 1).
    store.children.set(byteName(name), scanPath(physicalPath(dirs, name), { owner: o, linkScope: 'layer:' }));
  }
  return under(targetParts(dirs.nixStoreDir, 'nixStoreDir'), store, o);
}

/** Store paths grouped into layers, most popular first: `layers` groups at most. */
export function storeLayerGroups(c: Closure, layers: number, layering: 'popularity' | 'size'): string[][] {
  const graph: GraphPath[] = c.paths.map((p) => ({ path: p.path, references: p.references, narSize: p.narSize }));
  return layering === 'size' ? sizeLayers(graph, layers) : cutLayers(popularityOrder(graph), layers);
}

/**
 * A store path's tree as symlinkJoin links it: directories made afresh, every
 * other entry a symlink to the file in the store.
 */
function linkTree(e: Entry, target: string, o: LayerOwner): Entry {
  if (e.type !== 'dir') {
    return { type: 'symlink', mode: 0o777, uid: o.uid, gid: o.gid, mtimeSec: o.mtime, mtimeNsec: 0, xattrs: [], target: Buffer.from(target) };
  }
  const d = emptyDir(o.mtime, o);
  for (const [k, child] of e.children) d.children.set(k, linkTree(child, `${target}/${Buffer.from(k, 'latin1').toString()}`, o));
  return d;
}

export interface CustomisationInput {
  contents: Array<string | ContentSpec>;
  baseDir: string;
  dirs: StoreDirs;
  owner: LayerOwner;
}

/** The customisation layer's tree, and the store paths (base names) `contents` names, whose closures go to store layers. */
export function customisationTree(i: CustomisationInput): { tree: DirEntry; storeNames: string[] } {
  let root = emptyDir(i.owner.mtime, i.owner);
  const storeNames: string[] = [];
  const specs: ContentSpec[] = [];
  i.contents.forEach((c, n) => {
    if (typeof c !== 'string') {
      specs.push(c);
      return;
    }
    const abs = path.resolve(i.baseDir, c);
    const name = storeBaseName(abs, i.dirs);
    if (name) {
      storeNames.push(name);
      const e = scanPath(physicalPath(i.dirs, name), { followTop: true });
      if (e.type !== 'dir') {
        throw new DiskwrightError('CONTENTS_INVALID', `contents[${n}]: ${c} is a store path that is not a directory; name a package whose files go into the image root`, { index: n });
      }
      root = mergeDir(root, linkTree(e, `${i.dirs.nixStoreDir}/${name}`, i.owner) as DirEntry);
      return;
    }
    const e = scanPath(abs, { followTop: true, owner: i.owner, linkScope: `contents[${n}]:` });
    if (e.type !== 'dir') {
      throw new DiskwrightError('CONTENTS_INVALID', `contents[${n}]: ${c} is not a directory or a store path; use {source, target} to place a single file`, { index: n });
    }
    root = mergeDir(root, e);
  });
  if (specs.length) {
    root = contentsTree(specs, { what: 'contents', baseDir: i.baseDir, epoch: i.owner.mtime, owner: i.owner }, root);
    applyOwners(root, specs, 'contents');
  }
  return { tree: root, storeNames };
}

/**
 * The store path (base name) `abs` is or leads to through symlinks (such as
 * ./result), under either store dir, or null for anything else.
 */
function storeBaseName(abs: string, dirs: StoreDirs): string | null {
  let p = abs;
  for (let hops = 0; hops < 40; hops++) {
    for (const dir of [dirs.nixStoreDir, dirs.storeDir]) {
      if (p.startsWith(dir + '/') && isStorePathName(p.slice(dir.length + 1))) return p.slice(dir.length + 1);
    }
    let target: string;
    try {
      target = fs.readlinkSync(p);
    } catch {
      return null; // not a symlink (or missing: scanning it says so)
    }
    p = path.resolve(path.dirname(p), target);
  }
  return null;
}

/** Store paths (full) named anywhere in the config's strings, as nixpkgs adds them to the closure. */
export function storePathsIn(value: unknown, nixStoreDir: string): string[] {
  const found = new Set<string>();
  const re = new RegExp(`${nixStoreDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\\-._?=]+)`, 'g');
  const walk = (v: unknown) => {
    if (typeof v === 'string') for (const m of v.matchAll(re)) found.add(`${nixStoreDir}/${m[1]}`);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (walk(k), walk(x));
  };
  walk(value);
  return [...found].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
