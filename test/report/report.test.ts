// `report` and `build --report` against the readers' own figures and real
// consumers: the size tree adds up to inspect's allocated size (and its
// filesystems' free space to their free blocks) for an ext4 image, a FAT
// image and a GPT disk holding a Nix closure (Debian's nix-bin builds it,
// test/nix/fixture.nix); closure sizes count what `nix-store -qR` lists,
// with references from the registration and, without one, from scanning;
// headless Chromium runs the page: no console messages, treemap boxes, the
// biggest store path first in the table.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diskwright, diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { findTool, requireRoot } from '../oracle/tools.ts';
import { buildFixture, makeNixStore, type FixtureName, type NixStore } from '../nix/nixstore.ts';
import { inspectImage } from '../../src/api/inspect.ts';
import { sizeReport, type SizeNode, type SizeReport } from '../../src/report/report.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { convertImage } from '../../src/api/convert.ts';
import { DatabaseSync } from 'node:sqlite';

const EPOCH = 1_700_000_000;

let store: NixStore;
let out: Record<FixtureName, string>;
let S: string;
let work: string;
/** A small ext4 and FAT image (plainImages). */
let ext4: string;
let fat: string;

const lines = (b: Buffer | string) => String(b).split('\n').filter((l) => l !== '');
const dw = (args: string[]) => diskwrightIn(work, args);

/** Every node's figures are its children's sums; returns the nodes of each kind. */
function checkSums(n: SizeNode, kinds = new Map<string, SizeNode[]>()): Map<string, SizeNode[]> {
  kinds.set(n.kind, [...(kinds.get(n.kind) ?? []), n]);
  if (n.children) {
    assert.equal(n.children.reduce((s, k) => s + k.size, 0), n.size, `${n.name}: children's sizes add up`);
    assert.equal(n.children.reduce((s, k) => s + k.span, 0), n.span, `${n.name}: children's spans add up`);
    for (const k of n.children) checkSums(k, kinds);
  }
  return kinds;
}

/**
 * Flushes a freshly written image: until the host file system has allocated
 * its delayed blocks, the file's allocated size can still change.
 */
