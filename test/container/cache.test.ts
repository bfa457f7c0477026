// The layer cache: a warm build gives the bytes of a cold one and of a
// --no-cache one; it reads an unchanged store layer's files once (to stream
// them), or not at all when the layer is compressed (counted by wrapping
// fs.readSync around an in-process build); damaged, truncated and foreign
// entries are ignored and rewritten; two builds at once into one cache both
// succeed with equal archives; skopeo re-verifies a warm-built archive; an
// unwritable cache is a warning.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, diskwright, writeJsonIn } from '../cli/run.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { closure } from '../../src/nix/closure.ts';
import { formatRegistration } from '../../src/nix/registration.ts';
import { planContainer, writeContainer } from '../../src/api/container.ts';
import { kernelCopy } from '../../src/util/copy-range.ts';
import { validateContainerConfig } from '../../src/container/config.ts';

let work: string;
let storeDir: string;
const LIB = `${'l'.repeat(32)}-lib`;
const TOOL = `${'w'.repeat(32)}-tool`;
const MiB = 1 << 20;

/** Bytes that do not compress away, from a fixed seed (xorshift), so reruns see the same store. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-layer-cache-'));
  // A store of two paths (lib with a hard link and a symlink; tool referring to lib) and an app directory.
  storeDir = path.join(work, 'store');
  const lib = path.join(storeDir, LIB);
  fs.mkdirSync(path.join(lib, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(lib, 'lib', 'libbig.so'), noise(3 * MiB, 1));
  fs.linkSync(path.join(lib, 'lib', 'libbig.so'), path.join(lib, 'lib', 'libbig.so.1'));
  fs.symlinkSync('libbig.so', path.join(lib, 'lib', 'libbig.so.2'));
  const tool = path.join(storeDir, TOOL);
  fs.mkdirSync(path.join(tool, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(tool, 'bin', 'tool'), Buffer.concat([Buffer.from(`#!/nix/store/${LIB}/lib/libbig.so\n`), noise(2 * MiB, 2)]));
  fs.chmodSync(path.join(tool, 'bin', 'tool'), 0o555);
  fs.mkdirSync(path.join(work, 'app'));
  fs.writeFileSync(path.join(work, 'app', 'app.conf'), 'version 1\n');
  // Hashes given, as closureInfo gives them: the closure then reads no file data, so every read counted is a layer's.
  const c = closure([path.join(storeDir, TOOL)], { storeDir });
  fs.writeFileSync(path.join(work, 'registration'), formatRegistration(c.paths));
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

function config(name: string, compression: string, extra: Record<string, unknown> = {}): string {
  return writeJsonIn(work, `${name}.json`, {
    name: 'cached',
    tag: 't',
    contents: ['app'],
    storePaths: [`/nix/store/${TOOL}`],
    storeDir,
    storeReferences: 'registration',
    layerCompression: compression,
    ...extra,
  });
}

interface Layer { digest: string; storePaths: string[]; cached: boolean }

/** `diskwright container CFG -o OUT --json ARGS`, which must succeed: its layers and standard error. */
function build(cfg: string, out: string, args: string[], env: NodeJS.ProcessEnv = process.env): { layers: Layer[]; stderr: string } {
  const r = diskwright(['container', cfg, '-o', out, '--json', ...args], { cwd: work, env });
  assert.equal(r.status, 0, r.stderr);
  return { layers: JSON.parse(r.stdout.toString()).layers, stderr: r.stderr };
}

const entries = (dir: string) => fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
const bytes = (p: string) => fs.readFileSync(p);

