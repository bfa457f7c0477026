// The FAT reader against volumes mkfs.fat made and mcopy filled (FAT12, 16, 32):
// its figures equal fsck.fat -n -v's and blkid's, its tree equals the source;
// volumes diskwright writes read back equal to their source, names outside
// the BMP included; bad input gives one-line errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import { planVfatImage } from '../../src/api/mkfs.ts';
import { fatTime } from '../../src/fs/fat/dir-entry.ts';
import { displayKey } from '../../src/read/entry.ts';
import { FatReader } from '../../src/read/fat.ts';
import { detectFilesystem, openFilesystem } from '../../src/read/index.ts';
import { type ByteSource, fileSource, type FileSource, imageSource, subSource } from '../../src/read/source.ts';
import { mtool, tempDir } from '../oracle/fat-tools.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { makeFatFixture, NAMES, TIMES } from '../fs/fat/fixture.ts';

let work: { dir: string; done: () => void };
let src: string;
const open: FileSource[] = [];

before(() => {
  requireTools('mkfs.fat', 'fsck.fat', 'mcopy', 'blkid');
  work = tempDir('dw-read-fat-');
  src = path.join(work.dir, 'src');
  makeFatFixture(src);
});
after(() => {
  for (const s of open) s.close();
  work.done();
});

interface View { type: 'file' | 'dir'; size: number; sha?: string; mtime: number }

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** path (UTF-8 text) -> what FAT keeps of it, from the host. */
function hostView(root: string, skip: Set<string> = new Set()): Map<string, View> {
  const out = new Map<string, View>();
  const go = (abs: string, rel: string) => {
    for (const name of fs.readdirSync(abs).sort()) {
      const r = `${rel}/${name}`;
      if (skip.has(r)) continue;
      const a = path.join(abs, name);
      const st = fs.statSync(a);
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isDirectory()) {
        out.set(r, { type: 'dir', size: 0, mtime });
        go(a, r);
      } else {
        out.set(r, { type: 'file', size: st.size, sha: sha(fs.readFileSync(a)), mtime });
      }
    }
  };
  go(root, '');
  return out;
}

function readerView(r: FatReader): Map<string, View> {
  const out = new Map<string, View>();
  for (const e of r.walk()) {
    if (e.path === '/') continue;
    const key = Buffer.from(e.path, 'latin1').toString('utf8');
    out.set(key, { type: e.type as 'file' | 'dir', size: e.size, ...(e.type === 'file' ? { sha: sha(r.read(e)) } : {}), mtime: e.mtimeSec });
  }
  return out;
}

/** Same names, types, sizes and bytes; mtimes through `expectTime` (undefined: not compared). */
function assertSameTree(host: Map<string, View>, image: Map<string, View>, expectTime: (v: View, p: string) => number | undefined): void {
  assert.deepEqual([...image.keys()].sort(), [...host.keys()].sort());
  for (const [p, h] of host) {
    const g = image.get(p)!;
    assert.deepEqual({ type: g.type, size: g.size, sha: g.sha }, { type: h.type, size: h.size, sha: h.sha }, p);
    const t = expectTime(h, p);
    if (t !== undefined) assert.equal(g.mtime, t, `mtime of ${p}`);
  }
}

/** `fsck.fat -n -v` figures. */
function fsckFigures(image: string): Record<string, number> {
  const out = run('fsck.fat', ['-n', '-v', image]).stdout.toString();
  const num = (re: RegExp) => {
    const m = re.exec(out);
    assert.ok(m, `fsck.fat -v: ${re}\n${out}`);
    return Number(m[1]);
  };
  const f: Record<string, number> = {
    bytesPerSector: num(/(\d+) bytes per logical sector/),
    clusterSize: num(/(\d+) bytes per cluster/),
    reservedSectors: num(/(\d+) reserved sectors/),
    fatOffset: num(/First FAT starts at byte (\d+)/),
    numFats: num(/(\d+) FATs, \d+ bit entries/),
    fatBits: num(/\d+ FATs, (\d+) bit entries/),
    fatBytes: num(/(\d+) bytes per FAT/),
    dataOffset: num(/Data area starts at byte (\d+)/),
    clusters: num(/(\d+) data clusters/),
    sectorsPerTrack: num(/(\d+) sectors\/track/),
    heads: num(/sectors\/track, (\d+) heads/),
    hiddenSectors: num(/(\d+) hidden sectors/),
    totalSectors: num(/(\d+) sectors total/),
    media: parseInt(/Media byte 0x([0-9a-f]+)/.exec(out)![1], 16),
    files: num(/: (\d+) files, \d+\/\d+ clusters/),
    usedClusters: num(/: \d+ files, (\d+)\/\d+ clusters/),
  };
  if (/Root directory starts at byte/.test(out)) {
    f.rootDirOffset = num(/Root directory starts at byte (\d+)/);
    f.rootEntries = num(/(\d+) root directory entries/);
  } else {
    f.rootCluster = num(/Root directory start at cluster (\d+)/);
  }
  return f;
}

