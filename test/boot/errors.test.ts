// Bad boot input: one line that names the option and what to do, exit 1, and
// nothing under the output directory.
import { test, before, after } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildFails } from '../disk/helpers.ts';
import { makeToplevel, type ToplevelFiles } from './parts.ts';

let work: string;
let n = 0;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-boot-errors-'));
  for (const f of ['kernel', 'initrd', 'busybox', 'sdboot.efi']) fs.writeFileSync(path.join(work, f), `fake ${f}\n`);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function toplevel(extra: Partial<ToplevelFiles> = {}): { toplevel: string; storeDir: string } {
  const store = `store${n++}`;
  const t = makeToplevel(path.join(work, store), {
    kernel: path.join(work, 'kernel'), initrd: path.join(work, 'initrd'), busybox: path.join(work, 'busybox'),
    systemdBootEfi: path.join(work, 'sdboot.efi'), kernelParams: 'console=ttyS0', ...extra,
  });
  return { toplevel: t.toplevel, storeDir: store };
}

const fails = (config: object, pattern: RegExp) => buildFails(work, `e${n++}`, config, pattern);

test('a toplevel without kernel or initrd', () => {
  fails({ partitionTableType: 'efi', ...toplevel({ omit: 'kernel' }) }, /toplevel \/nix\/store\/\S+ has no kernel \(and no boot\.json\); give the store path of a NixOS system/);
  fails({ partitionTableType: 'efi', ...toplevel({ omit: 'initrd' }) }, /toplevel \/nix\/store\/\S+ has no initrd/);
});

test('a boot.json naming a kernel that is not there', () => {
  const t = toplevel({ bootJson: true });
  const top = path.join(work, t.storeDir, path.basename(t.toplevel));
  const spec = JSON.parse(fs.readFileSync(path.join(top, 'boot.json'), 'utf8'));
  spec['org.nixos.bootspec.v1'].kernel = `${t.toplevel}/nothing`;
  fs.writeFileSync(path.join(top, 'boot.json'), JSON.stringify(spec));
  fails({ partitionTableType: 'efi', ...t }, /toplevel \/nix\/store\/\S+: kernel: \/nix\/store\/\S+\/nothing does not exist/);
});

test('a missing systemd-boot binary names systemdBoot.efiFile', () => {
  fails({ partitionTableType: 'efi', ...toplevel({ systemdBootEfi: undefined }) }, /systemd-boot binary \/nix\/store\/\S+\/systemd\/lib\/systemd\/boot\/efi\/systemd-bootx64\.efi does not exist; set systemdBoot\.efiFile/);
  fails({ partitionTableType: 'efi', ...toplevel(), systemdBoot: { efiFile: 'nope.efi' } }, /systemd-boot binary nope\.efi does not exist; set systemdBoot\.efiFile/);
  fails({ partitionTableType: 'efi', bootEntries: [{ title: 'x', kernel: 'kernel', cmdline: '' }] }, /no toplevel to take systemd-boot from; set systemdBoot\.efiFile/);
});

test('systemd-boot on a layout without an ESP', () => {
  fails({ partitionTableType: 'legacy', bootLoader: 'systemd-boot', ...toplevel() }, /^diskwright: bootLoader systemd-boot: the legacy layout has no ESP; use partitionTableType efi or efixbootldr/);
  fails({ partitionTableType: 'gpt', partitions: [{ fs: 'ext4', root: '.' }], bootLoader: 'systemd-boot', bootEntries: [{ title: 'x', kernel: 'kernel', cmdline: '' }] }, /the custom layout has no ESP; add a partition with type esp and fs vfat/);
});

test('extlinux: not supported yet; none has no place for a bootloader', () => {
  fails({ partitionTableType: 'efi', bootLoader: 'extlinux', ...toplevel() }, /^diskwright: bootLoader extlinux: not supported yet/);
  fails({ partitionTableType: 'none', ...toplevel() }, /partitionTableType none has no place for a bootloader/);
});

test('installBootLoader with nothing to boot; toplevel with bootEntries', () => {
  fails({ partitionTableType: 'efi', installBootLoader: true }, /installBootLoader: nothing to boot; give toplevel/);
  fails({ partitionTableType: 'efi', ...toplevel(), bootEntries: [{ title: 'x', kernel: 'kernel', cmdline: '' }] }, /toplevel and bootEntries: give one/);
});
