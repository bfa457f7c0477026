// `diskwright extract`, `ls` and `cat` through the CLI: extracting an
// mkfs.ext4 -d image reproduces the source tree (the ext4 writer tests'
// snapshot comparison: modes, owners, ns times, hard links, xattrs and ACLs,
// devices, FIFOs, sockets) with sparse files keeping their holes; a FAT image
// made by mkfs.fat + mcopy extracts to its source files; ls -l matches GNU ls
// on the extracted tree; cat streams files out of a qcow2's partitions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeFeatureFixture } from '../oracle/fixture.ts';
import { mtool } from '../oracle/fat-tools.ts';
import { diffSnapshots, snapshotTree, type Snapshot } from '../oracle/snapshot.ts';
import { requireRoot, requireTools, run } from '../oracle/tools.ts';
import { makeFatFixture, NAMES } from '../fs/fat/fixture.ts';
import { openFilesystem } from '../../src/read/index.ts';
import { fileSource } from '../../src/read/source.ts';
import { snapshotReader } from './helpers.ts';
import { build, cli, config, makeSources, oneLine, throwsOneLine } from './commands-fixture.ts';
import { extractImage } from '../../src/api/extract.ts';
import { openVolume, withInput } from '../../src/api/volume.ts';

let work: string;
let ext4Src: string;
let ext4Img: string;
let qcow2: string;

