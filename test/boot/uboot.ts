// U-Boot boot parts (Debian's u-boot-qemu, and the arm64 kernel and busybox
// for the full boot on qemu-system-aarch64), fetched by scripts/boot-parts.sh,
// and the QEMU runs that boot a disk through U-Boot's distro boot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootCache, watchQemu, MARKER, type BootRun } from './parts.ts';

export interface ArmParts {
  /** The arm64 kernel: Debian's vmlinuz-*-arm64 is an uncompressed Image (ARM\x64 magic), what booti takes. */
  image: string;
  modulesDir: string;
  busybox: string;
  /** Debian's device trees (/usr/lib/linux-image-<version>). */
  dtbsDir: string;
  uboot: string;
}

function need(dir: string, pkgs: string[]): void {
  for (const pkg of pkgs) {
    if (!fs.existsSync(path.join(dir, pkg, '.done'))) throw new Error(`boot part ${pkg} missing in ${dir}: run scripts/boot-parts.sh (it fetches them with apt-get download)`);
  }
}

/** U-Boot's x86-64 ROM (for -bios). */
export function ubootX86(cache = bootCache()): string {
  need(cache, ['u-boot-qemu']);
  return path.join(cache, 'u-boot-qemu/usr/lib/u-boot/qemu-x86_64/u-boot.rom');
}

export function armParts(cache = bootCache()): ArmParts {
  need(cache, ['u-boot-qemu', 'linux-image-arm64', 'busybox-static-arm64']);
  const kdir = path.join(cache, 'linux-image-arm64');
  const version = fs.readdirSync(path.join(kdir, 'lib/modules'))[0];
  return {
    image: path.join(kdir, 'boot', `vmlinuz-${version}`),
    modulesDir: path.join(kdir, 'lib/modules', version),
    busybox: path.join(cache, 'busybox-static-arm64/bin/busybox'),
    dtbsDir: path.join(kdir, 'usr/lib', `linux-image-${version}`),
    uboot: path.join(cache, 'u-boot-qemu/usr/lib/u-boot/qemu_arm64/u-boot.bin'),
  };
}

/** U-Boot's x86-64 build (SeaBIOS's place: -bios) on `disk`, until `marker`, then a second more of its log. */
export function bootUbootX86(rom: string, disk: string, marker: string, timeoutMs = 60_000): Promise<BootRun> {
  const args = ['-machine', 'pc', '-accel', 'tcg', '-m', '512', '-nodefaults', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-bios', rom, '-drive', `file=${disk},format=raw,if=ide`];
  return watchQemu('qemu-system-x86_64', args, marker, timeoutMs, 1_000);
}

/** U-Boot on QEMU's arm64 virt machine (it passes its own device tree) on `disk` as a virtio-blk PCI disk, to the marker. */
export function bootUbootArm64(p: ArmParts, disk: string, timeoutMs = 120_000): Promise<BootRun> {
  const args = ['-machine', 'virt', '-cpu', 'cortex-a57', '-accel', 'tcg', '-m', '512', '-nodefaults', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-bios', p.uboot, '-drive', `file=${disk},format=raw,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0'];
  return watchQemu('qemu-system-aarch64', args, MARKER, timeoutMs);
}