test('warm, cold and --no-cache builds give identical archives; only store layers come from the cache', () => {
  for (const compression of ['none', 'gzip', 'zstd']) {
    const cache = path.join(work, `cache-${compression}`);
    const cfg = config(`same-${compression}`, compression);
    const out = (n: string) => path.join(work, `same-${compression}-${n}.tar`);
    const cold = build(cfg, out('cold'), ['--cache', cache]);
    assert.deepEqual(cold.layers.map((l) => l.cached), [false, false, false], compression);
    assert.equal(entries(cache).length, 2, compression);
    const warm = build(cfg, out('warm'), ['--cache', cache]);
    assert.deepEqual(warm.layers.map((l) => l.cached), [true, true, false], compression);
    build(cfg, out('none'), ['--no-cache']);
    assert.deepEqual(bytes(out('warm')), bytes(out('cold')), compression);
    assert.deepEqual(bytes(out('none')), bytes(out('cold')), compression);
    // The scratch directory is gone; only entries stay.
    assert.deepEqual(fs.readdirSync(cache).sort(), entries(cache));
  }
});

test('the default cache is $XDG_CACHE_HOME/diskwright/layers; the config can move it (relative to itself); --no-cache keeps none', () => {
  const xdg = path.join(work, 'xdg');
  const env = { ...process.env, XDG_CACHE_HOME: xdg };
  build(config('xdg', 'none'), path.join(work, 'xdg.tar'), [], env);
  assert.equal(entries(path.join(xdg, 'diskwright', 'layers')).length, 2);
  build(config('option', 'none', { layerCache: 'option-cache' }), path.join(work, 'option.tar'), [], env);
  assert.equal(entries(path.join(work, 'option-cache')).length, 2);
  const none = path.join(work, 'xdg-none');
  build(config('nocache', 'none', { layerCache: 'never-made' }), path.join(work, 'nocache.tar'), ['--no-cache'], { ...process.env, XDG_CACHE_HOME: none });
  assert.ok(!fs.existsSync(none) && !fs.existsSync(path.join(work, 'never-made')));
});

/** Bytes read through fs.readSync or copied by copy_file_range from files under `root` during `f`, per file name relative to root. */
function readsUnder(root: string, f: () => void): Map<string, number> {
  const counts = new Map<string, number>();
  const open = fs.openSync;
  const read = fs.readSync;
  const paths = new Map<number, string>();
  fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (open as (...a: unknown[]) => number)(p, ...rest);
    paths.set(fd, String(p));
    return fd;
  }) as typeof fs.openSync;
  const count = (fd: number, n: number) => {
    const p = paths.get(fd);
    if (n > 0 && p?.startsWith(root + '/')) counts.set(path.relative(root, p), (counts.get(path.relative(root, p)) ?? 0) + n);
  };
  fs.readSync = ((fd: number, ...rest: unknown[]) => {
    const n = (read as (...a: unknown[]) => number)(fd, ...rest);
    count(fd, n);
    return n;
  }) as typeof fs.readSync;
  // Long extents are copied file to file by the kernel (copy_file_range): reads too.
  const copy = kernelCopy.fn;
  if (copy) {
    kernelCopy.fn = (fdIn, offIn, fdOut, offOut, length) => {
      const n = copy(fdIn, offIn, fdOut, offOut, length);
      count(fdIn, n);
      return n;
    };
  }
  syncBuiltinESMExports();
  try {
    f();
  } finally {
    fs.openSync = open;
    fs.readSync = read;
    kernelCopy.fn = copy;
    syncBuiltinESMExports();
  }
  return counts;
}

