// The Nix database (src/nix/db.ts, nixDatabase), against Debian's nix-bin
// 2.8 with a throwaway store (nixstore.ts): the same tables, indexes,
// trigger and rows (ids included) as `nix-store --load-db` makes of the same
// registration, DerivationOutputs for .drv paths and derivers from a
// dump-db; then `build` with nixDatabase: the root filesystem, extracted,
// is a store Nix verifies (--verify --check-contents) with every path's
// references and hash, and /nix/var/nix as load-db leaves it. Rebuilds under
// another clock, TZ and umask are identical; bad input is one line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { BIN, diskwright, diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { requireTools } from '../oracle/tools.ts';
import { buildClosureInfo, buildFixture, makeNixStore, type FixtureName, type NixStore } from './nixstore.ts';
import { closure } from '../../src/nix/closure.ts';
import { nixDatabase, NIX_SCHEMA_VERSION } from '../../src/nix/db.ts';
import { nixStateOf } from '../../src/api/store.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { parseSha256 } from '../../src/nix/hash.ts';
import type { DiskLayout } from '../../src/api/build.ts';

const EPOCH = 1_700_000_000;

let store: NixStore;
let out: Record<FixtureName, string>;
let S: string;
let work: string;

const lines = (b: Buffer | string) => String(b).split('\n').filter((l) => l !== '');
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x)));

before(() => {
  requireTools('faketime');
  store = makeNixStore();
  out = buildFixture(store);
  S = store.storeDir;
  work = fs.mkdtempSync(path.join(store.root, 'work-'));
});

after(() => store?.cleanup());

/** Nix run on the store whose files are at `real` and whose state (database) is `state`. */
function nixAt(real: string, state: string, args: string[], opts: { input?: string; allowFailure?: boolean } = {}) {
  return store.run('nix-store', ['--store', `local?real=${real}`, ...args], { ...opts, state });
}

/** Everything SQLite says about a database's shape and rows, registrationTime apart. */
function describeDb(file: string) {
  const db = new DatabaseSync(file);
  try {
    const all = (sql: string) => plain(db.prepare(sql).all());
    // Nix's schema.sql has comments and column alignment; what SQLite keeps of it otherwise is the schema.
    const norm = (sql: string | null) => sql && sql.replace(/--[^\n]*/g, '').replace(/\s+/g, ' ').replace(/ ?([(),;]) ?/g, '$1').trim();
    const master = all('select type, name, tbl_name, sql from sqlite_master order by rowid').map((m: any) => ({ ...m, sql: norm(m.sql) }));
    const shape: Record<string, unknown> = {};
    for (const m of master) {
      if (m.type === 'table') shape[m.name] = { columns: all(`pragma table_info(${m.name})`), keys: all(`pragma foreign_key_list(${m.name})`), indexes: all(`pragma index_list(${m.name})`) };
      if (m.type === 'index') shape[m.name] = all(`pragma index_xinfo(${m.name})`);
    }
    return {
      master,
      shape,
      validPaths: all('select id, path, hash, deriver, narSize, ultimate, sigs, ca from ValidPaths order by id'),
      times: all('select distinct registrationTime as t from ValidPaths').map((r: any) => r.t),
      refs: all('select referrer, reference from Refs order by referrer, reference'),
      outputs: all('select drv, id, path from DerivationOutputs order by drv, id'),
      sequence: all('select name, seq from sqlite_sequence'),
      pragmas: ['page_size', 'encoding', 'auto_vacuum', 'user_version', 'application_id'].map((p) => all(`pragma ${p}`)),
    };
  } finally {
    db.close();
  }
}

/** `nix-store --load-db` of `registration` into a fresh state dir (the store files at `real`); its database. */
function loadDb(name: string, registration: string, real: string): { state: string; db: string } {
  const state = path.join(work, `${name}-state`);
  nixAt(real, state, ['--load-db'], { input: registration });
  return { state, db: path.join(state, 'db', 'db.sqlite') };
}

function writeDb(name: string, bytes: Buffer): string {
  const file = path.join(work, `${name}.sqlite`);
  fs.writeFileSync(file, bytes);
  return file;
}

