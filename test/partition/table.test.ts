// encodeTable's model: validation errors, determinism, seeded identities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskwrightError } from '../../src/errors.ts';
import type { BufferExtent } from '../../src/image/extent-map.ts';
import { bytesToGuid, seededGuid } from '../../src/partition/guid.ts';
import { encodeTable, GPT_FOOTER_BYTES, GPT_HEADER_BYTES, resolveIds, type TableSpec } from '../../src/partition/table.ts';
import { GPT_TYPE } from '../../src/partition/types.ts';

const M = 2 ** 20;
const D = 64 * M;
const G1 = '1C06F03B-704E-4657-B9CD-681A087A2FDC';
const G2 = '970C694F-AFD0-4B99-B750-CDB7A329AB6F';

const gpt = (over: Partial<TableSpec> = {}): TableSpec => ({
  kind: 'gpt',
  diskSize: D,
  seed: 'test',
  partitions: [
    { name: 'ESP', start: M, size: 8 * M, typeGuid: GPT_TYPE.esp },
    { name: 'root', start: 9 * M, size: D - 9 * M - GPT_FOOTER_BYTES },
  ],
  ...over,
});
const mbr = (over: Partial<TableSpec> = {}): TableSpec => ({
  kind: 'mbr',
  diskSize: D,
  diskSignature: 0x01020304,
  partitions: [{ name: 'root', start: M, size: D - M }],
  ...over,
});
const hybrid = (over: Partial<TableSpec> = {}): TableSpec => ({
  ...gpt(),
  kind: 'hybrid',
  hybridMbr: [0, 1],
  ...over,
});

function rejects(spec: TableSpec, re: RegExp): void {
  assert.throws(
    () => encodeTable(spec),
    (e: unknown) => {
      assert.ok(e instanceof DiskwrightError, `not a DiskwrightError: ${e}`);
      assert.equal(e.code, 'PARTITION_INVALID');
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.match(e.message, re);
      return true;
    },
  );
}

test('valid specs encode to the expected extents', () => {
  const m = encodeTable(mbr());
  assert.deepEqual(m.map((e) => [e.offset, e.length]), [[0, 512]]);
  for (const spec of [gpt(), hybrid()]) {
    const x = encodeTable(spec);
    assert.deepEqual(x.map((e) => [e.offset, e.length]), [[0, GPT_HEADER_BYTES], [D - GPT_FOOTER_BYTES, GPT_FOOTER_BYTES]]);
  }
  // Partitions may fill the usable area exactly.
  encodeTable(gpt({ partitions: [{ name: 'all', start: GPT_HEADER_BYTES, size: D - GPT_HEADER_BYTES - GPT_FOOTER_BYTES }] }));
  encodeTable(mbr({ partitions: [{ name: 'all', start: 512, size: D - 512 }] }));
  encodeTable(gpt({ partitions: [] }));
});

test('same spec, same bytes; GUIDs come from the seed when not given', () => {
  const bytes = (s: TableSpec) => Buffer.concat(encodeTable(s).map((e) => (e as BufferExtent).buffer));
  assert.deepEqual(bytes(gpt()), bytes(gpt()));
  assert.deepEqual(bytes(hybrid()), bytes(hybrid()));
  assert.deepEqual(bytes(mbr({ diskSignature: undefined, seed: 'x' })), bytes(mbr({ diskSignature: undefined, seed: 'x' })));
  assert.notDeepEqual(bytes(gpt()), bytes(gpt({ seed: 'other' })));

  const ids = resolveIds(gpt());
  assert.equal(ids.diskGuid, seededGuid('test', 'gpt disk guid'));
  assert.deepEqual(ids.partitionGuids, [seededGuid('test', 'gpt part 1'), seededGuid('test', 'gpt part 2')]);
  const head = bytes(gpt());
  assert.equal(bytesToGuid(head.subarray(512 + 56, 512 + 72)), ids.diskGuid);
  assert.equal(bytesToGuid(head.subarray(1024 + 16, 1024 + 32)), ids.partitionGuids[0]);
  // Given identities win over the seed.
  const given = resolveIds(gpt({ diskGuid: G1, partitions: [{ name: 'a', start: M, size: M, guid: G2 }] }));
  assert.deepEqual([given.diskGuid, given.partitionGuids], [G1, [G2]]);
  assert.equal(resolveIds(hybrid()).diskSignature, 0);
  assert.equal(typeof resolveIds(mbr({ diskSignature: undefined, seed: 's' })).diskSignature, 'number');
});

