// `diskwright inspect` against the real tools: images made by mkfs.ext4 -d
// (figures equal dumpe2fs -h), mkfs.fat plus mcopy (fsck.fat -n -v, blkid),
// tables by sgdisk and parted (sfdisk --json); and every layout and output
// format diskwright builds (layout.json, qemu-img info).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { InspectResult } from '../../src/api/inspect.ts';
import { inspectImage } from '../../src/api/inspect.ts';
import { makeSmallFixture } from '../oracle/fixture.ts';
import { mtool } from '../oracle/fat-tools.ts';
import { dumpe2fs, requireTools, run } from '../oracle/tools.ts';
import { asctime } from './helpers.ts';
import { info } from '../format/qemu.ts';
import { build, cli, config, makeSources } from './commands-fixture.ts';

const MiB = 2 ** 20;
let work: string;

before(() => {
  requireTools('mkfs.ext4', 'dumpe2fs', 'mkfs.fat', 'mcopy', 'fsck.fat', 'blkid', 'sgdisk', 'parted', 'sfdisk', 'qemu-img');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-inspect-'));
  makeSources(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** inspect's JSON, in-process (the CLI prints exactly this; one test below runs it). */
const inspectJson = (image: string): InspectResult => JSON.parse(JSON.stringify(inspectImage(image)));

function blank(name: string, size: number): string {
  const p = path.join(work, name);
  fs.writeFileSync(p, '');
  fs.truncateSync(p, size);
  return p;
}

test('inspect: mkfs.ext4 -d images (4 KiB and 1 KiB blocks, ext2): figures equal dumpe2fs -h', () => {
  const src = path.join(work, 'small');
  makeSmallFixture(src);
  const cases: Array<[string, string[]]> = [
    ['ext4', ['-t', 'ext4', '-b', '4096', '-L', 'inspected', '-U', '5b1a0c2e-3f4d-4e5f-8a9b-0c1d2e3f4a5b', '-E', 'hash_seed=11111111-2222-4333-8444-555566667777']],
    ['ext4-1k', ['-t', 'ext4', '-b', '1024', '-L', 'small-blocks']],
    ['ext2', ['-t', 'ext2', '-b', '1024', '-L', 'old']],
  ];
  for (const [name, args] of cases) {
    const img = path.join(work, `${name}.img`);
    run('mkfs.ext4', ['-q', '-F', ...args, '-d', src, img, '24M']);
    const r = inspectJson(img);
    const d = dumpe2fs(img);
    assert.equal(r.format, 'raw');
    assert.equal(r.table, null);
    assert.equal(r.filesystems.length, 1);
    const f = r.filesystems[0];
    const e = f.ext4!;
    const ours: Record<string, string> = {
      'Filesystem volume name': f.label === '' ? '<none>' : f.label,
      'Filesystem UUID': f.uuid,
      'Filesystem features': f.features.join(' '),
      'Block count': String(f.blocks),
      'Free blocks': String(f.freeBlocks),
      'Inode count': String(f.inodes),
      'Free inodes': String(f.freeInodes),
      'Block size': String(f.blockSize),
      'Reserved block count': String(e.reservedBlocks),
      'Blocks per group': String(e.blocksPerGroup),
      'Inodes per group': String(e.inodesPerGroup),
      'Inode size': String(e.inodeSize),
      'Directory Hash Seed': e.hashSeed,
      'Default directory hash': e.defaultHash,
      'Filesystem created': asctime(Date.parse(e.created!) / 1000),
      'Last write time': asctime(Date.parse(e.lastWrite!) / 1000),
      'Mount count': String(e.mountCount),
      'Filesystem revision #': `${e.revision} (dynamic)`,
    };
    if (e.journal) {
      ours['Journal inode'] = String(e.journal.inode);
      ours['Total journal blocks'] = String(e.journal.blocks);
    }
    const theirs: Record<string, string> = {};
    for (const k of Object.keys(ours)) theirs[k] = d[k] ?? '(absent)';
    assert.deepEqual(ours, theirs, name);
    assert.equal(f.type, name === 'ext2' ? 'ext2' : 'ext4');
    assert.equal(f.usedBlocks + f.freeBlocks, f.blocks);
    assert.equal(f.size, f.blocks * f.blockSize);
  }
  // Through the CLI: the JSON is the same, the text form carries the same figures.
  assert.deepEqual(JSON.parse(cli(['inspect', '--json', path.join(work, 'ext4.img')]).out), inspectJson(path.join(work, 'ext4.img')));
  const text = cli(['inspect', path.join(work, 'ext4.img')]).out;
  assert.match(text, /ext4 label "inspected" UUID 5b1a0c2e-3f4d-4e5f-8a9b-0c1d2e3f4a5b/);
  assert.match(text, /hash seed: 11111111-2222-4333-8444-555566667777/);
});

/** fsck.fat -n -v's figures, by what it prints. */
function fsckFatFigures(img: string): Record<string, number> {
  const out = run('fsck.fat', ['-n', '-v', img]).stdout.toString();
  const num = (re: RegExp) => {
    const m = re.exec(out);
    assert.ok(m, `fsck.fat output lacks ${re}:\n${out}`);
    return Number(m[1]);
  };
  const r: Record<string, number> = {
    bytesPerSector: num(/(\d+) bytes per logical sector/),
    clusterSize: num(/(\d+) bytes per cluster/),
    reservedSectors: num(/(\d+) reserved sectors?\b/),
    fatOffset: num(/First FAT starts at byte (\d+)/),
    fats: num(/(\d+) FATs, \d+ bit entries/),
    fatBits: num(/\d+ FATs, (\d+) bit entries/),
    sectorsPerFat: num(/bytes per FAT \(= (\d+) sectors\)/),
    dataOffset: num(/Data area starts at byte (\d+)/),
    clusters: num(/(\d+) data clusters/),
    totalSectors: num(/(\d+) sectors total/),
    hiddenSectors: num(/(\d+) hidden sectors/),
    usedClusters: num(/: \d+ files, (\d+)\/\d+ clusters/),
  };
  if (/Root directory starts at byte/.test(out)) {
    r.rootDirOffset = num(/Root directory starts at byte (\d+)/);
    r.rootEntries = num(/(\d+) root directory entries/);
  }
  return r;
}

test('inspect: mkfs.fat + mcopy FAT12, FAT16, FAT32: figures equal fsck.fat -n -v and blkid', () => {
  const files = path.join(work, 'fatfiles');
  fs.mkdirSync(path.join(files, 'Dir'), { recursive: true });
  fs.writeFileSync(path.join(files, 'Dir', 'A long name.txt'), 'x'.repeat(70_000));
  fs.writeFileSync(path.join(files, 'small.bin'), 'small');
  for (const [bits, size] of [[12, 4 * MiB], [16, 40 * MiB], [32, 80 * MiB]] as const) {
    const img = blank(`fat${bits}.img`, size);
    run('mkfs.fat', ['-F', String(bits), '-n', `VOL${bits}`, '-i', `1234abc${bits % 10}`, img]);
    mtool('mcopy', ['-s', '-i', img, path.join(files, 'Dir'), path.join(files, 'small.bin'), '::']);
    const r = inspectJson(img);
    assert.equal(r.filesystems.length, 1);
    const f = r.filesystems[0];
    const t = f.fat!;
    const want = fsckFatFigures(img);
    const got: Record<string, number> = {
      bytesPerSector: t.bytesPerSector,
      clusterSize: t.clusterSize,
      reservedSectors: t.reservedSectors,
      fatOffset: t.fatOffset,
      fats: t.fats,
      fatBits: t.fatType,
      sectorsPerFat: t.sectorsPerFat,
      dataOffset: t.dataOffset,
      clusters: f.blocks,
      totalSectors: t.totalSectors,
      hiddenSectors: t.hiddenSectors,
      usedClusters: f.usedBlocks,
    };
    if (want.rootDirOffset !== undefined) {
      got.rootDirOffset = t.rootDirOffset;
      got.rootEntries = t.rootEntries;
    }
    assert.deepEqual(got, want, `FAT${bits}`);
    const blkid = run('blkid', ['-p', '-o', 'export', img]).stdout.toString();
    assert.match(blkid, new RegExp(`^UUID=${f.uuid}$`, 'm'));
    assert.match(blkid, new RegExp(`^LABEL=${f.label}$`, 'm'));
    assert.match(blkid, new RegExp(`^VERSION=FAT${bits}$`, 'm'));
    assert.equal(f.type, `fat${bits}`);
    assert.equal(t.volumeId, `0x1234abc${bits % 10}`);
  }
});

interface SfdiskPart { node: string; start: number; size: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean }

/** inspect's table equals sfdisk --json's, field by field. */
function assertTableAsSfdisk(img: string): InspectResult {
  const s = JSON.parse(run('sfdisk', ['--json', img]).stdout.toString()).partitiontable as { label: string; id: string; firstlba?: number; lastlba?: number; partitions: SfdiskPart[] };
  const r = inspectJson(img);
  const t = r.table!;
  assert.equal(t.kind === 'mbr' ? 'dos' : 'gpt', s.label);
  assert.equal(t.kind === 'mbr' ? t.diskSignature : t.diskGuid, s.id);
  if (s.label === 'gpt') assert.deepEqual([t.firstUsableLba, t.lastUsableLba], [s.firstlba, s.lastlba]);
  assert.deepEqual(
    t.partitions.map((p) => ({
      node: `${img}${p.number}`, start: p.startLba, size: p.sectors, type: p.type,
      ...(p.guid ? { uuid: p.guid } : {}), ...(p.name ? { name: p.name } : {}),
      ...(p.attributeNames.length ? { attrs: p.attributeNames.join(' ') } : {}),
      ...(t.kind === 'mbr' && p.bootable ? { bootable: true } : {}),
    })),
    s.partitions,
  );
  for (const p of t.partitions) assert.equal(p.start, p.startLba * 512);
  return r;
}

test('inspect: tables by sgdisk (GPT, hybrid) and parted (GPT, MBR with logical partitions) equal sfdisk --json', () => {
  const gpt = blank('sgdisk.img', 64 * MiB);
  run('sgdisk', ['-n', '1:2048:+8M', '-t', '1:EF00', '-c', '1:EFI system', '-A', '1:set:0', '-A', '1:set:2', '-A', '1:set:60',
    '-n', '2:0:+16M', '-t', '2:8300', '-c', '2:root ü', '-n', '5:0:+4M', '-t', '5:8200', gpt]);
  const r = assertTableAsSfdisk(gpt);
  assert.equal(r.table!.partitions[0].attributes, '0x1000000000000005');
  assert.deepEqual(r.filesystems, []);
  const hybrid = blank('hybrid.img', 64 * MiB);
  run('sgdisk', ['-n', '1:2048:+8M', '-t', '1:EF00', '-n', '2:0:+16M', '-t', '2:8300', '-n', '3:0:0', hybrid]);
  run('sgdisk', ['-h', '1:2', hybrid]);
  assert.deepEqual(assertTableAsSfdisk(hybrid).table!.partitions.map((p) => p.mbrType), ['0xef', '0x83', undefined]);
  const pgpt = blank('parted-gpt.img', 64 * MiB);
  run('parted', ['-s', pgpt, 'mklabel', 'gpt', 'mkpart', 'ESP', 'fat32', '1MiB', '33MiB', 'set', '1', 'esp', 'on', 'mkpart', 'root', 'ext4', '34MiB', '100%', 'set', '2', 'legacy_boot', 'on']);
  assertTableAsSfdisk(pgpt);
  const mbr = blank('parted-mbr.img', 64 * MiB);
  run('parted', ['-s', mbr, 'mklabel', 'msdos', 'mkpart', 'primary', 'fat32', '1MiB', '9MiB', 'set', '1', 'boot', 'on',
    'mkpart', 'extended', '9MiB', '60MiB', 'mkpart', 'logical', 'ext4', '10MiB', '20MiB', 'mkpart', 'logical', '21MiB', '59MiB']);
  // A filesystem in a logical partition is found and described.
  run('mkfs.fat', ['-F', '16', '-n', 'LOGICAL', '--offset', String(10 * 2048), mbr, String(10 * 1024)]);
  const m = assertTableAsSfdisk(mbr);
  assert.deepEqual(m.table!.partitions.map((p) => [p.number, !!p.extended, !!p.logical, p.bootable]), [[1, false, false, true], [2, true, false, false], [5, false, true, false], [6, false, true, false]]);
  assert.deepEqual(m.filesystems.map((f) => [f.partition, f.type, f.label]), [[5, 'fat16', 'LOGICAL']]);
  assert.equal(inspectJson(`${mbr}:LOGICAL`).filesystems[0].partition, 5);
});

test('inspect: every layout diskwright builds reads back as layout.json says', () => {
  for (const type of ['legacy', 'legacy+boot', 'legacy+gpt', 'efi', 'efixbootldr', 'hybrid', 'none']) {
    const { image, layout } = build(work, type, config(type));
    const r = inspectImage(image);
    assert.deepEqual(r.warnings, [], type);
    assert.equal(r.format, 'raw');
    assert.equal(r.virtualSize, layout.size);
    assert.equal(r.table?.kind ?? 'none', layout.table, type);
    if (layout.diskGuid) assert.equal(r.table!.diskGuid, layout.diskGuid);
    const listed = layout.partitions.filter((p) => p.number !== null);
    if (r.table) {
      assert.deepEqual(
        r.table.partitions.map((p) => [p.number, p.start, p.size, p.guid, p.name ?? '', p.bootable]),
        listed.map((p) => [p.number, p.start, p.size, p.guid, layout.table === 'mbr' ? '' : p.name, p.bootable]),
        type,
      );
    }
    const withFs = layout.partitions.filter((p) => p.filesystem);
    assert.deepEqual(
      r.filesystems.map((f) => [f.partition, f.label, f.uuid.toLowerCase(), f.freeBlocks * f.blockSize, f.freeInodes ?? null]),
      withFs.map((p) => [p.number, p.filesystem!.label, p.filesystem!.uuid.toLowerCase(), p.filesystem!.freeBytes, p.filesystem!.freeInodes ?? null]),
      type,
    );
  }
});

test('inspect: every output format (qcow2, qcow2-compressed, vdi, vpc, vhd-fixed, zstd) describes the same disk; qemu-img info agrees', () => {
  const raw = inspectImage(build(work, 'fmt-raw', config('efi')).image);
  const formats: Array<[string, Record<string, unknown>, string, string | null]> = [
    ['qcow2', { format: 'qcow2' }, 'qcow2', 'qcow2'],
    ['qcow2-compressed', { format: 'qcow2-compressed' }, 'qcow2 (compressed clusters)', 'qcow2'],
    ['vdi', { format: 'vdi' }, 'VDI', 'vdi'],
    ['vpc', { format: 'vpc' }, 'dynamic VHD', 'vpc'],
    ['vhd-fixed', { format: 'vhd-fixed' }, 'fixed VHD', 'vpc'],
    ['zstd', { compress: 'zstd' }, 'raw, zstd-compressed', null],
  ];
  for (const [name, extra, description, qemuFormat] of formats) {
    const { image } = build(work, `fmt-${name}`, config('efi', extra));
    const r = inspectJson(image);
    assert.equal(r.description, description, name);
    assert.deepEqual({ ...r, path: '', format: '', description: '', fileSize: 0, allocatedSize: 0, dataSize: 0, compressedClusters: 0 }, { ...raw, path: '', format: '', description: '', fileSize: 0, allocatedSize: 0, dataSize: 0, compressedClusters: 0 }, name);
    const st = fs.statSync(image);
    assert.equal(r.fileSize, st.size);
    assert.equal(r.allocatedSize, st.blocks * 512);
    if (name === 'qcow2-compressed') assert.ok(r.compressedClusters! > 0);
    if (name === 'zstd') assert.equal(r.dataSize, null);
    else assert.ok(r.dataSize! > 0 && r.dataSize! <= r.virtualSize, `${name}: data ${r.dataSize}`);
    if (qemuFormat) {
      const q = info(image, qemuFormat) as { 'virtual-size': number; format: string; 'actual-size': number };
      assert.equal(q.format, qemuFormat, name);
      assert.equal(q['virtual-size'], r.virtualSize, name);
      assert.equal(q['actual-size'], r.allocatedSize, name);
    }
  }
});

test('inspect IMAGE:N and IMAGE:LABEL; a file whose name has a colon is the image', () => {
  const { image } = build(work, 'colon-src', config('efi'));
  assert.deepEqual(inspectJson(`${image}:2`).filesystems.map((f) => [f.partition, f.type]), [[2, 'ext4']]);
  assert.deepEqual(inspectJson(`${image}:ESP`).filesystems.map((f) => [f.partition, f.type]), [[1, 'fat16']]);
  assert.deepEqual(inspectJson(`${image}:nixos`).filesystems.map((f) => f.partition), [2]);
  const colon = path.join(work, 'disk:2');
  fs.copyFileSync(image, colon);
  assert.equal(inspectJson(colon).filesystems.length, 2, 'the whole file, not partition 2 of "disk"');
  assert.deepEqual(inspectJson(`${colon}:1`).filesystems.map((f) => f.partition), [1]);
});
