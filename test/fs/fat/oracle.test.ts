// FAT12, FAT16, FAT32 and auto-typed images of one feature tree, checked by
// the real consumers: fsck.fat -n must be clean; mdir must list and mcopy read
// back every entry with its name and bytes; mattrib and mlabel see attributes
// and label. readFat (diskwright's reader, src/read/fat.ts) checks what mtools cannot show:
// names outside the BMP, '.'/'..' clusters, FSInfo, the FAT copies, times.
// The kernel's vfat, where the kernel has it, mounts the image read-only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { planVfatImage } from '../../../src/api/mkfs.ts';
import { writeImageFile } from '../../../src/format/raw.ts';
import { fatTime } from '../../../src/fs/fat/dir-entry.ts';
import {
  fsckFat, hostTree, mattrib, mcopyRead, mcopyTree, mdirAll, mlabel, readFat, tempDir,
} from '../../oracle/fat-tools.ts';
import { requireRoot, requireTools, run, withLoopMount } from '../../oracle/tools.ts';
import { makeFatFixture, mtoolsName, NAMES, TIMES } from './fixture.ts';

let work: { dir: string; done: () => void };
let src: string;
before(() => {
  work = tempDir('dw-fat-');
  src = join(work.dir, 'src');
  makeFatFixture(src);
});
after(() => work.done());

const variants = [
  { name: 'FAT12', opts: { fatType: 12 as const }, type: 12 },
  { name: 'FAT16', opts: { fatType: 16 as const }, type: 16 },
  { name: 'FAT32', opts: { fatType: 32 as const }, type: 32 },
  { name: 'auto type, 256 MiB (an ESP)', opts: { size: 256 * 2 ** 20 }, type: 32 },
  { name: 'auto type and size, label, free space', opts: { label: 'DISKWRIGHT', freeBytes: 1 << 20 }, type: 12 },
];

function build(name: string, opts: object): { img: string; stats: ReturnType<typeof planVfatImage>['stats'] } {
  const img = join(work.dir, `${name.replace(/\W+/g, '_')}.img`);
  const { image, stats } = planVfatImage({ sources: [src], epoch: Date.UTC(2024, 4, 5, 6, 7, 8) / 1000, ...opts });
  writeImageFile(image, img);
  return { img, stats };
}

for (const v of variants) {
  test(`${v.name}: fsck.fat clean, mtools reads back the tree`, () => {
    const { img, stats } = build(v.name, v.opts);
    assert.equal(stats.fatType, v.type);
    const fsck = fsckFat(img);
    assert.ok(fsck.clean, `fsck.fat -n:\n${fsck.output}`);

    const host = hostTree(src);
    // mdir: the same names, types and sizes in every directory.
    const listed: string[] = [];
    for (const [dir, entries] of mdirAll(img)) {
      for (const e of entries) listed.push(`${dir === '/' ? '' : dir}/${e.name} ${e.dir ? 'dir' : e.size}`);
    }
    const expected = [...host].map(([p, e]) => `${mtoolsName(p)} ${e.dir ? 'dir' : e.data!.length}`);
    assert.deepEqual(listed.sort(), expected.sort());

    // mcopy -s: every file's bytes.
    const out = join(work.dir, `out-${v.type}-${stats.bytes}`);
    fs.mkdirSync(out);
    mcopyTree(img, out);
    const copied = hostTree(out);
    assert.deepEqual([...copied.keys()].sort(), [...host.keys()].map(mtoolsName).sort());
    for (const [p, e] of host) if (!e.dir) assert.ok(copied.get(mtoolsName(p))!.data!.equals(e.data!), `content of ${p}`);
    // One file by name through mcopy ::path -, a long Unicode one.
    assert.equal(mcopyRead(img, `/${NAMES.unicode}`).toString(), 'unicode\n');

    assert.match(mattrib(img, '/locked.txt'), /R/);
    assert.doesNotMatch(mattrib(img, '/README.TXT'), /R/);
    assert.equal(mlabel(img), 'label' in v.opts ? v.opts.label : '');
    checkStructure(img, stats);
  });
}

