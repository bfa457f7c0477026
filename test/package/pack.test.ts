// The package as a user gets it: `npm pack` (prepack compiles dist/ and the
// prebuilt addons), then installed into an empty project and globally, with
// the registry's Node 24 (the one running this test) and no C compiler on
// PATH. The installed CLI builds the bundled example to the same bytes as the
// checkout, a TypeScript consumer type-checks against the shipped
// declarations, the addon loaded is the shipped prebuild, and without any
// addon the CLI still builds and says once that xattrs are not read.
import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { diskwright, ROOT } from '../cli/run.ts';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'diskwright-pack-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const NODE_DIR = path.dirname(process.execPath);
const NPM_CLI = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
const NPX_CLI = path.join(path.dirname(NPM_CLI), 'npx-cli.js');
const ARCH = { x64: 'linux-x64', arm64: 'linux-arm64' }[process.arch as string];

// A PATH with Node 24 and a shell but no compiler, make or python: whatever
// installs must not need them (node-gyp-build compiles only when no prebuild fits).
const tools = path.join(work, 'tools');
fs.mkdirSync(tools);
for (const t of ['sh', 'env']) fs.symlinkSync(execFileSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).trim(), path.join(tools, t));
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${NODE_DIR}:${tools}`, npm_config_update_notifier: 'false' };
for (const k of Object.keys(env)) if (/^npm_(config|package|lifecycle)_/i.test(k) && k !== 'npm_config_update_notifier') delete env[k];

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 26, ...opts });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}
const npm = (args: string[], cwd: string) => run(process.execPath, [NPM_CLI, ...args, '--no-audit', '--no-fund', '--prefer-offline'], { cwd });
const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

let tgz = '';
const app = path.join(work, 'app');
const installed = path.join(app, 'node_modules', 'diskwright');

test('npm pack ships dist/, the prebuilt addons and no TypeScript sources', () => {
  // prepack (tsc, prebuildify) needs the compilers: the machine's own PATH.
  run(process.execPath, [NPM_CLI, 'pack', '--pack-destination', work], { cwd: ROOT, env: { ...process.env, PATH: `${NODE_DIR}:${process.env.PATH}` } });
  tgz = path.join(work, `diskwright-${version}.tgz`);
  const files = execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
  for (const f of ['bin/diskwright.js', 'dist/cli/main.js', 'dist/api/index.js', 'dist/api/index.d.ts', 'dist/format/zstd-worker.js', 'binding.gyp', 'src/native/xattr.c',
    'prebuilds/linux-x64/diskwright.glibc.node', 'prebuilds/linux-arm64/diskwright.glibc.node']) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  assert.deepEqual(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')), [], 'no .ts sources');
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('build/')));
});

test('installed into an empty project without a compiler, it loads the shipped prebuild and builds the example as the checkout does', () => {
  assert.ok(tgz && ARCH, 'packed, on a platform with a prebuild');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  assert.notEqual(spawnSync('sh', ['-c', 'command -v cc || command -v gcc || command -v make'], { env }).status, 0, 'no compiler on the install PATH');
  npm(['install', tgz], app);
  assert.ok(!fs.existsSync(path.join(installed, 'build')), 'node-gyp did not run');
  const loaded = run(process.execPath, ['-e', `process.stdout.write(require('node-gyp-build').path(${JSON.stringify(installed)}))`], { cwd: installed });
  assert.equal(loaded, path.join(installed, 'prebuilds', ARCH!, 'diskwright.glibc.node'));

  const r = run(process.execPath, [NPX_CLI, 'diskwright', 'build', path.join(ROOT, 'examples/disk.yaml'), '-o', path.join(work, 'out-pkg')], { cwd: app });
  assert.match(r, /wrote .*nixos\.img/);
  const ref = diskwright(['build', path.join(ROOT, 'examples/disk.yaml'), '-o', path.join(work, 'out-repo')]);
  assert.equal(ref.status, 0, ref.stderr);
  assert.equal(sha(path.join(work, 'out-pkg/nixos.img')), sha(path.join(work, 'out-repo/nixos.img')));
});

test('the installed CLI runs on Node 22.15, the oldest it supports, and builds the same bytes without warnings', () => {
  assert.ok(fs.existsSync(installed), 'installed');
  // The registry's Node 22.15 binary (the package the `node` package installs), beside the project.
  const prefix = path.join(work, 'node22');
  const pkg = `node-linux-${process.arch}`;
  run(process.execPath, [NPM_CLI, 'install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', `${pkg}@22.15.0`], { cwd: work });
  const node22 = path.join(prefix, 'node_modules', pkg, 'bin/node');
  const r = spawnSync(node22, [path.join(installed, 'bin/diskwright.js'), 'build', path.join(ROOT, 'examples/disk.yaml'), '-o', path.join(work, 'out-22')], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /warning/i);
  assert.equal(sha(path.join(work, 'out-22/nixos.img')), sha(path.join(work, 'out-repo/nixos.img')));
});

test("a TypeScript consumer's `import { buildImage } from 'diskwright'` type-checks against the shipped declarations", () => {
  assert.ok(fs.existsSync(installed), 'installed');
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2024', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules/@types')] },
    files: ['index.ts'],
  }));
  fs.writeFileSync(path.join(app, 'index.ts'), [
    "import { buildImage, loadConfig, DiskwrightError, type BuildResult } from 'diskwright';",
    "const loaded = await loadConfig('disk.yaml');",
    "const r: BuildResult = buildImage({ ...loaded, outDir: 'result' });",
    'const bytes: number = r.layout.size;',
    'export { bytes, DiskwrightError };',
    // The types are real, not `any`: a mistake is caught (else tsc reports the unused directive).
    '// @ts-expect-error TS2322: size is a number',
    "export const wrong: string = r.layout.size;",
    '',
  ].join('\n'));
  run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app]);
});

test('without any addon the installed CLI still builds, says once that xattrs are not read, and extract says what it needs', () => {
  assert.ok(fs.existsSync(installed), 'installed');
  fs.rmSync(path.join(installed, 'prebuilds'), { recursive: true });
  const cli = path.join(app, 'node_modules/.bin/diskwright');
  const r = spawnSync(cli, ['mkfs', 'ext4', path.join(ROOT, 'examples/rootfs'), '-o', path.join(work, 'no-addon.ext4')], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stderr.trimEnd().split('\n').filter((l) => /warning/.test(l)).length, 1, r.stderr);
  assert.match(r.stderr, /^diskwright: warning: extended attributes of source trees are not read.*native addon is not installed for linux-/m);
  const x = spawnSync(cli, ['extract', path.join(work, 'out-pkg/nixos.img:2'), '/etc', path.join(work, 'etc')], { encoding: 'utf8', env });
  assert.equal(x.status, 1);
  assert.match(x.stderr, /^diskwright: cannot extract to .*native addon is not installed.*npm rebuild diskwright/);
  assert.equal(x.stderr.trimEnd().split('\n').length, 1, x.stderr);
});

test('npm install -g gives a working diskwright', () => {
  assert.ok(tgz, 'packed');
  const prefix = path.join(work, 'global');
  npm(['install', '-g', '--prefix', prefix, tgz], work);
  const r = spawnSync(path.join(prefix, 'bin/diskwright'), ['--version'], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), version);
});
