// Store closures as FileTree entries: every store object of the closure copied
// into the image's /nix/store as `cp -a` copies it (make-ext4-fs), plus the
// closure's registration at /nix-path-registration for `nix-store --load-db`
// on first boot. With onlyNixStore the objects are the filesystem's root, as
// make-disk-image's onlyNixStore stages them.
import * as path from 'node:path';
import { byteName, type DirEntry, type FileEntry } from './model.ts';
import { emptyDir, targetParts } from './contents.ts';
import { mergeDir, scanPath } from './scan.ts';

export interface StoreTreeOptions {
  /** Owner of every copied object (the store is root's); undefined keeps the host's. */
  owner?: { uid: number; gid: number };
  clampMtime?: number;
  /** Time of the directories made to hold the store (/nix, /nix/store). */
  epoch: number;
}

/**
 * The store objects at `hostPaths` (where they live on the build machine) as
 * the entries of one directory, named by their base names. One hard-link
 * scope for all of them: files that store optimisation linked together stay
 * one inode, counted once.
 */
export function storeObjects(hostPaths: string[], opts: StoreTreeOptions): DirEntry {
  const dir = emptyDir(opts.epoch, opts.owner);
  for (const p of [...hostPaths].sort((a, b) => Buffer.compare(Buffer.from(path.basename(a)), Buffer.from(path.basename(b))))) {
    dir.children.set(byteName(path.basename(p)), scanPath(p, { owner: opts.owner, clampMtime: opts.clampMtime, linkScope: 'nix-store:' }));
  }
  return dir;
}

/** A file whose bytes diskwright made (default mode 0444, as `cp` of a store file leaves it). */
export function madeFile(name: string, content: Buffer, epoch: number, owner = { uid: 0, gid: 0 }, mode = 0o444): FileEntry {
  return { type: 'file', mode, uid: owner.uid, gid: owner.gid, mtimeSec: epoch, mtimeNsec: 0, xattrs: [], size: content.length, sourcePath: Buffer.from(name), content };
}

/**
 * Merges the store objects into `root` at `storeDir` (the image's store
 * directory, /nix/store) and the registration at `registrationPath`.
 * Directories made on the way keep the metadata of ones already there.
 */
export function addStore(root: DirEntry, objects: DirEntry, registration: { path: string; content: Buffer } | undefined, storeDir: string, opts: StoreTreeOptions): DirEntry {
  const parts = targetParts(storeDir, 'store directory', 'nixStoreDir');
  let tree: DirEntry = objects;
  for (let i = parts.length - 1; i >= 0; i--) {
    const up = emptyDir(opts.epoch, opts.owner);
    up.children.set(byteName(parts[i]), tree);
    tree = up;
  }
  let merged = mergeDir(root, tree);
  if (registration) {
    const regParts = targetParts(registration.path, 'nixPathRegistration', 'nixPathRegistration');
    let holder: DirEntry = emptyDir(opts.epoch, opts.owner);
    const top = holder;
    for (const p of regParts.slice(0, -1)) {
      const d = emptyDir(opts.epoch, opts.owner);
      holder.children.set(byteName(p), d);
      holder = d;
    }
    holder.children.set(byteName(regParts[regParts.length - 1]), madeFile(registration.path, registration.content, opts.epoch, opts.owner));
    merged = mergeDir(merged, top);
  }
  return merged;
}