function blkid(image: string): Record<string, string> {
  const out = run('blkid', ['-p', '-o', 'export', image], { allowFailure: true }).stdout.toString();
  // `-o export` escapes shell-special characters with a backslash.
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/\\(.)/g, '$1')]));
}

function ourFigures(r: FatReader): Record<string, number> {
  const i = r.info;
  let entries = 0;
  for (const e of r.walk()) if (e.path !== '/') entries++;
  const f: Record<string, number> = {
    bytesPerSector: i.bytesPerSector,
    clusterSize: i.clusterSize,
    reservedSectors: i.reservedSectors,
    fatOffset: i.fatOffset,
    numFats: i.numFats,
    fatBits: i.type,
    fatBytes: i.fatSectors * i.bytesPerSector,
    dataOffset: i.dataOffset,
    clusters: i.clusters,
    sectorsPerTrack: i.sectorsPerTrack,
    heads: i.heads,
    hiddenSectors: i.hiddenSectors,
    totalSectors: i.totalSectors,
    media: i.media,
    // fsck.fat counts every directory entry below the root, the volume label's too.
    files: entries + (i.dirLabel !== undefined ? 1 : 0),
    usedClusters: i.clusters - i.freeClusters,
  };
  if (i.type === 32) f.rootCluster = i.rootCluster;
  else {
    f.rootDirOffset = i.rootDirOffset;
    f.rootEntries = i.rootEntries;
  }
  return f;
}

const FAT_MIN = Date.UTC(1980, 0, 1) / 1000;
const FAT_MAX = Date.UTC(2107, 11, 31, 23, 59, 58) / 1000;

for (const [type, kib, label] of [[12, 8192, 'MTOOLS12'], [16, 32768, undefined], [32, 65536, 'mtools 32']] as const) {
  test(`mkfs.fat -F ${type} + mcopy -s: figures equal fsck.fat -v and blkid; the tree equals the source`, () => {
    const image = path.join(work.dir, `mtools${type}.img`);
    run('mkfs.fat', ['-C', '-F', String(type), ...(label ? ['-n', label] : []), '-i', '1234ABCD', image, String(kib)]);
    // mtools 4.0.32 mangles names outside the BMP and stops at a name that looks like one of its ~N aliases.
    const skip = new Set([`/${NAMES.astral}`, '/Sub/LONGFI~1.TXT']);
    const names = fs.readdirSync(src).filter((n) => !skip.has(`/${n}`)).map((n) => path.join(src, n));
    const stage = path.join(work.dir, `stage${type}`);
    fs.mkdirSync(stage);
    for (const n of names) fs.cpSync(n, path.join(stage, path.basename(n)), { recursive: true, preserveTimestamps: true });
    fs.rmSync(path.join(stage, 'Sub/LONGFI~1.TXT'));
    fs.utimesSync(path.join(stage, 'Sub'), fs.statSync(path.join(src, 'Sub')).atime, fs.statSync(path.join(src, 'Sub')).mtime);
    mtool('mcopy', ['-s', '-m', '-i', image, ...fs.readdirSync(stage).map((n) => path.join(stage, n)), '::']);
    const s = fileSource(image);
    open.push(s);
    const r = new FatReader(s);
    assert.equal(r.info.type, type);
    assert.equal(detectFilesystem(s), `fat${type}`);
    assert.deepEqual(ourFigures(r), fsckFigures(image));
    const b = blkid(image);
    assert.equal(r.info.volumeIdText, b.UUID);
    assert.equal(r.info.label, b.LABEL ?? '');
    assert.equal(r.info.volumeIdText, '1234-ABCD');
    assert.equal(r.summary().label, label ?? '');
    if (type === 32) assert.deepEqual(r.info.fsinfo, { valid: true, freeCount: r.info.freeClusters, nextFree: r.info.fsinfo!.nextFree });
    // mcopy -m keeps file mtimes (to FAT's 2 s, in TZ=UTC); outside FAT's range it wraps, so only in-range ones compare.
    assertSameTree(hostView(stage), readerView(r), (h) =>
      h.type === 'file' && h.mtime >= FAT_MIN && h.mtime <= FAT_MAX ? Math.floor(h.mtime / 2) * 2 : undefined);
    const e = r.lookup('/readme2.txt');
    assert.deepEqual([e.fat!.shortName, e.fat!.hasLongName], ['README2.TXT', false], 'lower case through the NT case bits');
    // Lookups: case-insensitive, by the 8.3 alias too.
    assert.equal(r.lookup('/sub/LONGFILENAME-07.TXT').path, '/Sub/longfilename-07.txt');
    assert.equal(r.lookup(`/${r.lookup('/Sub/longfilename-07.txt').fat!.shortName}`.replace('/', '/SUB/')).name, 'longfilename-07.txt');
    assert.equal(r.read(r.lookup(`/${NAMES.unicode}`)).toString(), 'unicode\n');
    // Every used cluster belongs to exactly one entry.
    let clusters = 0;
    let end = 0;
    for (const a of r.allocation()) {
      assert.ok(a.offset >= end, `overlap at ${a.offset}`);
      end = a.offset + a.length;
      if (a.offset >= r.info.dataOffset) clusters += a.length / r.info.clusterSize;
    }
    assert.equal(clusters, r.info.clusters - r.info.freeClusters);
  });
}

