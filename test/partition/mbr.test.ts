// MBR encoding: CHS arithmetic, and byte-for-byte agreement with what sfdisk
// writes for the same table and what sgdisk writes as a protective MBR.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAt, run } from '../oracle/tools.ts';
import { chs, encodeMbr, MBR, MBR_PARTITION_RECORD, protectiveMbr } from '../../src/partition/mbr.ts';
import { encodeTable } from '../../src/partition/table.ts';
import { MBR_TYPE } from '../../src/partition/types.ts';

const M = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'diskwright-mbr-'));
after(() => rmSync(dir, { recursive: true, force: true }));


function blank(name: string, size: number): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, size);
  return p;
}

test('CHS as fdisk computes it with 255 heads and 63 sectors per track', () => {
  const hex = (lba: number) => Buffer.from(chs(lba)).toString('hex');
  assert.equal(hex(0), '000100'); // C0 H0 S1
  assert.equal(hex(1), '000200');
  assert.equal(hex(62), '003f00'); // last sector of the first track
  assert.equal(hex(63), '010100');
  assert.equal(hex(2048), '202100'); // 1 MiB: C0 H32 S33
  assert.equal(hex(16065), '000101'); // C1 H0 S1
  assert.equal(hex(300 * 16065), '00412c'); // C300: high bits 0b01 in the sector byte
  assert.equal(hex(1024 * 16065 - 1), 'feffff'); // C1023 H254 S63, the last addressable
  assert.equal(hex(1024 * 16065), 'feffff'); // past it: clamped like fdisk
  assert.equal(Buffer.from(chs(1024 * 16065, [0xff, 0xff, 0xff])).toString('hex'), 'ffffff');
});

test('encodeMbr lays out signature, entries, boot code and 0x55AA', () => {
  const code = Buffer.alloc(512, 0x90);
  const b = encodeMbr({ entries: [{ type: 0x83, startLba: 2048, sectors: 4096, bootable: true }], diskSignature: 0xcafef00d, bootCode: code });
  assert.equal(b.length, 512);
  assert.ok(b.subarray(0, 440).every((x) => x === 0x90), 'boot code fills 0..439');
  const m = MBR.decode(b, 0);
  assert.equal(m.UniqueMBRDiskSignature, 0xcafef00d);
  assert.equal(m.Unknown, 0);
  assert.equal(m.Signature, 0xaa55);
  assert.deepEqual([b[510], b[511]], [0x55, 0xaa]);
  const e = MBR_PARTITION_RECORD.decode(b, 446);
  assert.equal(e.BootIndicator, 0x80);
  assert.equal(e.OSType, 0x83);
  assert.equal(e.StartingLBA, 2048);
  assert.equal(e.SizeInLBA, 4096);
  assert.equal(e.StartingCHS.toString('hex'), '202100');
  assert.equal(e.EndingCHS.toString('hex'), Buffer.from(chs(2048 + 4096 - 1)).toString('hex'));
  assert.ok(b.subarray(462, 510).every((x) => x === 0), 'unused entries are zero');
});

test('MBR tables are byte-identical to what sfdisk writes', () => {
  const D = 300 * M;
  const cases = [
    {
      script: 'label: dos\nlabel-id: 0x12345678\nstart=2048, type=83\n',
      spec: { kind: 'mbr' as const, diskSize: D, diskSignature: 0x12345678, partitions: [{ name: 'primary', start: M, size: D - M }] },
    },
    {
      script: 'label: dos\nlabel-id: 0xdeadbeef\nstart=2048, size=522240, type=c, bootable\nstart=524288, type=83\n',
      spec: {
        kind: 'mbr' as const,
        diskSize: D,
        diskSignature: 0xdeadbeef,
        partitions: [
          { name: 'boot', start: M, size: 255 * M, mbrType: MBR_TYPE.fat32Lba, bootable: true },
          { name: 'primary', start: 256 * M, size: D - 256 * M },
        ],
      },
    },
  ];
  for (const { script, spec } of cases) {
    const img = blank('sfdisk.img', D);
    run('sfdisk', ['--quiet', img], { input: script });
    const [ours] = encodeTable(spec);
    assert.ok('buffer' in ours);
    assert.equal(readAt(img, 0, 512).toString('hex'), ours.buffer.toString('hex'));
  }
});

test('protective MBR is byte-identical to sgdisk -o (small, >8 GiB, >2 TiB disks)', () => {
  for (const size of [300 * M, 10 * 2 ** 30, 3 * 2 ** 40]) {
    const img = blank('sgdisk.img', size);
    run('sgdisk', ['-o', img]);
    const theirs = readAt(img, 0, 512);
    assert.equal(protectiveMbr(size / 512).toString('hex'), theirs.toString('hex'), `disk of ${size} bytes`);
    const e = MBR_PARTITION_RECORD.decode(theirs, 446);
    assert.equal(e.SizeInLBA, Math.min(size / 512 - 1, 0xffffffff));
  }
});
