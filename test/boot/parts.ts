// Boot test parts: Debian's kernel, busybox, systemd-boot and OVMF, fetched by
// .ci/run into DISKWRIGHT_BOOT_CACHE, made into a NixOS-shaped toplevel in a
// store directory of the test's own, and QEMU runs that watch the serial
// console for a marker. Shared by the systemd-boot, GRUB and extlinux tests.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeInitrd } from '../../src/archive/initrd.ts';
import { ROOT } from '../cli/run.ts';
import { cutPartition } from '../disk/helpers.ts';
import { e2fsck } from '../oracle/tools.ts';

/** Where .ci/run unpacked each Debian package (one directory per package); absent parts fail the test, they are never skipped. */
export function bootCache(): string {
  const dir = process.env.DISKWRIGHT_BOOT_CACHE ?? path.join(ROOT, '.cache/boot');
  for (const pkg of ['ovmf', 'linux-image-amd64', 'busybox-static', 'systemd-boot-efi', 'grub-pc-bin', 'grub-common']) {
    if (!fs.existsSync(path.join(dir, pkg, '.done'))) throw new Error(`boot part ${pkg} missing in ${dir}: run .ci/run (it fetches them with apt-get download)`);
  }
  return dir;
}

export interface Parts {
  vmlinuz: string;
  kernelVersion: string;
  modulesDir: string;
  busybox: string;
  systemdBootEfi: string;
  /** systemd's UKI stub, beside systemd-boot. */
  linuxStub: string;
  ovmfCode: string;
  ovmfVars: string;
  /** GRUB's i386-pc directory (grub.modulesDir). */
  grubModulesDir: string;
}

export function parts(cache = bootCache()): Parts {
  const kdir = path.join(cache, 'linux-image-amd64');
  const kernelVersion = fs.readdirSync(path.join(kdir, 'lib/modules'))[0];
  return {
    vmlinuz: path.join(kdir, 'boot', `vmlinuz-${kernelVersion}`),
    kernelVersion,
    modulesDir: path.join(kdir, 'lib/modules', kernelVersion),
    busybox: path.join(cache, 'busybox-static/bin/busybox'),
    systemdBootEfi: path.join(cache, 'systemd-boot-efi/usr/lib/systemd/boot/efi/systemd-bootx64.efi'),
    linuxStub: path.join(cache, 'systemd-boot-efi/usr/lib/systemd/boot/efi/linuxx64.efi.stub'),
    ovmfCode: path.join(cache, 'ovmf/usr/share/OVMF/OVMF_CODE_4M.fd'),
    ovmfVars: path.join(cache, 'ovmf/usr/share/OVMF/OVMF_VARS_4M.fd'),
    grubModulesDir: path.join(cache, 'grub-pc-bin/usr/lib/grub/i386-pc'),
  };
}

/** The .ko files of `names` and everything they depend on (modinfo `depends=`), dependencies first: insmod order without depmod. Built-in modules (modules.builtin) need no file. */
export function moduleOrder(modulesDir: string, names: string[]): string[] {
  const files = new Map<string, string>();
  const builtin = new Set(fs.readFileSync(path.join(modulesDir, 'modules.builtin'), 'utf8').split('\n').map((l) => path.basename(l, '.ko').replace(/-/g, '_')));
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) files.set(e.name.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(path.join(modulesDir, 'kernel'));
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || builtin.has(name)) return;
    seen.add(name);
    const file = files.get(name);
    if (!file) throw new Error(`module ${name} not in ${modulesDir}`);
    const m = /(?:^|\0)depends=([^\0]*)\0/.exec(fs.readFileSync(file).toString('latin1'));
    for (const dep of m?.[1].split(',').filter(Boolean) ?? []) visit(dep);
    order.push(file);
  };
  for (const n of names) visit(n);
  return order;
}

/** The modules the test initramfs loads: virtio disks and ext4 (crc32c is only ext4's soft dependency, so it is named). */
export const ROOT_MODULES = ['virtio_pci', 'virtio_blk', 'crc16', 'mbcache', 'jbd2', 'crc32c_generic', 'ext4'];