test('a changed app re-hashes only the top layer: store files are read once when warm (none) or never (zstd)', () => {
  const size = (rel: string) => fs.statSync(path.join(work, rel)).size;
  const big = `store/${LIB}/lib/libbig.so`;
  const tool = `store/${TOOL}/bin/tool`;
  const conf = 'app/app.conf';
  for (const compression of ['none', 'zstd'] as const) {
    const cache = path.join(work, `count-${compression}`);
    const cfg = validateContainerConfig(JSON.parse(fs.readFileSync(config(`count-${compression}`, compression), 'utf8')), 'count.json');
    const once = (version: string, n: string) => {
      fs.writeFileSync(path.join(work, conf), `version ${version}\n`);
      return readsUnder(work, () => {
        const plan = planContainer(cfg, work, { layerCache: cache });
        try {
          writeContainer(plan, 'docker-archive', path.join(work, `count-${compression}-${n}.tar`));
        } finally {
          plan.cleanup();
        }
      });
    };
    // Cold: every file twice uncompressed (to hash the layer, then to stream it), once compressed
    // (the stream reads the compressed blob); the hard link's second name is a tar hard link,
    // its data read under the first name only.
    const cold = once('1', 'cold');
    const reads = compression === 'none' ? 2 : 1;
    assert.equal(cold.get(big), reads * size(big), compression);
    assert.equal(cold.get(tool), reads * size(tool), compression);
    assert.equal(cold.get(conf), reads * size(conf), compression);
    assert.equal(cold.get(`store/${LIB}/lib/libbig.so.1`), undefined, compression);
    // Warm: the store layers' files once to stream them, or never (their cached blobs stream);
    // the changed app's layer as cold.
    const warm = once('22', 'warm');
    assert.equal(warm.get(big) ?? 0, (reads - 1) * size(big), compression);
    assert.equal(warm.get(tool) ?? 0, (reads - 1) * size(tool), compression);
    assert.equal(warm.get(conf), reads * size(conf), compression);
  }
  fs.writeFileSync(path.join(work, conf), 'version 1\n');
});

test('damaged, truncated, emptied and foreign entries are ignored with a warning and rewritten', () => {
  for (const compression of ['none', 'zstd']) {
    const cache = path.join(work, `damage-${compression}`);
    const cfg = config(`damage-${compression}`, compression);
    const out = (n: string) => path.join(work, `damage-${compression}-${n}.tar`);
    build(cfg, out('cold'), ['--cache', cache]);
    const names = entries(cache);
    const good = new Map(names.map((n) => [n, bytes(path.join(cache, n))]));
    const [a, b] = names;
    const damage: Array<[string, (p: string) => void]> = [
      ['a flipped byte', (p) => {
        const x = bytes(p);
        x[compression === 'none' ? 5 : x.length >> 2] ^= 0x40;
        fs.writeFileSync(p, x);
      }],
      ['a truncation', (p) => fs.truncateSync(p, Math.floor(fs.statSync(p).size / 2))],
      ['an empty file', (p) => fs.writeFileSync(p, '')],
      ['a foreign entry', (p) => fs.writeFileSync(p, good.get(path.basename(p) === a ? b : a)!)],
      ['the trailer of another format', (p) => fs.writeFileSync(p, Buffer.concat([bytes(p), Buffer.from('\n{"magic":"x"}\n')]))],
    ];
    for (const [what, spoil] of damage) {
      for (const n of names) spoil(path.join(cache, n));
      const warm = build(cfg, out('warm'), ['--cache', cache]);
      assert.deepEqual(warm.layers.map((l) => l.cached), [false, false, false], `${compression}: ${what}`);
      assert.match(warm.stderr, /warning: layer cache: entry .* is damaged or not for this layer; ignored and rewritten/, `${compression}: ${what}`);
      assert.deepEqual(bytes(out('warm')), bytes(out('cold')), `${compression}: ${what}`);
      // Rewritten: byte for byte the entries the cold build wrote.
      for (const n of names) assert.deepEqual(bytes(path.join(cache, n)), good.get(n), `${compression}: ${what}: ${n} rewritten`);
    }
  }
});

