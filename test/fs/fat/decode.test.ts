// One structure, both directions: what the FAT writer encodes, the decoder
// beside it reads back (the reader in src/read/fat.ts uses these decoders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeShortName, encodeDirEntry, DIR, fatTime, fatTimeToUnix, fileAttr, modeOfAttr } from '../../../src/fs/fat/dir-entry.ts';
import { addLongEntry, encodeLfn, longNameFor, type LongNameRun } from '../../../src/fs/fat/lfn.ts';
import { decodeBootSector, encodeBootSector, looksLikeFat } from '../../../src/fs/fat/boot-sector.ts';
import { chooseGeometry } from '../../../src/fs/fat/geometry.ts';
import { ATTR_DIRECTORY, DIR_ENTRY_SIZE } from '../../../src/fs/fat/constants.ts';

test('dates: fatTime then fatTimeToUnix gives the time back at FAT resolution (2 s, creation 10 ms)', () => {
  const sec = Date.UTC(2024, 1, 29, 13, 37, 43) / 1000;
  const t = fatTime(sec, 250_000_000);
  assert.deepEqual(fatTimeToUnix(t.date, t.time), { sec: sec - 1, nsec: 0 });
  assert.deepEqual(fatTimeToUnix(t.date, t.time, t.centis), { sec, nsec: 250_000_000 });
});

test('attributes: read-only files and directories come back with their modes', () => {
  assert.equal(modeOfAttr(fileAttr(0o644)), 0o644);
  assert.equal(modeOfAttr(fileAttr(0o444)), 0o444);
  assert.equal(modeOfAttr(ATTR_DIRECTORY), 0o755);
});

test('short and long names: encoded entries decode to the name, the checksum ties them', () => {
  const buf = Buffer.alloc(DIR_ENTRY_SIZE * 4);
  const short = Buffer.from('LONGNA~1TXT', 'latin1');
  const at = encodeLfn(buf, 0, 'Long name.txt', short);
  encodeDirEntry(buf, at, { name: short, attr: 0x20, cluster: 0x12345, size: 9, t: fatTime(0) });
  let run: LongNameRun = null;
  for (let o = 0; o < at; o += DIR_ENTRY_SIZE) run = addLongEntry(run, buf, o);
  const d = DIR.decode(buf, at);
  assert.deepEqual(longNameFor(run, d.DIR_Name), { name: 'Long name.txt' });
  assert.equal(longNameFor(run, Buffer.from('OTHER   TXT', 'latin1')), undefined);
  assert.deepEqual(decodeShortName(d.DIR_Name, 0), { shortName: 'LONGNA~1.TXT', name: 'LONGNA~1.TXT' });
  // 0x05 stands for a leading 0xE5 (code page 437: σ), which would mark the entry deleted.
  assert.deepEqual(decodeShortName(Buffer.from('\x05BC     TXT', 'latin1'), 0x18), { shortName: 'σBC.TXT', name: 'σbc.txt' });
  assert.equal(d.DIR_FstClusHI * 65536 + d.DIR_FstClusLO, 0x12345);
});

test('boot sector: what the writer makes, the probe accepts and decodes by its type', () => {
  for (const fatType of [12, 16, 32] as const) {
    const g = chooseGeometry(fatType === 32 ? 2 ** 20 : 2 ** 15, { fatType });
    if (typeof g !== 'object') assert.fail(`no FAT${fatType} geometry: ${g}`);
    const s = encodeBootSector(g, { volumeId: 0x1234abcd, label: Buffer.from('DISKWRIGHT ', 'latin1'), hiddenSectors: 0 });
    assert.ok(looksLikeFat(s), `FAT${fatType}`);
    const b = decodeBootSector(s);
    assert.equal(b.is32, fatType === 32);
    assert.equal(b.ext.BS_VolID, 0x1234abcd);
    const ntfs = Buffer.from(s);
    ntfs.write('NTFS    ', 3, 'latin1');
    assert.equal(looksLikeFat(ntfs), false);
  }
});