/**
 * An initramfs made with our own writer: busybox, the modules, and an /init
 * that mounts devtmpfs (DEVTMPFS_MOUNT is off in Debian's kernel), reopens
 * stdio on its console, loads the modules by path, finds `root=LABEL=` and
 * switch_roots into it, running the `init=` of the command line.
 */
export function makeInitramfs(p: Pick<Parts, 'busybox' | 'modulesDir'>, work: string, out: string): void {
  const src = path.join(work, 'initramfs-src');
  fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(src, 'lib/modules'), { recursive: true });
  fs.copyFileSync(p.busybox, path.join(src, 'bin/busybox'));
  fs.chmodSync(path.join(src, 'bin/busybox'), 0o755);
  const mods = moduleOrder(p.modulesDir, ROOT_MODULES).map((f) => {
    fs.copyFileSync(f, path.join(src, 'lib/modules', path.basename(f)));
    return path.basename(f);
  });
  const init = `#!/bin/busybox sh
B=/bin/busybox
$B mkdir -p /dev /proc /sys /newroot
$B mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
$B mount -t proc proc /proc
for m in ${mods.join(' ')}; do $B insmod /lib/modules/$m || echo "initramfs: insmod $m failed"; done
label=; init=
for a in $($B cat /proc/cmdline); do
  case $a in root=LABEL=*) label=\${a#root=LABEL=} ;; init=*) init=\${a#init=} ;; esac
done
i=0
until dev=$($B findfs LABEL=$label 2>/dev/null); do
  i=$((i + 1)); [ $i -gt 300 ] && { echo "initramfs: no filesystem labelled $label"; $B poweroff -f; }
  $B sleep 0.05
done
$B mount -t ext4 -o rw $dev /newroot || { echo "initramfs: cannot mount $dev"; $B poweroff -f; }
$B umount /proc
exec $B switch_root /newroot $init
`;
  fs.writeFileSync(path.join(src, 'init'), init, { mode: 0o755 });
  writeInitrd({ sources: [src], output: out, compress: 'zstd', epoch: 1 });
}

/** A store path name with a hash part made from `name` (nix32's alphabet), as stable as the name. */
export function storeName(name: string): string {
  const alphabet = '0123456789abcdfghijklmnpqrsvwxyz';
  const d = createHash('sha256').update(name).digest();
  let h = '';
  for (let i = 0; i < 32; i++) h += alphabet[d[i] & 31];
  return `${h}-${name}`;
}

export const MARKER = 'DISKWRIGHT-BOOT-MARKER';

export interface Toplevel {
  /** The toplevel's path as the store names it (/nix/store/...). */
  toplevel: string;
  /** The store directory on this machine that holds it and its closure. */
  storeDir: string;
}

export interface ToplevelFiles {
  /** The kernel and initrd files to put in their store paths. */
  kernel: string;
  initrd: string;
  busybox: string;
  /** systemd-boot's EFI binary, put at <systemd>/lib/systemd/boot/efi/; undefined leaves the systemd link out. */
  systemdBootEfi?: string;
  /** systemd's linuxx64.efi.stub, put beside systemd-boot (with systemdBootEfi). */
  linuxStub?: string;
  kernelParams: string;
  /** Write boot.json (bootspec v1) as NixOS does. */
  bootJson?: boolean;
  /** Leave a file out, for the bad-input tests. */
  omit?: 'kernel' | 'initrd';
  /** The kernel's file name in its store path: bzImage (x86), Image (arm64). */
  kernelFile?: string;
  /** A directory of device trees: copied to its own store path that the toplevel's `dtbs` links to. */
  dtbs?: string;
  /** bootspec's `system`. */
  system?: string;
}

/**
 * A NixOS-shaped system in `storeDir`: kernel, initrd and systemd in their own
 * store paths, the toplevel linking to them by their /nix/store names, and an
 * `init` that prints the marker after writing and reading back a file on the
 * root, then remounts it read-only (so the filesystem is clean) and powers off.
 */
