// installBootLoader as a disk-spec contributor: what make-disk-image's VM does
// with `switch-to-configuration boot`, done on the spec before it is
// compiled. The system to boot is read first (toplevel or bootEntries), so a
// bad system fails before the closure is hashed; the loader's files then join
// the boot partitions' trees, and the toplevel's profile links the root's.
import * as path from 'node:path';
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import type { ImageConfig } from '../config/schema.ts';
import type { DiskPartition, DiskSpec } from '../disk/spec.ts';
import { byteName, type DirEntry, type Entry } from '../tree/model.ts';
import { emptyDir } from '../tree/contents.ts';
import { storeDirs, type StoreDirs } from '../nix/store-path.ts';
import { readBootEntries, readToplevel, resolveStoreFile, type BootFile, type BootSystem } from './toplevel.ts';
import { systemdBootFiles, efiArch, type BootPartFile } from './systemd-boot.ts';
import { addSystemdBootExtras, systemdBootExtras } from './systemd-boot-extra.ts';
import { extlinuxFiles } from './extlinux.ts';
import { ukiBootFile } from './uki.ts';
import { grubInstall, grubModulesDir } from './grub.ts';

/** grub+systemd-boot: the hybrid layout's pair, GRUB for BIOS firmware and systemd-boot on the ESP for UEFI. */
export type Loader = 'systemd-boot' | 'grub' | 'grub+systemd-boot' | 'extlinux' | 'none';

export interface BootPlan {
  system: BootSystem;
  loader: Loader;
  dirs: StoreDirs;
  /** systemd-boot's EFI binary. */
  efiFile?: BootFile;
  /** systemdBoot.extraFiles and extraEntries, for $BOOT. */
  extras?: BootPartFile[];
  /** systemd's stub, with uki: how the config names it (for errors) and its bytes. */
  stubFile?: BootFile & { shown: string };
  /** GRUB's i386-pc directory on this machine. */
  grubModulesDir?: string;
}

function hasEsp(cfg: ImageConfig): boolean {
  return cfg.partitions ? cfg.partitions.some((p) => p.type === 'esp' && p.fs === 'vfat') : ['efi', 'efixbootldr', 'hybrid'].includes(cfg.partitionTableType);
}

const layoutName = (cfg: ImageConfig) => (cfg.preset ?? (cfg.partitions ? 'custom' : cfg.partitionTableType));

/** The loader `auto` means for a layout: make-disk-image's pairing of layouts and loaders. */
function autoLoader(cfg: ImageConfig): Loader {
  if (cfg.preset === 'sd-image') return 'extlinux';
  if (cfg.partitions) return cfg.partitions.some((p) => p.type === 'esp') ? 'systemd-boot' : 'grub';
  switch (cfg.partitionTableType) {
    case 'efi':
    case 'efixbootldr':
      return 'systemd-boot';
    case 'none':
      throw new DiskwrightError('CONFIG_INVALID', 'installBootLoader: partitionTableType none has no place for a bootloader; choose a partitioned layout or set installBootLoader to false', {});
    case 'hybrid':
      return 'grub+systemd-boot';
    default:
      return 'grub';
  }
}

/**
 * Reads the system to boot and picks the loader; undefined when the config
 * installs none. Nothing is written yet.
 */
