// Every command's --json: one JSON document (on stdout, or stderr when the
// image goes to stdout) that validates against its published JSON Schema,
// and carries what the human summary says. Also the old option spellings:
// they still work, with one deprecation line on stderr.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright, writeJsonIn } from './run.ts';
import { assertOutput } from './json-schema.ts';
import type { OutputName } from '../../src/cli/output-schemas.ts';
import { parseSha256 } from '../../src/nix/hash.ts';

let work: string;
const DEP = '/nix/store/00000000000000000000000000000000-dep';
const HELLO = '/nix/store/11111111111111111111111111111111-hello';

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-json-'));
  fs.mkdirSync(path.join(work, 'src/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'src/etc/hostname'), 'json\n');
  // FAT holds no symlinks: the vfat image gets the tree before the link.
  fs.cpSync(path.join(work, 'src'), path.join(work, 'fat'), { recursive: true });
  fs.symlinkSync('hostname', path.join(work, 'src/etc/name'));
  // A two-path store: hello refers to dep.
  const store = path.join(work, 'store');
  fs.mkdirSync(path.join(store, path.basename(DEP)), { recursive: true });
  fs.mkdirSync(path.join(store, path.basename(HELLO)));
  fs.writeFileSync(path.join(store, path.basename(DEP), 'f'), 'dep\n');
  fs.writeFileSync(path.join(store, path.basename(HELLO), 'ref'), `${DEP}\n`);
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

/** `diskwright ARGS` in the work dir; asserts the status and returns stdout (text) and stderr. */
function run(args: string[], status = 0): { stdout: string; stderr: string } {
  const r = diskwright(args, { cwd: work });
  assert.equal(r.status, status, `diskwright ${args.join(' ')}\n${r.stderr}`);
  return { stdout: r.stdout.toString('latin1'), stderr: r.stderr };
}

/** Parses one JSON document and validates it against `name`'s schema. */
function doc<T = Record<string, unknown>>(name: OutputName, text: string): T {
  const d = JSON.parse(text);
  assertOutput(name, d);
  return d as T;
}

const deprecation = /^diskwright: warning: .* is deprecated and goes in the next release; use .*$/m;

test('build --json: the layout, the image written and every file, validated; a $schema key in the config is accepted', () => {
  const cfg = path.join(work, 'disk.yaml');
  fs.writeFileSync(cfg, '# yaml-language-server: $schema=./build-config.schema.json\n$schema: ./build-config.schema.json\npartitionTableType: efi\nroot: src\nbootSize: 16M\nadditionalSpace: 1M\n');
  const r = run(['build', cfg, '-o', 'out', '--json']);
  assert.equal(r.stderr, '');
  const d = doc<{ layout: { partitions: Array<{ guid?: string; filesystem?: { freeBytes: number; freeInodes?: number } }> }; image: { path: string; apparentBytes: number }; files: string[] }>('build', r.stdout);
  assert.equal(d.image.path, path.join(work, 'out/nixos.img'));
  assert.equal(d.image.apparentBytes, fs.statSync(d.image.path).size);
  for (const f of d.files) assert.ok(fs.existsSync(f), f);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(work, 'out/layout.json'), 'utf8')), d.layout);
  const root = d.layout.partitions.find((p) => p.filesystem?.freeInodes !== undefined)!;
  assert.ok(root.guid && root.filesystem!.freeBytes > 0);
});

test('build --stream --json: the image alone on stdout, the JSON (image: null) on stderr', () => {
  const r = run(['build', 'disk.yaml', '--stream', '--json']);
  const d = doc<{ layout: { size: number }; image: null; files: string[] }>('build', r.stderr);
  assert.deepEqual([d.image, d.files, r.stdout.length], [null, [], d.layout.size]);
});

test('build: --out still works, with a deprecation line; --out with -o is an error', () => {
  const r = run(['build', 'disk.yaml', '--out', 'out-old']);
  assert.match(r.stderr, /--out is deprecated .* use -o\/--output/);
  assert.ok(fs.existsSync(path.join(work, 'out-old/nixos.img')));
  const both = run(['build', 'disk.yaml', '--out', 'a', '-o', 'b'], 1);
  assert.match(both.stderr, /--out and -o\/--output both name the output/);
});

test('mkfs ext4 --stream --json: the image alone on stdout, the JSON on stderr', () => {
  const r = run(['mkfs', 'ext4', 'src', '--stream', '--json', '--free', '1M']);
  const d = doc<{ bytes: number; freeBytes: number; freeInodes: number; uuid: string; output: null }>('mkfs', r.stderr);
  assert.equal(r.stdout.length, d.bytes);
  assert.equal(d.output, null);
  assert.ok(d.freeBytes >= 1 << 20);
  assert.match(d.uuid, /^[0-9a-f-]{36}$/);
});

