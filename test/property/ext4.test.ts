// Property: for random trees (UTF-8 names up to 255 bytes, depths, sizes,
// holes, symlinks, hard links, owners, modes, nanosecond times, xattrs) the
// image is e2fsck-clean and, loop-mounted, equal to its source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { planExt4Image } from '../../src/api/mkfs.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { diffSnapshots, snapshotTree } from '../oracle/snapshot.ts';
import { e2fsck, requireRoot, withLoopMount } from '../oracle/tools.ts';
import { pattern } from './pattern.ts';

interface FileSpec { kind: 'file'; size: number; sparse: boolean; seed: number }
interface LinkSpec { kind: 'symlink'; target: string }
interface DirSpec { kind: 'dir'; children: Array<[string, NodeSpec]> }
type NodeSpec = FileSpec | LinkSpec | DirSpec;
interface Meta { mode: number; uid: number; gid: number; sec: number; nsec: number; xattrs: Array<[string, Buffer]> }

const utf8Len = (s: string) => Buffer.byteLength(s, 'utf8');
const validName = (s: string) => s !== '.' && s !== '..' && !s.includes('/') && !s.includes('\0') && utf8Len(s) <= 255 && s !== 'lost+found';
const shortName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 });
const longName = fc.tuple(fc.constantFrom('a', 'é', '語', '🦀'), fc.integer({ min: 40, max: 255 })).map(([c, n]) => {
  let s = '';
  while (utf8Len(s + c) <= n) s += c;
  return s;
});
const name = fc.oneof({ weight: 6, arbitrary: shortName }, { weight: 1, arbitrary: longName }).filter(validName);

const file = fc.record({
  kind: fc.constant('file' as const),
  size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 4096, max: 400_000 })),
  sparse: fc.boolean(),
  seed: fc.nat(),
});
const symlink = fc.record({
  kind: fc.constant('symlink' as const),
  target: fc.oneof(fc.string({ minLength: 1, maxLength: 50 }), fc.string({ minLength: 60, maxLength: 300 })).filter((t) => !t.includes('\0') && utf8Len(t) <= 4095),
});
const { tree } = fc.letrec((tie) => ({
  tree: fc.record({
    kind: fc.constant('dir' as const),
    children: fc.uniqueArray(fc.tuple(name, fc.oneof({ depthSize: 'small', withCrossShrink: true }, file, symlink, tie('tree') as fc.Arbitrary<DirSpec>)), {
      maxLength: 8,
      selector: (c) => c[0],
    }),
  }),
}));
const meta = fc.record({
  mode: fc.integer({ min: 0, max: 0o7777 }),
  uid: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 70_000 }), fc.constant(4_000_000_000)),
  gid: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 70_000 })),
  sec: fc.oneof(fc.integer({ min: 0, max: 2_000_000_000 }), fc.integer({ min: -2_000_000_000, max: 8_000_000_000 })),
  nsec: fc.integer({ min: 0, max: 999_999_999 }),
  xattrs: fc.uniqueArray(fc.tuple(fc.stringMatching(/^user\.[a-z0-9_.]{1,40}$/), fc.uint8Array({ maxLength: 1200 }).map((a) => Buffer.from(a))), { maxLength: 4, selector: (x) => x[0] }),
});
const scenario = fc.record({
  tree,
  metas: fc.array(meta, { minLength: 1, maxLength: 40 }),
  links: fc.array(fc.tuple(fc.nat(), fc.nat(), name), { maxLength: 4 }),
});

/** Writes the scenario under root; returns nothing, the source snapshot is the truth. */
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function materialize(root: string, s: Scenario) {
  let m = 0;
  const nextMeta = () => s.metas[m++ % s.metas.length];
  const files: string[] = [];
  const dirs: Array<[string, Meta]> = [];
  const apply = (p: string, md: Meta, isLink: boolean) => {
    fs.lchownSync(p, md.uid, md.gid);
    if (!isLink) fs.chmodSync(p, md.mode | (fs.lstatSync(p).isDirectory() ? 0o700 : 0));
    for (const [k, v] of md.xattrs) if (!isLink) setXattr(p, k, v);
  };
  const walk = (dir: string, spec: DirSpec) => {
    for (const [n, child] of spec.children) {
      const p = path.join(dir, n);
      const md = nextMeta();
      if (child.kind === 'dir') {
        fs.mkdirSync(p);
        walk(p, child);
        dirs.push([p, md]);
        continue;
      }
      if (child.kind === 'symlink') {
        fs.symlinkSync(child.target, p);
        apply(p, md, true);
        fs.lutimesSync(p, md.sec + md.nsec / 1e9, md.sec + md.nsec / 1e9);
        continue;
      }
      const fd = fs.openSync(p, 'w');
      if (child.sparse && child.size > 8192) {
        fs.ftruncateSync(fd, child.size);
        for (let at = child.seed % 4096; at < child.size; at += 3 * 65536) fs.writeSync(fd, pattern(child.seed + at, Math.min(5000, child.size - at)), 0, Math.min(5000, child.size - at), at);
      } else {
        fs.writeSync(fd, pattern(child.seed, child.size));
      }
      fs.closeSync(fd);
      apply(p, md, false);
      fs.utimesSync(p, md.sec + md.nsec / 1e9, md.sec + md.nsec / 1e9);
      files.push(p);
    }
  };
  fs.mkdirSync(root);
  walk(root, s.tree);
  const allDirs = [root, ...dirs.map((d) => d[0])];
  for (const [fi, di, n] of s.links) {
    if (!files.length) break;
    const target = path.join(allDirs[di % allDirs.length], n);
    if (!fs.existsSync(target)) fs.linkSync(files[fi % files.length], target);
  }
  for (const [p, md] of dirs.reverse()) {
    apply(p, md, false);
    fs.utimesSync(p, md.sec + md.nsec / 1e9, md.sec + md.nsec / 1e9);
  }
}

function setXattr(p: string, name: string, value: Buffer) {
  const r = spawnSync('setfattr', ['-n', name, '-v', value.length ? `0x${value.toString('hex')}` : '""', p]);
  if (r.status !== 0) throw new Error(`setfattr ${name} on ${p} failed: ${r.stderr}`);
}

test('random trees: e2fsck-clean and equal to their source when mounted', { timeout: 20 * 60_000 }, async () => {
  requireRoot('property test (owners)');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-prop-'));
  let n = 0;
  try {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const dir = path.join(work, `t${n++}`);
        materialize(dir, s);
        const img = `${dir}.img`;
        try {
          const { image } = planExt4Image({ sources: [dir], size: 'auto' });
          writeImageFile(image, img);
          const fsck = e2fsck(img);
          assert.deepEqual(fsck.problems, [], fsck.output);
          const source = snapshotTree(dir);
          const mounted = await withLoopMount(img, (mnt) => snapshotTree(mnt));
          assert.deepEqual(diffSnapshots(source, mounted, { labels: ['source', 'image'] }), []);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
          fs.rmSync(img, { force: true });
        }
      }),
      { numRuns: Number(process.env.DW_PROPERTY_RUNS ?? 200), seed: Number(process.env.DW_PROPERTY_SEED ?? 20261121), endOnFailure: true },
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