export function planBoot(cfg: ImageConfig, baseDir: string): BootPlan | undefined {
  const hasSystem = cfg.toplevel !== undefined || cfg.bootEntries !== undefined;
  const install = cfg.installBootLoader ?? hasSystem;
  if (cfg.toplevel !== undefined && cfg.bootEntries !== undefined) {
    throw new DiskwrightError('CONFIG_INVALID', 'toplevel and bootEntries: give one (toplevel for a NixOS system, bootEntries for others)', {});
  }
  if (cfg.toplevel !== undefined && cfg.partitions && cfg.preset !== 'sd-image') {
    throw new DiskwrightError('CONFIG_INVALID', 'toplevel: not supported with custom partitions yet; use a make-disk-image layout (partitionTableType efi, efixbootldr)', {});
  }
  if (!hasSystem) {
    if (cfg.installBootLoader) throw new DiskwrightError('CONFIG_INVALID', 'installBootLoader: nothing to boot; give toplevel (a NixOS system) or bootEntries', {});
    return undefined;
  }
  const rel = (p: string) => (p.startsWith('/') ? p : path.resolve(baseDir, p));
  const dirs = storeDirs({ nixStoreDir: cfg.nixStoreDir, storeDir: cfg.storeDir === undefined ? undefined : rel(cfg.storeDir) });
  const system = cfg.toplevel !== undefined ? readToplevel(rel(cfg.toplevel), dirs) : readBootEntries(cfg.bootEntries!, baseDir);
  if (!install) return { system, loader: 'none', dirs };
  const loader = cfg.bootLoader === 'auto' ? autoLoader(cfg) : cfg.bootLoader;
  if (cfg.uki && loader !== 'systemd-boot' && loader !== 'grub+systemd-boot') throw new DiskwrightError('CONFIG_INVALID', `uki: bootLoader ${loader} does not boot unified kernel images; use systemd-boot (partitionTableType efi or efixbootldr) or set uki to false`, { loader });
  if (cfg.uki && cfg.toplevel === undefined) throw new DiskwrightError('CONFIG_INVALID', 'uki: needs toplevel (a NixOS system: its os-release names the image); bootEntries get type #1 entries, set uki to false', {});
  if (loader === 'extlinux') return { system, loader, dirs };
  const plan: BootPlan = { system, loader, dirs };
  if (loader === 'grub' || loader === 'grub+systemd-boot') {
    if (cfg.partitions) throw new DiskwrightError('CONFIG_INVALID', 'bootLoader grub: not supported with custom partitions yet; use partitionTableType legacy, legacy+gpt, legacy+boot or hybrid', {});
    if (!['legacy', 'legacy+gpt', 'legacy+boot', 'hybrid'].includes(cfg.partitionTableType)) {
      throw new DiskwrightError('CONFIG_INVALID', `bootLoader grub: the ${layoutName(cfg)} layout has no place for GRUB's core.img; use partitionTableType legacy, legacy+gpt, legacy+boot or hybrid`, {});
    }
    plan.grubModulesDir = grubModulesDir(cfg.grub.modulesDir, baseDir, `bootLoader grub${cfg.bootLoader === 'auto' ? ` (auto for the ${layoutName(cfg)} layout)` : ''}`);
    if (loader === 'grub') return plan;
  }
  if (!hasEsp(cfg)) {
    throw new DiskwrightError('CONFIG_INVALID', `bootLoader systemd-boot: the ${layoutName(cfg)} layout has no ESP; ${cfg.partitions ? 'add a partition with type esp and fs vfat' : 'use partitionTableType efi or efixbootldr'}`, {});
  }
  plan.efiFile = loaderFile(cfg, plan, baseDir);
  plan.extras = systemdBootExtras(cfg, baseDir, dirs);
  if (cfg.uki) plan.stubFile = loaderFile(cfg, plan, baseDir, 'stubFile');
  return plan;
}

