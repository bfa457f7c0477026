// Custom layouts (`partitions: [...]`) checked with the real consumers: the
// table through sfdisk --json and sgdisk -v, every filesystem through its
// checker and its contents through debugfs or mtools.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireRoot, requireTools, run } from '../oracle/tools.ts';
import { EPOCH, makeBuildSources } from '../build/fixture.ts';
import { buildConfig, checkExt4, checkFat, cutPartition, sfdiskJson, stageAsRoot } from './helpers.ts';

const M = 2 ** 20;
let work: string;

before(() => {
  requireRoot('custom layout tests (chown in the expected trees)');
  requireTools('sgdisk', 'sfdisk', 'e2fsck', 'debugfs', 'fsck.fat', 'mcopy');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-custom-'));
  makeBuildSources(work);
  fs.mkdirSync(path.join(work, 'xb'));
  fs.cpSync(path.join(work, 'xbootldr'), path.join(work, 'xb'), { recursive: true });
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

export const GPT_CONFIG = {
  partitionTableType: 'gpt',
  system: 'aarch64-linux',
  epoch: EPOCH,
  partitions: [
    { label: 'esp', type: 'esp', fs: 'vfat', size: '34M', fsLabel: 'ESP', volumeId: '12345678', contents: [{ source: 'esp/', target: '/' }], legacyBootable: true },
    { label: 'xbootldr', type: 'xbootldr', fs: 'vfat', fsLabel: 'BOOT', contents: [{ source: 'xbootldr/', target: '/' }], freeSpace: '1M' },
    { label: 'root', type: 'root', fs: 'ext4', root: 'rootfs', freeSpace: '2M', growFileSystem: true },
    { label: 'home', type: 'home', fs: 'ext4', root: 'extra/srv', uuid: '01234567-89AB-4CDE-8F01-23456789ABCD', fsUuid: '11111111-2222-4333-8444-555555555555' },
    { label: 'swap', type: 'swap', size: '4M', noAuto: true },
    { label: 'spare', size: '3M' },
    { label: 'data', type: 'srv', fs: 'ext4', grow: true, readOnly: true },
  ],
  diskSize: 128,
};

test('custom GPT: ESP, XBOOTLDR, root, /home, swap, an empty partition and a grown data partition', async () => {
  const b = buildConfig(work, 'gpt', GPT_CONFIG);
  const pt = sfdiskJson(b.image);
  assert.equal(pt.label, 'gpt');
  assert.equal(fs.statSync(b.image).size, 128 * M);
  const want = [
    ['esp', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'LegacyBIOSBootable'],
    ['xbootldr', 'BC13C2FF-59E6-4262-A352-B275FD6F7172', undefined],
    ['root', 'B921B045-1DF0-41C3-AF44-4C6F280D3FAE', 'GUID:59'],
    ['home', '933AC7E1-2EB4-4F13-B844-0E14E2AEF915', undefined],
    ['swap', '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F', 'GUID:63'],
    ['spare', '0FC63DAF-8483-4772-8E79-3D69D8477DE4', undefined],
    ['data', '3B8F8425-20E0-4F3B-907F-1A25A76F98E8', 'GUID:60'],
  ];
  assert.equal(pt.partitions.length, want.length);
  let prevEnd = 0;
  pt.partitions.forEach((p: { start: number; size: number; type: string; name: string; attrs?: string; uuid: string }, i: number) => {
    const [name, type, attrs] = want[i];
    const l = b.layout.partitions[i];
    assert.equal(p.name, name);
    assert.equal(p.type, type, `${name} type`);
    assert.equal(p.attrs, attrs, `${name} attrs`);
    assert.equal(p.start * 512, l.start, `${name} start matches layout.json`);
    assert.equal(p.size * 512, l.size, `${name} size matches layout.json`);
    assert.equal(p.uuid, l.guid);
    // Aligned to 1 MiB, in order, each right after the one before.
    assert.equal(l.start % M, 0);
    assert.equal(l.start, i ? prevEnd : M);
    prevEnd = l.start + l.size;
  });
  assert.equal(pt.partitions[0].size * 512, 34 * M);
  assert.equal(pt.partitions[3].uuid, '01234567-89AB-4CDE-8F01-23456789ABCD');
  assert.equal(pt.partitions[4].size * 512, 4 * M);
  assert.equal(pt.partitions[5].size * 512, 3 * M);
  // The grown partition ends at the last MiB boundary before the backup GPT.
  assert.equal(prevEnd, 127 * M);
  const v = run('sgdisk', ['-v', b.image], { allowFailure: true });
  assert.equal(v.status, 0, v.stdout.toString());
  assert.match(v.stdout.toString(), /No problems found/);

  checkFat(cutPartition(work, b.image, b.layout, 1), path.join(work, 'esp'), 'ESP', work);
  checkFat(cutPartition(work, b.image, b.layout, 2), path.join(work, 'xb'), 'BOOT', work);
  await checkExt4(cutPartition(work, b.image, b.layout, 3), stageAsRoot(path.join(work, 'rootfs'), path.join(work, 'want-root')));
  const home = cutPartition(work, b.image, b.layout, 4);
  await checkExt4(home, stageAsRoot(path.join(work, 'extra/srv'), path.join(work, 'want-home')));
  assert.match(run('dumpe2fs', ['-h', home]).stdout.toString(), /Filesystem UUID:\s+11111111-2222-4333-8444-555555555555/);
  const data = cutPartition(work, b.image, b.layout, 7);
  const empty = fs.mkdtempSync(path.join(work, 'empty-'));
  fs.chmodSync(empty, 0o755);
  fs.utimesSync(empty, EPOCH, EPOCH);
  await checkExt4(data, empty);
  // The empty partitions hold nothing: all zero.
  for (const n of [5, 6]) assert.ok(fs.readFileSync(cutPartition(work, b.image, b.layout, n)).every((x) => x === 0));
  assert.match(b.stderr, /swap "swap"  no filesystem/);
});

test('custom MBR: types by byte and alias, the bootable flag, an image copied in', async () => {
  // A prepared FAT image (from a first build) goes into the second as it is.
  const fat = buildConfig(work, 'fatimg', { partitions: [{ type: 'esp', fs: 'vfat', fsLabel: 'PREP', contents: [{ source: 'esp/', target: '/' }] }], epoch: EPOCH });
  const prepared = cutPartition(work, fat.image, fat.layout, 1);
  const b = buildConfig(work, 'mbr', {
    partitionTableType: 'mbr',
    diskSignature: 'deadbeef',
    epoch: EPOCH,
    partitions: [
      { type: '0x0c', fs: 'vfat', fsLabel: 'FW', size: '8M', contents: [{ source: 'esp/', target: '/' }] },
      { type: 'linux', fs: 'ext4', root: 'rootfs', bootable: true, freeSpace: '1M' },
      { type: 'esp', image: prepared },
      { type: 'swap', grow: true },
    ],
  });
  const pt = sfdiskJson(b.image);
  assert.equal(pt.label, 'dos');
  assert.equal(pt.id, '0xdeadbeef');
  assert.deepEqual(pt.partitions.map((p: { type: string }) => p.type), ['c', '83', 'ef', '82']);
  assert.deepEqual(pt.partitions.map((p: { bootable?: boolean }) => p.bootable ?? false), [false, true, false, false]);
  pt.partitions.forEach((p: { start: number; size: number }, i: number) => {
    assert.equal(p.start * 512, b.layout.partitions[i].start);
    assert.equal(p.size * 512, b.layout.partitions[i].size);
  });
  assert.equal(pt.partitions[3].start + pt.partitions[3].size, fs.statSync(b.image).size / 512);
  checkFat(cutPartition(work, b.image, b.layout, 1), path.join(work, 'esp'), 'FW', work);
  await checkExt4(cutPartition(work, b.image, b.layout, 2), stageAsRoot(path.join(work, 'rootfs'), path.join(work, 'want-root-mbr')));
  const copied = cutPartition(work, b.image, b.layout, 3);
  assert.ok(fs.readFileSync(copied).subarray(0, fs.statSync(prepared).size).equals(fs.readFileSync(prepared)));
  checkFat(copied, path.join(work, 'esp'), 'PREP', work);
});
