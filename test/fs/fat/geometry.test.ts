// Geometry: our BPB equals mkfs.fat -F T's for the same size, field for field;
// with no type forced an ESP-sized volume is FAT32 with mkfs.fat -F 32's
// cluster size; and the size bands that exact sizing relies on come in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { planFat } from '../../../src/fs/fat/planner.ts';
import { bandKey, chooseGeometry, nextCandidate } from '../../../src/fs/fat/geometry.ts';
import { BPB, EBPB16, EBPB32 } from '../../../src/fs/fat/boot-sector.ts';
import type { DirEntry } from '../../../src/tree/model.ts';
import { isFileExtent, type BufferExtent, type ImageExtent } from '../../../src/image/extent-map.ts';
import { run } from '../../oracle/tools.ts';
import { fsckFat, tempDir } from '../../oracle/fat-tools.ts';

const MiB = 2 ** 20;
const isBufferExtent = (e: ImageExtent): e is BufferExtent => !isFileExtent(e);
const emptyRoot = (): DirEntry => ({ type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, xattrs: [], children: new Map() });

/** The boot sector fields that describe the layout. */
function layoutFields(sector: Buffer): Record<string, unknown> {
  const bpb = BPB.decode(sector, 0);
  const is32 = bpb.BPB_FATSz16 === 0;
  // Either extension, looked up by name: the two tables share the BS_ fields.
  const ext: Record<string, number | Buffer> = (is32 ? EBPB32 : EBPB16).decode(sector, BPB.size);
  const keep = ['BPB_BytsPerSec', 'BPB_SecPerClus', 'BPB_RsvdSecCnt', 'BPB_NumFATs', 'BPB_RootEntCnt', 'BPB_TotSec16', 'BPB_Media', 'BPB_FATSz16', 'BPB_SecPerTrk', 'BPB_NumHeads', 'BPB_HiddSec', 'BPB_TotSec32'] as const;
  const out: Record<string, unknown> = Object.fromEntries(keep.map((k) => [k, bpb[k]]));
  for (const k of ['BPB_FATSz32', 'BPB_ExtFlags', 'BPB_FSVer', 'BPB_RootClus', 'BPB_FSInfo', 'BPB_BkBootSec', 'BS_DrvNum', 'BS_BootSig', 'BS_VolID', 'BS_VolLab', 'BS_FilSysType']) {
    const v = ext[k];
    if (v !== undefined) out[k] = v instanceof Buffer ? v.toString('latin1') : v;
  }
  return out;
}

function ourBootSector(bytes: number, fatType?: 12 | 16 | 32): Buffer {
  const { image } = planFat(emptyRoot(), { size: bytes, fatType, volumeId: 0x12345678, label: 'X' });
  const e = image.extents[0];
  assert.ok(isBufferExtent(e) && e.offset === 0);
  return e.buffer;
}

const cases: Array<[number, 12 | 16 | 32]> = [
  [1 * MiB, 12], [3 * MiB + 512, 12], [4 * MiB, 12], [4 * MiB + 16384, 12], [7 * MiB, 12], [20 * MiB, 12],
  [9 * MiB, 16], [31 * MiB, 16], [100 * MiB + 4608, 16], [300 * MiB, 16], [2048 * MiB, 16],
  [33 * MiB, 32], [200 * MiB + 1536, 32], [248 * MiB, 32], [256 * MiB, 32], [260 * MiB, 32], [261 * MiB, 32],
  [300 * MiB, 32], [1024 * MiB, 32], [8192 * MiB, 32], [8193 * MiB, 32], [16384 * MiB, 32], [16385 * MiB, 32], [40000 * MiB, 32],
];

test('BPB equals mkfs.fat -F T for the same size', () => {
  const t = tempDir('dw-fatgeo-');
  try {
    const img = join(t.dir, 'mkfs.img');
    for (const [bytes, type] of cases) {
      fs.rmSync(img, { force: true });
      fs.writeFileSync(img, '');
      fs.truncateSync(img, bytes);
      run('mkfs.fat', ['-F', String(type), '-i', '12345678', '-n', 'X', img]);
      const theirs = Buffer.alloc(512);
      const fd = fs.openSync(img, 'r');
      fs.readSync(fd, theirs, 0, 512, 0);
      fs.closeSync(fd);
      assert.deepEqual(layoutFields(ourBootSector(bytes, type)), layoutFields(theirs), `${bytes} bytes, FAT${type}`);
    }
  } finally {
    t.done();
  }
});

