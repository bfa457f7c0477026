// extlinux installed by diskwright, read by U-Boot (Debian's u-boot-qemu)
// through its distro boot: on x86-64 a `legacy` disk up to the kernel
// handoff (U-Boot's x86 build then hangs under QEMU in its own zboot, not on
// our bytes), and on arm64 the sd-image preset booted to the system's init.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { cutPartition } from '../disk/helpers.ts';
import { e2fsck } from '../oracle/tools.ts';
import { MARKER, makeInitramfs, makeToplevel, parts, storeName } from './parts.ts';
import { armParts, bootUbootArm64, bootUbootX86, ubootX86 } from './uboot.ts';

let work: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-extlinux-boot-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** `diskwright build` of `config` in `work`, timed; the image's path. */
function build(name: string, config: object): { image: string; seconds: number } {
  writeJsonIn(work, `${name}.json`, config);
  const t0 = process.hrtime.bigint();
  diskwrightIn(work, ['build', `${name}.json`, '-o', `out-${name}`]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const out = path.join(work, `out-${name}`);
  const image = fs.readdirSync(out).find((f) => f.endsWith('.img'))!;
  return { image: path.join(out, image), seconds };
}

test('x86-64 U-Boot reads extlinux.conf on a legacy disk, loads the kernel and initrd it names and passes the APPEND line', async () => {
  const p = parts();
  const rom = ubootX86();
  const initrd = path.join(work, 'initrd-x86.zst');
  makeInitramfs(p, path.join(work, 'x86'), initrd);
  const store = path.join(work, 'store-x86');
  const params = 'root=LABEL=nixos console=ttyS0 panic=-1';
  const { toplevel } = makeToplevel(store, { kernel: p.vmlinuz, initrd, busybox: p.busybox, kernelParams: params });
  const { image, seconds } = build('legacy', { partitionTableType: 'legacy', bootLoader: 'extlinux', toplevel, storeDir: 'store-x86', timeout: 1, epoch: 1, additionalSpace: '8M' });
  const run = await bootUbootX86(rom, image, 'Loading bzImage');
  console.log(`# legacy + extlinux: build ${seconds.toFixed(2)} s, U-Boot x86 to "Loading bzImage" ${run.seconds.toFixed(1)} s (TCG)`);
  assert.ok(run.found, `U-Boot did not load the kernel:\n${run.log.slice(-4000)}`);
  const kernel = `${storeName('linux-6.1')}-bzImage`;
  const initrdName = `${storeName('initrd-linux-6.1')}-initrd`;
  assert.match(run.log, /Found \/boot\/extlinux\/extlinux\.conf/);
  assert.ok(run.log.includes(`Retrieving file: /boot/extlinux/../nixos/${kernel}`), run.log);
  assert.ok(run.log.includes(`Retrieving file: /boot/extlinux/../nixos/${initrdName}`), run.log);
  assert.ok(run.log.includes(`append: init=${toplevel}/init ${params}`), run.log);
  // U-Boot parsed the kernel it read from our ext4: its setup header and version string.
  assert.match(run.log, /Linux kernel version 6\.1\./);
});

test('the sd-image preset boots to its init under U-Boot on arm64 (qemu-system-aarch64 virt)', async () => {
  const a = armParts();
  const initrd = path.join(work, 'initrd-arm64.zst');
  makeInitramfs(a, path.join(work, 'arm64'), initrd);
  // A few of Debian's device trees as the toplevel's dtbs, so the image has FDTDIR and the copied tree; U-Boot's
  // qemu_arm64 has no fdt_addr_r, so it boots with QEMU's own device tree and does not load from FDTDIR.
  const dtbs = path.join(work, 'dtbs');
  fs.cpSync(path.join(a.dtbsDir, 'arm'), path.join(dtbs, 'arm'), { recursive: true });
  const store = path.join(work, 'store-arm64');
  const { toplevel } = makeToplevel(store, {
    kernel: a.image, kernelFile: 'Image', initrd, busybox: a.busybox, dtbs, system: 'aarch64-linux', bootJson: true,
    kernelParams: 'root=LABEL=NIXOS_SD console=ttyAMA0 panic=-1 loglevel=4',
  });
  const { image, seconds } = build('sd', { builder: 'sd-image', toplevel, storeDir: 'store-arm64', system: 'aarch64-linux', timeout: 1, compressImage: false, epoch: 1, additionalSpace: '8M' });
  const copy = path.join(work, 'sd-boot.img');
  fs.copyFileSync(image, copy);
  const run = await bootUbootArm64(a, copy);
  console.log(`# sd-image + extlinux: build ${seconds.toFixed(2)} s, U-Boot arm64 boot to marker ${run.seconds.toFixed(1)} s (TCG)`);
  assert.ok(run.found, `no ${MARKER} on the serial console:\n${run.log.slice(-4000)}`);
  assert.match(run.log, new RegExp(`${MARKER} written-at-boot`));
  assert.match(run.log, /Scanning virtio 0:2\.\.\.\s+Found \/boot\/extlinux\/extlinux\.conf/);
  assert.ok(run.log.includes(`Retrieving file: /boot/extlinux/../nixos/${storeName('linux-6.1')}-Image`), run.log);
  // The system wrote to its root: still clean, the file is there.
  const layout = JSON.parse(fs.readFileSync(path.join(work, 'out-sd', 'layout.json'), 'utf8'));
  const root = cutPartition(work, copy, layout, 2);
  const fsck = e2fsck(root);
  assert.ok(fsck.clean, fsck.output);
  assert.equal(spawnSync('debugfs', ['-R', 'cat /diskwright-boot-test', root], { encoding: 'utf8' }).stdout, 'written-at-boot\n');
});
