// The trees a build's filesystems are made from, shared by every preset and
// custom partitions: `root` directories, the store closure, `contents` entries
// with owners by name.
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import type { DirEntry } from '../tree/model.ts';
import { mergeDir, scanSources } from '../tree/scan.ts';
import { applyOwners, checkTargetParents, contentsTree, emptyDir, type ContentSpec } from '../tree/contents.ts';
import { withStore, type StoreOptions } from '../api/store.ts';

export interface TreeConfig extends StoreOptions {
  root?: string | string[];
  contents: ContentSpec[];
  preserveOwners: boolean;
  clampMtime: boolean;
}

/**
 * A filesystem tree: `root` directories merged, the store closure added (or,
 * with onlyNixStore, the store alone), then `contents` over them, then owners
 * by name. `key` names the config key of the contents and `config` the
 * config file, for errors; `fat` applies FAT's name rules.
 */
export function buildTree(cfg: TreeConfig, baseDir: string, epoch: number, key = 'contents', config?: string, fat = false): DirEntry {
  const owner = cfg.preserveOwners ? undefined : { uid: 0, gid: 0 };
  const clampMtime = cfg.clampMtime ? epoch : undefined;
  const roots = cfg.root === undefined ? [] : Array.isArray(cfg.root) ? cfg.root : [cfg.root];
  let tree = roots.length ? scanSources(roots.map((r) => path.resolve(baseDir, r)), { owner, clampMtime }) : undefined;
  if (cfg.onlyNixStore && cfg.contents.length) {
    throw new DiskwrightError('CONFIG_INVALID', 'onlyNixStore: the image holds only the store; remove contents (make-disk-image refuses them too)', {});
  }
  tree = withStore(tree, cfg, baseDir, epoch, owner, clampMtime) ?? emptyDir(epoch);
  if (cfg.contents.length) {
    const c = contentsTree(cfg.contents, { what: key, config, fat, baseDir, epoch, owner: owner ?? { uid: 0, gid: 0 }, clampMtime });
    checkTargetParents(tree, cfg.contents, { what: key, config, fat });
    tree = mergeDir(tree, c);
    applyOwners(tree, cfg.contents, key, config);
  }
  return tree;
}

/** A boot partition's tree: files owned by root (FAT keeps no owners). */
export function bootFilesTree(entries: ContentSpec[], key: string, baseDir: string, epoch: number, clampMtime: boolean, config?: string): DirEntry {
  return contentsTree(entries, { what: key, config, fat: true, baseDir, epoch, owner: { uid: 0, gid: 0 }, clampMtime: clampMtime ? epoch : undefined });
}
