// `npm run example:boot`: a bootable `efi` disk with systemd-boot and a
// `legacy` (MBR) disk with GRUB for BIOS, built with no VM from a NixOS-shaped system made of Debian's kernel and busybox (the
// parts scripts/boot-parts.sh fetched), then the QEMU commands that boot them.
// The system is the boot tests' own (test/boot/parts.ts): its init prints a
// marker on the serial console, writes a file to the root and powers off.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeInitramfs, makeToplevel, parts } from '../test/boot/parts.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const out = path.join(ROOT, 'result-boot');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const p = parts();
const initrd = path.join(out, 'initrd.zst');
makeInitramfs(p, out, initrd);
const { toplevel } = makeToplevel(path.join(out, 'store'), {
  kernel: p.vmlinuz, initrd, busybox: p.busybox, systemdBootEfi: p.systemdBootEfi,
  kernelParams: 'root=LABEL=nixos console=ttyS0 panic=-1 loglevel=4', bootJson: true,
});
const build = (name: string, config: object, dir: string) => {
  fs.writeFileSync(path.join(out, name), JSON.stringify(config, null, 2) + '\n');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/diskwright.js'), 'build', path.join(out, name), '-o', dir], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
build('boot.json', { partitionTableType: 'efi', toplevel, storeDir: 'store', additionalSpace: '64M', timeout: 0 }, out);
// GRUB's modules are an input like the kernel: Debian's grub-pc-bin i386-pc directory.
const legacy = path.join(out, 'legacy');
build('legacy.json', { partitionTableType: 'legacy', toplevel, storeDir: 'store', additionalSpace: '64M', timeout: 0, grub: { modulesDir: p.grubModulesDir } }, legacy);
fs.copyFileSync(p.ovmfVars, path.join(out, 'OVMF_VARS_4M.fd'));
const rel = (f: string) => path.relative(process.cwd(), f) || '.';
console.log(`
Boot it (serial console here; the system prints DISKWRIGHT-BOOT-MARKER and powers off):
  qemu-system-x86_64 -machine q35 -m 512 -nodefaults -nographic -serial mon:stdio \\
    -drive if=pflash,format=raw,readonly=on,file=${rel(p.ovmfCode)} \\
    -drive if=pflash,format=raw,file=${rel(path.join(out, 'OVMF_VARS_4M.fd'))} \\
    -drive file=${rel(path.join(out, 'nixos.img'))},format=raw,if=virtio`);

console.log(`
The legacy disk (MBR, GRUB for BIOS) boots with QEMU's own SeaBIOS:
  qemu-system-x86_64 -machine q35 -m 512 -nodefaults -nographic -serial mon:stdio \\
    -drive file=${rel(path.join(legacy, 'nixos.img'))},format=raw,if=virtio`);
