// Property: for random trees (long, mixed-case and Unicode names FAT can hold,
// no two equal but for case; depths, wide directories, empty and larger files,
// times inside and outside FAT's range) and random FAT type, free space and
// label, the image is fsck.fat-clean and mtools copies out a tree equal to the
// source: same names, same bytes, mtimes at FAT's 2-second resolution.
// Names stay inside the BMP: mtools 4.0.32 cannot read others (the oracle
// test checks those with its own reader).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { planVfatImage } from '../../src/api/mkfs.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { foldName } from '../../src/fs/fat/lfn.ts';
import { fsckFat, hostTree, mcopyTree, readFat, tempDir } from '../oracle/fat-tools.ts';
import { pattern } from './pattern.ts';

interface FileSpec { kind: 'file'; size: number; seed: number; sec: number }
interface DirSpec { kind: 'dir'; children: Array<[string, NodeSpec]> }
type NodeSpec = FileSpec | DirSpec;

const chars = [
  ...'abcxyzABCXYZ0189', ...'      ....', ...'$%\'-_@~`!(){}^#&+,;=[]',
  'é', 'Ü', 'ß', 'Ω', 'ж', '文', '件', '☃', 'ǅ', 'ﬀ',
];
// FAT allows 255 UTF-16 units; the host allows 255 UTF-8 bytes.
const validName = (s: string) => !s.endsWith('.') && !s.endsWith(' ') && s.length <= 255 && Buffer.byteLength(s) <= 255;
const shortName = fc.array(fc.constantFrom(...chars), { minLength: 1, maxLength: 20 }).map((a) => a.join(''));
const longName = fc.tuple(fc.constantFrom('a', 'É', '語', 'x.y', 'Mixed Case '), fc.integer({ min: 30, max: 254 })).map(([c, n]) => {
  let s = '';
  while (Buffer.byteLength(s + c) < n) s += c;
  return s + 'z';
});
const name = fc.oneof({ weight: 10, arbitrary: shortName }, { weight: 1, arbitrary: longName }).filter(validName);

// Whole seconds: utimes with fractions would round through a double.
const FAT_MIN = Date.UTC(1980, 0, 1) / 1000;
const FAT_MAX = Date.UTC(2107, 11, 31, 23, 59, 58) / 1000;
const seconds = fc.oneof(fc.integer({ min: FAT_MIN, max: 4_000_000_000 }), fc.integer({ min: 0, max: 6_000_000_000 }));
const file = fc.record({
  kind: fc.constant('file' as const),
  size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 3000, max: 150_000 })),
  seed: fc.nat(),
  sec: seconds,
});
const children = (inner: fc.Arbitrary<NodeSpec>, maxLength: number) =>
  fc.uniqueArray(fc.tuple(name, inner), { maxLength, selector: (c) => foldName(c[0]) });
const { tree } = fc.letrec((tie) => ({
  tree: fc.record({
    kind: fc.constant('dir' as const),
    children: fc.oneof(
      { weight: 6, arbitrary: children(fc.oneof({ maxDepth: 3, depthSize: 'small', withCrossShrink: true }, file, tie('tree') as fc.Arbitrary<DirSpec>), 8) },
      // Now and then a wide directory, more than a cluster of entries.
      { weight: 1, arbitrary: children(file, 60) },
    ),
  }),
}));
const scenario = fc.record({
  tree,
  fatType: fc.constantFrom(undefined, undefined, 12 as const, 16 as const, 32 as const),
  freeBytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 << 20 })),
  label: fc.option(fc.stringMatching(/^[A-Z0-9_-][A-Z0-9 _-]{0,10}$/), { nil: undefined }),
});

/** Writes the tree; returns path -> mtime seconds of every file. */
function materialize(root: string, spec: DirSpec): Map<string, number> {
  const times = new Map<string, number>();
  const walk = (dir: string, rel: string, d: DirSpec) => {
    fs.mkdirSync(dir);
    for (const [n, child] of d.children) {
      const p = path.join(dir, n);
      if (child.kind === 'dir') {
        walk(p, `${rel}/${n}`, child);
        continue;
      }
      fs.writeFileSync(p, pattern(child.seed, child.size));
      fs.utimesSync(p, child.sec, child.sec);
      times.set(`${rel}/${n}`, child.sec);
    }
  };
  walk(root, '', spec);
  return times;
}

test('random trees: fsck.fat clean and read back equal by mtools', { timeout: 10 * 60_000 }, () => {
  const work = tempDir('dw-fatprop-');
  let n = 0;
  try {
    fc.assert(
      fc.property(scenario, (s) => {
        const dir = path.join(work.dir, `t${n++}`);
        const out = `${dir}.out`;
        const img = `${dir}.img`;
        try {
          const times = materialize(dir, s.tree);
          const { image, stats } = planVfatImage({ sources: [dir], fatType: s.fatType, freeBytes: s.freeBytes, label: s.label });
          if (s.fatType) assert.equal(stats.fatType, s.fatType);
          assert.ok(stats.freeBytes >= s.freeBytes);
          writeImageFile(image, img);
          const fsck = fsckFat(img);
          assert.deepEqual(fsck.problems, [], fsck.output);
          assert.equal(fsck.status, 0);

          fs.mkdirSync(out);
          mcopyTree(img, out);
          const source = hostTree(dir);
          const copied = hostTree(out);
          assert.deepEqual([...copied.keys()].sort(), [...source.keys()].sort());
          const { nodes } = readFat(img);
          for (const [p, e] of source) {
            if (e.dir) continue;
            assert.ok(copied.get(p)!.data!.equals(e.data!), `content of ${p}`);
            const want = Math.floor(Math.min(Math.max(times.get(p)!, FAT_MIN), FAT_MAX) / 2) * 2;
            const n = nodes.get(p)!.fat!;
            const d = n.wrtDate;
            const t = n.wrtTime;
            assert.equal(Date.UTC(1980 + (d >> 9), ((d >> 5) & 15) - 1, d & 31, t >> 11, (t >> 5) & 63, (t & 31) * 2) / 1000, want, `FAT time of ${p}`);
            // mtools 4.0.32 takes 2100 for a leap year: dates after February 2100 come out a day late.
            if (want < Date.UTC(2100, 2, 1) / 1000) assert.equal(fs.statSync(path.join(out, p)).mtimeMs / 1000, want, `mtime of ${p} through mtools`);
          }
          // diskwright's reader agrees on every name.
          assert.deepEqual([...nodes.keys()].sort(), [...source.keys()].sort());
        } finally {
          for (const p of [dir, out, img]) fs.rmSync(p, { recursive: true, force: true });
        }
      }),
      { numRuns: Number(process.env.DW_PROPERTY_RUNS ?? 80), seed: Number(process.env.DW_PROPERTY_SEED ?? 20261121), endOnFailure: true },
    );
  } finally {
    work.done();
  }
});
