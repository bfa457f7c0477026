// Closures, references, closureInfo files and registrations against a real
// Nix (Debian's nix-bin 2.8) with a throwaway store: see fixture.nix for what
// is built and closure-info.nix for the closureInfo reproduction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { closure } from '../../src/nix/closure.ts';
import { formatSha256 } from '../../src/nix/hash.ts';
import { narDigest, narNodeOfPath, writeNar } from '../../src/nix/nar.ts';
import { closureInfoFiles, formatRegistration } from '../../src/nix/registration.ts';
import { diskwright } from '../cli/run.ts';
import { buildClosureInfo, buildFixture, makeNixStore, validPaths, type FixtureName, type NixStore } from './nixstore.ts';

let store: NixStore;
let out: Record<FixtureName, string>;
let ciRoot: string;
let ciTwo: string;
let ciEmpty: string;
let S: string;

const FILES = ['store-paths', 'registration', 'total-nar-size'] as const;
const lines = (b: Buffer | string) => String(b).split('\n').filter((l) => l !== '');

before(() => {
  store = makeNixStore();
  S = store.storeDir;
  out = buildFixture(store);
  ciRoot = buildClosureInfo(store, [out.root]);
  ciTwo = buildClosureInfo(store, [out.lib, out.other]);
  ciEmpty = buildClosureInfo(store, []);
});
after(() => store?.cleanup());

