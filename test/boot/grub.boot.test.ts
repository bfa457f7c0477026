// A NixOS-shaped system built into the legacy, legacy+gpt, legacy+boot and
// hybrid disks with GRUB installed by diskwright (no grub-install, no VM),
// booted by SeaBIOS under QEMU (TCG) to the system's init, which prints a
// marker after writing to the root; the root then passes e2fsck. The hybrid
// disk boots under OVMF too, through systemd-boot on its ESP.
import { test, before, after } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { assertBootedClean, bootOvmf, bootSeabios, bootTestToplevel, parts, type Parts } from './parts.ts';

let work: string;
let p: Parts;
let toplevel: string;

before(() => {
  p = parts();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-grub-boot-'));
  toplevel = bootTestToplevel(p, work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Builds `layout` with GRUB from the boot cache (and systemd-boot from the toplevel, for hybrid). */
function build(layout: string): { out: string; seconds: number } {
  const out = path.join(work, `out-${layout}`);
  writeJsonIn(work, `${layout}.json`, { partitionTableType: layout, toplevel, storeDir: 'store', additionalSpace: '16M', timeout: 0, epoch: 1, grub: { modulesDir: p.grubModulesDir } });
  const t0 = process.hrtime.bigint();
  diskwrightIn(work, ['build', `${layout}.json`, '-o', out]);
  return { out, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** Boots a copy of the built disk to the marker, then checks the root the system wrote to. */
async function bootsAndStaysClean(layout: string, firmware: 'SeaBIOS' | 'OVMF', b: { out: string; seconds: number }): Promise<void> {
  const copy = path.join(work, `${layout}-${firmware}.img`);
  fs.copyFileSync(path.join(b.out, 'nixos.img'), copy);
  const run = firmware === 'SeaBIOS' ? await bootSeabios(copy) : await bootOvmf(p, copy, work);
  console.log(`# ${layout}: build ${b.seconds.toFixed(2)} s (diskwright build, whole CLI), boot to marker ${run.seconds.toFixed(1)} s (${firmware}, TCG)`);
  assertBootedClean(run, work, copy, b.out);
  fs.rmSync(copy);
}

for (const layout of ['legacy', 'legacy+gpt', 'legacy+boot']) {
  test(`${layout}: GRUB boots under SeaBIOS to the toplevel init, and the root stays clean`, () => bootsAndStaysClean(layout, 'SeaBIOS', build(layout)));
}

test('hybrid: GRUB boots it under SeaBIOS and systemd-boot under OVMF, the same disk', async () => {
  const b = build('hybrid');
  await bootsAndStaysClean('hybrid', 'SeaBIOS', b);
  await bootsAndStaysClean('hybrid', 'OVMF', b);
});