test('mkfs vfat -o --json; convert -o --json; convert IN OUT still works, deprecated', () => {
  const v = doc<{ output: { path: string; apparentBytes: number }; volumeId: string }>('mkfs', run(['mkfs', 'vfat', 'fat', '-o', 'v.img', '--json', '--label', 'JSON']).stdout);
  assert.deepEqual([v.output.path, v.output.apparentBytes], ['v.img', fs.statSync(path.join(work, 'v.img')).size]);
  assert.match(v.volumeId, /^[0-9A-F]{4}-[0-9A-F]{4}$/);
  const c = doc<{ format: string; output: { path: string } }>('convert', run(['convert', 'v.img', '-o', 'v.qcow2', '--json']).stdout);
  assert.deepEqual([c.format, c.output.path], ['qcow2', 'v.qcow2']);
  const old = run(['convert', 'v.img', 'v2.vdi']);
  assert.match(old.stderr, deprecation);
  assert.match(old.stderr, /use convert IN -o OUT/);
  assert.ok(fs.existsSync(path.join(work, 'v2.vdi')));
});

test('closure --json and nar hash --json; nar hash --format is the old --encoding', () => {
  const store = path.join(work, 'store');
  const c = doc<{ paths: Array<{ path: string; narHash: string; narSize: number; references: string[] }>; totalNarSize: number; files: string[] }>('closure', run(['closure', HELLO, '--store-dir', store, '-o', 'ci', '--json']).stdout);
  assert.deepEqual(c.paths.map((p) => p.path), [DEP, HELLO]);
  assert.deepEqual(c.paths[1].references, [DEP]);
  assert.equal(fs.readFileSync(path.join(work, 'ci/total-nar-size'), 'utf8').trim(), String(c.totalNarSize));
  const dep = path.join(store, path.basename(DEP));
  const n = doc<{ paths: Array<{ path: string; narHash: string; narSize: number }> }>('nar-hash', run(['nar', 'hash', dep, '--encoding', 'sri', '--json']).stdout);
  assert.deepEqual(parseSha256(n.paths[0].narHash), parseSha256(c.paths[0].narHash));
  assert.deepEqual([n.paths[0].path, n.paths[0].narSize], [dep, c.paths[0].narSize]);
  const old = run(['nar', 'hash', dep, '--format', 'sri']);
  assert.equal(old.stdout.trim(), n.paths[0].narHash);
  assert.match(old.stderr, /nar hash --format is deprecated .* use --encoding/);
});

test('container --json, and --out still works with a deprecation line', () => {
  const cfg = writeJsonIn(work, 'c.json', { $schema: './container-config.schema.json', name: 'j', tag: 'v1', contents: ['src'] });
  const d = doc<{ layers: Array<{ digest: string }>; output: string }>('container', run(['container', cfg, '-o', 'c.tar', '--json']).stdout);
  assert.equal(d.output, 'c.tar');
  assert.ok(d.layers.length >= 1 && d.layers.every((l) => /^sha256:[0-9a-f]{64}$/.test(l.digest)));
  const old = run(['container', cfg, '--out', 'c2.tar']);
  assert.match(old.stderr, /--out is deprecated/);
  assert.ok(fs.existsSync(path.join(work, 'c2.tar')));
});

test('initrd --json, and --stream puts the JSON on stderr', () => {
  const d = doc<{ bytes: number; output: { apparentBytes: number } }>('initrd', run(['initrd', 'src', '-o', 'i.cpio', '--json']).stdout);
  assert.equal(d.output.apparentBytes, d.bytes);
  const s = run(['initrd', 'src', '--stream', '--json']);
  assert.equal(s.stdout.length, doc<{ bytes: number }>('initrd', s.stderr).bytes);
});

test('inspect, ls, extract and diff --json', () => {
  const img = path.join(work, 'out/nixos.img');
  const i = doc<{ table: { partitions: unknown[] }; filesystems: Array<{ type: string; freeInodes?: number }> }>('inspect', run(['inspect', img, '--json']).stdout);
  assert.equal(i.table.partitions.length, 2);
  assert.ok(i.filesystems.some((f) => f.type === 'ext4' && f.freeInodes! > 0));
  const l = doc<{ entries: Array<{ name: string; type: string; target?: string }> }>('ls', run(['ls', 'v.img', '-R', '--json']).stdout);
  assert.deepEqual(l.entries.map((e) => e.name).sort(), ['etc', 'etc/hostname']);
  const e = doc<{ entries: number; files: number }>('extract', run(['extract', `${img}:2`, '/etc', '-o', 'x', '--json']).stdout);
  assert.equal(fs.readFileSync(path.join(work, 'x/hostname'), 'utf8'), 'json\n');
  assert.ok(e.files >= 1);
  assert.equal(doc<{ identical: boolean }>('diff', run(['diff', 'v.img', 'v2.vdi', '--json']).stdout).identical, true);
  const d = doc<{ identical: boolean; differingBytes: number }>('diff', run(['diff', 'v.img', img, '--json'], 1).stdout);
  assert.ok(!d.identical && d.differingBytes > 0);
  const link = doc<{ entries: Array<{ name: string; type: string; target?: string }> }>('ls', run(['ls', `${img}:2`, '/etc', '--json']).stdout).entries.find((x) => x.name === 'name');
  assert.deepEqual([link?.type, link?.target], ['symlink', 'hostname']);
});
