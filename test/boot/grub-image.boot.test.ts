// Our core.img and grubSetup's patches, booted: a legacy (MBR) disk built by
// diskwright without a bootloader, boot.img's code patched into its MBR and
// core.img into the gap after it, booted by SeaBIOS under QEMU (TCG). GRUB's
// embedded config lists the root partition through the BIOS disk and the
// embedded ext2 module, prints a marker to the serial console and powers off.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { grubCoreImage, grubSetup } from '../../src/boot/grub-image.ts';
import { diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { bootCache } from './parts.ts';

const MARK = 'DISKWRIGHT-GRUB-CORE';

let work: string;
let modulesDir: string;

before(() => {
  modulesDir = path.join(bootCache(), 'grub-pc-bin/usr/lib/grub/i386-pc');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-grub-boot-'));
});
after(() => work && fs.rmSync(work, { recursive: true, force: true }));

/** Boots `disk` with SeaBIOS (QEMU's default firmware) until QEMU exits or `timeoutMs`; the serial console's output. */
function bootSeabios(disk: string, timeoutMs: number): Promise<{ log: string; seconds: number }> {
  const args = ['-accel', 'tcg', '-m', '128', '-nodefaults', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-drive', `file=${disk},format=raw,if=virtio`];
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => q.kill('SIGKILL'), timeoutMs);
    q.stdout.on('data', (b: Buffer) => (log += b.toString('latin1')));
    q.stderr.on('data', (b: Buffer) => (log += b.toString('latin1')));
    q.on('close', () => {
      clearTimeout(timer);
      resolve({ log, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    });
  });
}

async function bootsAt(coreSector: number): Promise<void> {
  const out = `out-${coreSector}`;
  writeJsonIn(work, 'legacy.json', { partitionTableType: 'legacy', additionalSpace: '1M', epoch: 1, installBootLoader: false });
  diskwrightIn(work, ['build', 'legacy.json', '-o', out]);
  const layout = JSON.parse(fs.readFileSync(path.join(work, out, 'layout.json'), 'utf8'));
  const disk = path.join(work, out, layout.image);
  const uuid: string = layout.partitions[0].filesystem.uuid;

  const core = grubCoreImage({
    modulesDir,
    modules: ['biosdisk', 'part_msdos', 'ext2', 'ls', 'serial', 'terminal', 'echo', 'halt'],
    prefix: '(,msdos1)/boot/grub',
    config: `serial --unit=0 --speed=115200\nterminal_output serial\nls (hd0,msdos1)\necho\necho ${MARK}\nhalt\n`,
  });
  const { mbrCode, core: placed } = grubSetup(modulesDir, core, coreSector);
  assert.ok(coreSector + placed.length / 512 <= layout.partitions[0].startSector, 'core.img fits before the first partition');
  const fd = fs.openSync(disk, 'r+');
  fs.writeSync(fd, mbrCode, 0, mbrCode.length, 0);
  fs.writeSync(fd, placed, 0, placed.length, coreSector * 512);
  fs.closeSync(fd);

  const run = await bootSeabios(disk, 15_000);
  console.log(`# core.img at sector ${coreSector}: SeaBIOS (TCG) to GRUB's halt ${run.seconds.toFixed(1)} s`);
  assert.match(run.log, new RegExp(MARK), `no marker on the serial console:\n${run.log.slice(-3000)}`);
  // GRUB wraps its lines at 80 columns.
  const flat = run.log.replace(/\s+/g, ' ');
  assert.match(flat, new RegExp(`Partition hd0,msdos1: Filesystem type ext\\* - Label .nixos. .* UUID ${uuid}`), 'GRUB read the root partition through the BIOS disk');
  assert.ok(run.seconds < 15, 'GRUB powered the machine off (halt) before the timeout');
}

test('SeaBIOS boots our core.img from sector 1 through grubSetup\'s boot.img: embedded modules read the root partition, the config prints and halts', () => bootsAt(1));

// Elsewhere than right after the MBR (as in a BIOS boot partition): boot.img and the blocklist both follow coreSector.
test('core.img at sector 1000 boots too', () => bootsAt(1000));