/** What mtools cannot show, through diskwright's reader. */
function checkStructure(img: string, stats: ReturnType<typeof planVfatImage>['stats']) {
  const { reader, info, nodes } = readFat(img);
  assert.equal(info.type, stats.fatType);
  const short = (p: string) => nodes.get(p)!.fat!.shortName;
  // Exact names, also outside the BMP, and 8.3 names as Linux's vfat makes them.
  assert.ok(nodes.has(`/${NAMES.astral}`), 'emoji name');
  assert.ok(nodes.has(`/${NAMES.longest}`), '254-unit name');
  assert.equal(short('/README.TXT'), 'README.TXT');
  assert.equal(short('/readme2.txt'), 'README2.TXT', 'lower case: long name and the plain 8.3 alias');
  assert.equal(short('/.hidden'), 'HIDDEN~1');
  assert.equal(short('/a.b.c.d'), 'ABC~1.D');
  assert.equal(short('/x+y=z;[1],2.txt'), 'X_Y_Z_~1.TXT');
  assert.equal(short('/Sub/LONGFI~1.TXT'), 'LONGFI~1.TXT');
  assert.equal(short('/Sub/longfilename-01.txt'), 'LONGFI~2.TXT', 'an 8.3 name in the way keeps its name');
  assert.equal(short('/Sub/longfilename-09.txt'), 'LONGF~10.TXT');
  // '.' is the directory's own cluster; '..' its parent's, 0 for the root.
  for (const [p, n] of nodes) {
    if (n.type !== 'dir') continue;
    const { dot, dotdot } = reader.dots(n);
    assert.equal(dot, n.fat!.firstCluster, `. of ${p}`);
    const parent = p.slice(0, p.lastIndexOf('/'));
    assert.equal(dotdot, parent === '' ? 0 : nodes.get(parent)!.fat!.firstCluster, `.. of ${p}`);
  }
  // Chains are contiguous; bigdir spans several clusters.
  for (const [p, n] of nodes) {
    const chain = reader.clustersOf(n);
    chain.forEach((c, i) => assert.equal(c, chain[0] + i, `contiguous chain of ${p}`));
  }
  assert.ok(reader.clustersOf(nodes.get('/bigdir')!).length > 1, 'bigdir spans more than one cluster');
  assert.ok(reader.read(nodes.get('/data/sparse.bin')!).subarray(0, 1 << 20).every((b) => b === 0), 'hole reads as zeros');
  // FAT[0] and FAT[1] as mkfs.fat writes them; both copies identical.
  const mask = { 12: 0xfff, 16: 0xffff, 32: 0x0fffffff }[info.type];
  assert.deepEqual(info.fatHead, [(mask & ~0xff) | 0xf8, mask]);
  const rsvd = info.reservedSectors;
  const fatSz = info.fatSectors;
  const image = fs.readFileSync(img);
  assert.ok(image.subarray(rsvd * 512, (rsvd + fatSz) * 512).equals(image.subarray((rsvd + fatSz) * 512, (rsvd + 2 * fatSz) * 512)), 'FAT copies identical');
  if (info.type === 32) {
    assert.deepEqual(info.fsinfo, { valid: true, freeCount: stats.freeClusters, nextFree: stats.usedClusters + 2 });
    assert.ok(image.subarray(0, 512).equals(image.subarray(6 * 512, 7 * 512)), 'backup boot sector');
  }
  // Times: UTC, 2-second write time, 10 ms creation part, clamped to 1980..2107.
  for (const t of Object.values(TIMES)) {
    const n = nodes.get(`/${t.path}`)!.fat!;
    const want = fatTime(t.sec, t.nsec);
    assert.deepEqual([n.wrtDate, n.wrtTime, n.crtTimeTenth], [want.date, want.time, want.centis], t.path);
  }
  const readme = nodes.get('/README.TXT')!.fat!;
  assert.deepEqual([readme.wrtTime, readme.crtTimeTenth], [(4 << 11) | (5 << 5) | 3, 189]);
  assert.equal(nodes.get('/readme2.txt')!.fat!.wrtDate, (0 << 9) | (1 << 5) | 1, '1970 clamps to 1980-01-01');
  assert.equal(nodes.get('/MixedCase.Txt')!.fat!.wrtDate, (127 << 9) | (12 << 5) | 31, '2200 clamps to 2107-12-31');
}

const KERNEL_VFAT = fs.readFileSync('/proc/filesystems', 'utf8').includes('vfat');

// The kernel's vfat where this kernel has it; otherwise the fusefat FUSE
// driver, a third reader beside mtools and fsck.fat.
test('a mounted FAT shows the tree (kernel vfat, else fusefat)', async () => {
  requireRoot('the FAT mount');
  const { img } = build('mount', { fatType: 32 });
  const check = (mnt: string) => {
    const host = hostTree(src);
    const seen = hostTree(mnt);
    assert.deepEqual([...seen.keys()].sort(), [...host.keys()].sort());
    for (const [p, e] of host) if (!e.dir) assert.ok(seen.get(p)!.data!.equals(e.data!), p);
  };
  if (KERNEL_VFAT) {
    await withLoopMount(img, (mnt) => {
      check(mnt);
      const st = fs.statSync(join(mnt, TIMES.plain.path));
      assert.equal(st.mtimeMs, Math.floor(TIMES.plain.sec / 2) * 2000);
    }, { type: 'vfat', options: ['ro', 'loop', 'utf8', 'tz=UTC'] });
    return;
  }
  requireTools('fusefat', 'fusermount');
  const mnt = fs.mkdtempSync(join(tmpdir(), 'dw-fusefat-'));
  run('fusefat', ['-o', 'ro', img, mnt]);
  try {
    check(mnt); // fusefat shows times a month off, so only names and bytes
  } finally {
    run('fusermount', ['-u', mnt], { allowFailure: true });
    fs.rmdirSync(mnt);
  }
});
