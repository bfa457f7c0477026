// Planning from data rather than paths: a build config as an object, or a
// FileTree for one filesystem. Planning reads metadata only (the tree, store
// path hashes) and returns the Image, size and extents, before any data byte
// is written: writeImage or imageChunks (api/write.ts) write it.
import * as path from 'node:path';
import { configOf } from '../config/load.ts';
import type { ImageConfigInput } from '../config/schema.ts';
import { planBuild, type BuildPlan } from './build.ts';
import { throwIfAborted, withProgress, type ProgressListener } from '../util/progress.ts';

export interface PlanOptions {
  /** Relative paths in the config resolve against this directory; default the working directory. */
  baseDir?: string;
  /** What messages call the config; default "config". */
  name?: string;
  /** Progress of scanning the trees and hashing store paths. */
  onProgress?: ProgressListener;
  /** Checked before planning starts and once it ends (planning runs in one piece). */
  signal?: AbortSignal;
}

/**
 * Plans a whole disk from a build config given as an object (the keys of a
 * config file: partitionTableType, contents, storePaths, format, ...):
 * returns the disk Image, its layout (partitions, filesystems, free space)
 * and, with touchEFIVars, the EFI variable store's bytes.
 */
export function planImage(config: ImageConfigInput, opts: PlanOptions = {}): BuildPlan {
  throwIfAborted(opts.signal);
  const baseDir = path.resolve(opts.baseDir ?? '.');
  const name = opts.name ?? 'config';
  const loaded = configOf(config, name, baseDir, name);
  const plan = withProgress({ onProgress: opts.onProgress, signal: opts.signal }, () => planBuild({ config: loaded.config, given: loaded.given, baseDir, file: name }));
  throwIfAborted(opts.signal);
  return plan;
}
