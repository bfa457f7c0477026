// --size auto is exact: the smallest size (in whole 4 KiB blocks and tracks)
// that holds the tree plus --free; a fixed size too small names the smallest
// sector count that works, which works, while one sector less does not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { scanSources } from '../../../src/tree/scan.ts';
import { planFat, type FatOptions } from '../../../src/fs/fat/planner.ts';
import { chs } from '../../../src/fs/fat/geometry.ts';
import { DiskwrightError } from '../../../src/errors.ts';
import { writeImageFile } from '../../../src/format/raw.ts';
import { diskwright } from '../../cli/run.ts';
import { fsckFat, tempDir } from '../../oracle/fat-tools.ts';

let work: { dir: string; done: () => void };
let src: string;
let tiny: string;
before(() => {
  work = tempDir('dw-fatsize-');
  src = join(work.dir, 'src');
  for (let d = 0; d < 12; d++) {
    fs.mkdirSync(join(src, `directory ${d}`), { recursive: true });
    for (let f = 0; f < 25; f++) fs.writeFileSync(join(src, `directory ${d}`, `file number ${f}.bin`), Buffer.alloc(f * 1500 + d, 1));
  }
  tiny = join(work.dir, 'tiny');
  fs.mkdirSync(join(tiny, 'd'), { recursive: true });
  for (let f = 0; f < 9; f++) fs.writeFileSync(join(tiny, 'd', `f${f}`), Buffer.alloc(f * 3000, 1));
});
after(() => work.done());

const SECTOR = 512;

/** The minimum a too-small fixed size names. */
function minimumFor(root: string, opts: Omit<FatOptions, 'size'>): number {
  try {
    planFat(scanSources([root]), { ...opts, size: 4096 });
  } catch (err) {
    assert.ok(err instanceof DiskwrightError && err.code === 'SIZE_TOO_SMALL', String(err));
    return err.data.minimum as number;
  }
  assert.fail('4096 bytes fit');
}

function fits(root: string, opts: Omit<FatOptions, 'size'>, size: number): boolean {
  try {
    planFat(scanSources([root]), { ...opts, size });
    return true;
  } catch (err) {
    if (err instanceof DiskwrightError && err.code === 'SIZE_TOO_SMALL') return false;
    throw err;
  }
}

const cases: Array<Omit<FatOptions, 'size'>> = [
  {},
  { freeBytes: 1 << 20 },
  { freeBytes: 6 << 20 },
  { freeBytes: 40 << 20 },
  { freeBytes: 300 << 20 },
  { fatType: 12 },
  { fatType: 16 },
  { fatType: 32 },
  { fatType: 32, freeBytes: 300 << 20 },
  { label: 'LABELLED' },
];

for (const c of cases) {
  test(`auto size is minimal: ${JSON.stringify(c)}`, () => {
    const { image, stats } = planFat(scanSources([src]), { ...c, size: 'auto' });
    assert.ok(stats.freeBytes >= (c.freeBytes ?? 0), 'free space as asked');
    // A whole number of 4 KiB blocks and of tracks, so the filesystem fills the image.
    assert.equal(stats.bytes % 4096, 0);
    assert.equal((stats.bytes / SECTOR) % chs(stats.bytes / SECTOR).secPerTrack, 0);
    // The next smaller such size does not fit.
    const spt = chs(stats.bytes / SECTOR - 1).secPerTrack;
    const unit = (spt === 63 ? 504 : spt) * SECTOR;
    assert.ok(!fits(src, c, stats.bytes - unit), `${stats.bytes - unit} bytes fit too`);
    // The exact minimum in sectors: it fits, one sector less does not.
    const min = minimumFor(src, c);
    assert.ok(min <= stats.bytes);
    assert.ok(fits(src, c, min), `the minimum ${min} fits`);
    assert.ok(!fits(src, c, min - SECTOR), `${min - SECTOR} does not fit`);
    // And the image is clean.
    const img = join(work.dir, 'auto.img');
    writeImageFile(image, img);
    const r = fsckFat(img);
    assert.ok(r.clean, r.output);
  });
}

test('the minimum is the first size that fits, sector by sector', () => {
  for (const c of [{}, { freeBytes: 100_000 }, { fatType: 16 as const }]) {
    const min = minimumFor(tiny, c);
    const from = c.fatType ? min / SECTOR - 3000 : 16;
    for (let s = from; s < min / SECTOR; s++) assert.ok(!fits(tiny, c, s * SECTOR), `${s} sectors fit, below the minimum ${min / SECTOR}`);
    assert.ok(fits(tiny, c, min));
  }
});

test('CLI: too small names the minimum in one line; that size works', () => {
  const min = minimumFor(src, {});
  const out = join(work.dir, 'cli.img');
  const r = diskwright(['mkfs', 'vfat', src, '-o', out, '--size', String(min - SECTOR)]);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1);
  assert.match(r.stderr, new RegExp(`^diskwright: --size ${min - SECTOR} bytes does not hold this tree; the smallest size that does is ${min} bytes`));
  assert.ok(!fs.existsSync(out));
  const ok = diskwright(['mkfs', 'vfat', src, '-o', out, '--size', String(min)]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(fs.statSync(out).size, min);
  assert.ok(fsckFat(out).clean);
});

test('a forced type whose root directory cannot hold the root is an error', () => {
  const many = join(work.dir, 'wide');
  fs.mkdirSync(many);
  for (let i = 0; i < 600; i++) fs.writeFileSync(join(many, `F${i}`), '');
  assert.throws(() => planFat(scanSources([many]), { size: 'auto', fatType: 16, sectorsPerCluster: 4 }), { code: 'TOO_MANY_FILES', message: /root directory needs 600 entries/ });
  // mkfs.fat gives FAT16 with 64-sector clusters 1024 root entries: the first size with those.
  const f16 = planFat(scanSources([many]), { size: 'auto', fatType: 16 }).stats;
  assert.deepEqual([f16.fatType, f16.sectorsPerCluster], [16, 64]);
  // Without a forced type it becomes FAT32.
  assert.equal(planFat(scanSources([many]), { size: 'auto' }).stats.fatType, 32);
});
