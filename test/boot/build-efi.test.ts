// The build's side of booting that needs no VM to check: touchEFIVars'
// efi-vars.fd from both OVMF templates (Boot0001 pointing at the ESP the
// layout placed, read back with `diskwright inspect`), systemd-boot's
// extraEntries and extraFiles on $BOOT with the builder's markers (mtools),
// configFile on the root and no /etc/machine-id (debugfs). Booting through
// Boot0001 is in efi-vars.boot.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildConfig, cutPartition } from '../disk/helpers.ts';
import { diskwright } from '../cli/run.ts';
import { mcopyRead, mdirAll } from '../oracle/fat-tools.ts';
import { bootCache, makeToplevel } from './parts.ts';

let work: string;
let ovmf: string;
let n = 0;

before(() => {
  ovmf = path.join(bootCache(), 'ovmf/usr/share/OVMF');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-build-efi-'));
  for (const f of ['kernel', 'initrd', 'busybox', 'sdboot.efi', 'memtest.efi', 'configuration.nix', 'machine-id']) fs.writeFileSync(path.join(work, f), `fake ${f}\n`);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function system(): { toplevel: string; storeDir: string } {
  const store = `store${n++}`;
  const t = makeToplevel(path.join(work, store), {
    kernel: path.join(work, 'kernel'), initrd: path.join(work, 'initrd'), busybox: path.join(work, 'busybox'),
    systemdBootEfi: path.join(work, 'sdboot.efi'), kernelParams: 'console=ttyS0',
  });
  return { toplevel: t.toplevel, storeDir: store };
}

const base = { additionalSpace: '1M', bootSize: '64M', epoch: 1, timeout: 0 };

for (const template of ['OVMF_VARS.fd', 'OVMF_VARS_4M.fd']) {
  test(`touchEFIVars with ${template}: efi-vars.fd holds Boot0001 -> HD(ESP)/systemd-boot and BootOrder; the same bytes twice`, () => {
    const cfg = { partitionTableType: 'efi', ...system(), ...base, touchEFIVars: true, efiVariables: path.join(ovmf, template) };
    const a = buildConfig(work, `vars-${n++}`, cfg);
    const b = buildConfig(work, `vars-${n++}`, cfg);
    const file = path.join(a.out, 'efi-vars.fd');
    assert.equal(fs.statSync(file).size, fs.statSync(path.join(ovmf, template)).size);
    assert.ok(fs.readFileSync(file).equals(fs.readFileSync(path.join(b.out, 'efi-vars.fd'))), 'deterministic');
    const esp = a.layout.partitions.find((p) => p.role === 'esp')!;
    const r = diskwright(['inspect', file]);
    assert.equal(r.status, 0, r.stderr);
    const hd = `HD(${esp.number},GPT,${esp.guid},0x${esp.startSector.toString(16)},0x${esp.sectors.toString(16)})`;
    assert.ok(String(r.stdout).includes(`Boot0001 8BE4DF61-93CA-11D2-AA0D-00E098032B8C attributes 0x00000007, `), String(r.stdout));
    assert.ok(String(r.stdout).includes(`"Linux Boot Manager" ${hd}/\\EFI\\systemd\\systemd-bootx64.efi`), String(r.stdout));
    assert.match(String(r.stdout), /BootOrder 8BE4DF61-93CA-11D2-AA0D-00E098032B8C attributes 0x00000007, 2 bytes: Boot0001\n/);
    // The hydra product list still names only the image, as make-disk-image's does.
    assert.equal(fs.readFileSync(path.join(a.out, 'nix-support/hydra-build-products'), 'utf8'), `file raw-image ${a.image}\n`);
  });
}

test('extraEntries and extraFiles on the ESP with the builder\'s markers; efi/ joins EFI/ (FAT is case-insensitive)', () => {
  const entry = 'title Memtest86+\nefi /efi/memtest86/memtest.efi\nsort-key z_memtest\n';
  const b = buildConfig(work, `extra-${n++}`, {
    partitionTableType: 'efi', ...system(), ...base,
    systemdBoot: { extraEntries: { 'memtest86.conf': entry }, extraFiles: { 'efi/memtest86/memtest.efi': 'memtest.efi', 'hello.txt': 'configuration.nix' } },
  });
  const esp = cutPartition(work, b.image, b.layout, 1);
  assert.equal(mcopyRead(esp, '/loader/entries/memtest86.conf').toString(), entry);
  assert.equal(mcopyRead(esp, '/EFI/memtest86/memtest.efi').toString(), 'fake memtest.efi\n');
  assert.equal(mcopyRead(esp, '/hello.txt').toString(), 'fake configuration.nix\n');
  for (const m of ['efi/memtest86/memtest.efi', 'hello.txt', 'loader/entries/memtest86.conf']) assert.equal(mcopyRead(esp, `/EFI/nixos/.extra-files/${m}`).length, 0);
  const dirs = mdirAll(esp);
  assert.deepEqual([...dirs.get('/')!.map((e) => e.name)].sort(), ['EFI', 'hello.txt', 'loader']);
  assert.deepEqual([...dirs.get('/EFI')!.map((e) => e.name)].sort(), ['BOOT', 'memtest86', 'nixos', 'systemd']);
  const fsck = spawnSync('fsck.fat', ['-n', esp], { encoding: 'utf8' });
  assert.equal(fsck.status, 0, fsck.stdout);
});

test('efixbootldr: the extras go to XBOOTLDR ($BOOT), as with NixOS\'s xbootldrMountPoint', () => {
  const b = buildConfig(work, `xb-${n++}`, {
    partitionTableType: 'efixbootldr', ...system(), ...base, bootSize: '160M',
    systemdBoot: { extraEntries: { 'a.conf': 'title A\nefi /a.efi\n' }, extraFiles: { 'a.efi': 'memtest.efi' } },
  });
  const xb = cutPartition(work, b.image, b.layout, b.layout.partitions.findIndex((p) => p.role === 'xbootldr') + 1);
  assert.equal(mcopyRead(xb, '/loader/entries/a.conf').toString(), 'title A\nefi /a.efi\n');
  assert.equal(mcopyRead(xb, '/a.efi').toString(), 'fake memtest.efi\n');
  assert.equal(mcopyRead(xb, '/EFI/nixos/.extra-files/a.efi').length, 0);
});

test('configFile lands at /etc/nixos/configuration.nix; a machine-id from contents is dropped when a bootloader is installed', () => {
  const cfg = {
    partitionTableType: 'efi', ...system(), ...base, configFile: 'configuration.nix',
    contents: [{ source: 'machine-id', target: '/etc/machine-id' }],
  };
  const b = buildConfig(work, `cf-${n++}`, cfg);
  const root = cutPartition(work, b.image, b.layout, 2);
  const cat = (p: string) => spawnSync('debugfs', ['-R', `cat ${p}`, root], { encoding: 'utf8' });
  assert.equal(cat('/etc/nixos/configuration.nix').stdout, 'fake configuration.nix\n');
  assert.match(spawnSync('debugfs', ['-R', 'stat /etc/nixos/configuration.nix', root], { encoding: 'utf8' }).stdout, /Mode:\s+0644/);
  assert.match(cat('/etc/machine-id').stderr, /File not found/);
  // Without a bootloader (make-disk-image's rm -f runs only then), the file stays.
  const kept = buildConfig(work, `cf-${n++}`, { partitionTableType: 'efi', ...base, configFile: 'configuration.nix', contents: cfg.contents });
  const root2 = cutPartition(work, kept.image, kept.layout, 2);
  assert.equal(spawnSync('debugfs', ['-R', 'cat /etc/machine-id', root2], { encoding: 'utf8' }).stdout, 'fake machine-id\n');
});