function assertSameAsNix(ours: string, nix: string, paths: number): void {
  const a = describeDb(ours);
  const b = describeDb(nix);
  assert.deepEqual(a.times, [EPOCH]);
  assert.equal(a.validPaths.length, paths);
  for (const k of ['master', 'shape', 'validPaths', 'refs', 'outputs', 'sequence', 'pragmas'] as const) assert.deepEqual(a[k], b[k], k);
}

test('the database holds what nix-store --load-db makes of closureInfo\'s registration: schema, ids, hashes, sizes, references', () => {
  const c = closure([out.root], { nixStoreDir: S });
  const ours = writeDb('root', nixDatabase(c.paths, { registrationTime: EPOCH }));
  const registration = fs.readFileSync(path.join(buildClosureInfo(store, [out.root]), 'registration'), 'utf8');
  const nix = loadDb('root', registration, S);
  assertSameAsNix(ours, nix.db, c.paths.length);
  // Hashes as Nix stores them: sha256:<base-16>.
  const row = describeDb(ours).validPaths.find((r: any) => r.path === out.data) as any;
  const nixHash = lines(store.run('nix-store', ['-q', '--hash', out.data]).stdout)[0];
  assert.equal(row.hash, `sha256:${parseSha256(nixHash)!.toString('hex')}`);
  assert.equal(fs.readFileSync(nix.state + '/db/schema', 'utf8'), String(NIX_SCHEMA_VERSION), 'the schema version this nix-bin writes');
});

test('derivations and derivers: DerivationOutputs and deriver as load-db of a --dump-db registers them', () => {
  const drv = lines(store.run('nix-store', ['-q', '--deriver', out.root]).stdout)[0];
  const all = lines(store.run('nix-store', ['-qR', drv, out.root]).stdout);
  const dump = path.join(work, 'dump-db');
  fs.writeFileSync(dump, store.run('nix-store', ['--dump-db', ...all]).stdout);
  const c = closure([drv, out.root], { nixStoreDir: S, references: dump, hashes: 'given' });
  assert.ok(c.paths.some((p) => p.deriver !== null), 'the dump names derivers');
  const ours = writeDb('drv', nixStateDb(c));
  // Nix reads each .drv from the store when it registers it: the real store here.
  const nix = loadDb('drv', fs.readFileSync(dump, 'utf8'), S);
  assertSameAsNix(ours, nix.db, all.length);
  const outputs = describeDb(ours).outputs as Array<{ path: string }>;
  assert.ok(outputs.some((o) => o.path === out.root), 'the root derivation\'s output is recorded');
});

/** db.sqlite of the state tree nixStateOf makes (reading the .drv files as the build does). */
function nixStateDb(c: ReturnType<typeof closure>): Buffer {
  const tree = nixStateOf(c, { epoch: EPOCH, registrationTime: EPOCH, owner: { uid: 0, gid: 0 } });
  let e: any = tree;
  for (const n of ['nix', 'var', 'nix', 'db', 'db.sqlite']) e = e.children.get(n);
  return e.content;
}

test('the bytes depend only on the rows: equal for equal input, whatever order the paths come in', () => {
  const c = closure([out.root], { nixStoreDir: S });
  const a = nixDatabase(c.paths, { registrationTime: EPOCH });
  const b = nixDatabase([...c.paths].reverse(), { registrationTime: EPOCH });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, nixDatabase(c.paths, { registrationTime: EPOCH + 1 }));
  assert.equal(a.subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
  assert.equal(a.readUInt16BE(16), 4096);
});

test('bad input: a reference outside the paths, a .drv that is no derivation', () => {
  const c = closure([out.root], { nixStoreDir: S });
  const cut = c.paths.filter((p) => p.path !== out.lib);
  assert.throws(() => nixDatabase(cut, { registrationTime: EPOCH }), (e: unknown) => e instanceof DiskwrightError && e.code === 'REFERENCE_MISSING' && e.message.includes(out.lib));
  const fake = path.join(work, 'fake-store');
  fs.mkdirSync(fake);
  const bad = `${fake}/${'a'.repeat(32)}-bad.drv`;
  fs.writeFileSync(bad, 'not a derivation\n');
  const fc = closure([bad], { nixStoreDir: fake });
  assert.throws(() => nixStateOf(fc, { epoch: EPOCH, registrationTime: EPOCH, owner: { uid: 0, gid: 0 } }), (e: unknown) => e instanceof DiskwrightError && e.code === 'STORE_PATH_INVALID' && e.message.includes('-bad.drv'));
});

