// Container images from a container config: the closure split into store
// layers by popularity (or size), the customisation layer on top, each layer a
// tar Image hashed (or compressed and hashed) in a first pass, since its
// digest names its blob; then the config, manifests and the archive or layout
// written in a second pass.
import { DiskwrightError } from '../errors.ts';
import { closureRootPaths, nixStateOf, storeClosure, type StoreOptions } from './store.ts';
import type { Closure } from '../nix/closure.ts';
import { mergeDir } from '../tree/scan.ts';
import type { Image } from '../image/extent-map.ts';
import { tarImage } from '../archive/tar-image.ts';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LayerBlob } from '../container/blob.ts';
import { openLayerCache, resolveLayerCacheDir, type StoreContent } from '../container/cache.ts';
import { emit, streamSink, writeImageFile } from '../format/raw.ts';
import { physicalPath, storeDirs } from '../nix/store-path.ts';
import { toNix32 } from '../nix/base32.ts';
import { createHash } from 'node:crypto';
import type { DirEntry } from '../tree/model.ts';
import { architectureOf, configTime, type ContainerConfig } from '../container/config.ts';
import { customisationTree, storeLayerGroups, storeLayerTree, storePathsIn, type LayerOwner } from '../container/layers.ts';
import { descriptorOf, dockerManifestBlob, imageConfigBlob, indexBlob, manifestBlob, MEDIA_TYPE, blobPath, type Descriptor } from '../container/oci.ts';
import { mergeBaseConfig, readBaseImage } from '../container/base-image.ts';
import { archiveImage, bufferImage, writeLayoutDir, type LayoutFiles } from '../container/archive.ts';

export const CONTAINER_FORMATS = ['docker-archive', 'oci-archive', 'oci-dir'] as const;
export type ContainerFormat = (typeof CONTAINER_FORMATS)[number];

export interface PlannedLayer extends LayerBlob {
  /** Store paths it holds (full), or none for the customisation layer. */
  storePaths: string[];
  comment: string;
  /** The digest came from the layer cache: the layer's files were not hashed. */
  cached: boolean;
  /** A layer of fromImage, carried over byte for byte. */
  base?: boolean;
}

export interface ContainerPlan {
  name: string;
  tag: string;
  layers: PlannedLayer[];
  files: LayoutFiles;
  /** Time of the archive's own members (the `mtime` option). */
  mtime: number;
  warnings: string[];
  /** Removes the compressed layers' temporary files; call after writing. */
  cleanup(): void;
}

export interface ContainerBuildOptions {
  /** Layer cache directory, or false for none; default the config's layerCache, else $XDG_CACHE_HOME/diskwright/layers. */
  layerCache?: string | false;
}

