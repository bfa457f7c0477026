// The closure of a set of root store paths: every path reachable through
// references, each with its narHash, narSize, references and (when known)
// deriver, sorted as Nix sorts a StorePathSet (bytewise), which is the order
// of closureInfo's store-paths and registration.
import { DiskwrightError } from '../errors.ts';
import { formatSha256 } from './hash.ts';
import { narDigest, narNodeOfPath, type NarDigest } from './nar.ts';
import { readReferenceSource } from './references.ts';
import { derivationInputs, ReferenceScanner, storeContents } from './references.ts';
import * as fs from 'node:fs';
import { compareStorePaths, totalNarSize, type GivenPathInfo, type StorePathInfo } from './registration.ts';
import { physicalPath, requirePresent, resolveRoot, storeDirs, storeNameIn, type StoreDirs } from './store-path.ts';

export interface ClosureOptions {
  /** The store dir the paths are named under; default /nix/store. */
  nixStoreDir?: string;
  /** Where the store paths' files are on this machine; default `nixStoreDir`. */
  storeDir?: string;
  /**
   * Where references come from: a closureInfo directory, a registration or
   * `nix-store --dump-db` file, `nix path-info --json` output, or path infos
   * already parsed. Default: scan each path for the hash parts of the paths
   * present in `storeDir`.
   */
  references?: string | GivenPathInfo[];
  /**
   * 'compute' (default): hash every path's NAR (and, when the references
   * source gives a narHash or narSize, fail on a mismatch). 'given': take
   * narHash and narSize from the source where it has them.
   */
  hashes?: 'compute' | 'given';
  /** Called after each path is done (progress). */
  onPath?: (info: StorePathInfo, done: number) => void;
}

export interface Closure extends StoreDirs {
  /** Sorted bytewise by path. */
  paths: StorePathInfo[];
  /** Sum of narSize, as closureInfo's total-nar-size. */
  totalNarSize: number;
}

/** The closure of `roots` (store paths, files in them, or symlinks to them such as ./result). */
export function closure(roots: readonly string[], opts: ClosureOptions = {}): Closure {
  const dirs = storeDirs(opts);
  const rootNames = roots.map((r) => resolveRoot(r, dirs));
  const full = (name: string) => `${dirs.nixStoreDir}/${name}`;
  const done = new Map<string, StorePathInfo>();
  const queue = [...new Set(rootNames)].sort(compareNames);
  const enqueued = new Set(queue);
  const push = (name: string) => {
    if (enqueued.has(name)) return;
    enqueued.add(name);
    queue.push(name);
  };
  const finish = (info: StorePathInfo) => {
    done.set(info.path, info);
    opts.onPath?.(info, done.size);
  };

  if (opts.references === undefined) {
    // Scan: candidates are every store path present.
    const present = storeContents(dirs.storeDir);
    const candidates = new Set(present.keys());
    for (let q = 0; q < queue.length; q++) {
      const name = queue[q];
      requirePresent(dirs, name);
      const file = physicalPath(dirs, name);
      const inputs = name.endsWith('.drv') ? derivationInputs(readSmallFile(file)) : null;
      let refs: string[];
      let digest: NarDigest;
      if (inputs) {
        // A store derivation: Nix registers its inputs, it does not scan it.
        digest = narDigest(narNodeOfPath(file));
        refs = inputs.map((p) => storeNameIn(dirs.nixStoreDir, p) ?? badInput(name, p, dirs)).sort(compareNames);
      } else {
        const scanner = new ReferenceScanner(candidates);
        digest = narDigest(narNodeOfPath(file), (c) => scanner.update(c));
        refs = [...scanner.found].map((h) => present.get(h) as string).sort(compareNames);
      }
      const { narHash, narSize } = digest;
      for (const r of refs) push(r);
      finish({ path: full(name), narHash, narSize, references: refs.map(full), deriver: null });
    }
  } else {
    const given = typeof opts.references === 'string' ? readReferenceSource(opts.references, dirs.nixStoreDir) : opts.references;
    const source = typeof opts.references === 'string' ? opts.references : 'the given path infos';
    const byPath = new Map(given.map((g) => [g.path, g]));
    const referrer = new Map<string, GivenPathInfo>();
    for (let q = 0; q < queue.length; q++) {
      const name = queue[q];
      const g = byPath.get(full(name));
      if (!g) {
        const from = referrer.get(name);
        const why = from ? `${from.path} (${from.at}) refers to ${full(name)}, which` : `root ${full(name)}`;
        throw new DiskwrightError(
          'REFERENCE_MISSING',
          `${why} is missing from ${source}; give references for the whole closure (closureInfo of these roots, or nix-store --dump-db $(nix-store -qR ROOT))`,
          { path: full(name), source },
        );
      }
      requirePresent(dirs, name, from(referrer.get(name)));
      for (const r of g.references) {
        const rn = storeNameIn(dirs.nixStoreDir, r) ?? badReference(g, r, dirs);
        if (!referrer.has(rn)) referrer.set(rn, g);
        push(rn);
      }
      let narHash = g.narHash;
      let narSize = g.narSize;
      if (opts.hashes !== 'given' || narHash === null || narSize === null) {
        const d = narDigest(narNodeOfPath(physicalPath(dirs, name)));
        if ((narHash && !narHash.equals(d.narHash)) || (narSize !== null && narSize !== d.narSize)) {
          throw new DiskwrightError(
            'NAR_HASH_MISMATCH',
            `${full(name)} has narHash ${formatSha256(d.narHash)} and narSize ${d.narSize}, but ${g.at} says ${narHash ? formatSha256(narHash) : '-'} and ${narSize ?? '-'}; the store path was modified or the references are stale`,
            { path: full(name), at: g.at },
          );
        }
        narHash = d.narHash;
        narSize = d.narSize;
      }
      finish({ path: full(name), narHash, narSize, references: [...g.references].sort(compareStorePaths), deriver: g.deriver });
    }
  }

  const paths = [...done.values()].sort((a, b) => compareStorePaths(a.path, b.path));
  return { ...dirs, paths, totalNarSize: totalNarSize(paths) };
}

/** A .drv's text (derivations are small); empty if it is not a readable regular file. */
function readSmallFile(file: string): string {
  try {
    return fs.statSync(file).isFile() ? fs.readFileSync(file, 'latin1') : '';
  } catch {
    return '';
  }
}

function badReference(g: GivenPathInfo, ref: string, dirs: StoreDirs): never {
  throw new DiskwrightError('REGISTRATION_INVALID', `${g.at}: reference ${ref} of ${g.path} is not a store path under ${dirs.nixStoreDir}; give references named under the store dir`, { path: g.path, reference: ref });
}

function badInput(drv: string, input: string, dirs: StoreDirs): never {
  throw new DiskwrightError('STORE_PATH_INVALID', `derivation ${dirs.nixStoreDir}/${drv} names input ${input}, which is not a store path under ${dirs.nixStoreDir}; give the right --nix-store-dir`, { path: drv, input });
}

function from(g: GivenPathInfo | undefined): string | undefined {
  return g ? `referenced by ${g.path}` : undefined;
}

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
