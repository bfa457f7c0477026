// A NixOS-shaped system built into `efi` and `efixbootldr` disks with
// systemd-boot installed by diskwright, no VM at build time, booted by OVMF under QEMU (TCG) to the
// system's init, which prints a marker after writing to the root; the root
// then passes e2fsck.
import { test, before, after } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { assertBootedClean, bootOvmf, bootTestToplevel, parts, type Parts } from './parts.ts';

let work: string;
let p: Parts;
let toplevel: string;

before(() => {
  p = parts();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-sdboot-boot-'));
  toplevel = bootTestToplevel(p, work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Builds `layout`, boots a copy to the marker, then checks the root the system wrote to. */
async function bootsAndStaysClean(layout: string, extra: object = {}): Promise<void> {
  writeJsonIn(work, `${layout}.json`, { partitionTableType: layout, toplevel, storeDir: 'store', additionalSpace: '16M', timeout: 0, epoch: 1, ...extra });
  const t0 = process.hrtime.bigint();
  diskwrightIn(work, ['build', `${layout}.json`, '-o', `out-${layout}`]);
  const buildSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const out = path.join(work, `out-${layout}`);
  const copy = path.join(work, `${layout}-boot.img`);
  fs.copyFileSync(path.join(out, 'nixos.img'), copy);
  const run = await bootOvmf(p, copy, work);
  console.log(`# ${layout}: build ${buildSeconds.toFixed(2)} s (diskwright build, whole CLI), boot to marker ${run.seconds.toFixed(1)} s (OVMF, TCG)`);
  assertBootedClean(run, work, copy, out);
}

test('an efi disk with systemd-boot boots under OVMF to the toplevel init, and its root stays clean', () => bootsAndStaysClean('efi'));

test('efixbootldr: systemd-boot finds the entry and kernels on XBOOTLDR', () => bootsAndStaysClean('efixbootldr', { bootSize: '160M' }));
