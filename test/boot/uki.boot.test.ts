// A NixOS-shaped system built into an efi disk with `uki: true`: systemd-boot
// finds the unified kernel image diskwright made from systemd's stub under
// EFI/Linux/ (no entry file), the stub boots its kernel and initrd under OVMF
// (TCG) to the system's init, which prints a marker after writing to the
// root; the root then passes e2fsck.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { cutPartition } from '../disk/helpers.ts';
import { mdirAll } from '../oracle/fat-tools.ts';
import { e2fsck } from '../oracle/tools.ts';
import { bootOvmf, MARKER, makeInitramfs, makeToplevel, parts, type Parts } from './parts.ts';

let work: string;
let p: Parts;
let toplevel: string;

before(() => {
  p = parts();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-uki-boot-'));
  const initrd = path.join(work, 'initrd.zst');
  makeInitramfs(p, work, initrd);
  ({ toplevel } = makeToplevel(path.join(work, 'store'), {
    kernel: p.vmlinuz, initrd, busybox: p.busybox, systemdBootEfi: p.systemdBootEfi, linuxStub: p.linuxStub,
    kernelParams: 'root=LABEL=nixos console=ttyS0 panic=-1 loglevel=4', bootJson: true,
  }));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('an efi disk with uki: true boots under OVMF through EFI/Linux/nixos.efi to the toplevel init, and its root stays clean', async () => {
  writeJsonIn(work, 'uki.json', { partitionTableType: 'efi', toplevel, storeDir: 'store', additionalSpace: '16M', timeout: 0, epoch: 1, uki: true });
  const t0 = process.hrtime.bigint();
  diskwrightIn(work, ['build', 'uki.json', '-o', 'out']);
  const buildSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const out = path.join(work, 'out');
  const layout = JSON.parse(fs.readFileSync(path.join(out, 'layout.json'), 'utf8'));
  const copy = path.join(work, 'uki-boot.img');
  fs.copyFileSync(path.join(out, 'nixos.img'), copy);

  // No type #1 entry and no loose kernel: only the UKI says what to boot.
  const esp = cutPartition(work, copy, layout, 1);
  const names = [...mdirAll(esp)].flatMap(([dir, es]) => es.filter((e) => !e.dir).map((e) => `${dir === '/' ? '' : dir}/${e.name}`)).sort();
  assert.deepEqual(names, ['/EFI/BOOT/BOOTX64.EFI', '/EFI/Linux/nixos.efi', '/EFI/systemd/systemd-bootx64.efi', '/loader/entries.srel', '/loader/loader.conf']);

  const run = await bootOvmf(p, copy, work);
  console.log(`# uki: build ${buildSeconds.toFixed(2)} s (diskwright build, whole CLI), boot to marker ${run.seconds.toFixed(1)} s (OVMF, TCG)`);
  assert.ok(run.found, `no ${MARKER} on the serial console:\n${run.log.slice(-4000)}`);
  assert.match(run.log, new RegExp(`${MARKER} written-at-boot`));

  const rootN = layout.partitions.findIndex((x: { role: string }) => x.role === 'root') + 1;
  const fsImg = cutPartition(work, copy, layout, rootN);
  const fsck = e2fsck(fsImg);
  assert.ok(fsck.clean, fsck.output);
  const cat = spawnSync('debugfs', ['-R', 'cat /diskwright-boot-test', fsImg], { encoding: 'utf8' });
  assert.equal(cat.stdout, 'written-at-boot\n');
});
