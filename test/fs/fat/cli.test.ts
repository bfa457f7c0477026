// `diskwright mkfs vfat`: the summary on stderr, -o - streaming the same bytes,
// reproducible output whatever the time zone or run, and every bad input one
// line with exit status 1 and no file left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { diskwright } from '../../cli/run.ts';
import { fsckFat, readFat, tempDir } from '../../oracle/fat-tools.ts';
import { fatTime } from '../../../src/fs/fat/dir-entry.ts';
import { makeFatFixture, TIMES } from './fixture.ts';

let work: { dir: string; done: () => void };
let src: string;
let out: string;
before(() => {
  work = tempDir('dw-fatcli-');
  src = join(work.dir, 'src');
  makeFatFixture(src);
  out = join(work.dir, 'out');
  fs.mkdirSync(out);
});
after(() => work.done());

test('summary on stderr; same tree twice, any time zone: identical bytes', () => {
  const a = join(out, 'a.img');
  const b = join(out, 'b.img');
  const r = diskwright(['mkfs', 'vfat', src, '-o', a, '--label', 'EFI', '--epoch', '1700000000'], { env: { ...process.env, TZ: 'UTC' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^FAT12 \S+ \S+ \(\d+ bytes, \d+ clusters of 2048\) volume-id [0-9A-F]{4}-[0-9A-F]{4} label EFI\nclusters: \d+ used, \d+ free \(\d+ bytes\); \d+ files, \d+ directories\nwrote .*a\.img: \d+ bytes apparent, \d+ allocated\n$/);
  const r2 = diskwright(['mkfs', 'vfat', src, '-o', b, '--label', 'EFI', '--epoch', '1700000000'], { env: { ...process.env, TZ: 'Pacific/Kiritimati' } });
  assert.equal(r2.status, 0, r2.stderr);
  assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), 'identical images');
  assert.ok(fsckFat(a).clean);
});

test('-o - streams the same bytes as a file', () => {
  const file = join(out, 'f.img');
  assert.equal(diskwright(['mkfs', 'vfat', src, '-o', file, '--fat-type', '16']).status, 0);
  const r = diskwright(['mkfs', 'vfat', src, '-o', '-', '--fat-type', '16']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.equals(fs.readFileSync(file)));
});

test('--volume-id and --seed set the volume ID and nothing else', () => {
  const a = join(out, 'id-a.img');
  const b = join(out, 'id-b.img');
  const c = join(out, 'id-c.img');
  assert.equal(diskwright(['mkfs', 'vfat', src, '-o', a, '--volume-id', '1234-ABCD']).status, 0);
  assert.equal(diskwright(['mkfs', 'vfat', src, '-o', b, '--seed', 'other']).status, 0);
  assert.equal(diskwright(['mkfs', 'vfat', src, '-o', c]).status, 0);
  const [ia, ib, ic] = [a, b, c].map((p) => fs.readFileSync(p));
  assert.equal(ia.readUInt32LE(39), 0x1234abcd);
  assert.notEqual(ib.readUInt32LE(39), ic.readUInt32LE(39));
  const diff = (x: Buffer, y: Buffer) => [...x.keys()].filter((i) => x[i] !== y[i]);
  assert.ok(diff(ib, ic).every((i) => i >= 39 && i < 43), 'only BS_VolID differs');
  assert.equal(readFat(a).info.type, 12);
});

test('--fat-type 32 and --free', () => {
  const p = join(out, 'f32.img');
  const r = diskwright(['mkfs', 'vfat', src, '-o', p, '--fat-type', '32', '--free', '64M']);
  assert.equal(r.status, 0, r.stderr);
  const f = readFat(p).info;
  assert.equal(f.type, 32);
  assert.ok(f.fsinfo!.freeCount * f.clusterSize >= 64 << 20);
  assert.ok(fsckFat(p).clean);
});

function expectError(args: string[], pattern: RegExp, source = src) {
  const o = join(out, 'x.img');
  const r = diskwright(['mkfs', 'vfat', source, '-o', o, ...args]);
  assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.ok(!fs.existsSync(o), 'no image left');
  assert.deepEqual(fs.readdirSync(out).filter((n) => n.includes('diskwright')), [], 'no temporary file left');
}

test('bad inputs: one line, exit 1, no file', () => {
  expectError(['--fat-type', '24'], /^diskwright: --fat-type 24: use 12, 16 or 32$/);
  expectError(['--volume-id', 'xyz'], /^diskwright: --volume-id xyz: give 8 hex digits/);
  expectError(['--label', 'MUCH TOO LONG'], /^diskwright: label "MUCH TOO LONG" is 13 characters; FAT labels hold at most 11$/);
  expectError(['--size', '100K'], /^diskwright: --size 102400 bytes does not hold this tree; the smallest size that does is \d+ bytes/);
  expectError(['--size', '3T'], /^diskwright: --size \d+: FAT with 512-byte sectors spans at most/);
  expectError(['--fat-type', '12', '--size', '1G'], /^diskwright: --size 1073741824: FAT12 cannot address that many clusters/);
  const odd = join(work.dir, 'odd');
  fs.mkdirSync(join(odd, 'etc'), { recursive: true });
  fs.symlinkSync('target', join(odd, 'etc', 'link'));
  expectError([], /^diskwright: \/etc\/link is a symbolic link; FAT holds only files and directories/, odd);
  const dup = join(work.dir, 'dup');
  fs.mkdirSync(dup);
  fs.writeFileSync(join(dup, 'Boot'), '');
  fs.writeFileSync(join(dup, 'BOOT'), '');
  expectError([], /^diskwright: \/BOOT and \/Boot differ only in case/, dup);
});

test('creation order and listing order do not reach the image', () => {
  const paths = Array.from({ length: 60 }, (_, i) => `d${i % 4}/File ${i} of ${i % 7}.txt`);
  const make = (root: string, order: string[]) => {
    for (const p of order) {
      fs.mkdirSync(join(root, p, '..'), { recursive: true });
      fs.writeFileSync(join(root, p), p);
      fs.utimesSync(join(root, p), 1_600_000_000, 1_600_000_000);
    }
    for (let d = 0; d < 4; d++) fs.utimesSync(join(root, `d${d}`), 1_600_000_000, 1_600_000_000);
  };
  const a = join(work.dir, 'order-a');
  const b = join(work.dir, 'order-b');
  make(a, paths);
  make(b, [...paths].reverse());
  const ia = join(out, 'order-a.img');
  const ib = join(out, 'order-b.img');
  assert.equal(diskwright(['mkfs', 'vfat', a, '-o', ia]).status, 0);
  assert.equal(diskwright(['mkfs', 'vfat', b, '-o', ib]).status, 0);
  assert.ok(fs.readFileSync(ia).equals(fs.readFileSync(ib)));
});

test('--clamp-mtime: later times become the epoch, earlier ones stay', () => {
  const p = join(out, 'clamp.img');
  assert.equal(diskwright(['mkfs', 'vfat', src, '-o', p, '--clamp-mtime', '--epoch', '1000000000']).status, 0);
  const { nodes } = readFat(p);
  const epoch = fatTime(1_000_000_000);
  const at = (n: string) => [nodes.get(n)!.fat!.wrtDate, nodes.get(n)!.fat!.wrtTime];
  assert.deepEqual(at('/data/odd.bin'), [epoch.date, epoch.time]);
  assert.deepEqual(at('/bigdir'), [epoch.date, epoch.time]);
  const early = fatTime(TIMES.plain.sec, TIMES.plain.nsec);
  assert.deepEqual(at(`/${TIMES.plain.path}`), [early.date, early.time]);
});
