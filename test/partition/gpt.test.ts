// GPT encoding against sgdisk: the same partitions, GUIDs and names given to
// sgdisk on a blank file must produce the same bytes as encodeTable.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { readAt, run } from '../oracle/tools.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { composeDisk } from '../../src/image/compose.ts';
import type { BufferExtent } from '../../src/image/extent-map.ts';
import { GPT_ENTRY, GPT_HEADER } from '../../src/partition/gpt.ts';
import { bytesToGuid, MAKE_DISK_IMAGE_DISK_GUID, MAKE_DISK_IMAGE_PART1_GUID } from '../../src/partition/guid.ts';
import { encodeTable, GPT_FOOTER_BYTES, GPT_HEADER_BYTES, type TableSpec } from '../../src/partition/table.ts';
import { GPT_TYPE } from '../../src/partition/types.ts';

const M = 2 ** 20;
const D = 300 * M;
const S = D / 512;
const ROOT_GUID = 'F222513B-DED1-49FA-B591-20CE86A2FE7F'; // make-disk-image's default rootGPUID
const dir = mkdtempSync(join(tmpdir(), 'diskwright-gpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));


// The efi layout (bootSize 256M), the ESP flagged legacy-BIOS-bootable so the attribute field is exercised.
const efi: TableSpec = {
  kind: 'gpt',
  diskSize: D,
  diskGuid: MAKE_DISK_IMAGE_DISK_GUID,
  partitions: [
    { name: 'ESP', start: 8 * M, size: 248 * M, typeGuid: GPT_TYPE.esp, guid: MAKE_DISK_IMAGE_PART1_GUID, legacyBiosBootable: true },
    { name: 'primary', start: 256 * M, size: D - 256 * M - GPT_FOOTER_BYTES, typeGuid: GPT_TYPE.linuxData, guid: ROOT_GUID },
  ],
};

function sgdiskImage(): string {
  const img = join(dir, 'sgdisk.img');
  writeFileSync(img, '');
  truncateSync(img, D);
  run('sgdisk', ['-o', img]);
  run('sgdisk', [
    '-n', `1:16384:524287`, '-t', '1:EF00', '-c', '1:ESP', '-u', `1:${MAKE_DISK_IMAGE_PART1_GUID}`, '-A', '1:set:2',
    '-n', `2:524288:${S - 34}`, '-t', '2:8300', '-c', '2:primary', '-u', `2:${ROOT_GUID}`,
    // The 35-character string make-disk-image passes; sgdisk turns it into MAKE_DISK_IMAGE_DISK_GUID.
    '--disk-guid=97FD5997-D90B-4AA3-8D16-C1723AEA73C',
    img,
  ]);
  return img;
}

test('efi layout: MBR, headers and entry arrays are byte-identical to sgdisk', () => {
  const img = sgdiskImage();
  const [head, tail] = encodeTable(efi) as BufferExtent[];
  assert.equal(head.offset, 0);
  assert.equal(tail.offset, D - GPT_FOOTER_BYTES);
  const theirHead = readAt(img, 0, GPT_HEADER_BYTES);
  const theirTail = readAt(img, D - GPT_FOOTER_BYTES, GPT_FOOTER_BYTES);
  for (const [what, off] of [['protective MBR', 0], ['primary header', 512], ['primary entries', 1024]] as const) {
    const end = what === 'primary entries' ? GPT_HEADER_BYTES : off + 512;
    assert.equal(head.buffer.subarray(off, end).toString('hex'), theirHead.subarray(off, end).toString('hex'), what);
  }
  assert.equal(tail.buffer.subarray(0, 32 * 512).toString('hex'), theirTail.subarray(0, 32 * 512).toString('hex'), 'backup entries');
  assert.equal(tail.buffer.subarray(32 * 512).toString('hex'), theirTail.subarray(32 * 512).toString('hex'), 'backup header');
  assert.ok(run('sgdisk', ['-v', img]).stdout.toString().includes('No problems found'));
});

test('every field sgdisk -p / -i prints matches the spec', () => {
  const img = join(dir, 'ours.img');
  writeImageFile(composeDisk(D, [], encodeTable(efi)), img);
  const p = run('sgdisk', ['-p', img]).stdout.toString();
  assert.match(p, new RegExp(`Disk identifier \\(GUID\\): ${MAKE_DISK_IMAGE_DISK_GUID}`));
  assert.match(p, /First usable sector is 34, last usable sector is 614366/);
  efi.partitions.forEach((part, i) => {
    const info = run('sgdisk', ['-i', String(i + 1), img]).stdout.toString();
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(info)?.[1];
    assert.equal(field('Partition GUID code')?.split(' ')[0], part.typeGuid);
    assert.equal(field('Partition unique GUID'), part.guid);
    assert.equal(field('First sector')?.split(' ')[0], String(part.start / 512));
    assert.equal(field('Last sector')?.split(' ')[0], String((part.start + part.size) / 512 - 1));
    assert.equal(field('Partition size')?.split(' ')[0], String(part.size / 512));
    assert.equal(field('Attribute flags'), part.legacyBiosBootable ? '0000000000000004' : '0000000000000000');
    assert.equal(field('Partition name'), `'${part.name}'`);
  });
});

test('headers decode to the UEFI fields and their CRCs check', () => {
  const [head, tail] = encodeTable(efi) as BufferExtent[];
  const entries = head.buffer.subarray(1024, GPT_HEADER_BYTES);
  assert.deepEqual(tail.buffer.subarray(0, 32 * 512), entries);
  for (const [buf, my, alt, entryLba] of [[head.buffer.subarray(512, 1024), 1, S - 1, 2], [tail.buffer.subarray(32 * 512), S - 1, 1, S - 33]] as const) {
    const h = GPT_HEADER.decode(buf, 0);
    assert.equal(h.Signature.toString('latin1'), 'EFI PART');
    assert.equal(h.Revision, 0x00010000);
    assert.equal(h.HeaderSize, 92);
    assert.equal(h.MyLBA, my);
    assert.equal(h.AlternateLBA, alt);
    assert.equal(h.FirstUsableLBA, 34);
    assert.equal(h.LastUsableLBA, S - 34);
    assert.equal(bytesToGuid(h.DiskGUID), MAKE_DISK_IMAGE_DISK_GUID);
    assert.equal(h.PartitionEntryLBA, entryLba);
    assert.equal(h.NumberOfPartitionEntries, 128);
    assert.equal(h.SizeOfPartitionEntry, 128);
    assert.equal(h.PartitionEntryArrayCRC32, crc32(entries));
    const zeroed = Buffer.from(buf.subarray(0, 92));
    zeroed.writeUInt32LE(0, 16);
    assert.equal(h.HeaderCRC32, crc32(zeroed));
    assert.ok(buf.subarray(92).every((b) => b === 0), 'rest of the header sector is zero');
  }
  const e = GPT_ENTRY.decode(entries, 0);
  assert.equal(bytesToGuid(e.PartitionTypeGUID), GPT_TYPE.esp);
  assert.equal(e.StartingLBA, 16384);
  assert.equal(e.EndingLBA, 524287);
  assert.equal(e.Attributes.readBigUInt64LE(), 4n);
  assert.equal(e.PartitionName.toString('utf16le').replace(/\0+$/, ''), 'ESP');
  assert.ok(entries.subarray(2 * 128).every((b) => b === 0), 'unused entries are zero');
});
