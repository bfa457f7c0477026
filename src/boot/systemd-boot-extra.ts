// boot.loader.systemd-boot.extraEntries and extraFiles, as nixpkgs'
// systemd-boot.nix installs them (its copyExtraFiles script): each extra file
// at its name under $BOOT (XBOOTLDR when the layout has one, else the ESP),
// each extra entry at $BOOT/loader/entries/<name>, and for both an empty
// marker under $BOOT/EFI/nixos/.extra-files/ that tells the next
// `nixos-rebuild` which files it put there. Names are refused where the
// module's assertions refuse them. FAT names are case-insensitive, so
// `efi/memtest86/...` joins the loader's `EFI` directory.
import { DiskwrightError } from '../errors.ts';
import type { ImageConfig } from '../config/schema.ts';
import type { DirEntry, Entry } from '../tree/model.ts';
import { byteName } from '../tree/model.ts';
import { emptyDir } from '../tree/contents.ts';
import { foldName } from '../fs/fat/lfn.ts';
import type { StoreDirs } from '../nix/store-path.ts';
import { hostFile } from './host-file.ts';
import { NIXOS_DIR, type BootPartFile } from './systemd-boot.ts';

/** Where the builder's marker of an extra file goes. */
const MARKERS = `${NIXOS_DIR}/.extra-files`;

const bad = (key: string, why: string): never => {
  throw new DiskwrightError('CONFIG_INVALID', `${key} is invalid: ${why}`, { key });
};

/** The extra files and entries with their markers, checked and found on this machine. */
export function systemdBootExtras(cfg: ImageConfig, baseDir: string, dirs: StoreDirs): BootPartFile[] {
  const out: BootPartFile[] = [];
  const marker = (name: string) => out.push({ path: `${MARKERS}/${name}`, size: 0, content: Buffer.alloc(0) });
  const { extraEntries = {}, extraFiles = {} } = cfg.systemdBoot;
  for (const [name, target] of Object.entries(extraFiles)) {
    const key = `systemdBoot.extraFiles."${name}"`;
    if (name.startsWith('/')) bad(key, 'paths must not begin with a slash');
    if (name.includes('..')) bad(key, 'paths must not reference the parent directory');
    if (name.toLowerCase().includes('nixos/.extra-files')) bad(key, 'files cannot be placed in the nixos/.extra-files directory');
    if (name.split('/').some((c) => c === '' || c === '.')) bad(key, 'give a path like efi/memtest86/memtest.efi, without empty or "." components');
    const f = hostFile(target, key, baseDir, dirs, 'give a file on this machine');
    out.push({ path: name, size: f.size, host: f.host });
    marker(name);
  }
  for (const [name, text] of Object.entries(extraEntries)) {
    const key = `systemdBoot.extraEntries."${name}"`;
    if (name.includes('/')) bad(key, 'entries within folders are not supported');
    if (!name.endsWith('.conf') || name === '.conf') bad(key, 'entries must have a .conf file extension');
    const content = Buffer.from(text, 'utf8');
    out.push({ path: `loader/entries/${name}`, size: content.length, content });
    marker(`loader/entries/${name}`);
  }
  return out;
}

/** The child of `dir` named `name` under FAT's case-insensitive comparison. */
function findFolded(dir: DirEntry, name: string): [string, Entry] | undefined {
  const want = foldName(name);
  for (const [k, e] of dir.children) if (foldName(Buffer.from(k, 'latin1').toString('utf8')) === want) return [k, e];
  return undefined;
}

/** Adds the extras to a FAT boot partition's tree; a name the loader or another option already wrote is an error. */
export function addSystemdBootExtras(root: DirEntry, files: BootPartFile[], epoch: number): void {
  for (const f of files) {
    const parts = f.path.split('/');
    const key = f.path.startsWith(MARKERS) ? 'systemdBoot' : f.path.startsWith('loader/entries/') ? 'systemdBoot.extraEntries' : 'systemdBoot.extraFiles';
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      let next = findFolded(dir, p)?.[1];
      if (next === undefined) {
        next = emptyDir(epoch);
        dir.children.set(byteName(p), next);
      }
      if (next.type !== 'dir') throw new DiskwrightError('DUPLICATE_ENTRY', `${key}: /${f.path} needs a directory ${p}, but a file has that name; rename it`, { path: f.path });
      dir = next;
    }
    const last = parts[parts.length - 1];
    if (findFolded(dir, last)) throw new DiskwrightError('DUPLICATE_ENTRY', `${key}: /${f.path} is already on the boot partition (written by systemd-boot or espContents); give another name`, { path: f.path });
    dir.children.set(byteName(last), {
      type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeSec: epoch, mtimeNsec: 0, xattrs: [], size: f.size,
      sourcePath: Buffer.from(f.host ?? f.path), content: f.content,
    });
  }
}

/** extraFiles or extraEntries given when no systemd-boot is installed: said, not ignored. */
export function refuseUnusedExtras(cfg: ImageConfig): void {
  for (const k of ['extraFiles', 'extraEntries'] as const) {
    if (Object.keys(cfg.systemdBoot[k] ?? {}).length) {
      throw new DiskwrightError('CONFIG_INVALID', `systemdBoot.${k}: no systemd-boot is installed in this image; give toplevel or bootEntries on an efi layout, or remove systemdBoot.${k}`, {});
    }
  }
}
