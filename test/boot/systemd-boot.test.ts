// systemd-boot as nixpkgs' systemd-boot-builder.py and `bootctl install
// --no-variables` leave it: file names and entry text byte for byte, the
// files on the ESP (or XBOOTLDR) read back with mtools, the profile links on
// the root with debugfs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bootFileName, buildDate, entryText, loaderConf } from '../../src/boot/systemd-boot.ts';
import type { BootEntry } from '../../src/boot/toplevel.ts';
import { buildConfig, cutPartition } from '../disk/helpers.ts';
import { fsckFat, mcopyRead, mdirAll } from '../oracle/fat-tools.ts';
import { e2fsck } from '../oracle/tools.ts';
import { makeToplevel, storeName } from './parts.ts';

let work: string;
const H = storeName('linux-6.1').slice(0, 32);

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-sdboot-'));
  for (const f of ['kernel', 'initrd', 'busybox']) fs.writeFileSync(path.join(work, f), `fake ${f}\n`.repeat(100));
  fs.writeFileSync(path.join(work, 'sdboot.efi'), Buffer.alloc(4096, 0x4d));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('file names: <hash>-<name>-<file>.efi, <hash>-<name>.efi for a store path that is the file', () => {
  const f = (storePath?: string, host = '/build/vmlinuz') => ({ host, storePath, size: 1 });
  assert.equal(bootFileName(f(`/nix/store/${H}-linux-6.1/bzImage`), '/nix/store', 'x'), `EFI/nixos/${H}-linux-6.1-bzImage.efi`);
  assert.equal(bootFileName(f(`/nix/store/${H}-initrd-linux-6.1/initrd`), '/nix/store', 'x'), `EFI/nixos/${H}-initrd-linux-6.1-initrd.efi`);
  assert.equal(bootFileName(f(`/nix/store/${H}-initrd`), '/nix/store', 'x'), `EFI/nixos/${H}-initrd.efi`);
  // The builder keeps the store path's name and the file's own name only.
  assert.equal(bootFileName(f(`/nix/store/${H}-dtbs/a/b/c.dtb`), '/nix/store', 'x'), `EFI/nixos/${H}-dtbs-c.dtb.efi`);
  assert.equal(bootFileName(f(`/gnu/store/${H}-linux/bzImage`), '/gnu/store', 'x'), `EFI/nixos/${H}-linux-bzImage.efi`);
  assert.equal(bootFileName(f(undefined), '/nix/store', 'debian'), 'EFI/debian/vmlinuz');
});

test('entry text: the builder\'s BOOT_ENTRY, the date from the epoch', () => {
  const e: BootEntry = {
    id: 'nixos-generation-1', title: 'NixOS', options: 'init=/nix/store/t-nixos-system/init root=LABEL=nixos',
    kernel: { host: '', size: 0 }, nixos: { label: 'NixOS 24.11 (Linux 6.1)', generation: 1 },
  };
  assert.equal(buildDate(1_700_000_000), '2023-11-14');
  assert.equal(buildDate(0), '1970-01-01');
  assert.equal(entryText(e, 'EFI/nixos/k.efi', 'EFI/nixos/i.efi', 1_700_000_000),
    'title NixOS\nsort-key nixos\nversion Generation 1 NixOS 24.11 (Linux 6.1), built on 2023-11-14\nlinux /EFI/nixos/k.efi\ninitrd /EFI/nixos/i.efi\noptions init=/nix/store/t-nixos-system/init root=LABEL=nixos\n');
  const other: BootEntry = { id: 'debian', title: 'Debian', options: 'root=/dev/vda2 ro', kernel: { host: '', size: 0 } };
  assert.equal(entryText(other, 'EFI/debian/vmlinuz', undefined, 0), 'title Debian\nlinux /EFI/debian/vmlinuz\noptions root=/dev/vda2 ro\n');
});

test('loader.conf: timeout, default, editor 0 only when the editor is off, console-mode', () => {
  const o = { system: 'x86_64-linux', timeout: 5, consoleMode: 'keep', editor: true, epoch: 0, nixStoreDir: '/nix/store' };
  assert.equal(loaderConf(o, 'nixos-generation-1'), 'timeout 5\ndefault nixos-generation-1.conf\nconsole-mode keep\n');
  assert.equal(loaderConf({ ...o, editor: false, timeout: 0, consoleMode: 'max' }, 'nixos-generation-1'), 'timeout 0\ndefault nixos-generation-1.conf\neditor 0\nconsole-mode max\n');
});

function toplevelIn(name: string, bootJson = false) {
  const store = path.join(work, name);
  const t = makeToplevel(store, {
    kernel: path.join(work, 'kernel'), initrd: path.join(work, 'initrd'), busybox: path.join(work, 'busybox'),
    systemdBootEfi: path.join(work, 'sdboot.efi'), kernelParams: 'root=LABEL=nixos console=ttyS0', bootJson,
  });
  return { ...t, store: name };
}

const files = (part: string) => {
  const out: string[] = [];
  for (const [dir, entries] of mdirAll(part)) for (const e of entries) if (!e.dir) out.push(`${dir === '/' ? '' : dir}/${e.name}`);
  return out.sort();
};

