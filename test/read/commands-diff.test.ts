// `diskwright diff`: content, not containers (a raw build and its qcow2, VDI,
// VHD and .zst are identical, as qemu-img compare says); two builds that
// differ in one file's mtime report that file and field only; two builds that
// differ in seed report the GUIDs and UUIDs and no file; a flipped byte in
// unallocated space is reported by its offset (cmp -l finds the same);
// errors exit 2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diffImages, type DiffResult } from '../../src/api/diff.ts';
import { openFilesystem, selectVolume } from '../../src/read/index.ts';
import { fileSource } from '../../src/read/source.ts';
import { requireTools } from '../oracle/tools.ts';
import { build, type Built, cli, config, makeSources, oneLine, throwsOneLine } from './commands-fixture.ts';
import { renderDiff } from '../../src/cli/diff.ts';

const MiB = 2 ** 20;
let work: string;
let base: Built;

before(() => {
  requireTools('qemu-img', 'cmp');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-diff-'));
  makeSources(work);
  base = build(work, 'base', config('efi'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** The JSON diff prints, in-process (one test runs the CLI's --json and compares). */
const json = (a: string, b: string, status: number): DiffResult => {
  const r = JSON.parse(JSON.stringify(diffImages(a, b))) as DiffResult;
  assert.equal(r.identical ? 0 : 1, status, 'identical');
  return r;
};

/** cmp -l: the 0-based offsets where two files differ. */
function cmpOffsets(a: string, b: string): number[] {
  const r = spawnSync('cmp', ['-l', a, b], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map((l) => Number(l.trim().split(/ +/)[0]) - 1);
}

test('diff: the same disk as raw, qcow2, qcow2-compressed, VDI, VHD and .zst is identical (exit 0), as qemu-img compare says', () => {
  for (const [name, extra, qfmt] of [
    ['qcow2', { format: 'qcow2' }, 'qcow2'],
    ['qcow2c', { format: 'qcow2-compressed' }, 'qcow2'],
    ['vdi', { format: 'vdi' }, 'vdi'],
    ['vhd', { format: 'vpc' }, 'vpc'],
    ['zst', { compress: 'zstd' }, null],
  ] as const) {
    const other = build(work, `same-${name}`, config('efi', extra)).image;
    if (qfmt) assert.equal(spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', qfmt, base.image, other]).status, 0, name);
    const r = diffImages(base.image, other);
    assert.equal(r.identical, true, name);
    assert.equal(r.differingBytes, 0);
  }
  const q = path.join(work, 'out-same-qcow2/nixos.qcow2');
  assert.match(cli(['diff', base.image, q]).out, /^identical: .*nixos\.img \(raw, 54 MiB\) and .*nixos\.qcow2 \(qcow2, 54 MiB\) hold the same 56623104 bytes\n$/);
});

test('diff: two builds that differ only in one file\'s mtime report exactly that file and field', () => {
  const file = path.join(work, 'extra/srv/index.html');
  const st = fs.statSync(file);
  fs.utimesSync(file, st.atime, new Date(st.mtimeMs + 100_000));
  let other: string;
  try {
    other = build(work, 'mtime', config('efi')).image;
  } finally {
    fs.utimesSync(file, st.atime, st.mtime);
  }
  assert.equal(spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', base.image, other]).status, 1);
  const r = json(base.image, other, 1);
  assert.deepEqual(r.disk, []);
  assert.deepEqual(r.partitions, []);
  assert.equal(r.volumes.length, 1);
  assert.equal(r.volumes[0].partition, 2);
  assert.deepEqual(r.volumes[0].fields, []);
  assert.deepEqual(r.volumes[0].files.map((f) => [f.path, f.change, f.fields.map((c) => c.field)]), [['/srv/data/index.html', 'changed', ['mtime']]]);
  const m = r.volumes[0].files[0].fields[0];
  assert.deepEqual([m.a, m.b], ['2022-04-15T05:20:00Z', '2022-04-15T05:21:40Z']);
  // Every differing byte is the file's inode (its times and checksum): nothing left unexplained.
  assert.deepEqual(r.ranges, []);
  assert.equal(r.explainedBytes, r.differingBytes);
  assert.deepEqual(JSON.parse(cli(['diff', '--json', base.image, other], 1).out), r);
  assert.match(renderDiff(r).join('\n'), /^partition 2 \(ext4\):\n {2}\/srv\/data\/index\.html: mtime a=2022-04-15T05:20:00Z b=2022-04-15T05:21:40Z \(atime, ctime, crtime the same\)$/m);
});

test('diff: two builds that differ only in seed report the GUIDs and UUIDs and no file', () => {
  const a = build(work, 'seed-a', config('efi', { deterministic: false, seed: 'one' })).image;
  const b = build(work, 'seed-b', config('efi', { deterministic: false, seed: 'two' })).image;
  const r = json(a, b, 1);
  assert.deepEqual(r.disk.map((c) => c.field), ['disk GUID']);
  assert.deepEqual(r.partitions.map((p) => [p.partition, p.fields.map((c) => c.field)]), [[1, ['GUID']], [2, ['GUID']]]);
  const byPart = new Map(r.volumes.map((v) => [v.partition, v]));
  assert.deepEqual(byPart.get(1)!.fields.map((c) => c.field), ['uuid', 'volumeId']);
  assert.deepEqual(byPart.get(2)!.fields.map((c) => c.field), ['uuid', 'hashSeed', 'journal uuid']);
  assert.deepEqual(r.volumes.flatMap((v) => v.files), [], 'no file differs');
  // The values are the ones inspect reads on each side.
  for (const [img, side] of [[a, 'a'], [b, 'b']] as const) {
    const src = fileSource(img);
    try {
      const ext4 = openFilesystem(selectVolume(src, 2).source).summary();
      assert.equal(byPart.get(2)!.fields[0][side], ext4.uuid);
    } finally {
      src.close();
    }
  }
  // The remaining bytes are metadata, named by structure: GPT headers and entries, superblock, checksums in inodes and directories.
  const owners = new Set(r.ranges.map((x) => x.owner));
  for (const o of ['GPT header (primary)', 'GPT entries (primary)', 'GPT header (backup)', 'GPT entries (backup)', 'boot sector', 'superblock']) assert.ok(owners.has(o), `${o} in ${[...owners].join(', ')}`);
  assert.ok(!owners.has('unallocated'), 'nothing in free space');
  assert.ok(r.ranges.every((x) => x.owner !== 'file'), 'no file data differs');
});

test('diff: one flipped byte in unallocated space (between partitions, and in a free ext4 block) is reported by offset', () => {
  const flipped = path.join(work, 'flipped.img');
  fs.copyFileSync(base.image, flipped);
  const gap = 4 * MiB + 7; // before the ESP at 8 MiB
  const src = fileSource(base.image);
  let free: number;
  try {
    const vol = selectVolume(src, 2);
    const r = openFilesystem(vol.source);
    // The last byte of the filesystem's last free stretch.
    let end = r.summary().size;
    const alloc = r.allocation();
    if (alloc.length && alloc[alloc.length - 1].offset + alloc[alloc.length - 1].length === end) end = alloc[alloc.length - 1].offset;
    free = vol.partition!.start + end - 100;
  } finally {
    src.close();
  }
  const fd = fs.openSync(flipped, 'r+');
  for (const at of [gap, free]) {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, at);
  }
  fs.closeSync(fd);
  assert.deepEqual(cmpOffsets(base.image, flipped), [gap, free]);
  const r = json(base.image, flipped, 1);
  assert.equal(r.differingBytes, 2);
  assert.deepEqual(r.disk, []);
  assert.deepEqual(r.volumes, []);
  assert.deepEqual(r.ranges, [
    { offset: gap, length: 1, area: 'disk', owner: 'unallocated' },
    { offset: free, length: 1, area: 'partition 2', owner: 'unallocated' },
  ]);
  const text = renderDiff(r).join('\n');
  assert.match(text, new RegExp(`^ {2}disk, unallocated: 1 byte at 0x${gap.toString(16)}$`, 'm'));
  assert.match(text, new RegExp(`^ {2}partition 2, unallocated: 1 byte at 0x${free.toString(16)}$`, 'm'));
  // A byte of a file's data: the file and its first differing offset.
  const src2 = fileSource(base.image);
  let at: number;
  try {
    const vol = selectVolume(src2, 2);
    const blob = openFilesystem(vol.source).allocation().find((x) => x.path === '/usr/share/blob')!;
    at = vol.partition!.start + blob.offset + 12_345;
  } finally {
    src2.close();
  }
  const fd2 = fs.openSync(flipped, 'r+');
  const old = Buffer.alloc(1);
  fs.readSync(fd2, old, 0, 1, at);
  fs.writeSync(fd2, Buffer.from([old[0] ^ 0xff]), 0, 1, at);
  fs.closeSync(fd2);
  const r2 = json(base.image, flipped, 1);
  const files = r2.volumes.flatMap((v) => v.files);
  assert.deepEqual(files.map((f) => [f.path, f.fields.map((c) => [c.field, c.offset])]), [['/usr/share/blob', [['content', 12_345]]]]);
  assert.equal(files[0].fields[0].a!.slice(0, 2), old.toString('hex'));
  assert.equal(files[0].fields[0].b!.slice(0, 2), Buffer.from([old[0] ^ 0xff]).toString('hex'));
  // The file's data bytes are explained by the file; the other flips are still reported.
  assert.equal(r2.explainedBytes, 1);
  assert.equal(r2.ranges.length, 2);
});

test('diff: bad input exits 2 with one line; a corrupted primary GPT is read from the backup with a warning', () => {
  oneLine(['diff', base.image, path.join(work, 'rootfs/etc/passwd')], 2, /^diskwright: .*passwd is a text file, not a disk image; give a raw, qcow2, VDI, VHD or \.zst image$/);
  oneLine(['diff', path.join(work, 'nope.img'), base.image], 2, /^diskwright: input .*nope\.img does not exist; check the path$/);
  const cut = path.join(work, 'cut.qcow2');
  fs.writeFileSync(cut, fs.readFileSync(path.join(work, 'out-same-qcow2/nixos.qcow2')).subarray(0, 300_000));
  throwsOneLine(() => diffImages(base.image, cut), 'SOURCE_UNREADABLE', /cut\.qcow2 is truncated/);
  // A raw disk cut inside its root filesystem: the byte diff still works; the unreadable side is named, with a warning.
  const cutRaw = path.join(work, 'cut.img');
  fs.copyFileSync(base.image, cutRaw);
  fs.truncateSync(cutRaw, 45 * MiB);
  const c = diffImages(cutRaw, base.image);
  assert.deepEqual(c.disk.map((f) => [f.field, f.a, f.b]), [['disk size', String(45 * MiB), String(54 * MiB)]]);
  assert.deepEqual(c.volumes.map((v) => [v.partition, v.filesystem]), [[2, 'unreadable -> ext4']]);
  assert.ok(c.warnings.some((w) => /cut\.img partition 2: ext4: the filesystem spans \d+ bytes .* is it truncated\?$/.test(w)), c.warnings.join('\n'));
  // Primary GPT header broken: the backup is used; diff and inspect say so on stderr.
  const broken = path.join(work, 'broken-gpt.img');
  fs.copyFileSync(base.image, broken);
  const fd = fs.openSync(broken, 'r+');
  fs.writeSync(fd, Buffer.from('XXXX'), 0, 4, 512 + 24);
  fs.closeSync(fd);
  const r = cli(['diff', base.image, broken], 1);
  assert.match(r.stderr, /^diskwright: warning: .*broken-gpt\.img: primary GPT header is invalid \(header CRC32 is 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}; MyLBA is \d+, expected 1\); using the backup at LBA 110591$/m);
  assert.match(r.out, /^ {2}disk, GPT header \(primary\): 4 bytes in 1 range: 0x218\+4$/m);
  const i = cli(['inspect', `${broken}`]);
  assert.match(i.stderr, /^diskwright: warning: primary GPT header is invalid .*; using the backup at LBA 110591\n$/);
  assert.match(i.out, /partition table: GPT, .*\(read from the backup GPT\)/);
  assert.match(cli(['ls', `${broken}:ESP`]).out, /^EFI\nloader\n$/);
});