/** systemdBoot.efiFile (or .stubFile), or the toplevel's systemd package's loader (or stub). */
function loaderFile(cfg: ImageConfig, plan: BootPlan, baseDir: string, key: 'efiFile' | 'stubFile' = 'efiFile'): BootFile & { shown: string } {
  const arch = efiArch(cfg.system);
  const [file, kind] = key === 'efiFile' ? [`systemd-boot${arch}.efi`, 'systemd-boot binary'] : [`linux${arch}.efi.stub`, 'systemd stub'];
  const fix = `set systemdBoot.${key} to a ${file} (systemd's lib/systemd/boot/efi/)`;
  const given = cfg.systemdBoot[key];
  let host: string | undefined;
  let shown: string;
  if (given !== undefined) {
    shown = given;
    const abs = given.startsWith('/') ? given : path.resolve(baseDir, given);
    host = abs.startsWith(plan.dirs.nixStoreDir + '/') ? resolveStoreFile(abs, plan.dirs, `systemdBoot.${key}`)?.host : abs;
  }
  else if (plan.system.toplevel !== undefined) {
    shown = `${plan.system.toplevel}/systemd/lib/systemd/boot/efi/${file}`;
    host = resolveStoreFile(shown, plan.dirs, `systemdBoot.${key}`)?.host;
  }
  else {
    throw new DiskwrightError('CONFIG_INVALID', `bootLoader systemd-boot with bootEntries: no toplevel to take systemd-boot from; ${fix}`, {});
  }
  const st = host === undefined ? undefined : fs.statSync(host, { throwIfNoEntry: false });
  if (!st?.isFile()) throw new DiskwrightError('SOURCE_MISSING', `${kind} ${shown} does not exist; ${fix}`, { path: shown });
  return { host: host!, size: st.size, shown };
}

function fatPartition(spec: DiskSpec, role: string): (DiskPartition & { content: { fs: 'vfat'; tree: DirEntry } }) | undefined {
  return spec.partitions.find((p) => p.role === role && p.content?.fs === 'vfat') as (DiskPartition & { content: { fs: 'vfat'; tree: DirEntry } }) | undefined;
}

/** Puts `entry` at `target` (a/b/c) in `root`, making directories on the way; a name already there is an error naming `key`. */
export function placeEntry(root: DirEntry, target: string, entry: Entry, epoch: number, key: string, by: string): void {
  const parts = target.split('/');
  let dir = root;
  for (const p of parts.slice(0, -1)) {
    let next = dir.children.get(byteName(p));
    if (next === undefined) {
      next = emptyDir(epoch);
      dir.children.set(byteName(p), next);
    }
    if (next.type !== 'dir') throw new DiskwrightError('DUPLICATE_ENTRY', `${key}: /${target} is written by ${by}, but ${p} is a file there; remove it from ${key}`, { path: target });
    dir = next;
  }
  const last = byteName(parts[parts.length - 1]);
  if (dir.children.has(last)) throw new DiskwrightError('DUPLICATE_ENTRY', `${key}: /${target} is also written by ${by}; remove it from ${key}`, { path: target });
  dir.children.set(last, entry);
}

function addFiles(p: DiskPartition & { content: { tree: DirEntry } }, files: BootPartFile[], epoch: number, by: string, key = p.key): void {
  for (const f of files) {
    const entry: Entry = {
      type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeSec: epoch, mtimeNsec: 0, xattrs: [], size: f.size,
      sourcePath: Buffer.from(f.host ?? f.path), content: f.content,
    };
    placeEntry(p.content.tree, f.path, entry, epoch, key, by);
  }
}

/** The store path's profile links, as nixos-install's `nix-env -p /nix/var/nix/profiles/system --set` leaves them. */
function addProfile(spec: DiskSpec, toplevel: string, epoch: number): void {
  const root = spec.partitions.find((p) => p.role === 'root' && p.content?.fs === 'ext4');
  if (!root || root.content?.fs !== 'ext4') return;
  const link = (target: string): Entry => ({ type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeSec: epoch, mtimeNsec: 0, xattrs: [], target: Buffer.from(target) });
  placeEntry(root.content.tree, 'nix/var/nix/profiles/system-1-link', link(toplevel), epoch, 'contents', 'toplevel');
  placeEntry(root.content.tree, 'nix/var/nix/profiles/system', link('system-1-link'), epoch, 'contents', 'toplevel');
}

/** The build config with the toplevel among the closure roots. */
export function withToplevelRoot(cfg: ImageConfig, plan: BootPlan | undefined): ImageConfig {
  const top = plan?.system.toplevel;
  if (top === undefined) return cfg;
  // sd-image's store is on its root partition (its storePaths), as sd-image.nix puts the toplevel there.
  if (cfg.preset === 'sd-image') return { ...cfg, partitions: cfg.partitions!.map((p, i) => (i === 1 ? { ...p, storePaths: [...p.storePaths, top] } : p)) };
  return { ...cfg, storePaths: [...cfg.storePaths, top] };
}

