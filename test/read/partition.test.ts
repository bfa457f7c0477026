// The partition-table reader against tables other tools wrote (sgdisk, parted),
// checked field by field against `sfdisk --json`; tables diskwright writes read
// back as specified; a broken primary GPT falls back to the backup with a warning.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import type { BufferExtent } from '../../src/image/extent-map.ts';
import { encodeTable, type TableSpec } from '../../src/partition/table.ts';
import { GPT_TYPE } from '../../src/partition/types.ts';
import { findPartition, type PartitionTable, readPartitionTable } from '../../src/read/partition.ts';
import { bufferSource, fileSource, subSource } from '../../src/read/source.ts';
import { requireTools, run } from '../oracle/tools.ts';

let work: string;
before(() => {
  requireTools('sgdisk', 'parted', 'sfdisk');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-read-part-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const MiB = 2 ** 20;

function blank(name: string, size = 64 * MiB): string {
  const p = path.join(work, name);
  fs.writeFileSync(p, '');
  fs.truncateSync(p, size);
  return p;
}

interface SfdiskPart { node: string; start: number; size: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean }

function sfdisk(image: string, extra: string[] = []): { label: string; id: string; firstlba?: number; lastlba?: number; partitions: SfdiskPart[] } {
  return JSON.parse(run('sfdisk', ['--json', ...extra, image]).stdout.toString()).partitiontable;
}

function read(image: string): PartitionTable {
  const src = fileSource(image);
  try {
    const t = readPartitionTable(src);
    assert.ok(t, `${image}: no table found`);
    return t;
  } finally {
    src.close();
  }
}

/** Our table equals what sfdisk --json reports, field by field. */
function assertSameAsSfdisk(image: string, t: PartitionTable): void {
  const s = sfdisk(image);
  assert.equal(t.kind === 'mbr' ? 'dos' : 'gpt', s.label);
  if (s.label === 'gpt') {
    assert.equal(t.diskGuid, s.id);
    assert.equal(t.gpt!.firstUsableLba, s.firstlba);
    assert.equal(t.gpt!.lastUsableLba, s.lastlba);
  } else {
    assert.equal(`0x${t.diskSignature.toString(16).padStart(8, '0')}`, s.id);
  }
  const ours = t.partitions.map((p) => ({
    node: `${image}${p.index}`,
    start: p.startLba,
    size: p.sectors,
    type: p.type,
    ...(p.guid ? { uuid: p.guid } : {}),
    ...(p.name ? { name: p.name } : {}),
    ...(p.attributeNames.length ? { attrs: p.attributeNames.join(' ') } : {}),
    ...(t.kind === 'mbr' && p.bootable ? { bootable: true } : {}),
  }));
  assert.deepEqual(ours, s.partitions);
}

test('sgdisk GPT: names, attributes, a gap in the numbering; equal to sfdisk --json', () => {
  const img = blank('sgdisk.img');
  run('sgdisk', [
    '-n', '1:2048:+8M', '-t', '1:EF00', '-c', '1:EFI system', '-A', '1:set:0', '-A', '1:set:2', '-A', '1:set:60',
    '-n', '2:0:+16M', '-t', '2:8300', '-c', '2:root ü 🦀',
    '-n', '5:0:+4M', '-t', '5:8200',
    '-n', '7:0:0', '-t', '7:8304', '-c', '7:x86-64 root',
    img,
  ]);
  const t = read(img);
  assert.equal(t.kind, 'gpt');
  assert.deepEqual(t.warnings, []);
  assert.equal(t.gpt!.used, 'primary');
  assertSameAsSfdisk(img, t);
  assert.deepEqual(t.partitions.map((p) => p.typeName), ['EFI System', 'Linux filesystem', 'Linux swap', 'Linux root (x86-64)']);
  assert.equal(t.partitions[0].attributes, (1n << 60n) | 5n);
  assert.equal(t.partitions[1].start, 18432 * 512);
  assert.equal(findPartition(t, 'x86-64 root').index, 7);
  assert.throws(() => findPartition(t, 3), (e: DiskwrightError) => e.code === 'PARTITION_NOT_FOUND' && /^partition 3 not found; the image has partitions 1 \(EFI system\), 2 .*, 5, 7 \(x86-64 root\)$/.test(e.message));
});

test('parted GPT equals sfdisk --json', () => {
  const img = blank('parted-gpt.img');
  run('parted', ['-s', img, 'mklabel', 'gpt', 'mkpart', 'ESP', 'fat32', '1MiB', '33MiB', 'set', '1', 'esp', 'on',
    'mkpart', 'bios', '33MiB', '34MiB', 'set', '2', 'bios_grub', 'on', 'mkpart', 'root', 'ext4', '34MiB', '100%', 'set', '3', 'legacy_boot', 'on']);
  const t = read(img);
  assertSameAsSfdisk(img, t);
  assert.deepEqual(t.partitions.map((p) => p.typeName), ['EFI System', 'BIOS boot', 'Linux filesystem']);
  assert.deepEqual(t.partitions[2].attributeNames, ['LegacyBIOSBootable']);
});

test('parted MBR with extended and logical partitions and a boot flag equals sfdisk --json', () => {
  const img = blank('parted-mbr.img');
  run('parted', ['-s', img, 'mklabel', 'msdos', 'mkpart', 'primary', 'fat32', '1MiB', '9MiB', 'set', '1', 'boot', 'on',
    'mkpart', 'extended', '9MiB', '60MiB', 'mkpart', 'logical', 'ext4', '10MiB', '20MiB', 'mkpart', 'logical', 'linux-swap', '21MiB', '30MiB',
    'mkpart', 'logical', '31MiB', '59MiB']);
  const t = read(img);
  assert.equal(t.kind, 'mbr');
  assertSameAsSfdisk(img, t);
  assert.deepEqual(t.partitions.map((p) => [p.index, p.typeName, !!p.extended, !!p.logical]), [
    [1, 'W95 FAT32 (LBA)', false, false],
    [2, "W95 Ext'd (LBA)", true, false],
    [5, 'Linux', false, true],
    [6, 'Linux swap / Solaris', false, true],
    [7, 'Linux', false, true],
  ]);
  assert.throws(() => findPartition(t, 2), /partition 2 not found/, 'the extended container is not a volume');
});

test('sgdisk hybrid MBR: GPT partitions, and the MBR mirrors as sfdisk --label-nested dos shows them', () => {
  const img = blank('hybrid.img');
  run('sgdisk', ['-n', '1:2048:+8M', '-t', '1:EF00', '-n', '2:0:+16M', '-t', '2:8300', '-n', '3:0:0', img]);
  run('sgdisk', ['-h', '1:2', img]);
  const t = read(img);
  assert.equal(t.kind, 'hybrid');
  assertSameAsSfdisk(img, t);
  const nested = sfdisk(img, ['--label-nested', 'dos']);
  assert.deepEqual(
    t.mbr.records.map((r) => ({ start: r.startLba, size: r.sectors, type: r.type.toString(16), bootable: r.status === 0x80 })),
    nested.partitions.map((p) => ({ start: p.start, size: p.size, type: p.type, bootable: p.bootable ?? false })),
  );
  assert.deepEqual(t.partitions.map((p) => p.mbrType), [0xef, 0x83, undefined]);
});

test('broken primary GPT: the backup is read, with a one-line warning; both broken: IMAGE_CORRUPT', () => {
  const img = blank('good.img');
  run('sgdisk', ['-n', '1:2048:+8M', '-t', '1:EF00', '-c', '1:one', '-n', '2:0:0', '-c', '2:two', img]);
  const good = read(img);
  const bytes = fs.readFileSync(img);
  const variants: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['header CRC', (b) => { b[512 + 20] ^= 0xff; }, /^primary GPT header is invalid \(header CRC32 is 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\); using the backup at LBA 131071$/],
    ['signature', (b) => { b[512] = 0x58; }, /^primary GPT header is invalid \(no "EFI PART" signature\); using the backup/],
    ['entry array', (b) => { b[1024 + 56] ^= 0x01; }, /^primary GPT header is invalid \(entry array CRC32 is .*\); using the backup/],
  ];
  for (const [what, damage, warning] of variants) {
    const copy = Buffer.from(bytes);
    damage(copy);
    const t = readPartitionTable(bufferSource(copy))!;
    assert.equal(t.gpt!.used, 'backup', what);
    assert.equal(t.warnings.length, 1, what);
    assert.match(t.warnings[0], warning, what);
    assert.deepEqual(t.partitions, good.partitions, what);
    assert.equal(t.diskGuid, good.diskGuid);
  }
  // Backup broken, primary good: read the primary and say so.
  const tail = Buffer.from(bytes);
  tail[tail.length - 512 + 16] ^= 0xff;
  const t = readPartitionTable(bufferSource(tail))!;
  assert.equal(t.gpt!.used, 'primary');
  assert.match(t.warnings.join('\n'), /^backup GPT header at LBA 131071 is invalid \(header CRC32/);
  // Both broken.
  const both = Buffer.from(tail);
  both[512 + 20] ^= 0xff;
  assert.throws(() => readPartitionTable(bufferSource(both)), (e: DiskwrightError) =>
    e.code === 'IMAGE_CORRUPT' && !e.message.includes('\n') && /^GPT: both headers are invalid/.test(e.message));
  // Truncated: the backup is gone; the primary still reads, with a warning.
  const cut = readPartitionTable(subSource(bufferSource(bytes), 0, 40 * MiB))!;
  assert.equal(cut.gpt!.used, 'primary');
  assert.ok(cut.warnings.some((w) => /backup GPT header .* is invalid \(LBA 131071 lies past the end of the image\)/.test(w)), cut.warnings.join('\n'));
});

test('tables diskwright writes read back as specified (mbr, gpt, hybrid)', () => {
  const size = 64 * MiB;
  const specs: TableSpec[] = [
    { kind: 'mbr', diskSize: size, diskSignature: 0x12345678, partitions: [
      { name: 'boot', start: MiB, size: 16 * MiB, mbrType: 0x0c, bootable: true },
      { name: 'root', start: 17 * MiB, size: 40 * MiB },
    ] },
    { kind: 'gpt', diskSize: size, seed: 'read-test', partitions: [
      { name: 'ESP', start: MiB, size: 16 * MiB, typeGuid: GPT_TYPE.esp, legacyBiosBootable: true, required: true },
      { name: 'root ✓', start: 17 * MiB, size: 40 * MiB },
    ] },
    { kind: 'hybrid', diskSize: size, seed: 'read-test', hybridMbr: [0, 1], partitions: [
      { name: 'ESP', start: MiB, size: 16 * MiB, typeGuid: GPT_TYPE.esp },
      { name: 'root', start: 17 * MiB, size: 40 * MiB, bootable: true },
    ] },
  ];
  for (const spec of specs) {
    const disk = Buffer.alloc(size);
    for (const e of encodeTable(spec) as BufferExtent[]) e.buffer.copy(disk, e.offset);
    const t = readPartitionTable(bufferSource(disk))!;
    assert.equal(t.kind, spec.kind);
    assert.deepEqual(t.warnings, []);
    assert.deepEqual(t.partitions.map((p) => [p.index, p.start, p.size, p.bootable]), spec.partitions.map((p, i) => [i + 1, p.start, p.size, p.bootable ?? false]));
    if (spec.kind === 'mbr') assert.equal(t.diskSignature, 0x12345678);
    else {
      assert.deepEqual(t.partitions.map((p) => p.name), spec.partitions.map((p) => p.name));
      assert.match(t.diskGuid!, /^[0-9A-F]{8}-/);
    }
    if (spec.kind === 'gpt') assert.deepEqual(t.partitions[0].attributeNames, ['RequiredPartition', 'LegacyBIOSBootable']);
    if (spec.kind === 'hybrid') assert.deepEqual(t.partitions.map((p) => p.mbrType), [0xef, 0x83]);
  }
});

test('no table: a bare filesystem, zeros, random bytes, a tiny file', () => {
  const fat = blank('bare-fat.img', 8 * MiB);
  run('mkfs.fat', ['-C', fat + '.x', '8192']);
  assert.equal(readPartitionTable(fileSource(fat + '.x')), null, 'FAT boot sector is not an MBR');
  assert.equal(readPartitionTable(bufferSource(Buffer.alloc(MiB))), null);
  const junk = Buffer.alloc(4096);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
  junk.writeUInt16LE(0xaa55, 510);
  assert.equal(readPartitionTable(bufferSource(junk)), null, 'garbage with 0x55AA is not a table');
  assert.equal(readPartitionTable(bufferSource(Buffer.alloc(100))), null);
  assert.throws(() => findPartition(null, 1), (e: DiskwrightError) => e.code === 'PARTITION_NOT_FOUND' && e.message === 'partition 1: the image has no partition table');
});
