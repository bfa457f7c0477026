import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskwrightError } from '../../src/errors.ts';
import { bytesToGuid, guidToBytes, isGuid, MAKE_DISK_IMAGE_DISK_GUID, seededGuid } from '../../src/partition/guid.ts';
import { GPT_ROOT_TYPE, GPT_TYPE, MBR_TYPE, mbrTypeForGpt, rootTypeGuid } from '../../src/partition/types.ts';

test('GUIDs are stored mixed-endian: first three fields little-endian', () => {
  // The ESP type as it appears on disk (UEFI Table 5.7, and any GPT in a hex dump).
  assert.equal(guidToBytes(GPT_TYPE.esp).toString('hex'), '28732ac11ff8d211ba4b00a0c93ec93b');
  assert.equal(bytesToGuid(Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex')), GPT_TYPE.esp);
  assert.equal(guidToBytes('01020304-0506-0708-090a-0b0c0d0e0f10').toString('hex'), '0403020106050807090a0b0c0d0e0f10');
});

test('guidToBytes / bytesToGuid round-trip and normalise to uppercase', () => {
  for (const g of [...Object.values(GPT_TYPE), ...Object.values(GPT_ROOT_TYPE), MAKE_DISK_IMAGE_DISK_GUID]) {
    assert.equal(bytesToGuid(guidToBytes(g)), g);
    assert.equal(bytesToGuid(guidToBytes(g.toLowerCase())), g);
  }
  assert.throws(() => bytesToGuid(Buffer.alloc(15)), RangeError);
});

test('guidToBytes rejects malformed text with PARTITION_INVALID', () => {
  for (const bad of ['', 'not-a-guid', '97FD5997-D90B-4AA3-8D16-C1723AEA73C', '{C12A7328-F81F-11D2-BA4B-00A0C93EC93B}']) {
    assert.equal(isGuid(bad), false);
    assert.throws(() => guidToBytes(bad), (e: unknown) => e instanceof DiskwrightError && e.code === 'PARTITION_INVALID');
  }
});

test('seededGuid is a deterministic version-4 GUID per purpose', () => {
  const a = seededGuid('seed', 'gpt disk guid');
  assert.equal(a, seededGuid('seed', 'gpt disk guid'));
  assert.notEqual(a, seededGuid('seed', 'gpt part 1'));
  assert.notEqual(a, seededGuid('other', 'gpt disk guid'));
  assert.match(a, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
});

test('root partition types per architecture (Discoverable Partitions Spec)', () => {
  assert.equal(rootTypeGuid('x86_64-linux'), '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709');
  assert.equal(rootTypeGuid('aarch64-linux'), 'B921B045-1DF0-41C3-AF44-4C6F280D3FAE');
  assert.equal(rootTypeGuid('riscv64-linux'), GPT_ROOT_TYPE.riscv64);
  assert.equal(rootTypeGuid('arm64'), GPT_ROOT_TYPE.arm64);
  for (const bad of ['mips-linux', 'constructor-linux', '']) {
    assert.throws(() => rootTypeGuid(bad), (e: unknown) => e instanceof DiskwrightError && e.code === 'PARTITION_INVALID');
  }
  for (const g of Object.values(GPT_ROOT_TYPE)) assert.ok(isGuid(g));
});

test('MBR types mirrored from GPT types', () => {
  assert.equal(mbrTypeForGpt(GPT_TYPE.esp), MBR_TYPE.efi);
  assert.equal(mbrTypeForGpt(GPT_TYPE.linuxData.toLowerCase()), MBR_TYPE.linux);
  assert.equal(mbrTypeForGpt(GPT_ROOT_TYPE['x86-64']), MBR_TYPE.linux);
  assert.equal(mbrTypeForGpt(GPT_TYPE.xbootldr), 0xea);
  assert.equal(mbrTypeForGpt('00000000-1111-2222-3333-444444444444'), undefined);
});
