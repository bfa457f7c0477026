// nix/default.nix against Debian's nix-bin in a throwaway store: the stand-in
// pkgs (wrapper-pkgs.nix: bash and this Node copied into the store) builds
// diskwright from this checkout (nix/package.nix) and with it the images of
// wrapper.nix, as ordinary derivations. Each equals, byte for byte, what the
// CLI makes from the equivalent config, which scans the closure itself where
// the derivations read it from exportReferencesGraph.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diskwright, diskwrightIn, ROOT, writeJsonIn } from '../cli/run.ts';
import { HERE, makeNixStore, type NixStore } from './nixstore.ts';

const ATTRS = ['app', 'extra', 'toplevel', 'diskwright', 'disk', 'ext4', 'sd', 'stream'] as const;
const SYSTEM = { x64: 'x86_64-linux', arm64: 'aarch64-linux' }[process.arch as string] ?? `${process.arch}-linux`;

let store: NixStore;
let work: string;
let built: Record<(typeof ATTRS)[number], string>;
/** wrapper.nix's arguments: this Node and its headers. */
let nodeArg: string[];

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
/** The CLI's environment: the derivations' builders get no SOURCE_DATE_EPOCH either. */
const cliEnv = () => {
  const env = { ...process.env };
  delete env.SOURCE_DATE_EPOCH;
  return env;
};
/** `diskwright build CONFIG -o work/NAME` with `config`; the output directory. */
function cliBuild(name: string, config: object): string {
  const out = path.join(work, name);
  diskwrightIn(work, ['build', writeJsonIn(work, `${name}.json`, config), '-o', out], { env: cliEnv() });
  return out;
}