test('an efi build: the loader, loader.conf, the entry, kernel and initrd on the ESP; the toplevel in the store and its profile links', () => {
  const t = toplevelIn('store-efi');
  const b = buildConfig(work, 'efi', { partitionTableType: 'efi', toplevel: t.toplevel, storeDir: t.store, epoch: 1_700_000_000, editor: false });
  const esp = cutPartition(work, b.image, b.layout, 1);
  assert.ok(fsckFat(esp).clean);
  const kernel = `/EFI/nixos/${storeName('linux-6.1')}-bzImage.efi`;
  const initrd = `/EFI/nixos/${storeName('initrd-linux-6.1')}-initrd.efi`;
  assert.deepEqual(files(esp), [
    '/EFI/BOOT/BOOTX64.EFI', kernel, initrd, '/EFI/systemd/systemd-bootx64.efi',
    '/loader/entries.srel', '/loader/entries/nixos-generation-1.conf', '/loader/loader.conf',
  ].sort());
  assert.deepEqual(mcopyRead(esp, '/EFI/BOOT/BOOTX64.EFI'), fs.readFileSync(path.join(work, 'sdboot.efi')));
  assert.deepEqual(mcopyRead(esp, '/EFI/systemd/systemd-bootx64.efi'), fs.readFileSync(path.join(work, 'sdboot.efi')));
  assert.deepEqual(mcopyRead(esp, kernel), fs.readFileSync(path.join(work, 'kernel')));
  assert.equal(mcopyRead(esp, '/loader/entries.srel').toString(), 'type1\n');
  assert.equal(mcopyRead(esp, '/loader/loader.conf').toString(), 'timeout 5\ndefault nixos-generation-1.conf\neditor 0\nconsole-mode keep\n');
  assert.equal(mcopyRead(esp, '/loader/entries/nixos-generation-1.conf').toString(),
    `title NixOS\nsort-key nixos\nversion Generation 1 NixOS 24.11.20241204.diskwright, built on 2023-11-14\nlinux ${kernel}\ninitrd ${initrd}\noptions init=${t.toplevel}/init root=LABEL=nixos console=ttyS0\n`);

  const root = cutPartition(work, b.image, b.layout, 2);
  assert.equal(e2fsck(root).status, 0);
  const debugfs = (cmd: string) => spawnSync('debugfs', ['-R', cmd, root], { encoding: 'utf8' }).stdout;
  // A target of more than 60 bytes is kept in a block, which debugfs cat reads.
  const link = (p: string) => /Fast link dest: "(.*)"/.exec(debugfs(`stat ${p}`))?.[1] ?? debugfs(`cat ${p}`);
  assert.equal(link('/nix/var/nix/profiles/system'), 'system-1-link');
  assert.equal(link('/nix/var/nix/profiles/system-1-link'), t.toplevel);
  assert.match(debugfs(`ls -l ${t.toplevel}`), /kernel-params/);
  assert.match(debugfs(`ls -l /nix/store/${storeName('linux-6.1')}`), /bzImage/);
  assert.match(debugfs('cat /nix-path-registration'), new RegExp(t.toplevel));

  // Same config, same bytes.
  const again = buildConfig(work, 'efi-again', { partitionTableType: 'efi', toplevel: t.toplevel, storeDir: t.store, epoch: 1_700_000_000, editor: false });
  assert.ok(fs.readFileSync(again.image).equals(fs.readFileSync(b.image)), 'two builds differ');
});

test('efixbootldr: entries, kernels and initrds on XBOOTLDR; the loader and loader.conf on the ESP; entries.srel on both', () => {
  const t = toplevelIn('store-x', true);
  const b = buildConfig(work, 'x', { partitionTableType: 'efixbootldr', bootSize: '160M', toplevel: t.toplevel, storeDir: t.store, epoch: 1 });
  const esp = cutPartition(work, b.image, b.layout, 1);
  const xb = cutPartition(work, b.image, b.layout, 2);
  assert.deepEqual(files(esp), ['/EFI/BOOT/BOOTX64.EFI', '/EFI/systemd/systemd-bootx64.efi', '/loader/entries.srel', '/loader/loader.conf']);
  assert.deepEqual(files(xb), [
    `/EFI/nixos/${storeName('initrd-linux-6.1')}-initrd.efi`, `/EFI/nixos/${storeName('linux-6.1')}-bzImage.efi`,
    '/loader/entries.srel', '/loader/entries/nixos-generation-1.conf',
  ]);
  assert.match(mcopyRead(xb, '/loader/entries/nixos-generation-1.conf').toString(), /^version Generation 1 NixOS 24.11.20241204.diskwright \(Linux 6.1\), built on 1970-01-01$/m);
  assert.ok(fsckFat(esp).clean && fsckFat(xb).clean);
});

test('bootEntries: a system that is not NixOS, with the loader from systemdBoot.efiFile', () => {
  const b = buildConfig(work, 'entries', {
    partitionTableType: 'efi', epoch: 1, systemdBoot: { efiFile: 'sdboot.efi' },
    bootEntries: [{ title: 'Debian', id: 'debian', kernel: 'kernel', initrd: 'initrd', cmdline: 'root=LABEL=nixos ro' }],
  });
  const esp = cutPartition(work, b.image, b.layout, 1);
  assert.deepEqual(files(esp), ['/EFI/BOOT/BOOTX64.EFI', '/EFI/debian/initrd', '/EFI/debian/kernel', '/EFI/systemd/systemd-bootx64.efi', '/loader/entries.srel', '/loader/entries/debian.conf', '/loader/loader.conf']);
  assert.equal(mcopyRead(esp, '/loader/entries/debian.conf').toString(), 'title Debian\nlinux /EFI/debian/kernel\ninitrd /EFI/debian/initrd\noptions root=LABEL=nixos ro\n');
  assert.match(mcopyRead(esp, '/loader/loader.conf').toString(), /^default debian\.conf$/m);
});
