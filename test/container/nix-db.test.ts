// includeNixDB against Debian's nix-bin 2.8: the image umoci unpacks holds a
// Nix store whose database (/nix/var/nix in the customisation layer) Nix
// verifies with --verify --check-contents, with every path of the image
// valid with its references and hash, and nixpkgs' gcroots/docker roots;
// rebuilds under another clock, TZ and umask are identical; bad input is one
// line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { BIN, diskwright, diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { requireRoot, requireTools, run } from '../oracle/tools.ts';
import { buildFixture, makeNixStore, type FixtureName, type NixStore } from '../nix/nixstore.ts';

let store: NixStore;
let fixture: Record<FixtureName, string>;
let S: string;
let work: string;

const lines = (b: Buffer | string) => String(b).split('\n').filter((l) => l !== '');

before(() => {
  requireRoot('owners in the unpacked image');
  requireTools('umoci', 'faketime');
  store = makeNixStore();
  fixture = buildFixture(store);
  S = store.storeDir;
  work = fs.mkdtempSync(path.join(store.root, 'container-'));
  fs.mkdirSync(path.join(work, 'etc-src'));
  fs.writeFileSync(path.join(work, 'etc-src', 'motd'), 'hello\n');
  fs.symlinkSync(fixture.root, path.join(work, 'result'));
});

after(() => store?.cleanup());

const writeJson = (name: string, value: unknown) => writeJsonIn(work, name, value);
/** The closure comes from contents (a ./result symlink and a host directory) and from the config's Cmd. */
const config = (extra: object = {}) => ({ name: 'nixdb', tag: 'n', contents: ['result', 'etc-src'], nixStoreDir: S, includeNixDB: true, config: { Cmd: [fixture.tool] }, ...extra });

/** Nix on the image's store: its files at `rootfs`+S, its state at rootfs/nix/var/nix. */
function nixIn(rootfs: string, args: string[], allowFailure = false) {
  return store.run('nix-store', ['--store', `local?real=${rootfs}${S}`, ...args], { state: path.join(rootfs, 'nix/var/nix'), allowFailure });
}

test('includeNixDB: Nix finds every store path of the unpacked image valid, with its references and hash', () => {
  const layout = path.join(work, 'layout');
  diskwrightIn(work, ['container', writeJson('db.json', config()), '--format', 'oci-dir', '-o', layout]);
  const bundle = path.join(work, 'bundle');
  run('umoci', ['unpack', '--image', `${layout}:n`, bundle]);
  const rootfs = path.join(bundle, 'rootfs');
  const state = path.join(rootfs, 'nix/var/nix');

  // nixpkgs' roots (one per contents store path) and, beyond it, the config's store paths too.
  const docker = path.join(state, 'gcroots/docker');
  assert.deepEqual(fs.readdirSync(docker).sort(), [fixture.root, fixture.tool].map((p) => path.basename(p)).sort());
  for (const p of [fixture.root, fixture.tool]) assert.equal(fs.readlinkSync(path.join(docker, path.basename(p))), p);
  assert.equal(fs.readlinkSync(path.join(state, 'gcroots/profiles')), '/nix/var/nix/profiles');
  assert.equal(fs.readFileSync(path.join(state, 'db/schema'), 'utf8'), '10');
  assert.equal(fs.statSync(path.join(state, 'db/big-lock')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(state, 'db/reserved')).size, 8 * 2 ** 20);
  // The customisation layer's own files are still there.
  assert.equal(fs.readFileSync(path.join(rootfs, 'motd'), 'utf8'), 'hello\n');

  const closure = lines(store.run('nix-store', ['-qR', fixture.root, fixture.tool]).stdout).sort();
  // Every path of the image registered, and nothing else (read before Nix opens the database).
  const db = new DatabaseSync(path.join(state, 'db/db.sqlite'), { readOnly: true });
  assert.deepEqual(db.prepare('select path from ValidPaths order by id').all().map((r) => r.path), closure);
  db.close();
  const v = nixIn(rootfs, ['--verify', '--check-contents']);
  assert.doesNotMatch(v.stderr, /disappeared|modified|not valid|error/, v.stderr);
  assert.deepEqual(lines(nixIn(rootfs, ['-q', '--requisites', fixture.root, fixture.tool]).stdout).sort(), closure);
  for (const p of closure) {
    for (const q of ['--references', '--hash', '--size']) {
      assert.deepEqual(lines(nixIn(rootfs, ['-q', q, p]).stdout), lines(store.run('nix-store', ['-q', q, p]).stdout), `${q} ${p}`);
    }
  }
  // registrationTime is `created` (default 1970-01-01T00:00:01Z): the database has no clock in it.
  const info = JSON.parse(store.run('nix', ['path-info', '--json', '--store', `local?real=${rootfs}${S}`, fixture.root], { state }).stdout.toString());
  assert.equal(info[0].registrationTime, 1);

  // The check has teeth: a store file changed in the image is reported.
  const victim = path.join(rootfs + S, path.basename(fixture.data));
  fs.chmodSync(victim, 0o644);
  fs.writeFileSync(victim, 'changed\n');
  const bad = nixIn(rootfs, ['--verify', '--check-contents'], true);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /modified/);
});

test('includeNixDB: identical archives under another clock, TZ and umask', () => {
  const cfg = writeJson('repro.json', config());
  const a = path.join(work, 'a.tar');
  const b = path.join(work, 'b.tar');
  diskwrightIn(work, ['container', cfg, '-o', a], { env: { ...process.env, TZ: 'UTC' } });
  const r = spawnSync('/bin/sh', ['-c', 'umask 077; exec faketime "2031-05-05 10:00:00" "$@"', 'sh', process.execPath, BIN, 'container', cfg, '-o', b], { cwd: work, env: { ...process.env, TZ: 'Pacific/Kiritimati' } });
  assert.equal(r.status, 0, String(r.stderr));
  assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), 'the two archives differ');
});

test('includeNixDB bad input: no store paths, includeStorePaths false; one line, exit 1, nothing written', () => {
  const out = path.join(work, 'bad.tar');
  const fails = (cfg: object, message: RegExp) => {
    const r = diskwright(['container', writeJson('bad.json', cfg), '-o', out], { cwd: work });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(fs.existsSync(out), false);
  };
  fails(config({ contents: ['etc-src'], config: {} }), /^diskwright: includeNixDB: the image holds no store paths to register; give store paths/);
  fails(config({ includeStorePaths: false }), /^diskwright: includeNixDB: the image holds no store paths to register \(includeStorePaths is false\)/);
});
