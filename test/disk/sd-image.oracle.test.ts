// The sd-image preset against sd-image.nix's layout, read by the real tools:
// sfdisk (disk id, offsets, sizes, types, bootable), fsck.fat, minfo and
// mlabel (volume id, label) for the firmware partition, e2fsck and dumpe2fs
// for the root, zstd -t for the compressed image; a U-Boot-style blob at
// 8 KiB reads back as its source.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireRoot, requireTools, run } from '../oracle/tools.ts';
import { mtool } from '../oracle/fat-tools.ts';
import { pseudoRandom } from '../oracle/fixture.ts';
import { EPOCH, makeBuildSources } from '../build/fixture.ts';
import { buildConfig, checkExt4, checkFat, cutPartition, sfdiskJson, stageAsRoot } from './helpers.ts';

const M = 2 ** 20;
let work: string;

before(() => {
  requireRoot('sd-image tests (chown in the expected trees)');
  requireTools('sfdisk', 'e2fsck', 'debugfs', 'dumpe2fs', 'fsck.fat', 'mcopy', 'minfo', 'zstd');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-sd-'));
  makeBuildSources(work);
  fs.writeFileSync(path.join(work, 'u-boot-spl.bin'), pseudoRandom('spl', 100_000));
  // rootContents put the whole rootfs at /: what the root should hold, plus the store's registration.
  stageAsRoot(path.join(work, 'rootfs'), path.join(work, 'want-root'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** The raw disk of a build: the image itself, or decompressed after zstd -t. */
function rawDisk(image: string): string {
  if (!image.endsWith('.zst')) return image;
  run('zstd', ['-t', '-q', image]);
  const out = image.replace(/\.zst$/, '');
  run('zstd', ['-d', '-q', '-f', image, '-o', out]);
  return out;
}

function firmware(part: string): { serial: string; label: string } {
  const info = mtool('minfo', ['-i', part, '::']).stdout.toString();
  return { serial: /serial number: (\w+)/.exec(info)![1], label: /disk label="(.*?) *"/.exec(info)![1] };
}

const content = { firmwareContents: [{ source: 'esp/', target: '/' }], rootContents: [{ source: 'rootfs/', target: '/' }], epoch: EPOCH };

test('sd-image with its defaults: MBR 0x2178694e, FAT firmware at 8 MiB for 30 MiB, bootable ext4 NIXOS_SD after it, .img.zst', async () => {
  const b = buildConfig(work, 'sd-default', { builder: 'sd-image', ...content, postBuildBlobs: [{ source: 'u-boot-spl.bin', offset: 8192 }] });
  assert.equal(path.basename(b.image), 'nixos-sd-image.img.zst');
  assert.equal(fs.readFileSync(path.join(b.out, 'nix-support/hydra-build-products'), 'utf8'), `file sd-image ${b.image}\n`);
  assert.deepEqual(b.layout.blobs, [{ key: 'postBuildBlobs[0]', source: 'u-boot-spl.bin', offset: 8192, size: 100_000 }]);
  const disk = rawDisk(b.image);
  const pt = sfdiskJson(disk);
  assert.equal(pt.label, 'dos');
  assert.equal(pt.id, '0x2178694e');
  const [fw, root] = pt.partitions;
  assert.deepEqual([fw.start, fw.size, fw.type, fw.bootable ?? false], [8 * M / 512, 30 * M / 512, 'b', false]);
  assert.deepEqual([root.start, root.type, root.bootable], [38 * M / 512, '83', true]);
  assert.equal((root.start + root.size) * 512, fs.statSync(disk).size, 'the root runs to the end of the disk');
  const fwPart = cutPartition(work, disk, b.layout, 1);
  checkFat(fwPart, path.join(work, 'esp'), 'FIRMWARE', work);
  assert.deepEqual(firmware(fwPart), { serial: '2178694E', label: 'FIRMWARE' });
  const rootPart = cutPartition(work, disk, b.layout, 2);
  const d = run('dumpe2fs', ['-h', rootPart]).stdout.toString();
  assert.match(d, /Filesystem volume name:\s+NIXOS_SD\n/);
  assert.match(d, /Filesystem UUID:\s+44444444-4444-4444-8888-888888888888\n/);
  await checkExt4(rootPart, path.join(work, 'want-root'));
  // Exactly sized: the content plus additionalSpace (16 MiB), less than one more MiB of slack.
  const free = b.layout.partitions[1].filesystem!.freeBytes;
  assert.ok(free >= 16 * M && free < 18 * M, `free ${free}`);
  // The blob at 8 KiB, before the firmware partition.
  const spl = fs.readFileSync(path.join(work, 'u-boot-spl.bin'));
  const fd = fs.openSync(disk, 'r');
  const got = Buffer.alloc(spl.length);
  fs.readSync(fd, got, 0, got.length, 8192);
  fs.closeSync(fd);
  assert.ok(got.equals(spl));
  assert.match(b.stderr, /blob {2}at byte 8192/);
});

test('sd-image with other options: offset, size, name, id, label, UUID, base name, uncompressed, no registration', async () => {
  const b = buildConfig(work, 'sd-options', {
    builder: 'sd-image',
    ...content,
    firmwarePartitionOffset: 4,
    firmwareSize: 64,
    firmwarePartitionName: 'BOOTFW',
    firmwarePartitionID: '0x1a2b3c4d',
    rootVolumeLabel: 'ROOTFS',
    rootPartitionUUID: '0badc0de-1234-4567-89ab-cdef01234567',
    imageBaseName: 'board',
    compressImage: false,
    expandOnBoot: false,
    additionalSpace: '4M',
  });
  assert.equal(path.basename(b.image), 'board.img');
  const pt = sfdiskJson(b.image);
  assert.equal(pt.id, '0x1a2b3c4d');
  const [fw, root] = pt.partitions;
  assert.deepEqual([fw.start, fw.size, fw.type], [4 * M / 512, 64 * M / 512, 'b']);
  assert.deepEqual([root.start, root.type, root.bootable], [68 * M / 512, '83', true]);
  const fwPart = cutPartition(work, b.image, b.layout, 1);
  checkFat(fwPart, path.join(work, 'esp'), 'BOOTFW', work);
  assert.deepEqual(firmware(fwPart), { serial: '1A2B3C4D', label: 'BOOTFW' });
  const rootPart = cutPartition(work, b.image, b.layout, 2);
  const d = run('dumpe2fs', ['-h', rootPart]).stdout.toString();
  assert.match(d, /Filesystem volume name:\s+ROOTFS\n/);
  assert.match(d, /Filesystem UUID:\s+0badc0de-1234-4567-89ab-cdef01234567\n/);
  await checkExt4(rootPart, path.join(work, 'want-root'));
});