before(() => {
  requireRoot('the feature fixture (devices, owners) and extract as root');
  requireTools('mkfs.ext4', 'mkfs.fat', 'mcopy', 'ls', 'setpriv');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-files-'));
  fs.chmodSync(work, 0o755); // the non-root run reads the image
  ext4Src = path.join(work, 'src');
  makeFeatureFixture(ext4Src);
  // mke2fs 1.47.0 -d refuses 4095-byte symlinks; the 6 GiB sparse file costs time, not coverage.
  fs.rmSync(path.join(ext4Src, 'links/slow-4095'));
  fs.rmSync(path.join(ext4Src, 'sparse/big-6g'));
  ext4Img = path.join(work, 'mke2fs.img');
  run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-I', '256', '-L', 'extract', '-d', ext4Src, ext4Img, '256M']);
  fs.chmodSync(ext4Img, 0o644);
  makeSources(work);
  qcow2 = build(work, 'qcow2', config('efi', { format: 'qcow2' })).image;
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** mke2fs -d keeps whole seconds only, in the 32-bit i_mtime: the source's mtimes as the image holds them. */
function asMke2fsStores(s: Snapshot): Snapshot {
  const out: Snapshot = new Map();
  for (const [k, e] of s) {
    const sec = e.mtimeNs >= 0n ? e.mtimeNs / 1_000_000_000n : -((-e.mtimeNs + 999_999_999n) / 1_000_000_000n);
    out.set(k, { ...e, mtimeNs: BigInt.asIntN(32, sec) * 1_000_000_000n });
  }
  return out;
}

test('extract (as root) of an mkfs.ext4 -d image reproduces the source tree: modes, owners, times, hard links, xattrs, devices; holes stay holes', () => {
  const out = path.join(work, 'ext4-out');
  const r = cli(['extract', ext4Img, out]);
  assert.match(r.stderr, /^extracted \d+ entries \(\d+ files, [\d.]+ MiB of data\) to /);
  assert.doesNotMatch(r.stderr, /warning/);
  // atime comes back too (to the ns), not only mtime: look before anything reads the files.
  const at = fs.lstatSync(path.join(out, 'times/nanoseconds'), { bigint: true }).atimeNs;
  const img = fileSource(ext4Img);
  const e = openFilesystem(img).lookup('/times/nanoseconds');
  img.close();
  assert.equal(at, BigInt(e.atime.sec) * 1_000_000_000n + BigInt(e.atime.nsec));
  const got = snapshotTree(out);
  // The image's own tree, to the nanosecond (the reader is checked against debugfs in ext4.test.ts) ...
  const src = fileSource(ext4Img);
  try {
    assert.deepEqual(diffSnapshots(snapshotReader(openFilesystem(src)), got, { labels: ['image', 'extracted'] }), []);
  } finally {
    src.close();
  }
  // ... and the source tree, with mtimes as mke2fs stores them (the root's is mkfs time).
  const want = asMke2fsStores(snapshotTree(ext4Src));
  assert.deepEqual(diffSnapshots(want, got, { labels: ['source', 'extracted'], ignore: (k, f) => k === '/' && f === 'mtime' }), []);
  for (const feature of ['hard links (3 names, 3 dirs)', 'character device', 'block device', 'FIFO', 'unix socket', 'POSIX default ACL on a directory', 'xattr: security.capability (v2)']) {
    const k = { 'hard links (3 names, 3 dirs)': '/hard/third', 'character device': '/special/chr-4095-1048575', 'block device': '/special/blk-259-65541', FIFO: '/special/fifo', 'unix socket': '/special/socket', 'POSIX default ACL on a directory': '/xattrs/acl-dir', 'xattr: security.capability (v2)': '/xattrs/cap' }[feature]!;
    assert.ok(got.has(k), `${feature}: ${k}`);
  }
  assert.equal(got.get('/hard/third')!.links!.length, 3);
  // Sparse files keep their holes: blocks only for the data written.
  const blocks = (rel: string) => fs.statSync(path.join(out, rel)).blocks * 512;
  assert.equal(blocks('sparse/all-hole'), 0);
  assert.equal(fs.statSync(path.join(out, 'sparse/all-hole')).size, 2 ** 30);
  assert.ok(blocks('sparse/holes') <= 64 * 1024, `sparse/holes: ${blocks('sparse/holes')} bytes allocated`);
  assert.ok(blocks('sparse/last-byte') <= 8192);
});

test('extract PATH: a subtree into DIR, one file into DIR/NAME; DIR must be new or empty', () => {
  const sub = path.join(work, 'sub-out');
  extractImage(ext4Img, '/hard', sub);
  const got = snapshotTree(sub);
  assert.deepEqual([...got.keys()].sort(), ['/', '/a', '/a/orig', '/b', '/b/second', '/empty-1', '/empty-2', '/fifo', '/fifo-link', '/third']);
  assert.deepEqual(got.get('/third')!.links, ['/a/orig', '/b/second', '/third']);
  const one = path.join(work, 'one-out');
  extractImage(ext4Img, '/files/mib3', one);
  assert.ok(fs.readFileSync(path.join(one, 'mib3')).equals(fs.readFileSync(path.join(ext4Src, 'files/mib3'))));
  throwsOneLine(() => extractImage(ext4Img, '/hard', sub), 'OUTPUT_WRITE', /sub-out is not empty; give a new or empty directory$/);
  throwsOneLine(() => extractImage(ext4Img, '/nope', path.join(work, 'nope-out')), 'PATH_NOT_FOUND', /mke2fs\.img: \/nope: no such file or directory$/);
  assert.ok(!fs.existsSync(path.join(work, 'nope-out')), 'nothing created on error');
});

test('extract as an unprivileged user: the tree without owners, devices and trusted/security xattrs, one warning each', () => {
  const parent = path.join(work, 'user');
  fs.mkdirSync(parent, { mode: 0o777 });
  fs.chmodSync(parent, 0o777);
  const out = path.join(parent, 'out');
  const r = cli(['extract', '-q', ext4Img, out], 0, { asUser: 65534 });
  const warnings = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(warnings.every((l) => l.startsWith('diskwright: warning: ')), r.stderr);
  assert.equal(new Set(warnings).size, warnings.length, 'each warning once');
  assert.equal(warnings.filter((l) => /owners not set/.test(l)).length, 1);
  assert.equal(warnings.filter((l) => /device nodes not created/.test(l)).length, 1);
  assert.ok(warnings.some((l) => /trusted\.\* xattrs/.test(l)), r.stderr);
  const devices = new Set(['/special/chr-1-3', '/special/chr-0-0', '/special/chr-300-70000', '/special/chr-4095-1048575', '/special/blk-8-1', '/special/blk-259-65541', '/special/chr-255-255', '/special/chr-256-0', '/xattrs/dev']);
  const diffs = diffSnapshots(asMke2fsStores(snapshotTree(ext4Src)), snapshotTree(out), {
    labels: ['source', 'extracted'],
    ignore: (k, f) => f === 'uid' || f === 'gid' || (k === '/' && f === 'mtime') || (devices.has(k) && f === 'presence') || /^xattr:(trusted|security)\./.test(f),
  });
  assert.deepEqual(diffs, []);
});

test('extract of a FAT image made by mkfs.fat + mcopy equals the source files', () => {
  const src = path.join(work, 'fat-src');
  makeFatFixture(src);
  // mtools 4.0.32 mangles names outside the BMP and stops at a name that looks like one of its ~N aliases: leave those out.
  fs.rmSync(path.join(src, NAMES.astral));
  fs.rmSync(path.join(src, 'Sub/LONGFI~1.TXT'));
  const img = path.join(work, 'fat.img');
  run('mkfs.fat', ['-C', '-F', '32', '-n', 'FATX', img, String(64 * 1024)]);
  mtool('mcopy', ['-s', '-m', '-i', img, ...fs.readdirSync(src).map((n) => path.join(src, n)), '::']);
  mtool('mattrib', ['-i', img, '+r', '::locked.txt']);
  const out = path.join(work, 'fat-out');
  extractImage(img, '/', out);
  const tree = (root: string) => {
    const m = new Map<string, string>();
    const go = (abs: string, rel: string) => {
      for (const d of fs.readdirSync(abs, { withFileTypes: true })) {
        const a = path.join(abs, d.name);
        if (d.isDirectory()) {
          m.set(`${rel}/${d.name}`, 'dir');
          go(a, `${rel}/${d.name}`);
        } else m.set(`${rel}/${d.name}`, fs.readFileSync(a).toString('base64'));
      }
    };
    go(root, '');
    return [...m].sort((x, y) => (x[0] < y[0] ? -1 : 1));
  };
  assert.deepEqual(tree(out), tree(src));
  // FAT keeps mtimes to 2 s; mcopy -m wrote the source's; the read-only attribute (mattrib +r) comes back as mode 0444.
  const readme = fs.statSync(path.join(out, NAMES.upper83));
  assert.equal(Math.abs(readme.mtimeMs - fs.statSync(path.join(src, NAMES.upper83)).mtimeMs) < 2000, true);
  assert.equal(fs.statSync(path.join(out, 'locked.txt')).mode & 0o777, 0o444);
});

/** GNU ls -ln of a directory, as token lists (name last, with -> target). */
function gnuLs(dir: string): string[][] {
  const r = spawnSync('ls', ['-ln', '--time-style=+%Y-%m-%dT%H:%M:%SZ', dir], { env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l && !l.startsWith('total ')).map((l) => l.split(/ +/));
}

test('ls and cat through the CLI on a qcow2: IMAGE:2, IMAGE:ESP, IMAGE:LABEL; ls -l matches GNU ls on the extracted tree', () => {
  assert.deepEqual(cli(['ls', `${qcow2}:2`]).out.split('\n').filter(Boolean), ['bin', 'etc', 'lost+found', 'opt', 'root', 'srv', 'usr']);
  assert.deepEqual(cli(['ls', `${qcow2}:nixos`, '/opt/txt']).out, 'one.txt\ntwo.txt\n');
  // -l against GNU ls -ln of the same tree extracted (times to the second: the source's are whole seconds).
  const out = path.join(work, 'qcow2-root');
  extractImage(`${qcow2}:2`, '/', out);
  for (const dir of ['/', '/srv/data']) {
    // Directory sizes are the image's (ext4 i_size), not the host's; GNU ls shows whole seconds here.
    const norm = (t: string[]) => t.map((c, i) => (i === 4 && t[0][0] === 'd' ? '-' : i === 5 ? c.replace(/\.\d+Z$/, 'Z') : c));
    const ours = cli(['ls', '-l', `${qcow2}:2`, dir]).out.split('\n').filter(Boolean).map((l) => norm(l.split(/ +/)));
    const theirs = gnuLs(path.join(out, dir)).map(norm);
    assert.deepEqual(ours, theirs, dir);
  }
  // -R: every path below, relative.
  const esp = cli(['ls', '-R', `${qcow2}:ESP`]).out.split('\n').filter(Boolean);
  assert.deepEqual(esp, ['EFI', 'EFI/BOOT', 'EFI/BOOT/BOOTX64.EFI', 'loader', 'loader/entries', 'loader/entries/NixOS Generation 1 (Ünïcødé).conf', 'loader/loader.conf']);
  // A single file.
  assert.match(cli(['ls', '-l', `${qcow2}:2`, '/etc/motd']).out, /^-rw-r----- 1 1000 100 9 2022-04-15T05:20:00Z \/etc\/motd\n$/);
  // cat: bytes equal the sources, through partitions of a qcow2, symlinks followed.
  assert.ok(cli(['cat', `${qcow2}:2`, '/usr/share/blob']).stdout.equals(fs.readFileSync(path.join(work, 'rootfs/usr/share/blob'))));
  assert.ok(cli(['cat', `${qcow2}:ESP`, '/EFI/BOOT/BOOTX64.EFI']).stdout.equals(fs.readFileSync(path.join(work, 'esp/EFI/BOOT/BOOTX64.EFI'))));
  assert.ok(cli(['cat', `${qcow2}:1`, '/efi/boot/bootx64.efi']).stdout.equals(fs.readFileSync(path.join(work, 'esp/EFI/BOOT/BOOTX64.EFI'))), 'FAT names match case-insensitively');
  assert.equal(cli(['cat', `${qcow2}:2`, '/bin/hello']).out, '#!/bin/sh\necho hello\n');
});

test('cat streams: a 12 MiB file through a pipe that closes early is no error', () => {
  const r = spawnSync('/bin/sh', ['-c', `"${process.execPath}" bin/diskwright.js cat "${ext4Img}" /files/mib12 | head -c 100 | wc -c`], { cwd: path.resolve(import.meta.dirname, '../..'), encoding: 'utf8' });
  assert.equal(r.stdout.trim(), '100');
  assert.equal(r.stderr, '');
  const full = cli(['cat', ext4Img, '/sparse/holes']).stdout;
  assert.ok(full.equals(fs.readFileSync(path.join(ext4Src, 'sparse/holes'))), 'holes read as zeros');
});

test('ls, cat, extract: bad input is one line and a non-zero exit', () => {
  // Through the CLI: the status and the one line ...
  oneLine(['ls', path.join(work, 'rootfs/etc/passwd')], 1, /^diskwright: .*passwd is a text file, not a disk image; give a raw, qcow2, VDI, VHD or \.zst image$/);
  oneLine(['cat', `${qcow2}:2`, '/etc'], 1, /^diskwright: .*\/etc is a directory, not a file; use ls to look inside$/);
  const cutRaw = path.join(work, 'cut.img');
  fs.copyFileSync(ext4Img, cutRaw);
  fs.truncateSync(cutRaw, 100 * 2 ** 20);
  oneLine(['ls', cutRaw], 1, /^diskwright: .*cut\.img: ext4: the filesystem spans 268435456 bytes .* but the image holds only 104857600; is it truncated\?$/);
  // ... and the rest in-process (the CLI prints the message as it is).
  throwsOneLine(() => openVolume(`${qcow2}:9`), 'PARTITION_NOT_FOUND', /nixos\.qcow2: partition 9 not found; the image has partitions 1 \(ESP\), 2 \(primary\)$/);
  throwsOneLine(() => openVolume(qcow2), 'PARTITION_NOT_FOUND', /filesystems in partitions 1, 2; name one as IMAGE:N$/);
  throwsOneLine(() => openVolume(`${ext4Img}:1`), 'PARTITION_NOT_FOUND', /mke2fs\.img: partition 1: the image has no partition table$/);
  throwsOneLine(() => openVolume(path.join(work, 'missing.img')), 'SOURCE_MISSING', /^input .*missing\.img does not exist; check the path$/);
  const vol = openVolume(`${qcow2}:2`);
  try {
    throwsOneLine(() => withInput(vol.what, () => vol.fs.lookup('/no/such')), 'PATH_NOT_FOUND', /partition 2: \/no\/such: no such file or directory$/);
    throwsOneLine(() => withInput(vol.what, () => vol.fs.lookup('/etc/motd/x')), 'NOT_A_DIRECTORY', /\/etc\/motd is not a directory/);
  } finally {
    vol.close();
  }
  const cutQ = path.join(work, 'cut.qcow2');
  fs.writeFileSync(cutQ, fs.readFileSync(qcow2).subarray(0, 200_000));
  throwsOneLine(() => openVolume(`${cutQ}:2`).fs.walk().next(), 'SOURCE_UNREADABLE', /cut\.qcow2 is truncated/);
});