export function makeToplevel(storeDir: string, f: ToplevelFiles): Toplevel {
  const put = (name: string, rel: string, from: string, mode = 0o444): string => {
    const dest = path.join(storeDir, name, rel);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(from, dest);
    fs.chmodSync(dest, mode);
    return `/nix/store/${name}/${rel}`;
  };
  const linux = storeName('linux-6.1');
  const kernel = put(linux, f.kernelFile ?? 'bzImage', f.kernel);
  const initrd = put(storeName('initrd-linux-6.1'), 'initrd', f.initrd);
  const bbName = storeName('busybox-static');
  const bb = put(bbName, 'bin/busybox', f.busybox, 0o555);
  const systemd = f.systemdBootEfi && put(storeName('systemd-252'), 'lib/systemd/boot/efi/systemd-bootx64.efi', f.systemdBootEfi);
  if (systemd && f.linuxStub) put(storeName('systemd-252'), 'lib/systemd/boot/efi/linuxx64.efi.stub', f.linuxStub);
  const topName = storeName('nixos-system-diskwright-test-24.11');
  const top = path.join(storeDir, topName);
  const topPath = `/nix/store/${topName}`;
  fs.mkdirSync(top, { recursive: true });
  if (f.omit !== 'kernel') fs.symlinkSync(kernel, path.join(top, 'kernel'));
  if (f.omit !== 'initrd') fs.symlinkSync(initrd, path.join(top, 'initrd'));
  if (systemd) fs.symlinkSync(systemd.slice(0, systemd.indexOf('/lib/systemd/')), path.join(top, 'systemd'));
  if (f.dtbs) {
    const dtbsName = storeName('linux-6.1-dtbs');
    fs.cpSync(f.dtbs, path.join(storeDir, dtbsName), { recursive: true });
    fs.symlinkSync(`/nix/store/${dtbsName}`, path.join(top, 'dtbs'));
  }
  fs.writeFileSync(path.join(top, 'kernel-params'), f.kernelParams);
  fs.writeFileSync(path.join(top, 'nixos-version'), '24.11.20241204.diskwright');
  fs.writeFileSync(path.join(top, 'init'), `#!${bb} sh
B=${bb}
echo written-at-boot > /diskwright-boot-test
$B sync
got=$($B cat /diskwright-boot-test)
echo "${MARKER} $got"
$B mkdir -p /proc
$B mount -t proc proc /proc
$B mount -o remount,ro /
$B poweroff -f
`, { mode: 0o555 });
  if (f.bootJson) {
    const spec = {
      'org.nixos.bootspec.v1': {
        init: `${topPath}/init`, initrd, kernel, kernelParams: f.kernelParams.split(' ').filter(Boolean),
        label: 'NixOS 24.11.20241204.diskwright (Linux 6.1)', system: f.system ?? 'x86_64-linux', toplevel: topPath,
      },
      'org.nixos.specialisation.v1': {},
    };
    fs.writeFileSync(path.join(top, 'boot.json'), JSON.stringify(spec, null, 2));
  }
  return { toplevel: topPath, storeDir };
}

export interface BootRun {
  found: boolean;
  seconds: number;
  log: string;
}

export interface OvmfOptions {
  /** The pflash variable store (written to: give a copy); default a fresh copy of the firmware's template. */
  vars?: string;
  /** The disk's format for QEMU; default raw. */
  format?: 'raw' | 'qcow2';
}

/**
 * Boots `disk` (written to: boot a copy) with OVMF under TCG and waits
 * for `marker` on the serial console; QEMU is killed after the marker (or
 * when it powers off) or after `timeoutMs`.
 */
