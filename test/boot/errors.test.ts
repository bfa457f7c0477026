// Bad boot input: one line that names the option and what to do, exit 1, and
// nothing under the output directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildConfig, buildFails } from '../disk/helpers.ts';
import { diskwright } from '../cli/run.ts';
import { bootCache, makeToplevel, type ToplevelFiles } from './parts.ts';

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

test('partitionTableType none has no place for a bootloader', () => {
  fails({ partitionTableType: 'none', ...toplevel() }, /partitionTableType none has no place for a bootloader/);
});

test('installBootLoader with nothing to boot; toplevel with bootEntries', () => {
  fails({ partitionTableType: 'efi', installBootLoader: true }, /installBootLoader: nothing to boot; give toplevel/);
  fails({ partitionTableType: 'efi', ...toplevel(), bootEntries: [{ title: 'x', kernel: 'kernel', cmdline: '' }] }, /toplevel and bootEntries: give one/);
});

test('touchEFIVars: without efiVariables, on a layout without GPT or ESP, with a file that is no variable store, with no systemd-boot', () => {
  const ovmf = path.join(bootCache(), 'ovmf/usr/share/OVMF/OVMF_VARS_4M.fd');
  fails({ partitionTableType: 'efi', ...toplevel(), touchEFIVars: true }, /^diskwright: touchEFIVars: efiVariables is not set; set it to the firmware's variable-store template \(OVMF_VARS\.fd or OVMF_VARS_4M\.fd/);
  for (const layout of ['legacy', 'legacy+gpt', 'none']) {
    fails({ partitionTableType: layout, ...toplevel(), installBootLoader: false, touchEFIVars: true, efiVariables: ovmf }, new RegExp(`^diskwright: touchEFIVars: the ${layout.replace('+', '\\+')} layout has no GPT with an ESP for the Boot0001 entry; use partitionTableType efi`));
  }
  fails({ partitionTableType: 'mbr', partitions: [{ fs: 'ext4', root: '.' }], touchEFIVars: true, efiVariables: ovmf }, /^diskwright: touchEFIVars: the custom layout has no GPT with an ESP/);
  fails({ partitionTableType: 'gpt', partitions: [{ fs: 'ext4', root: '.' }], touchEFIVars: true, efiVariables: ovmf }, /^diskwright: touchEFIVars: the custom layout has no ESP in a GPT for the Boot0001 entry/);
  fails({ partitionTableType: 'efi', ...toplevel(), touchEFIVars: true, efiVariables: 'kernel' }, /^diskwright: efiVariables kernel is not an edk2 variable store \(.*\); give a firmware's variable-store template such as OVMF_VARS\.fd/);
  fails({ partitionTableType: 'efi', ...toplevel(), touchEFIVars: true, efiVariables: 'OVMF_VARS.fd' }, /^diskwright: efiVariables: OVMF_VARS\.fd does not exist; give the firmware's variable-store template/);
  fails({ partitionTableType: 'efi', touchEFIVars: true, efiVariables: ovmf }, /^diskwright: touchEFIVars: no systemd-boot on the ESP \(\/EFI\/systemd\/systemd-bootx64\.efi\) for Boot0001 to start; give toplevel or bootEntries/);
});

test('systemdBoot.extraEntries and extraFiles: the names NixOS refuses, a missing file, a name systemd-boot writes, no systemd-boot', () => {
  const sd = (systemdBoot: object, extra: object = toplevel()) => ({ partitionTableType: 'efi', ...extra, systemdBoot });
  fails(sd({ extraEntries: { 'a/b.conf': '' } }), /^diskwright: systemdBoot\.extraEntries\."a\/b\.conf" is invalid: entries within folders are not supported$/);
  fails(sd({ extraEntries: { 'memtest.txt': '' } }), /^diskwright: systemdBoot\.extraEntries\."memtest\.txt" is invalid: entries must have a \.conf file extension$/);
  fails(sd({ extraFiles: { '/efi/x.efi': 'kernel' } }), /extraFiles\."\/efi\/x\.efi" is invalid: paths must not begin with a slash$/);
  fails(sd({ extraFiles: { 'efi/../x.efi': 'kernel' } }), /is invalid: paths must not reference the parent directory$/);
  fails(sd({ extraFiles: { 'EFI/NixOS/.extra-files/x': 'kernel' } }), /is invalid: files cannot be placed in the nixos\/\.extra-files directory$/);
  fails(sd({ extraFiles: { 'efi/x.efi': 'nothing.efi' } }), /^diskwright: systemdBoot\.extraFiles\."efi\/x\.efi": nothing\.efi does not exist; give a file on this machine$/);
  fails(sd({ extraEntries: { 'nixos-generation-1.conf': 'title x\n' } }), /^diskwright: systemdBoot\.extraEntries: \/loader\/entries\/nixos-generation-1\.conf is already on the boot partition/);
  fails(sd({ extraFiles: { 'efi/boot/bootx64.efi': 'kernel' } }), /^diskwright: systemdBoot\.extraFiles: \/efi\/boot\/bootx64\.efi is already on the boot partition/);
  fails(sd({ extraFiles: { 'a.efi': 'kernel' } }, { installBootLoader: false, ...toplevel() }), /^diskwright: systemdBoot\.extraFiles: no systemd-boot is installed in this image/);
});

test('configFile: missing, or with onlyNixStore', () => {
  fails({ partitionTableType: 'efi', ...toplevel(), configFile: 'configuration.nix' }, /^diskwright: configFile: configuration\.nix does not exist; give the NixOS configuration file/);
  fails({ partitionTableType: 'none', onlyNixStore: true, configFile: 'kernel' }, /^diskwright: configFile: onlyNixStore images hold only the store, with no \/etc; remove configFile or onlyNixStore$/);
});

test('a boot partition too small for the kernels names bootSize and a minimum that builds', () => {
  const big = path.join(work, 'big');
  fs.mkdirSync(big, { recursive: true });
  for (const [f, mib] of [['kernel', 9], ['initrd', 30]] as const) {
    fs.writeFileSync(path.join(big, f), '');
    fs.truncateSync(path.join(big, f), mib << 20);
  }
  const t = toplevel({ kernel: path.join(big, 'kernel'), initrd: path.join(big, 'initrd') });
  const cfg = { partitionTableType: 'efi', ...t, additionalSpace: '1M' };
  const line = fails({ ...cfg, bootSize: '9M' }, /^diskwright: bootSize: the ESP partition \(1 MiB\) is too small; its files need [\d.]+ MiB: raise bootSize to at least (\d+)M$/);
  const min = Number(/at least (\d+)M/.exec(line)![1]);
  buildConfig(work, `min${n++}`, { ...cfg, bootSize: `${min}M` });
  fails({ ...cfg, bootSize: `${min - 1}M` }, /too small; its files need/);
});

test('touchEFIVars with the image streamed to standard output: one line, nothing written', () => {
  const ovmf = path.join(bootCache(), 'ovmf/usr/share/OVMF/OVMF_VARS.fd');
  fs.writeFileSync(path.join(work, 'stream.json'), JSON.stringify({ partitionTableType: 'efi', ...toplevel(), touchEFIVars: true, efiVariables: ovmf }));
  const r = diskwright(['build', 'stream.json', '-o', '-'], { cwd: work });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout.length, 0);
  assert.match(r.stderr, /^diskwright: touchEFIVars: the image goes to standard output, leaving efi-vars\.fd nowhere to go; give an output directory with -o\n$/);
});