test('two builds at once into one empty cache both succeed with identical archives', async () => {
  const cache = path.join(work, 'concurrent');
  const cfg = config('concurrent', 'zstd');
  const child = (n: number) =>
    new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const p = spawn(process.execPath, [BIN, 'container', cfg, '-o', path.join(work, `concurrent-${n}.tar`), '--cache', cache], { cwd: work });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.once('error', reject);
      p.once('close', (code) => resolve({ code, stderr }));
    });
  for (let round = 0; round < 3; round++) {
    fs.rmSync(cache, { recursive: true, force: true });
    const [x, y] = await Promise.all([child(1), child(2)]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(y.code, 0, y.stderr);
    assert.doesNotMatch(x.stderr + y.stderr, /warning/);
    assert.deepEqual(bytes(path.join(work, 'concurrent-1.tar')), bytes(path.join(work, 'concurrent-2.tar')));
    assert.deepEqual(fs.readdirSync(cache).sort(), entries(cache));
  }
  const warm = build(cfg, path.join(work, 'concurrent-warm.tar'), ['--cache', cache]);
  assert.deepEqual(warm.layers.map((l) => l.cached), [true, true, false]);
  assert.deepEqual(bytes(path.join(work, 'concurrent-warm.tar')), bytes(path.join(work, 'concurrent-1.tar')));
});

test('skopeo copies warm-built archives, re-verifying every digest', () => {
  requireTools('skopeo');
  for (const compression of ['none', 'zstd']) {
    const cache = path.join(work, `skopeo-${compression}`);
    const cfg = config(`skopeo-${compression}`, compression);
    const archive = path.join(work, `skopeo-${compression}.tar`);
    build(cfg, archive, ['--cache', cache]);
    const warm = build(cfg, archive, ['--cache', cache]);
    assert.deepEqual(warm.layers.map((l) => l.cached), [true, true, false]);
    run('skopeo', ['--insecure-policy', 'copy', `docker-archive:${archive}`, `oci:${path.join(work, `skopeo-${compression}-docker`)}:t`]);
    run('skopeo', ['--insecure-policy', 'copy', `oci-archive:${archive}:t`, `oci:${path.join(work, `skopeo-${compression}-oci`)}:t`]);
  }
});

test('a cache that cannot be written is a warning; the build is the same', () => {
  const file = path.join(work, 'a-file');
  fs.writeFileSync(file, '');
  const cfg = config('unwritable', 'zstd');
  const r = build(cfg, path.join(work, 'unwritable.tar'), ['--cache', path.join(file, 'cache')]);
  assert.match(r.stderr, /warning: layer cache: cannot write .*a-file\/cache.*; layers are hashed without it/);
  assert.equal(r.stderr.match(/warning/g)?.length, 1, r.stderr);
  build(cfg, path.join(work, 'unwritable-none.tar'), ['--no-cache']);
  assert.deepEqual(bytes(path.join(work, 'unwritable.tar')), bytes(path.join(work, 'unwritable-none.tar')));
});

test('the key trusts store paths to be immutable: a file changed in place is seen only with --no-cache', () => {
  const cache = path.join(work, 'trust');
  const cfg = config('trust', 'none');
  const before = build(cfg, path.join(work, 'trust-1.tar'), ['--cache', cache]);
  const file = path.join(storeDir, TOOL, 'bin', 'tool');
  const original = bytes(file);
  try {
    fs.chmodSync(file, 0o755);
    fs.writeFileSync(file, Buffer.concat([original.subarray(0, 10), Buffer.from([original[10] ^ 1]), original.subarray(11)]));
    fs.chmodSync(file, 0o555);
    const i = before.layers.findIndex((l) => l.storePaths.includes(`/nix/store/${TOOL}`));
    const warm = build(cfg, path.join(work, 'trust-2.tar'), ['--cache', cache]);
    assert.equal(warm.layers[i].digest, before.layers[i].digest);
    const fresh = build(cfg, path.join(work, 'trust-3.tar'), ['--no-cache']);
    assert.notEqual(fresh.layers[i].digest, before.layers[i].digest);
  } finally {
    fs.chmodSync(file, 0o755);
    fs.writeFileSync(file, original);
    fs.chmodSync(file, 0o555);
  }
});