export function bootOvmf(p: Parts, disk: string, work: string, marker = MARKER, timeoutMs = 90_000, o: OvmfOptions = {}): Promise<BootRun> {
  let vars = o.vars;
  if (vars === undefined) {
    vars = path.join(work, 'OVMF_VARS_4M.fd');
    fs.copyFileSync(p.ovmfVars, vars);
  }
  return watchQemu('qemu-system-x86_64', x86Args([
    '-drive', `if=pflash,format=raw,readonly=on,file=${p.ovmfCode}`,
    '-drive', `if=pflash,format=raw,file=${vars}`,
  ], disk, o.format), marker, timeoutMs);
}

/** The same with QEMU's own SeaBIOS, which runs the boot code in LBA 0 (GRUB's boot.img). */
export function bootSeabios(disk: string, marker = MARKER, timeoutMs = 90_000): Promise<BootRun> {
  return watchQemu('qemu-system-x86_64', x86Args([], disk), marker, timeoutMs);
}

/** The x86-64 boots' QEMU: q35 under TCG, the firmware's options, `disk` as a virtio drive. */
function x86Args(firmware: string[], disk: string, format = 'raw'): string[] {
  return [
    // -nodefaults: no network card (its option ROM and PXE attempts) and no CD-ROM for the firmware to try first.
    '-machine', 'q35', '-accel', 'tcg', '-m', '512', '-nodefaults', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    ...firmware,
    '-drive', `file=${disk},format=${format},if=virtio`,
  ];
}

/**
 * Runs QEMU with its serial console on stdout until `marker` shows (then
 * `afterMarkMs` more, for the system to power off) or `timeoutMs` passes.
 */
export function watchQemu(binary: string, args: string[], marker: string, timeoutMs: number, afterMarkMs = 10_000): Promise<BootRun> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    const q = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let found = false;
    let markedAt = 0;
    const timer = setTimeout(() => q.kill('SIGKILL'), timeoutMs);
    const take = (b: Buffer) => {
      log += b.toString('latin1');
      if (!found && log.includes(marker)) {
        found = true;
        markedAt = Number(process.hrtime.bigint() - t0) / 1e9;
        setTimeout(() => q.kill('SIGKILL'), afterMarkMs).unref();
      }
    };
    q.stdout.on('data', take);
    q.stderr.on('data', take);
    q.on('close', () => {
      clearTimeout(timer);
      resolve({ found, seconds: found ? markedAt : Number(process.hrtime.bigint() - t0) / 1e9, log });
    });
  });
}

/** The boot tests' system: an initramfs from makeInitramfs and a toplevel with boot.json in `work`/store; its store path. */
export function bootTestToplevel(p: Parts, work: string): string {
  const initrd = path.join(work, 'initrd.zst');
  makeInitramfs(p, work, initrd);
  return makeToplevel(path.join(work, 'store'), {
    kernel: p.vmlinuz, initrd, busybox: p.busybox, systemdBootEfi: p.systemdBootEfi,
    kernelParams: 'root=LABEL=nixos console=ttyS0 panic=-1 loglevel=4', bootJson: true,
  }).toplevel;
}

/**
 * After a boot of `disk` (a copy of the image built into `out`): the marker
 * was printed, and the root the system wrote to passes e2fsck -fn and holds
 * the file the init wrote.
 */
export function assertBootedClean(run: BootRun, work: string, disk: string, out: string): void {
  assert.ok(run.found, `no ${MARKER} on the serial console:\n${run.log.slice(-4000)}`);
  assert.match(run.log, new RegExp(`${MARKER} written-at-boot`));
  const layout = JSON.parse(fs.readFileSync(path.join(out, 'layout.json'), 'utf8'));
  const rootN = layout.partitions.findIndex((x: { role: string }) => x.role === 'root') + 1;
  const fsImg = cutPartition(work, disk, layout, rootN);
  const fsck = e2fsck(fsImg);
  assert.ok(fsck.clean, fsck.output);
  const cat = spawnSync('debugfs', ['-R', 'cat /diskwright-boot-test', fsImg], { encoding: 'utf8' });
  assert.equal(cat.stdout, 'written-at-boot\n');
  fs.rmSync(fsImg);
}
