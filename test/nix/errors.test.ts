// Bad input to `closure` and `nar`: one line naming the input and what to do,
// exit status 1, nothing written. A hand-made store; no Nix needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { closure } from '../../src/nix/closure.ts';
import { narDigest, narNodeOfPath } from '../../src/nix/nar.ts';
import { formatRegistration, parseRegistration, writeClosureInfo } from '../../src/nix/registration.ts';
import { readReferenceSource } from '../../src/nix/references.ts';
import { diskwright } from '../cli/run.ts';
import { expectUserError } from '../errors.ts';

let work: string;
let S: string;
let A: string;
let B: string;
let good: string;

const H = (c: string) => c.repeat(32);

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-nixerr-'));
  S = path.join(work, 'store');
  fs.mkdirSync(S);
  A = `${S}/${H('a')}-a`;
  B = `${S}/${H('b')}-b`;
  fs.mkdirSync(A);
  fs.writeFileSync(path.join(A, 'uses-b'), `${B}/bin/b\n`);
  fs.writeFileSync(B, 'b\n');
  fs.writeFileSync(path.join(work, 'outside'), 'not in the store');
  good = formatRegistration(closure([A], { nixStoreDir: S }).paths);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function expectCliError(args: string[], pattern: RegExp): void {
  const out = path.join(work, 'out');
  const r = diskwright([...args, ...(args[0] === 'closure' ? ['--nix-store-dir', S, '-o', out] : [])]);
  assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
  const l = r.stderr.trimEnd().split('\n');
  assert.equal(l.length, 1, `one line: ${r.stderr}`);
  assert.match(l[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(fs.existsSync(out), false, 'nothing written');
}

const expectError = expectUserError;

function file(name: string, text: string): string {
  const p = path.join(work, name);
  fs.writeFileSync(p, text);
  return p;
}

test('a store path that does not exist', () => {
  expectCliError(['closure', `${S}/${H('c')}-nope`], /^diskwright: store path .*-nope does not exist \(a root\); build or copy it there/);
});

test('a referenced store path that is not in the store dir', () => {
  const partial = path.join(work, 'partial');
  fs.cpSync(A, path.join(partial, path.basename(A)), { recursive: true });
  expectError(
    () => closure([A], { nixStoreDir: S, storeDir: partial, references: file('reg-good', good) }),
    'STORE_PATH_MISSING',
    /^store path .*-b does not exist \(referenced by .*-a, looked for .*partial\/b+-b\); build or copy it there, or give the right --store-dir$/,
  );
});

test('a path outside the store dir', () => {
  expectCliError(['closure', path.join(work, 'outside')], /^diskwright: root .*\/outside is outside the store dir .*\/store; give a store path or a symlink to one/);
  expectError(() => closure([`${S}/not-a-store-path`], { nixStoreDir: S }), 'STORE_PATH_INVALID', /not-a-store-path is not a store path name/);
});

test('a malformed registration names the line', () => {
  const bad = good.split('\n');
  bad[2] = '12x'; // narSize of the first path
  expectCliError(['closure', A, '--references-from', file('reg-bad-size', bad.join('\n'))], /^diskwright: registration .*reg-bad-size line 3: expected the narSize of .*-a \(a decimal number\), found "12x"/);
  const l = good.split('\n');
  expectError(() => parseRegistration(l.slice(0, 3).join('\n') + '\n', 'reg', S), 'REGISTRATION_INVALID', /^registration reg line 4: expected the deriver of .*, found the end of the file/);
  expectError(() => parseRegistration(good.replace(/sha256:\w+/, 'sha256:nothash'), 'reg', S), 'REGISTRATION_INVALID', /line 2: expected the narHash of/);
  expectError(() => parseRegistration(good.slice(0, -1), 'reg', S), 'REGISTRATION_INVALID', /expected a newline at the end of the line/);
  expectError(() => parseRegistration(good + good, 'reg', S), 'REGISTRATION_INVALID', /line \d+: .*-a is registered twice/);
  expectError(() => parseRegistration(good.replaceAll(S, '/nix/store'), 'reg', S), 'REGISTRATION_INVALID', /line 1: \/nix\/store\/a+-a is not under the store dir .*; pass --nix-store-dir \/nix\/store/);
});

test('a reference to a path missing from the closure', () => {
  const onlyA = good.split('\n').slice(0, 6).join('\n') + '\n'; // A's entry, which refers to B
  assert.match(onlyA, /1\n\/.*-b\n$/);
  expectCliError(['closure', A, '--references-from', file('reg-only-a', onlyA)], /^diskwright: .*-a \(.*reg-only-a line 1\) refers to .*-b, which is missing from .*reg-only-a; give references for the whole closure/);
  expectError(() => closure([B], { nixStoreDir: S, references: file('reg-a-again', onlyA) }), 'REFERENCE_MISSING', /^root .*-b is missing from/);
});

test('contents that do not match the given narHash', () => {
  // A's entry (the first) claims B's hash, in --dump-db's bare base-16.
  const lied = good.split('\n');
  lied[1] = narDigest(narNodeOfPath(B)).narHash.toString('hex');
  expectError(() => closure([A], { nixStoreDir: S, references: file('reg-lie', lied.join('\n')) }), 'NAR_HASH_MISMATCH', /-a has narHash sha256:\w+ and narSize \d+, but .*reg-lie line 1 says sha256:\w+ and \d+; the store path was modified/);
  // Trusting the given hashes skips the check.
  const c = closure([A], { nixStoreDir: S, references: path.join(work, 'reg-lie'), hashes: 'given' });
  assert.equal(c.paths[0].narHash.toString('hex'), lied[1]);
});

test('bad path-info JSON and closureInfo directories', () => {
  expectError(() => readReferenceSource(file('pi-bad.json', '[{"path": 3}]'), S), 'REGISTRATION_INVALID', /^path info .*pi-bad.json entry 1: path is not a string/);
  expectError(() => readReferenceSource(file('pi-trunc.json', '[{"path"'), S), 'REGISTRATION_INVALID', /not JSON/);
  expectError(() => readReferenceSource(file('pi-invalid.json', `{"${B}": null}`), S), 'REGISTRATION_INVALID', /is not valid in that store/);
  const ci = path.join(work, 'ci');
  fs.mkdirSync(ci);
  fs.writeFileSync(path.join(ci, 'registration'), good.split('\n').slice(0, 6).join('\n') + '\n');
  fs.writeFileSync(path.join(ci, 'store-paths'), `${A}\n${B}\n`);
  expectError(() => readReferenceSource(ci, S), 'REGISTRATION_INVALID', /^store-paths .*line 2: .*-b has no entry in .*registration/);
  expectError(() => readReferenceSource(path.join(work, 'nope'), S), 'SOURCE_MISSING', /references .*nope do not exist/);
  expectError(() => writeClosureInfo(path.join(work, 'outside'), []), 'OUTPUT_WRITE', /is not a directory/);
});

test('nar: a missing path, and a fifo a NAR cannot hold', () => {
  expectCliError(['nar', 'hash', path.join(work, 'missing')], /^diskwright: .*missing does not exist; give an existing file, directory or symlink/);
  const fifo = path.join(work, 'fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  expectError(() => narDigest(narNodeOfPath(work)), 'NAR_UNSUPPORTED', /fifo is a fifo; a NAR holds only regular files, directories and symlinks/);
  fs.rmSync(fifo);
});
