// Store paths: `<store dir>/<hash part>-<name>`, the hash part 32 nix32
// characters (160 bits), the name from a small alphabet. A store may live on
// this machine somewhere other than the directory its paths are named under
// (a chroot store `nix --store /tmp/r` keeps /nix/store/x at /tmp/r/nix/store/x,
// a store copied out of an image anywhere): `nixStoreDir` is the directory in
// the paths' names, `storeDir` where their files are read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';

export const DEFAULT_NIX_STORE_DIR = '/nix/store';

export interface StoreDirs {
  /** The store directory the paths are named under (Nix's `storeDir`, NIX_STORE_DIR); default /nix/store. */
  nixStoreDir: string;
  /** Where the store paths' files are on this machine (Nix's "real" store dir); default `nixStoreDir`. */
  storeDir: string;
}

export function storeDirs(opts: { nixStoreDir?: string; storeDir?: string } = {}): StoreDirs {
  const nixStoreDir = opts.nixStoreDir ?? DEFAULT_NIX_STORE_DIR;
  if (!path.isAbsolute(nixStoreDir) || nixStoreDir !== path.resolve(nixStoreDir) || nixStoreDir === '/') {
    throw new DiskwrightError('OPTION_INVALID', `nix store dir ${nixStoreDir}: give an absolute directory such as /nix/store, without a trailing slash`, { nixStoreDir });
  }
  return { nixStoreDir, storeDir: path.resolve(opts.storeDir ?? nixStoreDir) };
}

export const HASH_PART_LENGTH = 32;
const NAME = /^[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]{1,211}$/;

/** True when `name` is a store path's base name, `<hash part>-<name>`. */
export function isStorePathName(name: string): boolean {
  return NAME.test(name);
}

export function hashPart(name: string): string {
  return name.slice(0, HASH_PART_LENGTH);
}

/** The base name of `full` if it names a store path directly under `dir`, else null. */
export function storeNameIn(dir: string, full: string): string | null {
  if (!full.startsWith(dir + '/')) return null;
  const name = full.slice(dir.length + 1);
  return isStorePathName(name) ? name : null;
}

/** Where a store path's files are on this machine. */
export function physicalPath(dirs: StoreDirs, name: string): string {
  return path.join(dirs.storeDir, name);
}

/**
 * The store path (base name) a root argument designates: a store path named
 * under either store dir, a file inside one, or a symlink (chain) leading to
 * one, such as `./result`. Checks that the path exists under `storeDir`.
 */
export function resolveRoot(arg: string, dirs: StoreDirs): string {
  return resolveInStore(arg, dirs).name;
}

/**
 * As resolveRoot, and also where inside the store path `arg` leads: `rest`
 * is '' for the store path itself, '/bin/sh' for a file in it.
 */
export function resolveInStore(arg: string, dirs: StoreDirs): { name: string; rest: string } {
  let p = path.resolve(arg);
  for (let hops = 0; hops < 40; hops++) {
    for (const dir of [dirs.nixStoreDir, dirs.storeDir]) {
      if (!p.startsWith(dir + '/')) continue;
      const name = p.slice(dir.length + 1).split('/')[0];
      if (!isStorePathName(name)) {
        throw new DiskwrightError('STORE_PATH_INVALID', `root ${arg}: ${name} is not a store path name (<32-character hash>-<name>); give a path such as ${dirs.nixStoreDir}/<hash>-<name>`, { root: arg });
      }
      requirePresent(dirs, name, path.resolve(arg) === `${dir}/${name}` ? 'a root' : `root ${arg}`);
      return { name, rest: p.slice(dir.length + 1 + name.length) };
    }
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      throw new DiskwrightError('STORE_PATH_MISSING', `root ${arg} does not exist; give a store path under ${dirs.nixStoreDir}${storeDirHint(dirs)}`, { root: arg });
    }
    if (!st.isSymbolicLink()) {
      throw new DiskwrightError('STORE_PATH_INVALID', `root ${arg} is outside the store dir ${dirs.nixStoreDir}${storeDirHint(dirs)}; give a store path or a symlink to one (like ./result)`, { root: arg });
    }
    p = path.resolve(path.dirname(p), fs.readlinkSync(p));
  }
  throw new DiskwrightError('STORE_PATH_INVALID', `root ${arg}: too many levels of symlinks; give the store path itself`, { root: arg });
}

function storeDirHint(dirs: StoreDirs): string {
  return dirs.storeDir === dirs.nixStoreDir ? '' : ` (files read from ${dirs.storeDir})`;
}

/** Throws STORE_PATH_MISSING unless the store path is present under `storeDir`; `why` says how it came into the closure. */
export function requirePresent(dirs: StoreDirs, name: string, why?: string): void {
  try {
    fs.lstatSync(physicalPath(dirs, name));
  } catch {
    const notes = [why, dirs.storeDir === dirs.nixStoreDir ? '' : `looked for ${physicalPath(dirs, name)}`].filter(Boolean).join(', ');
    throw new DiskwrightError(
      'STORE_PATH_MISSING',
      `store path ${dirs.nixStoreDir}/${name} does not exist${notes ? ` (${notes})` : ''}; build or copy it there, or give the right --store-dir`,
      { path: `${dirs.nixStoreDir}/${name}` },
    );
  }
}
