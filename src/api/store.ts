// Store closures in images, shared by `build` and `mkfs ext4`: the closure of
// the roots (storePaths + additionalPaths) copied into the image's store, and
// its registration written where make-ext4-fs writes it, or, with
// onlyNixStore, the store objects as the filesystem root (make-disk-image).
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import type { DirEntry } from '../tree/model.ts';
import { addStore, storeObjects } from '../tree/store.ts';
import { closure, type Closure } from '../nix/closure.ts';
import { formatRegistration } from '../nix/registration.ts';
import { emptyDir } from '../tree/contents.ts';
import { physicalPath } from '../nix/store-path.ts';

export interface StoreOptions {
  /** Closure roots: store paths, or symlinks to them such as ./result. */
  storePaths?: string[];
  /** More roots (make-disk-image's additionalPaths). */
  additionalPaths?: string[];
  /** The store objects become the filesystem's root; nothing else goes in. */
  onlyNixStore?: boolean;
  /** Where the registration goes in the image; false for none. Default /nix-path-registration. */
  nixPathRegistration?: string | false;
  /** Where the store paths' files are on this machine; default nixStoreDir. */
  storeDir?: string;
  /** The store directory the paths are named under, in their names and in the image; default /nix/store. */
  nixStoreDir?: string;
  /** References (and hashes) from a closureInfo dir, registration / dump-db file or `nix path-info --json`; default: scan. */
  storeReferences?: string;
}

export function hasStore(o: StoreOptions): boolean {
  return (o.storePaths?.length ?? 0) + (o.additionalPaths?.length ?? 0) > 0;
}

/** The closure of the roots; relative names resolve against `baseDir`. */
export function storeClosure(o: StoreOptions, baseDir: string): Closure {
  const rel = (p: string) => (p.startsWith('/') ? p : path.resolve(baseDir, p));
  const roots = [...(o.storePaths ?? []), ...(o.additionalPaths ?? [])].map(rel);
  return closure(roots, {
    nixStoreDir: o.nixStoreDir,
    storeDir: o.storeDir === undefined ? undefined : rel(o.storeDir),
    references: o.storeReferences === undefined ? undefined : rel(o.storeReferences),
    // A references source that carries hashes (closureInfo, dump-db) spares hashing every path again.
    hashes: o.storeReferences === undefined ? 'compute' : 'given',
  });
}

/**
 * `tree` with the closure added (or, onlyNixStore, replaced by it). Store
 * objects are owned by `owner` (root unless the build preserves owners).
 */
export function withStore(tree: DirEntry | undefined, o: StoreOptions, baseDir: string, epoch: number, owner: { uid: number; gid: number } | undefined, clampMtime?: number): DirEntry | undefined {
  if (!hasStore(o)) {
    if (o.onlyNixStore) throw new DiskwrightError('CONFIG_INVALID', 'onlyNixStore: no storePaths given; name the closure roots whose store the image holds', {});
    return tree;
  }
  // Refused before the closure is hashed, which can take long.
  if (o.onlyNixStore && tree) throw new DiskwrightError('CONFIG_INVALID', 'onlyNixStore: the image holds only the store; remove root, contents and files (make-disk-image refuses them too)', {});
  const c = storeClosure(o, baseDir);
  const opts = { owner: owner ?? { uid: 0, gid: 0 }, clampMtime, epoch };
  // A fresh 0755 directory: with onlyNixStore, the root, as make-disk-image's chmod leaves it.
  const objects = storeObjects(c.paths.map((p) => physicalPath(c, p.path.slice(c.nixStoreDir.length + 1))), opts);
  if (o.onlyNixStore) return objects;
  const reg = o.nixPathRegistration === false ? undefined : { path: o.nixPathRegistration ?? '/nix-path-registration', content: Buffer.from(formatRegistration(c.paths)) };
  return addStore(tree ?? emptyDir(epoch), objects, reg, c.nixStoreDir, opts);
}
