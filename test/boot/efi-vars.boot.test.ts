// touchEFIVars and qcow2 under the real consumer. An efi disk whose
// removable-path loader (EFI/BOOT/BOOTX64.EFI) is deleted after the build
// leaves OVMF one way to systemd-boot: the Boot0001 entry our efi-vars.fd
// holds (OVMF's own options for the disk try only the removable path). Booted
// with a copy of that file as the pflash store and no `bootindex` (with one,
// OVMF prunes HD() options it did not make), it must reach the marker, and
// OVMF's log must say it loaded Boot0001. (Measured: the same disk with the
// plain template ends in the EFI shell.) The same config as qcow2 boots from
// the qcow2 file, and its root stays clean after the system wrote to it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright } from '../cli/run.ts';
import { buildConfig, cutPartition } from '../disk/helpers.ts';
import { e2fsck } from '../oracle/tools.ts';
import { mtool } from '../oracle/fat-tools.ts';
import { bootOvmf, bootTestToplevel, MARKER, parts, type Parts } from './parts.ts';

let work: string;
let p: Parts;
let config: object;

before(() => {
  p = parts();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-efivars-boot-'));
  const toplevel = bootTestToplevel(p, work);
  config = { partitionTableType: 'efi', toplevel, storeDir: 'store', additionalSpace: '16M', timeout: 0, epoch: 1, touchEFIVars: true, efiVariables: p.ovmfVars };
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('OVMF boots through our Boot0001 on a disk without the removable-path loader', async () => {
  const b = buildConfig(work, 'vars', config);
  const vars = path.join(b.out, 'efi-vars.fd');
  const listed = diskwright(['inspect', vars]);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(String(listed.stdout), /Boot0001 .*"Linux Boot Manager" HD\(1,GPT,.*\)\/\\EFI\\systemd\\systemd-bootx64\.efi/);
  assert.match(String(listed.stdout), /BootOrder .*: Boot0001/);

  const disk = path.join(work, 'vars-boot.img');
  fs.copyFileSync(b.image, disk);
  const esp = b.layout.partitions.find((x) => x.role === 'esp')!;
  mtool('mdel', ['-i', `${disk}@@${esp.start}`, '::/EFI/BOOT/BOOTX64.EFI']);
  assert.notEqual(mtool('mdir', ['-i', `${disk}@@${esp.start}`, '::/EFI/BOOT/BOOTX64.EFI'], true).status, 0, 'the removable path is gone');
  const varsCopy = path.join(work, 'efi-vars-boot.fd');
  fs.copyFileSync(vars, varsCopy);

  const run = await bootOvmf(p, disk, work, MARKER, 90_000, { vars: varsCopy });
  console.log(`# efi + touchEFIVars, no removable path: boot to marker ${run.seconds.toFixed(1)} s (OVMF, TCG)`);
  assert.ok(run.found, `no ${MARKER} on the serial console:\n${run.log.slice(-4000)}`);
  assert.match(run.log, /BdsDxe: loading Boot0001 "Linux Boot Manager" from HD\(1,GPT,/);
});

test('the same efi disk as qcow2 boots from the qcow2 file, and its root stays clean', async () => {
  const b = buildConfig(work, 'qcow2', { ...config, format: 'qcow2' });
  assert.match(b.layout.image, /\.qcow2$/);
  const disk = path.join(work, 'qcow2-boot.qcow2');
  fs.copyFileSync(b.image, disk);
  const run = await bootOvmf(p, disk, work, MARKER, 90_000, { format: 'qcow2' });
  console.log(`# efi as qcow2: boot to marker ${run.seconds.toFixed(1)} s (OVMF, TCG)`);
  assert.ok(run.found, `no ${MARKER} on the serial console:\n${run.log.slice(-4000)}`);
  assert.match(run.log, new RegExp(`${MARKER} written-at-boot`));

  // What the system wrote went into the qcow2 file: converted back, the root is clean and holds it.
  const raw = path.join(work, 'qcow2-after.img');
  const conv = spawnSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', disk, raw], { encoding: 'utf8' });
  assert.equal(conv.status, 0, conv.stderr);
  const root = cutPartition(work, raw, b.layout, 2);
  const fsck = e2fsck(root);
  assert.ok(fsck.clean, fsck.output);
  assert.equal(spawnSync('debugfs', ['-R', 'cat /diskwright-boot-test', root], { encoding: 'utf8' }).stdout, 'written-at-boot\n');
});
