// systemd-boot as NixOS leaves the ESP after `bootctl install --no-variables`
// and nixpkgs' systemd-boot-builder.py (nixos/modules/system/boot/loader/
// systemd-boot/): the loader at EFI/systemd/ and at the removable path
// EFI/BOOT/, loader/entries.srel, loader/loader.conf, one Boot Loader
// Specification type #1 entry per system (uapi-group.org/specifications/specs/
// boot_loader_specification) and the kernels and initrds it names. File names
// and entry text are the builder's, byte for byte; the one thing it takes from
// the clock (the build date in `version`) comes from the epoch here. No
// loader/random-seed: it must differ per machine, and systemd-boot makes one
// on first boot.
import { DiskwrightError } from '../errors.ts';
import type { BootEntry, BootFile } from './toplevel.ts';

/** EFI architecture names (UEFI spec 3.5.1.1, removable media boot behaviour) of the systems that have UEFI. */
export const EFI_ARCH: Record<string, string> = {
  'x86_64-linux': 'x64',
  'i686-linux': 'ia32',
  'aarch64-linux': 'aa64',
  'armv7l-linux': 'arm',
  'riscv64-linux': 'riscv64',
  'loongarch64-linux': 'loongarch64',
};

export function efiArch(system: string): string {
  const a = EFI_ARCH[system];
  if (!a) throw new DiskwrightError('CONFIG_INVALID', `bootLoader systemd-boot: ${system} has no UEFI; use bootLoader grub or extlinux, or none`, { system });
  return a;
}

/** A file for a boot partition: its path there, its bytes from this machine or made here. */
export interface BootPartFile {
  path: string;
  size: number;
  host?: string;
  content?: Buffer;
}

export interface SystemdBootOptions {
  system: string;
  timeout: number;
  consoleMode: string;
  editor: boolean;
  /** Seconds since 1970: the build date of the entries' `version` line. */
  epoch: number;
  nixStoreDir: string;
}

/** The builder's NIXOS_DIR: where kernels and initrds go, relative to the boot partition. */
export const NIXOS_DIR = 'EFI/nixos';

/**
 * Where the builder's copy_from_file puts a store file: `<hash>-<name>-<file>.efi`
 * for /nix/store/<hash>-<name>/.../<file>, `<hash>-<name>.efi` for a store
 * path that is the file itself. Files outside the store (bootEntries) go to
 * EFI/<entry id>/ under their own names.
 */
export function bootFileName(f: BootFile, nixStoreDir: string, entryId: string): string {
  if (f.storePath === undefined) return `EFI/${entryId}/${f.host.slice(f.host.lastIndexOf('/') + 1)}`;
  const parts = f.storePath.slice(nixStoreDir.length + 1).split('/');
  const subdir = parts[0];
  const suffix = parts[parts.length - 1];
  return `${NIXOS_DIR}/${suffix === subdir ? `${suffix}.efi` : `${subdir}-${suffix}.efi`}`;
}

/** `%F` of a time in UTC (the builder uses local time; an image has no time zone). */
export function buildDate(epoch: number): string {
  return new Date(epoch * 1000).toISOString().slice(0, 10);
}

/** A type #1 entry: the builder's BOOT_ENTRY for NixOS systems, the same keys without sort-key and version otherwise. */
export function entryText(e: BootEntry, kernel: string, initrd: string | undefined, epoch: number): string {
  if (e.nixos) {
    return `title ${e.title}\nsort-key nixos\nversion Generation ${e.nixos.generation} ${e.nixos.label}, built on ${buildDate(epoch)}\nlinux /${kernel}\ninitrd /${initrd}\noptions ${e.options}\n`;
  }
  return `title ${e.title}\nlinux /${kernel}\n${initrd === undefined ? '' : `initrd /${initrd}\n`}options ${e.options}\n`;
}

/** write_loader_conf: the default entry is the first one (a UKI's id is its file name). */
export function loaderConf(opts: SystemdBootOptions, defaultId: string, defaultFile = `${defaultId}.conf`): string {
  return `timeout ${opts.timeout}\ndefault ${defaultFile}\n${opts.editor ? '' : 'editor 0\n'}console-mode ${opts.consoleMode}\n`;
}

const text = (path: string, s: string): BootPartFile => {
  const content = Buffer.from(s, 'utf8');
  return { path, size: content.length, content };
};

/**
 * The files systemd-boot needs: `esp` on the ESP (the loader, loader.conf),
 * `boot` on the partition that holds entries and kernels (XBOOTLDR when the
 * layout has one, else the ESP as well). With `ukis` (one unified kernel
 * image per entry, under EFI/Linux/), those replace the entries and kernels.
 */
export function systemdBootFiles(entries: BootEntry[], loader: BootFile, opts: SystemdBootOptions, xbootldr: boolean, ukis?: BootPartFile[]): { esp: BootPartFile[]; boot: BootPartFile[] } {
  const arch = efiArch(opts.system);
  // bootctl marks each partition holding type #1 entries (entries.srel, "type1").
  const srel = text('loader/entries.srel', 'type1\n');
  const esp: BootPartFile[] = [
    { path: `EFI/systemd/systemd-boot${arch}.efi`, size: loader.size, host: loader.host },
    { path: `EFI/BOOT/BOOT${arch.toUpperCase()}.EFI`, size: loader.size, host: loader.host },
    text('loader/loader.conf', loaderConf(opts, entries[0].id, ukis?.[0].path.slice(ukis[0].path.lastIndexOf('/') + 1))),
  ];
  const boot: BootPartFile[] = [];
  const copied = new Map<string, string>();
  // copy_if_not_exists: a file two entries share is copied once.
  const copy = (f: BootFile, id: string): string => {
    const name = bootFileName(f, opts.nixStoreDir, id);
    const prev = copied.get(name);
    if (prev === undefined) {
      copied.set(name, f.host);
      boot.push({ path: name, size: f.size, host: f.host });
    }
    else if (prev !== f.host) {
      throw new DiskwrightError('CONFIG_INVALID', `bootEntries: two files would be ${name} (${prev} and ${f.host}); rename one or give the entries their own ids`, { path: name });
    }
    return name;
  };
  if (ukis) boot.push(...ukis);
  for (const e of ukis ? [] : entries) {
    const kernel = copy(e.kernel, e.id);
    const initrd = e.initrd && copy(e.initrd, e.id);
    boot.push(text(`loader/entries/${e.id}.conf`, entryText(e, kernel, initrd, opts.epoch)));
  }
  boot.push(srel);
  if (xbootldr) esp.push(srel);
  return { esp, boot };
}