// ---- disks: build with nixDatabase ----

const writeJson = (name: string, value: unknown) => writeJsonIn(work, name, value);

function diskConfig(name: string, extra: object = {}): string {
  return writeJson(`${name}.json`, { partitionTableType: 'legacy', storePaths: [out.root], nixStoreDir: S, nixDatabase: true, epoch: EPOCH, additionalSpace: '8M', ...extra });
}

function buildDisk(name: string, cfg: string, env: NodeJS.ProcessEnv = {}, wrap: string[] = []): string {
  const outDir = path.join(work, `out-${name}`);
  const r = spawnSync(wrap[0] ?? process.execPath, [...wrap.slice(1), ...(wrap.length ? [process.execPath] : []), BIN, 'build', cfg, '-o', outDir], { cwd: work, env: { ...process.env, ...env } });
  assert.equal(r.status, 0, String(r.stderr));
  const layout: DiskLayout = JSON.parse(fs.readFileSync(path.join(outDir, 'layout.json'), 'utf8'));
  return path.join(outDir, layout.image);
}

interface Seen { path: string; type: string; mode: number; uid: number; gid: number; size?: number; target?: string }

/** /nix/var/nix as a list: types, modes, owners, file sizes, link targets; per-user/<user> dirs (the builder's own) left out. */
function walkState(dir: string): Seen[] {
  const seen: Seen[] = [];
  const walk = (rel: string) => {
    const st = fs.lstatSync(path.join(dir, rel));
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    if (/\/per-user\/[^/]+$/.test(rel)) return;
    seen.push({ path: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, ...(type === 'file' && !rel.endsWith('db.sqlite') ? { size: st.size } : {}), ...(type === 'symlink' ? { target: fs.readlinkSync(path.join(dir, rel)) } : {}) });
    if (type === 'dir') for (const n of fs.readdirSync(path.join(dir, rel)).sort()) walk(`${rel}/${n}`);
  };
  walk('.');
  return seen;
}

test('build with nixDatabase: Nix verifies the extracted root\'s store, every path valid with its references and hash', () => {
  const image = buildDisk('disk', diskConfig('disk'));
  const root = path.join(work, 'disk-root');
  diskwrightIn(work, ['extract', `${image}:1`, root, '-q']);
  // The database replaces the registration NixOS would load on first boot.
  assert.equal(fs.existsSync(path.join(root, 'nix-path-registration')), false);
  const state = path.join(root, 'nix/var/nix');
  // What load-db leaves in a fresh state dir, but for the WAL switch Nix makes when it opens the database.
  const registration = fs.readFileSync(path.join(buildClosureInfo(store, [out.root]), 'registration'), 'utf8');
  const nix = loadDb('disk', registration, S);
  // Nix run with state=DIR points gcroots/profiles at DIR/profiles; in the image it is /nix/var/nix/profiles.
  const asImage = (e: Seen) => (e.target?.startsWith(nix.state + '/') ? { ...e, target: '/nix/var/nix' + e.target.slice(nix.state.length) } : e);
  assert.deepEqual(walkState(state), walkState(nix.state).map(asImage));
  const before = fs.readFileSync(path.join(state, 'db/db.sqlite'));

  const real = root + S;
  const closurePaths = lines(store.run('nix-store', ['-qR', out.root]).stdout).sort();
  const v = nixAt(real, state, ['--verify', '--check-contents']);
  assert.doesNotMatch(v.stderr, /disappeared|modified|not valid|error/, v.stderr);
  assert.deepEqual(lines(nixAt(real, state, ['-q', '--requisites', out.root]).stdout).sort(), closurePaths);
  for (const p of closurePaths) {
    assert.deepEqual(lines(nixAt(real, state, ['-q', '--references', p]).stdout), lines(store.run('nix-store', ['-q', '--references', p]).stdout), p);
    for (const q of ['--hash', '--size', '--deriver']) assert.deepEqual(lines(nixAt(real, state, ['-q', q, p]).stdout), lines(store.run('nix-store', ['-q', q, p]).stdout).map((l) => (q === '--deriver' ? 'unknown-deriver' : l)), `${q} ${p}`);
  }
  assert.notDeepEqual(fs.readFileSync(path.join(state, 'db/db.sqlite')), before, 'Nix opened (and so accepted) the database');

  // The check has teeth: a changed file is reported.
  const victim = path.join(real, path.basename(out.data));
  fs.chmodSync(path.dirname(victim), 0o755);
  fs.chmodSync(victim, 0o644);
  fs.writeFileSync(victim, 'changed\n');
  const bad = nixAt(real, state, ['--verify', '--check-contents'], { allowFailure: true });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /modified/);
});

