// What make-disk-image's VM leaves on the root besides the bootloader:
// `configFile` copied to /etc/nixos/configuration.nix, and no /etc/machine-id
// (its VM removes the one activation made, so that every machine booted from
// the image makes its own). Here no activation runs, so a machine-id can only
// come from `contents` or `root`; it is dropped when a bootloader is
// installed, the case in which make-disk-image's `rm -f` runs.
import { DiskwrightError } from '../errors.ts';
import type { ImageConfig } from '../config/schema.ts';
import type { DiskSpec } from '../disk/spec.ts';
import { byteName, type DirEntry, type Entry } from '../tree/model.ts';
import { configStoreDirs, hostFile } from './host-file.ts';
import { placeEntry } from './install.ts';
import type { BootFile } from './toplevel.ts';

export const CONFIG_FILE_TARGET = 'etc/nixos/configuration.nix';

/** configFile on this machine, checked before the closure is read; undefined when not given. */
export function planConfigFile(cfg: ImageConfig, baseDir: string): BootFile | undefined {
  if (cfg.configFile === undefined) return undefined;
  if (cfg.onlyNixStore) throw new DiskwrightError('CONFIG_INVALID', 'configFile: onlyNixStore images hold only the store, with no /etc; remove configFile or onlyNixStore', {});
  return hostFile(cfg.configFile, 'configFile', baseDir, configStoreDirs(cfg, baseDir), 'give the NixOS configuration file to copy to /etc/nixos/configuration.nix');
}

function rootTree(spec: DiskSpec): DirEntry | undefined {
  const root = spec.partitions.find((p) => p.role === 'root');
  return root?.content?.fs === 'ext4' ? root.content.tree : undefined;
}

/** Puts the config file on the root; drops /etc/machine-id when `installed` (a bootloader went in). */
export function contributeNixosFiles(spec: DiskSpec, file: BootFile | undefined, installed: boolean, epoch: number): void {
  const root = rootTree(spec);
  if (!root) {
    if (file) throw new DiskwrightError('CONFIG_INVALID', 'configFile: this layout has no ext4 root partition to hold /etc/nixos/configuration.nix; use a make-disk-image layout or remove configFile', {});
    return;
  }
  if (installed) {
    const etc = root.children.get(byteName('etc'));
    if (etc?.type === 'dir') etc.children.delete(byteName('machine-id'));
  }
  if (file) {
    // 0644 (cp of a store file would give 0444): the file is there to be edited.
    const entry: Entry = {
      type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeSec: epoch, mtimeNsec: 0, xattrs: [], size: file.size, sourcePath: Buffer.from(file.host),
    };
    placeEntry(root, CONFIG_FILE_TARGET, entry, epoch, 'contents', 'configFile');
  }
}
