// A file the config names on the build machine for a boot option
// (efiVariables, configFile, systemdBoot.extraFiles): relative to the config's
// directory, or a /nix/store path looked up through storeDir as the toplevel
// is, since these usually come from Nix (`${pkgs.OVMF.fd}/FV/OVMF_VARS.fd`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { storeDirs, type StoreDirs } from '../nix/store-path.ts';
import type { ImageConfig } from '../config/schema.ts';
import { resolveStoreFile, type BootFile } from './toplevel.ts';

/** The config's store directories, with storeDir against the config's directory. */
export function configStoreDirs(cfg: Pick<ImageConfig, 'nixStoreDir' | 'storeDir'>, baseDir: string): StoreDirs {
  return storeDirs({ nixStoreDir: cfg.nixStoreDir, storeDir: cfg.storeDir === undefined ? undefined : path.resolve(baseDir, cfg.storeDir) });
}

/** `given` (as the config wrote it, under `key`) as a regular file on this machine; `fix` says what to give instead. */
export function hostFile(given: string, key: string, baseDir: string, dirs: StoreDirs, fix: string): BootFile {
  const abs = path.resolve(baseDir, given);
  const inStore = abs.startsWith(dirs.nixStoreDir + '/');
  const host = inStore ? resolveStoreFile(abs, dirs, key)?.host : abs;
  const st = host === undefined ? undefined : fs.statSync(host, { throwIfNoEntry: false });
  if (!st) throw new DiskwrightError('SOURCE_MISSING', `${key}: ${given} does not exist; ${fix}`, { path: given });
  if (!st.isFile()) throw new DiskwrightError('SOURCE_MISSING', `${key}: ${given} is not a file; ${fix}`, { path: given });
  return { host: host!, size: st.size };
}