function settle(image: string): void {
  const fd = fs.openSync(image, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The report's totals against inspect: allocated size, virtual size, and each filesystem's free space. */
function checkAgainstInspect(image: string, r: SizeReport): Map<string, SizeNode[]> {
  const i = inspectImage(image);
  assert.equal(r.root.size, i.allocatedSize, `${image}: the sizes add up to inspect's allocated size`);
  assert.equal(r.allocatedSize, i.allocatedSize);
  assert.equal(r.root.span, i.virtualSize, `${image}: the spans add up to the virtual size`);
  const kinds = checkSums(r.root);
  // Free space: what no structure or entry owns is what the filesystem counts as free.
  const free = (kinds.get('free') ?? []).reduce((s, n) => s + n.span, 0);
  assert.equal(free, i.filesystems.reduce((s, f) => s + f.freeBlocks * f.blockSize, 0), `${image}: free space is the free blocks`);
  return kinds;
}

/** Nix's own view of root's closure: each path's NAR size and references (nix path-info --json -r). */
let nixGraph: Map<string, { narSize: number; references: string[] }> | undefined;
function pathInfo(): Map<string, { narSize: number; references: string[] }> {
  const info = JSON.parse(String(store.run('nix', ['path-info', '--json', '-r', out.root]).stdout)) as Array<{ path: string; narSize: number; references: string[] }>;
  return new Map(info.map((i) => [i.path, { narSize: i.narSize, references: i.references }]));
}

/** Each row's closure is the paths Nix's references reach from it, and its size theirs summed. */
function checkClosures(rep: SizeReport, what: string): void {
  const byPath = new Map(rep.storePaths.map((p) => [p.path, p]));
  for (const p of nixGraph!.keys()) {
    const reach = new Set([p]);
    for (const q of reach) for (const ref of nixGraph!.get(q)!.references) reach.add(ref);
    const row = byPath.get(p);
    assert.equal(row?.closureCount, reach.size, `${what}: ${p}'s closure`);
    assert.equal(row.closureSize, [...reach].reduce((s, q) => s + byPath.get(q)!.size, 0), `${what}: ${p}'s closure size`);
  }
}

before(() => {
  requireRoot('report tests (nix-bin store as in test/nix)');
  store = makeNixStore();
  S = store.storeDir;
  out = buildFixture(store);
  work = path.join(store.root, 'work');
  fs.mkdirSync(work);
  fs.symlinkSync(out.root, path.join(work, 'result'));
  plainImages();
});

after(() => store?.cleanup());

/** A small ext4 and FAT image of the same tree. */
function plainImages(): void {
  const src = path.join(work, 'tree');
  fs.mkdirSync(path.join(src, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(src, 'a/big'), Buffer.alloc(300_000, 7));
  fs.writeFileSync(path.join(src, 'a/b/small'), 'hi\n');
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, `f${i}`), `${i}\n`);
  ext4 = path.join(work, 'plain.ext4');
  fat = path.join(work, 'plain.fat');
  dw(['mkfs', 'ext4', src, '--epoch', String(EPOCH), '-o', ext4]);
  dw(['mkfs', 'vfat', src, '--epoch', String(EPOCH), '-o', fat]);
  settle(ext4);
  settle(fat);
}

test('ext4 and FAT images: the tree adds up to inspect\'s allocated size; metadata and free space are boxes of their own', () => {
  for (const [image, meta] of [[ext4, ['inode tables', 'bitmaps', 'journal', 'superblocks', 'group descriptors']], [fat, ['FAT tables', 'reserved sectors']]] as const) {
    const r = sizeReport(image);
    const kinds = checkAgainstInspect(image, r);
    const metadata = r.root.children!.find((k) => k.name === 'filesystem metadata')!;
    for (const m of meta) assert.ok(metadata.children!.some((k) => k.name === m && k.span > 0), `${image}: ${m}`);
    const big = (kinds.get('file') ?? []).find((n) => n.name === 'big');
    assert.ok(big && big.span >= 300_000 && big.span < 300_000 + 16384, `${image}: a/big takes its blocks`);
  }
});

test('a GPT disk with a Nix closure (build --report): sizes add up, closure sizes as nix-store -qR lists them, the page runs in Chromium', () => {
  const config = writeJsonIn(work, 'efi.json', {
    partitionTableType: 'efi', bootSize: '16M', additionalSpace: '1M', epoch: EPOCH, storePaths: ['./result'], nixStoreDir: S, nixDatabase: true,
  });
  dw(['build', config, '-o', path.join(work, 'out'), '--report']);
  const layout = JSON.parse(fs.readFileSync(path.join(work, 'out/layout.json'), 'utf8'));
  const image = path.join(work, 'out', layout.image);
  settle(image);
  const page = `${image}.html`;
  assert.ok(fs.existsSync(page), 'build --report writes IMAGE.html beside the image');

  // The data on the page: the same figures the API gives.
  const html = fs.readFileSync(page, 'utf8');
  const json = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html);
  assert.ok(json, 'the data block');
  const data = JSON.parse(json[1]) as { tree: unknown[]; storePaths: Array<[string, number, number, number | null, number, number, number]> };
  const r = sizeReport(image);
  assert.equal(data.tree[2], inspectImage(image).allocatedSize, 'the page\'s total is inspect\'s allocated size');
  const kinds = checkAgainstInspect(image, r);
  assert.ok((kinds.get('table') ?? []).some((n) => n.name === 'GPT (primary)'), 'the GPT is a box');
  assert.ok((kinds.get('partition') ?? []).length >= 2, 'the partitions');
  assert.ok(html.length < 2 << 20 && !/\bsrc=|\bhref="http/.test(html), 'self-contained');
  // In containers too: their clusters where the host holds them, their headers and tables as overhead.
  for (const format of ['qcow2', 'vdi', 'vpc'] as const) {
    const converted = path.join(work, `converted.${format}`);
    convertImage({ input: image, output: converted, format });
    settle(converted);
    const c = sizeReport(converted);
    checkAgainstInspect(converted, c);
    assert.equal(c.root.span, r.root.span);
  }

  // Closures: what Nix lists, from the database (ahead of the registration).
  nixGraph ??= pathInfo();
  assert.equal(r.referencesSource, '/nix/var/nix/db/db.sqlite');
  for (const [p, info] of nixGraph) assert.equal(r.storePaths.find((x) => x.path === p)?.narSize, info.narSize, `${p}: NAR size from the database`);
  assert.deepEqual(r.storePaths.map((p) => p.path).sort(), [...nixGraph.keys()].sort(), 'one row per store path of the closure');
  checkClosures(r, 'database');
  // The biggest path by Nix's own measure leads the table.
  const biggest = [...nixGraph].sort((a, b) => b[1].narSize - a[1].narSize)[0][0];
  assert.equal(r.storePaths[0].path, biggest);
  assert.equal(data.storePaths[0][0], biggest);

  // --top N in the terminal.
  const top = diskwright(['report', image, '--top', '3'], { cwd: work });
  assert.equal(top.status, 0, top.stderr.toString());
  const printed = lines(top.stdout);
  const ranking = printed.slice(printed.findIndex((l) => l.startsWith('largest store paths')) + 2);
  assert.equal(ranking.length, 3);
  assert.match(ranking[0], new RegExp(`\\s${biggest.replace(/[.+]/g, '\\$&')}$`));

  const asJson = diskwright(['report', image, '--top', '2', '--json'], { cwd: work });
  assert.equal(asJson.status, 0, String(asJson.stderr));
  const doc = JSON.parse(String(asJson.stdout)) as SizeReport;
  assert.deepEqual(doc.storePaths.map((p) => p.path), r.storePaths.slice(0, 2).map((p) => p.path));
  assert.equal(doc.allocatedSize, r.allocatedSize);

  // Chromium, once: zoomed (through the address) into the store directory.
  const chromium = findTool('chromium');
  assert.ok(chromium, 'chromium missing (Debian: apt-get install -y chromium)');
  const part = r.root.children!.find((k) => k.kind === 'partition' && k.name.includes('ext4'))!;
  const zoom = [part.name, '/ (files)', ...S.split('/').filter(Boolean)].map(encodeURIComponent).join('/');
  const c = spawnSync(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${path.join(work, 'chromium')}`,
    '--enable-logging=stderr', '--v=0', '--dump-dom', `file://${page}#zoom=${zoom}`,
  ], { timeout: 60_000, maxBuffer: 64 << 20 });
  const stderr = String(c.stderr);
  assert.equal(c.status, 0, stderr);
  assert.deepEqual(stderr.split('\n').filter((l) => /:CONSOLE/.test(l)), [], 'no console messages');
  const dom = String(c.stdout);
  const map = /<div id="treemap">(.*?)<\/div>\s*<h2>/s.exec(dom)?.[1] ?? '';
  const boxes = map.match(/class="box[ "]/g) ?? [];
  assert.ok(boxes.length >= 5, `the treemap has boxes (${boxes.length})`);
  assert.ok(map.includes(path.basename(biggest)), 'a box per store path: the biggest one is there');
  assert.match(/<nav id="breadcrumb">(.*?)<\/nav>/s.exec(dom)?.[1] ?? '', /store \(/, 'zoomed into the store');
  const firstRow = /<table id="store-paths">.*?<tbody><tr><td class="path">([^<]*)<\/td>/s.exec(dom);
  assert.equal(firstRow?.[1], biggest, 'the table lists the biggest store path first');
});

