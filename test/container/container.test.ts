// `diskwright container` against the real consumers: skopeo copies the
// docker-archive and the oci-archive (re-verifying every layer digest) and
// inspects the config; umoci unpacks the layout into a rootfs equal to the
// expected tree; a real Nix closure lands byte for byte in popularity layers;
// rebuilds under another TZ, umask, cwd, clock and directory order give
// identical bytes for every output and compression; bad input
// fails with one line and no output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, diskwright, diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { requireRoot, requireTools, run } from '../oracle/tools.ts';
import { makeSource, walk, type Seen } from '../archive/source-tree.ts';
import { buildFixture, makeNixStore, type FixtureName, type NixStore } from '../nix/nixstore.ts';
import { popularityOrder } from '../../src/container/popularity.ts';

let work: string;
let src: string;

before(() => {
  requireRoot('devices and owners in the source tree, umoci unpack');
  requireTools('skopeo', 'umoci', 'oci-image-tool');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-container-'));
  // The builds' layer cache stays in the test's directory (children inherit it).
  process.env.XDG_CACHE_HOME = path.join(work, 'cache');
  src = path.join(work, 'src');
  fs.mkdirSync(src);
  makeSource(src, 'forward');
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

const writeJson = (name: string, value: unknown) => writeJsonIn(work, name, value);
/** `diskwright ARGS` that must succeed; runs in `work` unless told otherwise. */
const dw = (args: string[], opts: Parameters<typeof diskwright>[1] = {}) => diskwrightIn(work, args, opts);

const skopeo = (...args: string[]) => run('skopeo', ['--insecure-policy', ...args]).stdout.toString();

/** umoci's rootfs of `layout:tag`. */
function unpack(layout: string, tag: string, name: string): string {
  const bundle = path.join(work, `bundle-${name}`);
  run('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  return path.join(bundle, 'rootfs');
}

/** What the source looks like through a layer: every owner root, every time the `mtime` option. */
function asLayered(entries: Seen[], mtimeSec: number): Seen[] {
  return entries.map((e) => ({ ...e, uid: 0, gid: 0, mtimeNs: BigInt(mtimeSec) * 1_000_000_000n }));
}

const CONFIG = { Cmd: ['/bin/tool', '--flag'], Env: ['PATH=/bin', 'A=1'], WorkingDir: '/etc', Labels: { 'org.example': 'yes' }, ExposedPorts: { '80/tcp': {} }, User: '0:0' };

test('every file type: skopeo copies and inspects all three outputs, umoci unpacks the tree', () => {
  const cfg = writeJson('every.json', { name: 'Every-Type', tag: 'v1', contents: ['src'], config: CONFIG });
  const archive = path.join(work, 'every.tar');
  dw(['container', cfg, '-o', archive]);
  dw(['container', cfg, '-o', path.join(work, 'every-oci.tar'), '--format', 'oci-archive']);
  dw(['container', cfg, '-o', path.join(work, 'every-dir'), '--format', 'oci-dir']);
  // The same bytes whatever the name: one tar serves docker load and OCI readers.
  assert.deepEqual(fs.readFileSync(archive), fs.readFileSync(path.join(work, 'every-oci.tar')));
  const expected = asLayered(walk(src), 1);

  skopeo('copy', `docker-archive:${archive}`, `oci:${path.join(work, 'from-docker')}:v1`);
  assert.deepEqual(walk(unpack(path.join(work, 'from-docker'), 'v1', 'docker')), expected);
  skopeo('copy', `oci-archive:${archive}:v1`, `oci:${path.join(work, 'from-oci')}:v1`);
  assert.deepEqual(walk(unpack(path.join(work, 'from-oci'), 'v1', 'oci')), expected);
  assert.deepEqual(walk(unpack(path.join(work, 'every-dir'), 'v1', 'dir')), expected);

  const docker = JSON.parse(skopeo('inspect', '--config', `docker-archive:${archive}`));
  const oci = JSON.parse(skopeo('inspect', '--config', `oci:${path.join(work, 'every-dir')}:v1`));
  for (const c of [docker, oci]) {
    assert.deepEqual(c.config.Cmd, CONFIG.Cmd);
    assert.deepEqual(c.config.Env, CONFIG.Env);
    assert.equal(c.config.WorkingDir, '/etc');
    assert.deepEqual(c.config.Labels, CONFIG.Labels);
    assert.equal(c.architecture, 'amd64');
    assert.equal(c.os, 'linux');
    assert.equal(c.created, '1970-01-01T00:00:01Z');
  }
  // The layout, as a directory and as the archive unpacked (oci-image-tool 1.0.0-rc1 cannot walk
  // an archive, skopeo's own oci-archive included, so it checks the unpacked tree).
  const unpacked = path.join(work, 'every-unpacked');
  fs.mkdirSync(unpacked);
  run('tar', ['-xf', archive, '-C', unpacked]);
  for (const layout of [path.join(work, 'every-dir'), unpacked]) {
    const v = run('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=v1', layout]);
    assert.match(v.stdout.toString() + v.stderr, /Validation succeeded/);
  }
  // docker load reads manifest.json: the tag and the blobs it names.
  const manifest = JSON.parse(run('tar', ['-xOf', archive, 'manifest.json']).stdout.toString());
  assert.deepEqual(manifest[0].RepoTags, ['every-type:v1']);
  assert.equal(manifest[0].Layers.length, 1);
});

test('gzip and zstd layers: skopeo and umoci read them, the diff_id is the tar, rebuilds are identical', () => {
  for (const compression of ['gzip', 'zstd']) {
    const cfg = writeJson(`${compression}.json`, { name: compression, tag: 'z', contents: ['src'], layerCompression: compression });
    const archive = path.join(work, `${compression}.tar`);
    dw(['container', cfg, '-o', archive]);
    dw(['container', cfg, '-o', `${archive}.again`], { umask: '077', env: { ...process.env, TZ: 'America/St_Johns' } });
    assert.deepEqual(fs.readFileSync(archive), fs.readFileSync(`${archive}.again`), compression);
    const manifest = JSON.parse(run('tar', ['-xOf', archive, 'manifest.json']).stdout.toString())[0];
    const blob = run('tar', ['-xOf', archive, manifest.Layers[0]]).stdout;
    const tar = run(compression, ['-dc'], { input: blob }).stdout;
    const config = JSON.parse(run('tar', ['-xOf', archive, manifest.Config]).stdout.toString());
    assert.equal(config.rootfs.diff_ids[0], `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.ok(blob.length < tar.length / 2, `${compression}: ${blob.length} of ${tar.length}`);
    const index = JSON.parse(run('tar', ['-xOf', archive, 'index.json']).stdout.toString());
    const ociManifest = JSON.parse(run('tar', ['-xOf', archive, `blobs/${index.manifests[0].digest.replace(':', '/')}`]).stdout.toString());
    assert.equal(ociManifest.layers[0].mediaType, `application/vnd.oci.image.layer.v1.tar+${compression}`);
    skopeo('copy', `docker-archive:${archive}`, `oci:${path.join(work, `${compression}-from-docker`)}:z`);
    skopeo('copy', `oci-archive:${archive}:z`, `oci:${path.join(work, `${compression}-oci`)}:z`);
    const x = path.join(work, `${compression}-x`);
    fs.mkdirSync(x);
    run('tar', ['-xpf', '-', '--numeric-owner', '-C', x], { input: tar });
    assert.deepEqual(walk(x), asLayered(walk(src), 1));
    // umoci 0.4.7 knows the +gzip media type, not +zstd.
    if (compression === 'gzip') assert.deepEqual(walk(unpack(path.join(work, `${compression}-oci`), 'z', compression)), asLayered(walk(src), 1));
  }
});

test('owners, names, times and perms in the layer', () => {
  const cfg = writeJson('perms.json', {
    name: 'perms',
    tag: 't',
    contents: ['src'],
    uid: 1000,
    gid: 100,
    uname: 'app',
    gname: 'users',
    mtime: '2020-01-01T00:00:00Z',
    perms: [
      { path: '/etc/ssl', regex: '\\.pem$', mode: '0600', uid: 0, uname: 'root' },
      { path: '/nowhere', mode: '0777' },
    ],
  });
  const stderr = dw(['container', cfg, '-o', path.join(work, 'perms.tar')]);
  assert.match(stderr, /warning: perms\[1\]: \/nowhere matches nothing in the image/);
  const layer = JSON.parse(run('tar', ['-xOf', path.join(work, 'perms.tar'), 'manifest.json']).stdout.toString())[0].Layers[0];
  const listing = run('tar', ['-xOf', path.join(work, 'perms.tar'), layer]).stdout;
  const tv = run('tar', ['-tv', '--full-time'], { input: listing }).stdout.toString();
  assert.match(tv, /^-rw------- root\/users +12 2020-01-01 00:00:00 etc\/ssl\/cert\.pem$/m);
  assert.match(tv, /^-rwsr-xr-x app\/users +3145728 2020-01-01 00:00:00 bin\/tool$/m);
});

let store: NixStore;
let fixture: Record<FixtureName, string>;

test('a Nix closure: popularity layers, every store path byte for byte', () => {
  store = makeNixStore();
  try {
    fixture = buildFixture(store);
    const S = store.storeDir;
    const maxLayers = 5;
    // The closure comes from contents (through a ./result symlink) and from the config's Cmd.
    fs.symlinkSync(fixture.root, path.join(work, 'result'));
    const cfg = writeJson('nix.json', { name: 'closure', tag: 'c', contents: ['result'], nixStoreDir: S, maxLayers, config: { Cmd: [`${fixture.tool}`] } });
    const archive = path.join(work, 'nix.tar');
    const report = JSON.parse(diskwright(['container', cfg, '-o', archive, '--json'], { cwd: work }).stdout.toString());
    // The closure, with Nix's own references, in popularity order, cut as dockerTools cuts it.
    const closure = store.run('nix-store', ['-qR', fixture.root, fixture.tool]).stdout.toString().trim().split('\n');
    const graph = closure.map((p) => ({ path: p, references: store.run('nix-store', ['-q', '--references', p]).stdout.toString().trim().split('\n').filter(Boolean) }));
    const order = popularityOrder(graph);
    const want = [...order.slice(0, maxLayers - 2).map((p) => [p]), order.slice(maxLayers - 2), []];
    assert.deepEqual(report.layers.map((l: { storePaths: string[] }) => l.storePaths), want);

    skopeo('copy', `docker-archive:${archive}`, `oci:${path.join(work, 'nix-oci')}:c`);
    const rootfs = unpack(path.join(work, 'nix-oci'), 'c', 'nix');
    const inImage = walk(path.join(rootfs, S));
    const inStore = asLayered(walk(S).filter((e) => closure.some((p) => `${S}/${e.rel}` === p || `${S}/${e.rel}`.startsWith(p + '/'))), 1);
    // Hard links are kept inside a layer only: compare them per layer.
    const strip = (x: Seen[]) => x.map((e) => ({ ...e, link: '' }));
    assert.ok(inImage.length > 30, `${inImage.length} entries`);
    assert.deepEqual(strip(inImage), strip(inStore));
    const sameLayer = (a: string, b: string) => report.layers.some((l: { storePaths: string[] }) => [a, b].every((p) => l.storePaths.some((q) => `${S}/${p}`.startsWith(q))));
    for (const e of inImage) if (e.link !== e.rel) assert.ok(sameLayer(e.rel, e.link), `${e.rel} linked to ${e.link} across layers`);
    const dupLinked = inImage.find((e) => e.rel.endsWith('/same') && e.link !== e.rel);
    assert.equal(Boolean(dupLinked), sameLayer(path.basename(fixture.dup1) + '/same', path.basename(fixture.dup2) + '/same'));
    assert.deepEqual(JSON.parse(skopeo('inspect', '--config', `docker-archive:${archive}`)).config.Cmd, [fixture.tool]);
    // The customisation layer links the root's files in, as symlinkJoin does.
    assert.equal(fs.readlinkSync(path.join(rootfs, 'app')), `${fixture.root}/app`);
    assert.equal(fs.readlinkSync(path.join(rootfs, 'dup2-path')), `${fixture.root}/dup2-path`);
  } finally {
    store.cleanup();
  }
});

test('rebuilds give identical bytes for every output and compression, whatever TZ, umask, cwd, clock and directory order', () => {
  requireTools('faketime');
  // The same tree made in the opposite order: readdir gives its names in another order.
  const rev = path.join(work, 'src-rev');
  fs.mkdirSync(rev);
  makeSource(rev, 'reverse');
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-container-cwd-'));
  const files = (p: string) => (fs.statSync(p).isDirectory() ? fs.readdirSync(p, { recursive: true, encoding: 'utf8' }).sort().map((f) => [f, fs.statSync(path.join(p, f)).isFile() ? fs.readFileSync(path.join(p, f)).toString('base64') : 'dir']) : fs.readFileSync(p).toString('base64'));
  try {
    for (const compression of ['none', 'gzip', 'zstd']) {
      const cfgA = writeJson(`repro-${compression}.json`, { name: 'repro', contents: ['src'], config: CONFIG, layerCompression: compression });
      const cfgB = writeJson(`repro-${compression}-rev.json`, { name: 'repro', contents: ['src-rev'], config: CONFIG, layerCompression: compression });
      for (const format of ['docker-archive', 'oci-archive', 'oci-dir']) {
        const a = path.join(work, `repro-a-${compression}-${format}`);
        const b = path.join(work, `repro-b-${compression}-${format}`);
        dw(['container', cfgA, '-o', a, '--format', format, '--no-cache']);
        const r = spawnSync('/bin/sh', ['-c', 'umask 077; exec "$@"', 'sh', 'faketime', '2031-05-05 10:00:00', process.execPath, BIN, 'container', cfgB, '-o', b, '--format', format], {
          cwd: other,
          env: { ...process.env, TZ: 'Asia/Kathmandu', XDG_CACHE_HOME: path.join(other, 'cache') },
        });
        assert.equal(r.status, 0, r.stderr.toString());
        assert.deepEqual(files(a), files(b), `${compression} ${format}`);
      }
      // docker-archive and oci-archive are the same tar.
      assert.deepEqual(files(path.join(work, `repro-a-${compression}-oci-archive`)), files(path.join(work, `repro-a-${compression}-docker-archive`)), compression);
    }
    // Streamed: the same bytes as the file, and the tag derived from the content.
    const cfg = path.join(work, 'repro-none.json');
    const streamed = diskwright(['container', cfg, '--stream'], { cwd: work });
    assert.equal(streamed.status, 0, streamed.stderr);
    assert.deepEqual(streamed.stdout, fs.readFileSync(path.join(work, 'repro-a-none-docker-archive')));
    assert.match(streamed.stderr, /^repro:[0-9a-df-np-sv-z]{32}: 1 layer$/m);
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('podman loads the streamed archive under name:tag', () => {
  requireTools('podman');
  const cfg = writeJson('podman.json', { name: 'Podman-Check', tag: 'p1', contents: ['src'], config: CONFIG });
  const streamed = diskwright(['container', cfg, '--stream'], { cwd: work });
  assert.equal(streamed.status, 0, streamed.stderr);
  // Its own storage (vfs: no overlay mounts needed), so the test touches nothing of the host's.
  const podman = ['--storage-driver', 'vfs', '--root', path.join(work, 'podman-root'), '--runroot', path.join(work, 'podman-run')];
  const loaded = run('podman', [...podman, 'load'], { input: streamed.stdout });
  assert.match(loaded.stdout.toString() + loaded.stderr, /Loaded image: localhost\/podman-check:p1/);
  const images = run('podman', [...podman, 'images', '--format', '{{.Repository}}:{{.Tag}}']).stdout.toString();
  assert.match(images, /^localhost\/podman-check:p1$/m);
  const inspect = JSON.parse(run('podman', [...podman, 'image', 'inspect', 'localhost/podman-check:p1']).stdout.toString());
  assert.deepEqual(inspect[0].Config.Cmd, CONFIG.Cmd);
  // No `podman run`: on the CI VM crun's setrlimit of RLIMIT_NOFILE/NPROC fails with EPERM, even with --ulimit host.
});

test('bad input: one line, exit 1, no output', () => {
  const out = path.join(work, 'bad.tar');
  const fails = (config: unknown, args: string[], message: RegExp) => {
    const r = diskwright(['container', writeJson('bad.json', config), ...args], { cwd: work });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!fs.existsSync(out));
  };
  fails({ contents: ['src'] }, ['-o', out], /no "name"; give the image a name/);
  fails({ name: 'x', maxLayers: 128 }, ['-o', out], /maxLayers/);
  fails({ name: 'x', maxLayers: 1 }, ['-o', out], /maxLayers/);
  fails({ name: 'x', config: { Cmd: ['a'], Entrypiont: ['b'] } }, ['-o', out], /unknown key "Entrypiont" in config/);
  fails({ name: 'x', contents: ['missing-dir'] }, ['-o', out], /missing-dir/);
  fails({ name: 'x' }, [], /give -o OUT, or --stream/);
  fails({ name: 'x' }, ['--stream', '--format', 'oci-dir'], /oci-dir is a directory and cannot stream/);
  fs.mkdirSync(path.join(work, 'a-dir'));
  fails({ name: 'x' }, ['-o', path.join(work, 'a-dir')], /is a directory/);
  fs.writeFileSync(path.join(work, 'a-dir', 'f'), '');
  fails({ name: 'x' }, ['-o', path.join(work, 'a-dir'), '--format', 'oci-dir'], /already exists and is not empty/);
  fails({ name: 'x', perms: [{ path: '/', regex: '(' }] }, ['-o', out], /perms\[0\]\.regex/);
  fails({ name: 'x', perms: [{ path: '/', mode: 644 }] }, ['-o', out], /perms\[0\]\.mode: expected an octal mode in quotes/);
});