test('the disk signature is ignored for a pure GPT (protective MBR keeps 0)', () => {
  const [head] = encodeTable(gpt({ diskSignature: 0xdeadbeef })) as BufferExtent[];
  assert.equal(head.buffer.readUInt32LE(440), 0);
  const [hy] = encodeTable(hybrid({ diskSignature: 0xdeadbeef })) as BufferExtent[];
  assert.equal(hy.buffer.readUInt32LE(440), 0xdeadbeef);
});

test('validation: disk and table kind', () => {
  rejects(gpt({ kind: 'apm' as never }), /unknown partition table kind "apm"/);
  rejects(gpt({ diskSize: D + 100 }), /disk size .* multiple of 512/);
  rejects(gpt({ diskSize: 0 }), /disk size 0/);
  rejects(gpt({ diskSize: 60 * 512, partitions: [] }), /too small for a gpt/);
  rejects(gpt({ diskGuid: 'nope' }), /disk GUID "nope"/);
  rejects(mbr({ diskSignature: 2 ** 32 }), /disk signature .* 32-bit/);
  rejects(mbr({ diskSignature: -1 }), /disk signature/);
});

test('validation: alignment, bounds and overlap', () => {
  rejects(gpt({ partitions: [{ name: 'a', start: M + 1, size: M }] }), /partition 1 \("a"\): start .* multiple of 512/);
  rejects(gpt({ partitions: [{ name: 'a', start: M, size: 1000 }] }), /size 1000 is not a positive multiple/);
  rejects(gpt({ partitions: [{ name: 'a', start: M, size: 0 }] }), /size 0/);
  rejects(gpt({ partitions: [{ name: 'a', start: 33 * 512, size: M }] }), /outside the usable area/);
  rejects(gpt({ partitions: [{ name: 'a', start: M, size: D - M - GPT_FOOTER_BYTES + 512 }] }), /outside the usable area/);
  rejects(mbr({ partitions: [{ name: 'a', start: 0, size: M }] }), /outside the usable area/);
  rejects(mbr({ partitions: [{ name: 'a', start: M, size: D }] }), /outside the usable area/);
  rejects(
    gpt({ partitions: [{ name: 'a', start: 4 * M, size: 2 * M }, { name: 'b', start: M, size: 3 * M + 512 }] }),
    /partition 2 \("b"\) and partition 1 \("a"\) overlap/,
  );
});

test('validation: MBR limits', () => {
  const five = Array.from({ length: 5 }, (_, i) => ({ name: `p${i}`, start: (i + 1) * M, size: M }));
  rejects(mbr({ partitions: five }), /5 partitions; an MBR holds at most 4/);
  const many = Array.from({ length: 129 }, (_, i) => ({ name: `p${i}`, start: (i + 1) * M, size: 512 }));
  rejects(gpt({ diskSize: 256 * M, partitions: many }), /129 partitions; a GPT holds at most 128/);
  const big = 3 * 2 ** 40;
  rejects(mbr({ diskSize: big, partitions: [{ name: 'far', start: 2.5 * 2 ** 40, size: M }] }), /32-bit sector numbers/);
  rejects(mbr({ diskSize: big, partitions: [{ name: 'huge', start: M, size: 2 * 2 ** 40 + M }] }), /32-bit sector numbers/);
  // A GPT partition past 2 TiB is fine unless a hybrid MBR mirrors it.
  const far = { name: 'far', start: 2.5 * 2 ** 40, size: M };
  encodeTable(gpt({ diskSize: big, partitions: [far] }));
  rejects(hybrid({ diskSize: big, partitions: [far], hybridMbr: [0] }), /32-bit sector numbers/);
  rejects(mbr({ partitions: [{ name: 'a', start: M, size: M, mbrType: 0 }] }), /MBR type 0 is not 0x01..0xff/);
  rejects(mbr({ partitions: [{ name: 'a', start: M, size: M, mbrType: 256 }] }), /MBR type 256/);
  rejects(mbr({ partitions: [{ name: 'a', start: M, size: M, typeGuid: G1 }] }), /no MBR type for GPT type .*; give mbrType/);
  rejects(mbr({ partitions: [{ name: 'a', start: M, size: M, legacyBiosBootable: true }] }), /GPT attributes/);
  rejects(mbr({ hybridMbr: [0] }), /hybridMbr applies to kind "hybrid" only/);
});