test('references from the registration, else by scanning the store paths: the closures Nix lists, in the store dir or at the root (onlyNixStore)', () => {
  nixGraph ??= pathInfo();
  const variants = [['registration', [], '/nix-path-registration'], ['noreg', ['--no-nix-path-registration'], 'scanning file contents for store hashes'], ['only-store', ['--only-nix-store'], 'scanning file contents for store hashes']] as const;
  for (const [name, flags, source] of variants) {
    const image = path.join(work, `${name}.img`);
    dw(['mkfs', 'ext4', '--store-path', './result', '--nix-store-dir', S, ...flags, '--epoch', String(EPOCH), '-o', image]);
    settle(image);
    // The registration names the store dir; without one it is the given one (or the root).
    const r = sizeReport(image, name === 'registration' ? {} : { nixStoreDir: S });
    const kinds = checkAgainstInspect(image, r);
    assert.equal(r.referencesSource, source);
    assert.equal((kinds.get('store-path') ?? []).length, nixGraph.size, `${image}: a box per store path`);
    checkClosures(r, image);
  }
});

test('damaged images: a report whose sums hold, or one line of error; never a hang or a crash', () => {
  // A fixed-seed generator: the same damage on every run.
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const outcomes = { reports: 0, errors: 0 };
  for (const image of [ext4, fat]) {
    const pristine = fs.readFileSync(image);
    const damaged = path.join(work, `damaged-${path.basename(image)}`);
    for (let round = 0; round < 25; round++) {
      const bytes = Buffer.from(pristine);
      // Damage where the structures are: the first 64 KiB (superblock, descriptors, FATs, directories).
      for (let k = 0; k < 16; k++) bytes[next() % Math.min(bytes.length, 65536)] = next() & 0xff;
      fs.writeFileSync(damaged, bytes);
      try {
        const r = sizeReport(damaged);
        checkSums(r.root);
        assert.equal(r.root.size, inspectImage(damaged).allocatedSize);
        outcomes.reports++;
      } catch (e) {
        if (!(e instanceof DiskwrightError)) throw e;
        assert.doesNotMatch(e.message, /\n/);
        outcomes.errors++;
      }
    }
  }
  assert.ok(outcomes.reports > 0 && outcomes.errors > 0, `both kinds met: ${JSON.stringify(outcomes)}`);
});

