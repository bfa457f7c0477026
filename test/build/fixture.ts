// A small system tree, contents sources and boot files for build tests, plus
// the tree a make-disk-image build of them should hold, staged with cp, chmod
// and chown the way its VM does (as root).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { pseudoRandom } from '../oracle/fixture.ts';

export const EPOCH = 1_700_000_000;

function put(file: string, data: string | Buffer, mode = 0o644, mtime = 1_650_000_000) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  fs.chmodSync(file, mode);
  fs.utimesSync(file, mtime, mtime);
}

/** Sources under `dir`: rootfs/, extra/ (contents), esp/ and xbootldr/. */
export function makeBuildSources(dir: string): void {
  put(`${dir}/rootfs/etc/passwd`, 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100::/home/alice:/bin/sh\nbob:x:1001:10::/home/bob:/bin/sh\n');
  put(`${dir}/rootfs/etc/group`, 'root:x:0:\nwheel:x:10:bob\nusers:x:100:alice\n');
  put(`${dir}/rootfs/etc/hostname`, 'example\n');
  put(`${dir}/rootfs/usr/bin/hello`, '#!/bin/sh\necho hello\n', 0o755);
  put(`${dir}/rootfs/usr/share/blob`, pseudoRandom('blob', 300_000));
  fs.symlinkSync('usr/bin', `${dir}/rootfs/bin`);
  put(`${dir}/extra/motd`, 'Welcome.\n', 0o600);
  put(`${dir}/extra/srv/index.html`, '<h1>hi</h1>\n');
  put(`${dir}/extra/srv/deep/er/file`, pseudoRandom('srv', 70_000), 0o640);
  put(`${dir}/extra/glob/one.txt`, 'one\n');
  put(`${dir}/extra/glob/two.txt`, 'two\n');
  put(`${dir}/extra/glob/skip.bin`, 'no\n');
  put(`${dir}/esp/EFI/BOOT/BOOTX64.EFI`, pseudoRandom('efi', 150_000));
  put(`${dir}/esp/loader/loader.conf`, 'timeout 3\ndefault nixos.conf\n');
  put(`${dir}/esp/loader/entries/NixOS Generation 1 (Ünïcødé).conf`, 'title NixOS\nlinux /nixos/kernel\n');
  put(`${dir}/xbootldr/nixos/kernel`, pseudoRandom('kernel', 1_200_000));
  put(`${dir}/xbootldr/nixos/initrd`, pseudoRandom('initrd', 400_000));
  for (const d of ['rootfs', 'rootfs/etc', 'rootfs/usr', 'rootfs/usr/bin', 'rootfs/usr/share']) fs.utimesSync(`${dir}/${d}`, 1_600_000_000, 1_600_000_000);
  fs.utimesSync(`${dir}/extra/srv`, 1_600_000_001, 1_600_000_001);
}

/** The contents list every build test uses: modes, owners by name and by number, a glob. */
export const CONTENTS = [
  { source: 'extra/motd', target: '/etc/motd', mode: '0640', user: 'alice', group: 'users' },
  { source: 'extra/srv', target: '/srv/data', user: 'bob', group: 'wheel' },
  { source: 'extra/glob/*.txt', target: '/opt/txt' },
  { source: 'extra/motd', target: '/root/motd', user: '0', group: 0 },
];

/** What the image's root filesystem should hold, staged on disk (needs root for chown). */
export function stageExpectedRoot(dir: string, out: string): void {
  const sh = (cmd: string) => execFileSync('/bin/sh', ['-euc', cmd], { cwd: dir });
  sh(`cp -a rootfs ${out} && chown -R -h 0:0 ${out}`);
  sh(`mkdir -p ${out}/srv ${out}/opt/txt ${out}/root && chmod 0755 ${out}/srv ${out}/opt ${out}/opt/txt ${out}/root`);
  sh(`cp -a extra/motd ${out}/etc/motd && chmod 0640 ${out}/etc/motd && chown 1000:100 ${out}/etc/motd`);
  sh(`cp -a extra/srv ${out}/srv/data && chown -R 1001:10 ${out}/srv/data`);
  sh(`cp -a extra/glob/one.txt extra/glob/two.txt ${out}/opt/txt/ && chown -R 0:0 ${out}/opt`);
  sh(`cp -a extra/motd ${out}/root/motd && chown 0:0 ${out}/root/motd`);
  // Directories made for targets get the epoch; existing ones keep their times.
  sh(`touch -h -d @${EPOCH} ${out}/srv ${out}/opt ${out}/opt/txt ${out}/root && touch -h -d @1600000000 ${out} ${out}/etc`);
}

/** Cuts [start, start+size) of `image` into `out`, keeping holes. */
export function cut(image: string, start: number, size: number, out: string): void {
  execFileSync('dd', [`if=${image}`, `of=${out}`, 'bs=1M', `skip=${start}`, `count=${size}`, 'iflag=skip_bytes,count_bytes', 'conv=sparse', 'status=none']);
}