test('build with nixDatabase and partitions: each ext4 partition with storePaths registers its own closure, a FAT one none', () => {
  const cfg = writeJson('custom.json', {
    partitionTableType: 'gpt', nixDatabase: true, nixStoreDir: S, epoch: EPOCH,
    partitions: [
      { label: 'esp', type: 'esp', fs: 'vfat', size: '34M', storePaths: [out.data] },
      { label: 'root', type: 'root', fs: 'ext4', storePaths: [out.tool], freeSpace: '1M' },
    ],
  });
  const image = buildDisk('custom', cfg);
  const esp = path.join(work, 'custom-esp');
  const root = path.join(work, 'custom-root');
  diskwrightIn(work, ['extract', `${image}:esp`, esp, '-q']);
  diskwrightIn(work, ['extract', `${image}:root`, root, '-q']);
  assert.ok(fs.existsSync(esp + out.data));
  assert.equal(fs.existsSync(path.join(esp, 'nix/var')), false);
  assert.equal(fs.existsSync(path.join(root, 'nix-path-registration')), false);
  const state = path.join(root, 'nix/var/nix');
  const v = nixAt(root + S, state, ['--verify', '--check-contents']);
  assert.doesNotMatch(v.stderr, /disappeared|modified|not valid|error/, v.stderr);
  assert.deepEqual(lines(nixAt(root + S, state, ['-q', '--requisites', out.tool]).stdout).sort(), lines(store.run('nix-store', ['-qR', out.tool]).stdout).sort());
});

test('build with nixDatabase: identical bytes under another clock, TZ and umask', () => {
  const cfg = diskConfig('repro');
  const a = buildDisk('repro-a', cfg, { TZ: 'UTC' });
  const b = buildDisk('repro-b', cfg, { TZ: 'Pacific/Kiritimati' }, ['/bin/sh', '-c', 'umask 077; exec faketime "2031-05-05 10:00:00" "$@"', 'sh']);
  assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), 'the two images differ');
});

test('nixDatabase bad input: no store paths, onlyNixStore, no scratch space; one line, exit 1, nothing written', () => {
  const cases: Array<[string, object, RegExp]> = [
    ['none', { storePaths: [] }, /^diskwright: nixDatabase: the image has no store paths to register; give storePaths/],
    ['only', { onlyNixStore: true, partitionTableType: 'none' }, /^diskwright: nixDatabase: with onlyNixStore/],
  ];
  // No scratch space for the database: TMPDIR is a file.
  const notDir = path.join(work, 'tmp-is-a-file');
  fs.writeFileSync(notDir, '');
  cases.push(['tmpdir', { env: { ...process.env, TMPDIR: notDir } }, /^diskwright: cannot write the Nix database in .*tmp-is-a-file: not a directory; set TMPDIR/]);
  for (const [name, extra, message] of cases) {
    const outDir = path.join(work, `bad-${name}`);
    const { env, ...cfg } = extra as { env?: NodeJS.ProcessEnv };
    const r = diskwright(['build', diskConfig(`bad-${name}`, cfg), '-o', outDir], { cwd: work, env });
    assert.equal(r.status, 1, name);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(fs.existsSync(outDir), false, name);
  }
});