/** Adds the loader's files and the profile links to the spec's trees. */
export function contributeBoot(spec: DiskSpec, plan: BootPlan, cfg: ImageConfig, epoch: number): void {
  if (plan.system.toplevel !== undefined) addProfile(spec, plan.system.toplevel, epoch);
  if (plan.loader === 'extlinux') return contributeExtlinux(spec, plan, cfg, epoch);
  if (plan.grubModulesDir !== undefined) {
    const grub = grubInstall(spec, plan.system.entries, {
      modulesDir: plan.grubModulesDir, timeout: cfg.timeout, extraConfig: cfg.grub.extraConfig, extraEntries: cfg.grub.extraEntries,
      nixStoreDir: plan.dirs.nixStoreDir, toplevel: plan.system.toplevel,
    });
    // The root's files come from `contents`; its partition key names its size.
    addFiles(grub.partition, grub.files, epoch, 'grub', grub.partition.role === 'root' ? 'contents' : grub.partition.key);
  }
  if (plan.efiFile === undefined) return;
  const esp = fatPartition(spec, 'esp');
  if (!esp) throw new DiskwrightError('CONFIG_INVALID', `bootLoader systemd-boot: the ${layoutName(cfg)} layout has no ESP filesystem; use partitionTableType efi or efixbootldr`, {});
  const xbootldr = fatPartition(spec, 'xbootldr');
  const stub = plan.stubFile;
  const ukis = stub && plan.system.entries.map((e) => ukiBootFile(e, { stub, arch: efiArch(cfg.system), toplevel: plan.system.toplevel!, dirs: plan.dirs }));
  const files = systemdBootFiles(plan.system.entries, plan.efiFile!, {
    system: cfg.system, timeout: cfg.timeout, consoleMode: cfg.consoleMode, editor: cfg.editor, epoch, nixStoreDir: plan.dirs.nixStoreDir,
  }, xbootldr !== undefined, ukis);
  addFiles(esp, files.esp, epoch, 'systemd-boot');
  addFiles(xbootldr ?? esp, files.boot, epoch, 'systemd-boot');
  addSystemdBootExtras((xbootldr ?? esp).content.tree, plan.extras ?? [], epoch);
}

/**
 * extlinux goes where NixOS has /boot: the partition make-disk-image mounts
 * there (XBOOTLDR, the legacy+boot FAT, the ESP), else the root's /boot
 * directory (legacy layouts, sd-image: U-Boot scans the bootable root).
 */
function contributeExtlinux(spec: DiskSpec, plan: BootPlan, cfg: ImageConfig, epoch: number): void {
  const mounted = ['xbootldr', 'boot', 'esp'].map((r) => fatPartition(spec, r)).find((p) => p !== undefined);
  const root = spec.partitions.find((p) => p.role === 'root' && p.content?.fs === 'ext4');
  const target = mounted ?? root;
  if (!target || (target.content?.fs !== 'ext4' && target.content?.fs !== 'vfat')) {
    throw new DiskwrightError('CONFIG_INVALID', `bootLoader extlinux: the ${layoutName(cfg)} layout has no /boot or root filesystem to hold extlinux.conf; use partitionTableType legacy or the sd-image preset`, {});
  }
  const prefix = mounted ? '' : 'boot/';
  const key = mounted ? target.key : cfg.preset === 'sd-image' ? 'rootContents' : 'contents';
  for (const item of extlinuxFiles(plan.system.entries, { timeout: cfg.timeout, epoch, nixStoreDir: plan.dirs.nixStoreDir })) {
    placeEntry(target.content.tree, prefix + item.path, item.entry, epoch, key, 'extlinux');
  }
}