test('no type forced: FAT32 wherever it is valid, with mkfs.fat -F 32 cluster sizes', () => {
  const spc = (bytes: number) => {
    const g = chooseGeometry(bytes / 512);
    assert.ok(typeof g === 'object');
    return [g.fatType, g.sectorsPerCluster, g.reservedSectors];
  };
  assert.deepEqual(spc(248 * MiB), [32, 1, 32]);
  assert.deepEqual(spc(256 * MiB), [32, 1, 32]);
  assert.deepEqual(spc(300 * MiB), [32, 8, 32]);
  assert.deepEqual(spc(8192 * MiB), [32, 8, 32]);
  assert.deepEqual(spc(16384 * MiB), [32, 16, 32]);
  assert.deepEqual(spc(40000 * MiB), [32, 64, 64]);
  assert.deepEqual(spc(33 * MiB), [32, 1, 32]);
  assert.deepEqual(spc(32 * MiB), [16, 4, 4]);
  assert.deepEqual(spc(9 * MiB), [16, 4, 4]);
  assert.deepEqual(spc(7 * MiB), [12, 4, 4]);
  assert.deepEqual(spc(1 * MiB), [12, 4, 1]);
});

test('an empty FAT of every type is fsck.fat clean', () => {
  const t = tempDir('dw-fatgeo-');
  try {
    for (const [bytes, type] of [[2 * MiB, 12], [16 * MiB, 16], [64 * MiB, 32]] as const) {
      const { image } = planFat(emptyRoot(), { size: bytes, fatType: type });
      const img = join(t.dir, `${type}.img`);
      const fd = fs.openSync(img, 'w');
      for (const e of image.extents) if (isBufferExtent(e)) fs.writeSync(fd, e.buffer, 0, e.length, e.offset);
      fs.ftruncateSync(fd, image.size);
      fs.closeSync(fd);
      const r = fsckFat(img);
      assert.ok(r.clean, r.output);
    }
  } finally {
    t.done();
  }
});

// Exact sizing jumps from band to band (geometry.ts smallestFit): a band, once
// left, must never come back as the size grows. Checked sector by sector.
test('size bands never come back', () => {
  const variants = [{}, { fatType: 12 as const }, { fatType: 16 as const }, { fatType: 32 as const }, { sectorsPerCluster: 1 }, { sectorsPerCluster: 8 }, { sectorsPerCluster: 64 }];
  const windows: Array<[number, number]> = [[16, 600_000], [16_777_216 - 2000, 16_777_216 + 2000], [33_554_432 - 2000, 33_554_432 + 2000], [67_108_864 - 2000, 67_108_864 + 2000], [2 ** 32 - 4000, 2 ** 32 - 1]];
  for (const opts of variants) {
    for (const [lo, hi] of windows) {
      const seen = new Set<string>();
      let prev = '';
      for (let s = lo; s <= hi; s++) {
        const k = bandKey(s, opts);
        if (k === prev) continue;
        assert.ok(!seen.has(k), `${JSON.stringify(opts)}: band ${k} comes back at ${s} sectors`);
        seen.add(k);
        prev = k;
      }
    }
  }
});

test('auto sizes are whole 4 KiB blocks and whole tracks', () => {
  for (const s of [1, 15, 16, 17, 4095, 4096, 4097, 524288, 524289, 600_000]) {
    const c = nextCandidate(s, false);
    assert.ok(c >= s);
    assert.equal(c % 8, 0);
    assert.equal(c % (c <= 4096 ? 16 : c <= 524288 ? 32 : 63), 0, `${s} -> ${c}`);
  }
});

test('hidden sectors: the partition start goes into BPB_HiddSec', () => {
  const { image } = planFat(emptyRoot(), { size: 64 * MiB, hiddenSectors: 2048 });
  const e = image.extents[0];
  assert.ok(isBufferExtent(e));
  assert.equal(BPB.decode(e.buffer, 0).BPB_HiddSec, 2048);
  assert.throws(() => planFat(emptyRoot(), { size: 64 * MiB, hiddenSectors: -1 }), { code: 'OPTION_INVALID' });
});