test('a database whose ValidPaths is a view (one that never ends): not run, a warning, the registration used', () => {
  const root = path.join(work, 'hostile-db');
  fs.mkdirSync(path.join(root, 'nix/var/nix/db'), { recursive: true });
  const db = new DatabaseSync(path.join(root, 'nix/var/nix/db/db.sqlite'));
  db.exec('CREATE TABLE Refs (referrer INTEGER, reference INTEGER); CREATE VIEW ValidPaths AS WITH RECURSIVE c(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM c) SELECT id, \'/nix/store/x\' AS path, 0 AS narSize FROM c');
  db.close();
  const p = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x';
  fs.mkdirSync(path.join(root, 'nix/store'));
  fs.writeFileSync(path.join(root, p), 'x\n');
  fs.writeFileSync(path.join(root, 'nix-path-registration'), `${p}\nsha256:${'0'.repeat(52)}\n120\n\n0\n`);
  const image = path.join(work, 'hostile-db.img');
  dw(['mkfs', 'ext4', root, '--epoch', String(EPOCH), '-o', image]);
  const r = sizeReport(image);
  assert.ok(r.warnings.some((w) => w.startsWith('/nix/var/nix/db/db.sqlite: not a Nix database')), r.warnings.join('\n'));
  assert.equal(r.referencesSource, '/nix-path-registration');
  assert.deepEqual(r.storePaths.map((x) => [x.path, x.narSize, x.closureCount]), [[p, 120, 1]]);
});

test('bad input: one line naming the image, exit 1, no page left behind', () => {
  for (const [name, bytes] of [['junk.img', Buffer.from('not an image\n'.repeat(400))]] as const) {
    const image = path.join(work, name);
    fs.writeFileSync(image, bytes);
    const page = path.join(work, `${name}.html`);
    const r = diskwright(['report', image, '-o', page], { cwd: work });
    assert.equal(r.status, 1, String(r.stderr));
    assert.equal(lines(r.stderr).length, 1, String(r.stderr));
    assert.ok(String(r.stderr).includes(image), String(r.stderr));
    assert.ok(!fs.existsSync(page), `${name}: no page`);
  }
});