test('volumes diskwright writes read back equal to the source: every name, byte and time (FAT12, 16, 32)', () => {
  const host = hostView(src);
  for (const fatType of [12, 16, 32] as const) {
    const { image, stats } = planVfatImage({ sources: [src], fatType, label: 'DW', epoch: 1_700_000_000 });
    const r = new FatReader(imageSource(image));
    assert.equal(r.info.type, fatType);
    assert.equal(r.info.label, 'DW');
    assert.equal(r.info.freeClusters, stats.freeClusters);
    // diskwright writes UTC, 2 s resolution, clamped to 1980..2107.
    assertSameTree(host, readerView(r), (h) => Math.floor(Math.min(Math.max(h.mtime, FAT_MIN), FAT_MAX) / 2) * 2);
    assert.ok(r.lookup(`/${NAMES.astral}`), 'a name outside the BMP');
    const readme = r.lookup(`/${TIMES.plain.path}`);
    const t = fatTime(TIMES.plain.sec, TIMES.plain.nsec);
    assert.deepEqual([readme.fat!.wrtDate, readme.fat!.wrtTime, readme.fat!.crtTimeTenth], [t.date, t.time, t.centis]);
    assert.deepEqual(readme.crtime, { sec: TIMES.plain.sec, nsec: 890_000_000 });
    assert.equal(r.lookup('/locked.txt').mode, 0o444);
    assert.ok(r.lookup('/locked.txt').flags & 0x01);
    for (const e of r.walk()) {
      if (e.type !== 'dir' || e.path === '/') continue;
      const { dot, dotdot } = r.dots(e);
      assert.equal(dot, e.fat!.firstCluster, `. of ${displayKey(e.path)}`);
      const parent = e.path.slice(0, e.path.lastIndexOf('/')) || '/';
      assert.equal(dotdot, parent === '/' ? 0 : r.lookup(Buffer.from(parent, 'latin1')).fat!.firstCluster, `.. of ${displayKey(e.path)}`);
    }
  }
});

test('bad input: not FAT, truncated, a looping chain — one-line errors', () => {
  const oneLine = (code: string, re: RegExp) => (e: unknown) =>
    e instanceof DiskwrightError && e.code === code && !e.message.includes('\n') && re.test(e.message);
  const { image } = planVfatImage({ sources: [src], fatType: 16 });
  const good = imageSource(image);
  assert.throws(() => new FatReader(subSource(good, 0, 1 << 20)), oneLine('IMAGE_TRUNCATED', /^FAT: the volume spans \d+ bytes but the image holds only 1048576; is it truncated\?$/));
  assert.throws(() => new FatReader(subSource(good, 512, 1 << 20)), oneLine('FILESYSTEM_UNKNOWN', /^not a FAT filesystem \(no valid BIOS parameter block\)$/));
  const r0 = new FatReader(good);
  const victim = r0.lookup('/data/random.bin');
  const first = victim.fat!.firstCluster;
  // FAT16: make the file's second cluster point back at its first.
  const fatAt = r0.info.fatOffset + (first + 1) * 2;
  const looped: ByteSource = {
    size: good.size,
    read(offset, length) {
      const b = good.read(offset, length);
      if (fatAt >= offset && fatAt + 2 <= offset + length) b.writeUInt16LE(first, fatAt - offset);
      return b;
    },
  };
  const r = new FatReader(looped);
  assert.throws(() => r.read(r.lookup('/data/random.bin')), oneLine('IMAGE_CORRUPT', /^FAT: \/data\/random.bin: the chain loops$/));
  assert.throws(() => r.lookup('/data/nothing'), oneLine('PATH_NOT_FOUND', /^\/data\/nothing: no such file or directory$/));
  assert.equal(openFilesystem(good).summary().type, 'fat16');
});