test('validation: bootable flags', () => {
  rejects(gpt({ partitions: [{ name: 'a', start: M, size: M, bootable: true }] }), /no MBR entry; use legacyBiosBootable/);
  const [esp, root] = gpt().partitions;
  rejects(hybrid({ partitions: [esp, { ...root, bootable: true }], hybridMbr: [0] }), /partition 2 \("root"\): bootable/);
  rejects(mbr({ partitions: [{ name: 'a', start: M, size: M, bootable: true }, { name: 'b', start: 2 * M, size: M, bootable: true }] }), /more than one partition is bootable/);
});

test('validation: hybrid MBR selection', () => {
  rejects(hybrid({ hybridMbr: undefined }), /mirrors 1 to 3 GPT partitions \(hybridMbr has 0\)/);
  rejects(hybrid({ hybridMbr: [] }), /hybridMbr has 0/);
  const four = Array.from({ length: 4 }, (_, i) => ({ name: `p${i}`, start: (i + 1) * M, size: M }));
  rejects(hybrid({ partitions: four, hybridMbr: [0, 1, 2, 3] }), /hybridMbr has 4/);
  rejects(hybrid({ hybridMbr: [0, 2] }), /hybridMbr\[1\] = 2 is not a partition index/);
  rejects(hybrid({ hybridMbr: [1, 1] }), /lists partition index 1 twice/);
  rejects(gpt({ hybridMbr: [0] }), /hybridMbr applies to kind "hybrid" only/);
});

test('validation: GUIDs and names', () => {
  const [esp, root] = gpt().partitions;
  rejects(gpt({ partitions: [{ ...esp, typeGuid: 'ESP' }] }), /type GUID "ESP"/);
  rejects(gpt({ partitions: [{ ...esp, typeGuid: '00000000-0000-0000-0000-000000000000' }] }), /non-zero/);
  rejects(gpt({ partitions: [{ ...esp, guid: '1234' }] }), /GUID "1234"/);
  rejects(gpt({ partitions: [{ ...esp, guid: G1 }, { ...root, guid: G1.toLowerCase() }] }), /GUID 1C06F03B-.* is used twice/);
  rejects(gpt({ diskGuid: G2, partitions: [{ ...esp, guid: G2 }] }), /used twice/);
  rejects(gpt({ seed: undefined }), /disk GUID not given and no seed/);
  rejects(gpt({ seed: undefined, diskGuid: G1 }), /partition 1 \("ESP"\) GUID not given and no seed/);
  rejects(mbr({ diskSignature: undefined }), /disk signature not given and no seed/);
  rejects(gpt({ partitions: [{ ...esp, name: 'x'.repeat(37) }] }), /at most 36 UTF-16 code units/);
  rejects(gpt({ partitions: [{ ...esp, name: 'a\0b' }] }), /no NUL/);
  rejects(gpt({ partitions: [{ ...esp, name: '\u{1F600}'.repeat(19) }] }), /36 UTF-16/); // 38 code units
  encodeTable(gpt({ partitions: [{ ...esp, name: 'é'.repeat(36) }] }));
});

test('boot code goes into LBA 0 of every kind, the table and 0x55AA after it', () => {
  const code = Buffer.alloc(512, 0xeb); // a whole boot.img: only its first 440 bytes are used
  for (const spec of [mbr(), gpt(), hybrid()]) {
    const [head] = encodeTable({ ...spec, bootCode: code }) as BufferExtent[];
    assert.ok(head.buffer.subarray(0, 440).every((b) => b === 0xeb), spec.kind);
    assert.equal(head.buffer.readUInt16LE(444), 0);
    assert.equal(head.buffer.readUInt16LE(510), 0xaa55);
    const [plain] = encodeTable(spec) as BufferExtent[];
    assert.deepEqual(head.buffer.subarray(440, 512), plain.buffer.subarray(440, 512), `${spec.kind}: table unchanged`);
  }
});

test('GPT attributes: required is bit 0, legacyBiosBootable bit 2', () => {
  const attrs = (p: Partial<TableSpec['partitions'][0]>) => {
    const [head] = encodeTable(gpt({ partitions: [{ name: 'a', start: M, size: M, ...p }] })) as BufferExtent[];
    return head.buffer.readBigUInt64LE(1024 + 48);
  };
  assert.equal(attrs({}), 0n);
  assert.equal(attrs({ required: true }), 1n);
  assert.equal(attrs({ legacyBiosBootable: true }), 4n);
  assert.equal(attrs({ required: true, legacyBiosBootable: true }), 5n);
});