function readCi(dir: string): Record<string, string> {
  return Object.fromEntries(FILES.map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
}

test('narHash, narSize and NAR bytes of every valid path equal nix-store -q --hash, -q --size and --dump', () => {
  const paths = validPaths(store);
  assert.ok(paths.length >= 20, `store has ${paths.length} paths`);
  const hashes = lines(store.run('nix-store', ['-q', '--hash', ...paths]).stdout);
  const sizes = lines(store.run('nix-store', ['-q', '--size', ...paths]).stdout).map(Number);
  paths.forEach((p, i) => {
    const chunks: Buffer[] = [];
    const size = writeNar(narNodeOfPath(p), (c) => chunks.push(Buffer.from(c)));
    const d = narDigest(narNodeOfPath(p));
    assert.equal(formatSha256(d.narHash), hashes[i], `${p}: narHash`);
    assert.equal(d.narSize, sizes[i], `${p}: narSize`);
    assert.equal(size, sizes[i]);
    const dump = store.run('nix-store', ['--dump', p]).stdout;
    assert.equal(dump.length, sizes[i], `${p}: nix-store --dump | wc -c`);
    assert.ok(Buffer.concat(chunks).equals(dump), `${p}: NAR bytes`);
  });
});

test('references found by scanning equal nix-store -q --references for every valid path', () => {
  const paths = validPaths(store);
  const c = closure(paths, { nixStoreDir: S });
  assert.deepEqual(c.paths.map((p) => p.path), paths, 'every valid path, sorted as Nix sorts them');
  for (const info of c.paths) {
    const theirs = lines(store.run('nix-store', ['-q', '--references', info.path]).stdout).sort();
    assert.deepEqual(info.references, theirs, info.path);
  }
  const byPath = new Map(c.paths.map((p) => [p.path, p]));
  // The kinds of reference the fixture holds, spelled out.
  assert.ok(byPath.get(out.lib)!.references.includes(out.lib), 'self-reference through a symlink target');
  assert.deepEqual(byPath.get(out.app)!.references, [out.data, out.named, out.tool].sort(), 'symlink target, contents past 1 MiB, file name');
  assert.deepEqual(byPath.get(out.other)!.references, []);
});

test('the closure of each fixture output equals nix-store -qR', () => {
  for (const [name, p] of Object.entries(out)) {
    const ours = closure([p], { nixStoreDir: S }).paths.map((x) => x.path);
    const theirs = lines(store.run('nix-store', ['-qR', p]).stdout).sort();
    assert.deepEqual(ours, theirs, name);
  }
  // A store derivation as root: its inputs are read from it, not scanned.
  const drv = lines(store.run('nix-store', ['-q', '--deriver', out.root]).stdout)[0];
  assert.deepEqual(closure([drv], { nixStoreDir: S }).paths.map((x) => x.path), lines(store.run('nix-store', ['-qR', drv]).stdout).sort(), drv);
});

test('diskwright closure writes store-paths, registration and total-nar-size byte-identical to closureInfo', () => {
  const dir = path.join(store.root, 'cli');
  fs.mkdirSync(dir);
  // A root given the way a user has it: a ./result symlink outside the store.
  const result = path.join(dir, 'result');
  fs.symlinkSync(out.root, result);
  const one = path.join(dir, 'one');
  const r = diskwright(['closure', result, '--nix-store-dir', S, '-o', one]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readCi(one), readCi(ciRoot));
  const expected = readCi(ciRoot);
  assert.ok(expected.registration.includes(`\n${formatSha256(narDigest(narNodeOfPath(out.dup1)).narHash)}\n`), 'closureInfo holds sha256:<nix32> hashes');
  // Two roots, one of them with a self-reference.
  const two = path.join(dir, 'two');
  const r2 = diskwright(['closure', out.other, out.lib, '--nix-store-dir', S, '-o', two]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual(readCi(two), readCi(ciTwo));
});

test('no roots: the same empty files as closureInfo with rootPaths = []', () => {
  assert.deepEqual(closureInfoFiles(closure([], { nixStoreDir: S }).paths), readCi(ciEmpty));
});

test('references from a closureInfo directory, nix-store --dump-db or nix path-info --json give the same files', () => {
  const expected = readCi(ciRoot);
  const closurePaths = lines(expected['store-paths']);
  const dumpDb = path.join(store.root, 'dump-db');
  const dumpText = store.run('nix-store', ['--dump-db', ...closurePaths]).stdout;
  fs.writeFileSync(dumpDb, dumpText);
  const pathInfo = path.join(store.root, 'path-info.json');
  fs.writeFileSync(pathInfo, store.run('nix', ['path-info', '--json', '-r', out.root]).stdout);
  for (const source of [ciRoot, dumpDb, pathInfo]) {
    for (const hashes of ['compute', 'given'] as const) {
      const c = closure([out.root], { nixStoreDir: S, references: source, hashes });
      assert.deepEqual(closureInfoFiles(c.paths), expected, `${path.basename(source)}, ${hashes}`);
    }
  }
  // With derivers and bare base-16 hashes the registration is what --dump-db prints.
  const c = closure([out.root], { nixStoreDir: S, references: dumpDb });
  assert.equal(formatRegistration(c.paths, { derivers: true, hashFormat: 'base16' }), dumpText.toString());
  assert.equal(c.paths.find((p) => p.path === out.root)!.deriver, lines(store.run('nix-store', ['-q', '--deriver', out.root]).stdout)[0]);
});

test('our registration loads with nix-store --load-db and nix-store --verify --check-contents finds nothing wrong in a copied store', () => {
  // The closure copied elsewhere, as it would be extracted from an image:
  // named under S, its files under `copy` (Nix's "real" store dir).
  const copy = path.join(store.root, 'copy');
  fs.mkdirSync(copy);
  const closurePaths = lines(readCi(ciRoot)['store-paths']);
  for (const p of closurePaths) fs.cpSync(p, path.join(copy, path.basename(p)), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  const ours = path.join(store.root, 'from-copy');
  const r = diskwright(['closure', `${S}/${path.basename(out.root)}`, '--store-dir', copy, '--nix-store-dir', S, '-o', ours]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readCi(ours), readCi(ciRoot), 'the closure of the copy, named under the original store dir');

  const fresh = path.join(store.root, 'fresh-state');
  const url = `local?real=${copy}&state=${fresh}`;
  store.run('nix-store', ['--store', url, '--load-db'], { input: fs.readFileSync(path.join(ours, 'registration')) });
  const v = store.run('nix-store', ['--store', url, '--verify', '--check-contents'], { allowFailure: true });
  const complaints = lines(v.stderr).filter((l) => !/^(reading the Nix store|checking path existence|checking link hashes|checking store hashes)\.\.\.$/.test(l));
  assert.equal(v.status, 0, v.stderr);
  assert.deepEqual(complaints, []);
  // The database now holds exactly what we registered.
  const db = store.run('nix-store', ['--store', url, '--dump-db', ...closurePaths]).stdout.toString();
  const c = closure([out.root], { nixStoreDir: S, storeDir: copy });
  assert.equal(db, formatRegistration(c.paths, { hashFormat: 'base16' }));
  const viaCopy = closure([path.join(copy, path.basename(out.root))], { nixStoreDir: S, storeDir: copy });
  assert.deepEqual(viaCopy.paths, c.paths, 'a root may be named by where its files are');
  assert.deepEqual(lines(store.run('nix-store', ['--store', url, '-qR', out.root]).stdout).sort(), closurePaths);

  // The check has teeth: a changed file is reported.
  const app = path.join(copy, path.basename(out.app));
  fs.chmodSync(app, 0o755);
  fs.writeFileSync(path.join(app, 'tampered'), 'x');
  const bad = store.run('nix-store', ['--store', url, '--verify', '--check-contents'], { allowFailure: true });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /was modified/);
});

test('hard links from nix-store --optimise: one inode on disk, counted in every NAR and in total-nar-size', () => {
  const ino = (p: string) => fs.statSync(p).ino;
  assert.equal(ino(path.join(out.dup1, 'same')), ino(path.join(out.dup2, 'same')), 'optimised into one inode');
  assert.equal(ino(path.join(out.lib, 'eight')), ino(path.join(out.lib, 'eight-hardlink')));
  const c = closure([out.root], { nixStoreDir: S });
  const sizes = lines(store.run('nix-store', ['-q', '--size', ...c.paths.map((p) => p.path)]).stdout).map(Number);
  assert.equal(c.totalNarSize, sizes.reduce((a, b) => a + b, 0));
  assert.equal(`${c.totalNarSize}\n`, readCi(ciRoot)['total-nar-size']);
});
