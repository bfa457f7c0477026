// --size auto is exact: the smallest filesystem that holds the tree plus the
// free blocks and inodes asked for. One block less does not fit; the figures
// printed agree with dumpe2fs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanSources } from '../../../src/tree/scan.ts';
import { planExt4 } from '../../../src/fs/ext4/planner.ts';
import { DiskwrightError } from '../../../src/errors.ts';
import { diskwright } from '../../cli/run.ts';
import { dumpe2fs, e2fsck } from '../../oracle/tools.ts';

let work: string;
let src: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-size-'));
  src = path.join(work, 'src');
  for (let d = 0; d < 20; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 30; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), Buffer.alloc(f * 1500 + d, 1));
  }
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const cases: Array<{ freeBytes: number; freeInodes: number; journal: boolean; reservedPercent?: number }> = [
  { freeBytes: 0, freeInodes: 0, journal: true },
  { freeBytes: 0, freeInodes: 0, journal: false },
  { freeBytes: 10 << 20, freeInodes: 100, journal: true },
  { freeBytes: 200 << 20, freeInodes: 50_000, journal: true },
  { freeBytes: 1 << 30, freeInodes: 0, journal: true, reservedPercent: 5 },
];

for (const c of cases) {
  test(`auto size is minimal: ${JSON.stringify(c)}`, () => {
    const root = () => scanSources([src]);
    const { stats } = planExt4(root(), { size: 'auto', ...c });
    const reserved = Math.floor((stats.blocks * (c.reservedPercent ?? 0)) / 100);
    assert.ok(stats.freeBlocks >= Math.ceil(c.freeBytes / 4096) + reserved, 'free space as asked');
    assert.ok(stats.freeInodes >= c.freeInodes, 'free inodes as asked');
    // One block smaller cannot hold the same.
    assert.throws(
      () => planExt4(root(), { size: (stats.blocks - 1) * 4096, ...c }),
      (e: unknown) => e instanceof DiskwrightError && e.code === 'SIZE_TOO_SMALL',
    );
  });
}

test('printed figures match dumpe2fs and e2fsck', () => {
  const img = path.join(work, 'fig.img');
  const r = diskwright(['mkfs', 'ext4', src, '-o', img, '--free', '5M', '--free-inodes', '77']);
  assert.equal(r.status, 0, r.stderr);
  const m = /blocks: (\d+) used, (\d+) free; inodes: (\d+) used, (\d+) free/.exec(r.stderr);
  assert.ok(m, r.stderr);
  const d = dumpe2fs(img);
  assert.equal(Number(d['Free blocks']), Number(m[2]));
  assert.equal(Number(d['Free inodes']), Number(m[4]));
  assert.equal(Number(d['Block count']), Number(m[1]) + Number(m[2]));
  assert.equal(Number(d['Inode count']), Number(m[3]) + Number(m[4]));
  assert.ok(Number(m[2]) >= 1280 && Number(m[4]) >= 77);
  assert.equal(fs.statSync(img).size, Number(d['Block count']) * 4096);
  assert.ok(e2fsck(img).clean);
});

test('fixed size: the image has exactly that size and the mke2fs inode ratio', () => {
  const img = path.join(work, 'fixed.img');
  const r = diskwright(['mkfs', 'ext4', src, '-o', img, '--size', '256M']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.statSync(img).size, 256 << 20);
  const d = dumpe2fs(img);
  assert.equal(Number(d['Inode count']), (256 << 20) / 16384);
  assert.equal(d['Journal size'] ?? d['Total journal size'], '16M');
  assert.ok(e2fsck(img).clean);
});