/** Plans every layer and hashes it (the first read of every file), unless the layer cache knows it. */
export function planContainer(c: ContainerConfig, baseDir: string, opts: ContainerBuildOptions = {}): ContainerPlan {
  const warnings: string[] = [];
  const mtime = configTime(c.mtime);
  const created = c.created === 'now' ? new Date(configTime('now') * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : c.created;
  if (c.created === 'now' || c.mtime === 'now') warnings.push('created or mtime is "now": the image differs on every build');
  const owner: LayerOwner = { uid: c.uid, gid: c.gid, mtime };
  // A relative storeDir is the config's, as for disks (api/store.ts), not the cwd's.
  const dirs = storeDirs({ nixStoreDir: c.nixStoreDir, storeDir: c.storeDir === undefined ? undefined : path.resolve(baseDir, c.storeDir) });
  const custom = customisationTree({ contents: c.contents, baseDir, dirs, owner });
  const perms = c.perms.map((p) => ({ ...p, mode: p.mode === undefined ? undefined : parseInt(p.mode, 8) }));
  const tarOpts = { owner: { uid: c.uid, gid: c.gid, uname: c.uname, gname: c.gname }, mtime, perms };

  const layers: Array<{ storePaths: string[]; comment: string; image: Image; content?: StoreContent[] }> = [];
  const extraRoots = [...custom.storeNames.map((n) => `${dirs.nixStoreDir}/${n}`), ...storePathsIn(c.config, dirs.nixStoreDir)];
  const store = { ...c, additionalPaths: [...c.additionalPaths, ...extraRoots] };
  const hasStore = store.storePaths.length + store.additionalPaths.length > 0;
  const arch = c.architecture ? { architecture: c.architecture } : architectureOf(c.system);
  const base = c.fromImage === undefined ? undefined : readBaseImage(c.fromImage, baseDir, { name: c.fromImageName, tag: c.fromImageTag, architecture: arch.architecture });
  const baseLayers = base?.layers.length ?? 0;
  const needed = baseLayers + 1 + (c.includeStorePaths && hasStore ? 1 : 0);
  if (c.maxLayers < needed) {
    const parts = [baseLayers ? `${baseLayers} from fromImage` : '', c.includeStorePaths && hasStore ? '1 for store paths' : '', '1 for the customisation layer'].filter(Boolean).join(', ');
    throw new DiskwrightError('CONFIG_INVALID', `maxLayers: ${c.maxLayers} is below the ${needed} layers this image needs (${parts}); raise maxLayers or use a base with fewer layers`, { path: ['maxLayers'], minimum: needed });
  }
  const unmatched = new Set(perms.keys());
  const tarOf = (tree: DirEntry, customisation: boolean) => {
    // The customisation layer keeps the owners contents set; store layers are all uid/gid.
    const t = tarImage(tree, customisation ? { ...tarOpts, owner: undefined, names: tarOpts.owner } : tarOpts);
    for (const i of perms.keys()) if (!t.unmatchedPerms.includes(i)) unmatched.delete(i);
    for (const s of t.skipped) warnings.push(`${s.toString()}: a socket, which a tar layer cannot hold; left out`);
    return t.image;
  };
  if (c.includeNixDB && !(c.includeStorePaths && hasStore)) {
    throw new DiskwrightError('CONFIG_INVALID', `includeNixDB: the image holds no store paths to register${hasStore ? ' (includeStorePaths is false)' : ''}; give store paths in contents or storePaths, or remove includeNixDB`, {});
  }
  let top = custom.tree;
  if (c.includeStorePaths && hasStore) {
    const closure = storeClosure(store, baseDir);
    const narHash = new Map(closure.paths.map((p) => [p.path, p.narHash]));
    for (const group of storeLayerGroups(closure, c.maxLayers - 1 - baseLayers, c.layering)) {
      const names = group.map((p) => p.slice(dirs.nixStoreDir.length + 1));
      // What vouches for the layer's file data in the cache key: each store path's narHash.
      const content = group.map((p, i) => ({ path: p, physical: physicalPath(dirs, names[i]), narHash: narHash.get(p)! }));
      layers.push({ storePaths: group, comment: `store paths: ${group.join(' ')}`, image: tarOf(storeLayerTree(names, dirs, owner), false), content });
    }
    if (c.includeNixDB) top = withNixDB(top, closure, store, baseDir, c, dirs.nixStoreDir);
  }
  layers.push({ storePaths: [], comment: 'customisation', image: tarOf(top, true) });
  for (const i of unmatched) warnings.push(`perms[${i}]: ${perms[i].path}${perms[i].regex ? ` with regex ${perms[i].regex}` : ''} matches nothing in the image; check the path`);

  const cache = openLayerCache(resolveLayerCacheDir(opts.layerCache, c.layerCache, baseDir), (w) => warnings.push(w));
  const cleanup = () => cache.cleanup();
  let hashed: PlannedLayer[];
  try {
    hashed = layers.map((l, n) => ({ storePaths: l.storePaths, comment: l.comment, ...cache.blob(l.image, c.layerCompression, l.content, n) }));
  } catch (err) {
    cleanup();
    throw err;
  }
  const baseHistory = base ? (base.history ?? base.layers.map(() => ({ created, created_by: 'diskwright', comment: `from ${c.fromImage}` }))) : [];
  const ownComments = hashed.map((l) => l.comment);
  hashed = [...(base?.layers ?? []).map((l, i) => ({ ...l, storePaths: [], comment: `base layer ${i + 1}`, cached: false, base: true })), ...hashed];
  const config = base ? mergeBaseConfig(base.config, c.config) : c.config;
  const configBlob = imageConfigBlob({ ...arch, created, config, diffIds: hashed.map((l) => l.diffId), comments: ownComments, baseHistory });
  const configDesc = descriptorOf(MEDIA_TYPE.config, configBlob);
  const name = c.name.toLowerCase();
  // As nixpkgs: without a tag, one derived from the config (which names every layer), so equal inputs give equal tags.
  const tag = c.tag ?? toNix32(createHash('sha256').update(configBlob).digest()).slice(0, 32);
  const layerDescs: Descriptor[] = hashed.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  const manifest = manifestBlob(configDesc, layerDescs);
  const manifestDesc = descriptorOf(MEDIA_TYPE.manifest, manifest);
  const files: LayoutFiles = {
    blobs: [
      ...hashed.map((l) => ({ digest: l.digest, image: l.blob })),
      { digest: configDesc.digest, image: bufferImage(configBlob) },
      { digest: manifestDesc.digest, image: bufferImage(manifest) },
    ],
    index: indexBlob(manifestDesc, { name, tag }),
    dockerManifest: dockerManifestBlob(blobPath(configDesc.digest), `${name}:${tag}`, hashed.map((l) => blobPath(l.digest))),
  };
  return { name, tag, layers: hashed, files, mtime, warnings, cleanup: () => void cleanup() };
}

/**
 * includeNixDB, as nixpkgs' mkDbExtraCommand: the database and a GC root
 * gcroots/docker/<name> per root, under the customisation layer's own files.
 * Beyond nixpkgs, every store path in the image is registered and every root
 * (storePaths and the config's store paths too) is a GC root, so a garbage
 * collection in the container keeps what the image holds.
 */
function withNixDB(tree: DirEntry, closure: Closure, store: StoreOptions, baseDir: string, c: ContainerConfig, nixStoreDir: string): DirEntry {
  const links = closureRootPaths(store, closure, baseDir).map((p) => ({ name: p.slice(nixStoreDir.length + 1), target: p }));
  const state = nixStateOf(closure, { epoch: configTime(c.mtime), registrationTime: configTime(c.created), owner: { uid: c.uid, gid: c.gid }, roots: { dir: 'docker', links } });
  return mergeDir(state, tree);
}

export function notStreamable(): DiskwrightError {
  return new DiskwrightError('OPTION_INVALID', 'format oci-dir is a directory and cannot stream; use docker-archive or oci-archive with --stream, or give -o DIR', {});
}

/** Writes the planned image (the second read of every file); '-' streams an archive to standard output. */
export function writeContainer(plan: ContainerPlan, format: ContainerFormat, out: string): void {
  if (format === 'oci-dir') {
    if (out === '-') throw notStreamable();
    writeLayoutDir(plan.files, out);
    return;
  }
  const image = archiveImage(plan.files, plan.mtime);
  if (out === '-') emit(image, streamSink(1));
  else writeImageFile(image, out);
}