before(() => {
  store = makeNixStore();
  work = fs.mkdtempSync(path.join(store.root, 'work-'));
  // Builds in a tmpfs when there is one, as on many machines: then the build
  // directory and the store are on different file systems.
  if (fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').dev !== fs.statSync(store.root).dev) store.env.TMPDIR = '/dev/shm';
  const node = fs.realpathSync(process.execPath);
  // Node's headers: beside the binary in Node's own tarballs, in a package of its own from the npm registry.
  const include = [path.resolve(node, '../../include/node'), path.join(ROOT, 'node_modules', 'node', 'node_modules', `node-${process.platform}-${process.arch}`, 'include', 'node')].find((d) => fs.existsSync(path.join(d, 'node_api.h')));
  assert.ok(include, `no node_api.h near ${node}`);
  nodeArg = ['--argstr', 'node', node, '--argstr', 'nodeInclude', include];
  const outs = store.build(path.join(HERE, 'wrapper.nix'), [...nodeArg, ...ATTRS.flatMap((a) => ['-A', a])]);
  assert.equal(outs.length, ATTRS.length, outs.join('\n'));
  built = Object.fromEntries(ATTRS.map((a, i) => [a, outs[i]])) as typeof built;
});

after(() => store?.cleanup());

test('diskwright in the store: runtime dependencies, the addon compiled there, and sources outside any node_modules, where Node would not strip their types', () => {
  const lib = path.join(built.diskwright, 'lib', 'diskwright');
  const modules = fs.readdirSync(path.join(lib, 'node_modules'));
  assert.ok(modules.includes('zod') && modules.includes('lzma-native'));
  assert.ok(!modules.includes('typescript') && !modules.includes('node'));
  // With a compiler in pkgs, the checkout's build/Release is not an input.
  const parts = JSON.parse(store.run('nix-instantiate', ['--eval', '--strict', '--json', path.join(HERE, 'wrapper.nix'), ...nodeArg, '-A', 'diskwright.parts']).stdout.toString());
  assert.deepEqual(Object.keys(parts).filter((k) => !k.startsWith('node_modules/')).sort(), ['bin', 'package.json', 'src']);
  const load = (file: string) => spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(file)})`], { encoding: 'utf8' });
  const here = load(path.join(lib, 'src', 'native', 'addon.ts'));
  assert.equal(here.status, 0, here.stderr);
  const copy = path.join(work, 'node_modules', 'diskwright', 'src');
  fs.cpSync(path.join(lib, 'src'), copy, { recursive: true });
  assert.match(load(path.join(copy, 'errors.ts')).stderr, /ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING/);
});

test('makeDiskImage of a NixOS config: an ordinary derivation (no VM, no kvm) whose image is the CLI\'s, with hydra-build-products', () => {
  const drv = store.run('nix-instantiate', [path.join(HERE, 'wrapper.nix'), ...nodeArg, '-A', 'disk']).stdout.toString().trim();
  const shown = JSON.parse(store.run('nix', ['show-derivation', drv]).stdout.toString())[drv];
  assert.match(shown.builder, /-nodejs\/bin\/node$/);
  const attrs = JSON.parse(shown.env.__json);
  assert.equal(attrs.requiredSystemFeatures, undefined);
  assert.doesNotMatch(shown.env.__json, /kvm|qemu/);

  const cli = cliBuild('disk', {
    name: 'wrapper-disk',
    partitionTableType: 'efi',
    bootSize: '40M',
    additionalSpace: '1M',
    toplevel: built.toplevel,
    additionalPaths: [built.app],
    contents: [{ source: `${built.app}/etc/lib-path`, target: '/etc/lib-path', mode: '0644' }],
    format: 'qcow2',
    system: 'x86_64-linux',
    nixStoreDir: store.storeDir,
  });
  const image = path.join(built.disk, 'nixos.qcow2');
  assert.equal(sha256(image), sha256(path.join(cli, 'nixos.qcow2')));
  assert.equal(fs.readFileSync(path.join(built.disk, 'nix-support', 'hydra-build-products'), 'utf8'), `file qcow2-image ${image}\n`);
  const layout = JSON.parse(fs.readFileSync(path.join(built.disk, 'layout.json'), 'utf8'));
  assert.deepEqual(layout.partitions.map((p: { role: string }) => p.role), ['esp', 'root']);
  // The closure Nix exported went into the image: its registration lists the system's and app's.
  const cat = diskwright(['cat', `${image}:2`, '/nix-path-registration']);
  assert.equal(cat.status, 0, cat.stderr);
  const registered = cat.stdout.toString().split('\n');
  const closure = store.run('nix-store', ['-qR', built.app, built.toplevel]).stdout.toString().trim().split('\n');
  assert.equal(closure.length, 6);
  for (const p of closure) assert.ok(registered.includes(p), `${p} is not registered in the image`);
  // `config` brought the system to boot: systemd-boot's entry for it on the ESP.
  const entry = diskwright(['cat', `${image}:1`, '/loader/entries/nixos-generation-1.conf']);
  assert.equal(entry.status, 0, entry.stderr);
  assert.match(entry.stdout.toString(), new RegExp(`init=${built.toplevel}/init console=ttyS0`));
});

test('makeExt4Fs: the result is the image file itself, the CLI\'s make-ext4-fs build', () => {
  assert.match(built.ext4, /-ext4-fs\.img\.zst$/);
  assert.ok(fs.statSync(built.ext4).isFile());
  const cli = cliBuild('ext4', { builder: 'make-ext4-fs', storePaths: [built.app], volumeLabel: 'store', compressImage: true, nixStoreDir: store.storeDir });
  assert.equal(sha256(built.ext4), sha256(path.join(cli, 'ext4-fs.img.zst')));
});

test('sdImage: the CLI\'s sd-image build, laid out as sd-image.nix lays it out', () => {
  const cli = cliBuild('sd', { builder: 'sd-image', storePaths: [built.app], firmwareSize: 8, compressImage: false, system: SYSTEM, nixStoreDir: store.storeDir });
  // Where sd-image.nix puts them.
  const image = path.join(built.sd, 'sd-image', 'nixos-sd-image.img');
  assert.equal(sha256(image), sha256(path.join(cli, 'nixos-sd-image.img')));
  assert.equal(fs.readFileSync(path.join(built.sd, 'nix-support', 'hydra-build-products'), 'utf8'), `file sd-image ${image}\n`);
});

test('streamLayeredImage: an executable that streams the CLI\'s archive, with the image\'s closure in its own', () => {
  const streamed = spawnSync(built.stream, [], { env: store.env, maxBuffer: 1 << 30 });
  assert.equal(streamed.status, 0, String(streamed.stderr));
  const config = writeJsonIn(work, 'stream.json', {
    name: 'hello',
    tag: 'test',
    contents: [built.app],
    config: { Cmd: ['/bin/hello'], Env: [`EXTRA=${built.extra}`] },
    maxLayers: 3,
    system: SYSTEM,
    nixStoreDir: store.storeDir,
  });
  const archive = path.join(work, 'hello.tar');
  diskwrightIn(work, ['container', config, '-o', archive, '--no-cache'], { env: cliEnv() });
  assert.equal(createHash('sha256').update(streamed.stdout).digest('hex'), sha256(archive));
  const closure = store.run('nix-store', ['-qR', built.stream]).stdout.toString().split('\n');
  assert.ok(closure.includes(built.app) && closure.includes(built.extra), closure.join('\n'));
  // nixpkgs' attributes of the result, and passthru's.
  const attr = (a: string) => store.run('nix-instantiate', ['--eval', path.join(HERE, 'wrapper.nix'), ...nodeArg, '-A', a]).stdout.toString().trim();
  assert.equal(attr('stream.isExe'), 'true');
  assert.equal(attr('stream.greeting'), '"hello"');
});

test('a nixpkgs argument with no equivalent is refused at evaluation, saying why', () => {
  const r = store.run('nix-instantiate', [path.join(HERE, 'wrapper.nix'), ...nodeArg, '-A', 'refused'], { allowFailure: true });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /diskwright\.makeDiskImage: postVM is not supported: it runs shell commands after the VM/);
  const c = store.run('nix-instantiate', [path.join(HERE, 'wrapper.nix'), ...nodeArg, '-A', 'channel'], { allowFailure: true });
  assert.notEqual(c.status, 0);
  assert.match(c.stderr, /diskwright\.makeDiskImage: copyChannel is not supported: no nixpkgs channel is copied into the image; put one in contents, or set copyChannel = false/);
});
