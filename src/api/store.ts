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
import { physicalPath, resolveRoot } from '../nix/store-path.ts';
import * as fs from 'node:fs';
import { mergeDir } from '../tree/scan.ts';
import { nixDatabase } from '../nix/db.ts';
import { derivationOutputs } from '../nix/references.ts';
import { compareStorePaths } from '../nix/registration.ts';
import { nixStateTree, type NixStateOptions } from '../tree/nix-state.ts';

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
  /** Register the closure in /nix/var/nix/db (Nix's database), so no `nix-store --load-db` is needed. */
  nixDatabase?: boolean;
}

export function hasStore(o: StoreOptions): boolean {
  return (o.storePaths?.length ?? 0) + (o.additionalPaths?.length ?? 0) > 0;
}

/** The roots (storePaths + additionalPaths) and store dirs, relative names resolved against `baseDir`. */
function rootsOf(o: StoreOptions, baseDir: string): { roots: string[]; rel: (p: string) => string } {
  const rel = (p: string) => (p.startsWith('/') ? p : path.resolve(baseDir, p));
  return { roots: [...(o.storePaths ?? []), ...(o.additionalPaths ?? [])].map(rel), rel };
}

/** The closure of the roots; relative names resolve against `baseDir`. */
export function storeClosure(o: StoreOptions, baseDir: string): Closure {
  const { roots, rel } = rootsOf(o, baseDir);
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
  const withObjects = addStore(tree ?? emptyDir(epoch), objects, reg, c.nixStoreDir, opts);
  return o.nixDatabase ? mergeDir(withObjects, nixStateOf(c, { epoch, registrationTime: epoch, owner: opts.owner })) : withObjects;
}

/** The store paths (full) the roots name, sorted, for GC roots. */
export function closureRootPaths(o: StoreOptions, closure: Closure, baseDir: string): string[] {
  const names = rootsOf(o, baseDir).roots.map((r) => resolveRoot(r, closure));
  return [...new Set(names)].map((n) => `${closure.nixStoreDir}/${n}`).sort(compareStorePaths);
}

/** A .drv is small; a larger file is no derivation Nix would have written. */
const DRV_MAX = 16 * 2 ** 20;

/**
 * /nix/var/nix registering the closure `c` (database, schema, lock, reserved
 * file, gcroots), as a root directory to merge into an image's root.
 */
export function nixStateOf(c: Closure, o: { epoch: number; registrationTime: number; owner: { uid: number; gid: number }; roots?: NixStateOptions['roots'] }): DirEntry {
  const derivationOutputsOf = (drv: string) => {
    const file = physicalPath(c, drv.slice(c.nixStoreDir.length + 1));
    let outs: ReturnType<typeof derivationOutputs> = null;
    try {
      const st = fs.statSync(file);
      if (st.isFile() && st.size <= DRV_MAX) outs = derivationOutputs(fs.readFileSync(file, 'latin1'));
    } catch {
      outs = null;
    }
    if (!outs) {
      throw new DiskwrightError('STORE_PATH_INVALID', `${drv} is named .drv but is not a store derivation, so Nix cannot register it; leave it out of the closure`, { path: drv });
    }
    return outs;
  };
  const db = nixDatabase(c.paths, { registrationTime: o.registrationTime, derivationOutputs: derivationOutputsOf });
  return nixStateTree({ db, epoch: o.epoch, owner: o.owner, roots: o.roots });
}
