// `fromImage` against real consumers: a base written by diskwright and, more
// to the point, bases skopeo rewrote in its own forms (its docker-archive,
// gzip-compressed layers in an OCI layout directory, zstd layers in an
// oci-archive) under an image built on top. skopeo copies the result
// (re-verifying every digest), umoci unpacks files of both base and top,
// skopeo inspect shows the merged config; every kind of bad base fails with
// one line and leaves no output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright, diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { requireRoot, requireTools, run } from '../oracle/tools.ts';
import { planContainer, writeContainer, type ContainerFormat, type PlannedLayer } from '../../src/api/container.ts';
import { validateContainerConfig } from '../../src/container/config.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { closure } from '../../src/nix/closure.ts';
import { formatRegistration } from '../../src/nix/registration.ts';
import { encodeMember, padding, tarMember, END_OF_ARCHIVE_LENGTH } from '../../src/archive/tar.ts';

let work: string;

before(() => {
  requireRoot('umoci unpack keeps the layers\' owners');
  requireTools('skopeo', 'umoci');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-from-image-'));
  process.env.XDG_CACHE_HOME = path.join(work, 'cache');
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(work, rel)), { recursive: true });
    fs.writeFileSync(path.join(work, rel), text);
  };
  // The base holds a /nix/store path the top layer overrides a file of: an upper layer may.
  put('base-src/etc/base.txt', 'from the base\n');
  put('base-src/etc/shared.txt', 'base version\n');
  put(`base-src/nix/store/${'a'.repeat(32)}-base-pkg/bin/tool`, 'base tool\n');
  put('top-src/top.txt', 'from the top\n');
  put('top-src/etc/shared.txt', 'top version\n');
  put(`top-src/nix/store/${'a'.repeat(32)}-base-pkg/bin/tool`, 'top tool\n');
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

const writeJson = (name: string, value: unknown) => writeJsonIn(work, name, value);
const dw = (args: string[]) => diskwrightIn(work, args);
const skopeo = (...args: string[]) => run('skopeo', ['--insecure-policy', ...args]).stdout.toString();
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const W = (p: string) => path.join(work, p);

/** An in-process build (a process start costs about a second of CPU; the CLI runs where its own behaviour is checked). */
function build(config: Record<string, unknown>, out: string, format: ContainerFormat = 'docker-archive'): PlannedLayer[] {
  const plan = planContainer(validateContainerConfig(config, 'test config'), work, { layerCache: false });
  try {
    writeContainer(plan, format, out);
  } finally {
    plan.cleanup();
  }
  return plan.layers;
}

const BASE_CONFIG = { Env: ['PATH=/bin', 'A=base', 'B=keep'], Cmd: ['/bin/base'], Entrypoint: ['/bin/entry'], WorkingDir: '/etc', Labels: { base: 'yes' }, ExposedPorts: { '80/tcp': {} }, User: '1:1', StopSignal: 'SIGINT' };

/** The OCI manifest of a layout directory's only image. */
function layoutManifest(dir: string): { config: { digest: string }; layers: Array<{ mediaType: string; digest: string; size: number }> } {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  return JSON.parse(fs.readFileSync(path.join(dir, 'blobs', index.manifests[0].digest.replace(':', '/')), 'utf8'));
}

/** The OCI manifest inside one of our archives. */
function archiveManifest(archive: string): ReturnType<typeof layoutManifest> {
  const index = JSON.parse(run('tar', ['-xOf', archive, 'index.json']).stdout.toString());
  return JSON.parse(run('tar', ['-xOf', archive, `blobs/${index.manifests[0].digest.replace(':', '/')}`]).stdout.toString());
}

test('bases from diskwright and from skopeo, in all three input forms: layers byte for byte, skopeo and umoci read the result', () => {
  dw(['container', writeJson('base.json', { name: 'base', tag: 'b1', contents: ['base-src'], config: BASE_CONFIG }), '-o', W('base-dw'), '--format', 'oci-dir']);
  dw(['container', W('base.json'), '-o', W('base-dw.tar')]);
  // skopeo's own forms of the same image: its docker-archive (one tar per layer, symlinks, no OCI layout),
  // gzip layers in a layout directory, zstd layers in an oci-archive.
  skopeo('copy', `oci:${W('base-dw')}:b1`, `docker-archive:${W('base-skopeo.tar')}:base:b1`);
  skopeo('copy', '--dest-compress', '--dest-compress-format', 'gzip', `oci:${W('base-dw')}:b1`, `oci:${W('base-gzip')}:b1`);
  skopeo('copy', '--dest-compress', '--dest-compress-format', 'zstd', `oci:${W('base-dw')}:b1`, `oci-archive:${W('base-zstd.tar')}:b1`);
  const zstdLayout = W('base-zstd-layout');
  fs.mkdirSync(zstdLayout);
  run('tar', ['-xf', W('base-zstd.tar'), '-C', zstdLayout]);
  const plain = layoutManifest(W('base-dw')).layers[0];
  const bases: Array<[string, { mediaType: string; digest: string; size: number }]> = [
    ['base-dw', plain],
    ['base-dw.tar', plain],
    ['base-skopeo.tar', plain],
    ['base-gzip', layoutManifest(W('base-gzip')).layers[0]],
    ['base-zstd.tar', layoutManifest(zstdLayout).layers[0]],
  ];
  assert.match(bases[3][1].mediaType, /\+gzip$/);
  assert.match(bases[4][1].mediaType, /\+zstd$/);
  const top = (base: string) => ({ name: 'top', tag: 't1', contents: ['top-src'], fromImage: base, config: { Env: ['A=top', 'C=new'], WorkingDir: '/' } });
  for (const [base, layer] of bases) {
    const out = W(`top-${base}.tar`);
    assert.deepEqual(build(top(base), out).map((l) => l.base ?? false), [true, false], base);
    // The base layer is the base's blob: same digest, size and media type, the same bytes in the archive.
    assert.deepEqual(archiveManifest(out).layers[0], { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, base);
    assert.equal(sha256(run('tar', ['-xOf', out, `blobs/${layer.digest.replace(':', '/')}`]).stdout), layer.digest, base);
    // skopeo re-verifies every digest (and decompresses for umoci 0.4.7, which knows no zstd).
    const copy = W(`copy-${base}`);
    skopeo('copy', '--dest-decompress', `docker-archive:${out}`, `oci:${copy}:t`);
    const bundle = W(`bundle-${base}`);
    run('umoci', ['unpack', '--image', `${copy}:t`, bundle]);
    const file = (p: string) => fs.readFileSync(path.join(bundle, 'rootfs', p), 'utf8');
    assert.equal(file('etc/base.txt'), 'from the base\n', base);
    assert.equal(file('top.txt'), 'from the top\n', base);
    assert.equal(file('etc/shared.txt'), 'top version\n', base);
    assert.equal(file(`nix/store/${'a'.repeat(32)}-base-pkg/bin/tool`), 'top tool\n', base);
    const config = JSON.parse(skopeo('inspect', '--config', `docker-archive:${out}`));
    // Env as nixpkgs merges it: base first, one entry per name where it first appears, ours winning.
    assert.deepEqual(config.config.Env, ['PATH=/bin', 'A=top', 'B=keep', 'C=new'], base);
    assert.deepEqual({ ...config.config, Env: undefined }, { ...BASE_CONFIG, Env: undefined, WorkingDir: '/' }, base);
    assert.equal(config.rootfs.diff_ids[0], sha256(fs.readFileSync(path.join(W('base-dw'), 'blobs', plain.digest.replace(':', '/')))), base);
    assert.equal(config.history.length, 2, base);
  }
  // The CLI gives the same bytes from another directory and time zone, streamed; it reports the base layer.
  const streamed = diskwright(['container', writeJson('top.json', top('base-gzip')), '--stream', '--json'], { cwd: os.tmpdir(), env: { ...process.env, TZ: 'Pacific/Chatham' } });
  assert.equal(streamed.status, 0, streamed.stderr);
  assert.deepEqual(streamed.stdout, fs.readFileSync(W('top-base-gzip.tar')));
  assert.deepEqual(JSON.parse(streamed.stderr).layers.map((l: { base?: boolean }) => l.base ?? false), [true, false]);
  // The other outputs too.
  build(top('base-gzip'), W('top-oci.tar'), 'oci-archive');
  skopeo('copy', `oci-archive:${W('top-oci.tar')}:t1`, `oci:${W('copy-oci-archive')}:t`);
  build(top('base-gzip'), W('top-dir'), 'oci-dir');
  skopeo('copy', `oci:${W('top-dir')}:t1`, `oci:${W('copy-oci-dir')}:t`);
  // An image on a two-layer base is a base too; the history of both stays, base first.
  build({ name: 'third', contents: ['top-src'], fromImage: 'top-base-gzip.tar' }, W('third.tar'));
  const third = JSON.parse(skopeo('inspect', '--config', `docker-archive:${W('third.tar')}`));
  assert.equal(third.rootfs.diff_ids.length, 3);
  assert.deepEqual(third.history.map((h: { comment: string }) => h.comment), ['customisation', 'customisation', 'customisation']);
});

test('podman loads an image on a zstd base from skopeo: files of both layers, the merged config', () => {
  requireTools('podman');
  // Its own storage (vfs: no overlay mounts), so the test touches nothing of the host's.
  const podman = ['--storage-driver', 'vfs', '--root', W('podman-root'), '--runroot', W('podman-run')];
  const loaded = run('podman', [...podman, 'load', '-i', W('top-base-zstd.tar.tar')]);
  assert.match(loaded.stdout.toString() + loaded.stderr, /Loaded image: localhost\/top:t1/);
  const inspect = JSON.parse(run('podman', [...podman, 'image', 'inspect', 'localhost/top:t1']).stdout.toString())[0];
  assert.deepEqual(inspect.Config.Env, ['PATH=/bin', 'A=top', 'B=keep', 'C=new']);
  const root = run('podman', [...podman, 'image', 'mount', 'localhost/top:t1']).stdout.toString().trim();
  try {
    assert.equal(fs.readFileSync(path.join(root, 'etc/base.txt'), 'utf8'), 'from the base\n');
    assert.equal(fs.readFileSync(path.join(root, 'etc/shared.txt'), 'utf8'), 'top version\n');
  } finally {
    run('podman', [...podman, 'image', 'unmount', 'localhost/top:t1']);
  }
});

test('maxLayers counts the base layers: the store gets maxLayers - 1 - baseLayers layers', () => {
  // A store of two paths, tool referring to lib, with a registration as closureInfo gives it (no Nix needed).
  const storeDir = W('store');
  const [lib, tool] = [`${'l'.repeat(32)}-lib`, `${'w'.repeat(32)}-tool`];
  fs.mkdirSync(path.join(storeDir, lib), { recursive: true });
  fs.writeFileSync(path.join(storeDir, lib, 'libx.so'), 'lib\n');
  fs.mkdirSync(path.join(storeDir, tool));
  fs.writeFileSync(path.join(storeDir, tool, 'tool'), `uses /nix/store/${lib}/libx.so\n`);
  fs.writeFileSync(W('registration'), formatRegistration(closure([path.join(storeDir, tool)], { storeDir }).paths));
  const cfg = (maxLayers: number) => ({ name: 'l', contents: ['top-src'], fromImage: 'top-base-dw.tar', maxLayers, storePaths: [`/nix/store/${tool}`], storeDir, storeReferences: 'registration' });
  for (const [maxLayers, want] of [[4, [[], [], [`/nix/store/${lib}`, `/nix/store/${tool}`], []]], [5, [[], [], [`/nix/store/${lib}`], [`/nix/store/${tool}`], []]]] as const) {
    const out = W(`layers-${maxLayers}.tar`);
    assert.deepEqual(build(cfg(maxLayers), out).map((l) => l.storePaths), want, `maxLayers ${maxLayers}`);
    assert.equal(JSON.parse(skopeo('inspect', '--config', `docker-archive:${out}`)).rootfs.diff_ids.length, maxLayers);
  }
  // A base holding the very store paths we add: the same layers twice (legal: an upper layer may repeat
  // or override a lower one), one blob in the archive, and skopeo and umoci read it.
  const storeBase = { name: 'sb', storePaths: [`/nix/store/${tool}`], storeDir, storeReferences: 'registration', maxLayers: 3 };
  const baseLayers = build(storeBase, W('store-base.tar'));
  const twice = build({ ...storeBase, contents: ['top-src'], fromImage: 'store-base.tar', maxLayers: 6 }, W('store-twice.tar'));
  assert.deepEqual(twice.slice(3, 5).map((l) => l.digest), baseLayers.slice(0, 2).map((l) => l.digest));
  assert.equal(run('tar', ['-tf', W('store-twice.tar')]).stdout.toString().split('\n').filter((n) => n === `blobs/${twice[3].digest.replace(':', '/')}`).length, 1);
  skopeo('copy', `docker-archive:${W('store-twice.tar')}`, `oci:${W('store-twice-oci')}:t`);
  run('umoci', ['unpack', '--image', `${W('store-twice-oci')}:t`, W('store-twice-bundle')]);
  assert.equal(fs.readFileSync(W(`store-twice-bundle/rootfs/nix/store/${lib}/libx.so`), 'utf8'), 'lib\n');
});

test('a layout with several images: picked by fromImageTag or fromImageName, else refused with the names', () => {
  skopeo('copy', `oci:${W('base-dw')}:b1`, `oci:${W('multi')}:one`);
  skopeo('copy', `oci:${W('base-gzip')}:b1`, `oci:${W('multi')}:two`);
  const out = W('multi-out.tar');
  const r = diskwright(['container', writeJson('multi.json', { name: 'm', fromImage: 'multi' }), '-o', out], { cwd: work });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^diskwright: fromImage multi holds 2 images \(one, two\); set fromImageName and\/or fromImageTag/);
  assert.ok(!fs.existsSync(out));
  build({ name: 'm', fromImage: 'multi', fromImageTag: 'two' }, out);
  assert.match(archiveManifest(out).layers[0].mediaType, /\+gzip$/);
  // Our own docker-archive names the image by name and tag.
  build({ name: 'm', fromImage: 'base-dw.tar', fromImageName: 'base', fromImageTag: 'b1' }, W('named.tar'));
});

/** A tar of `members` (name, data), written by our codec: any name, any order. */
function tarOf(members: Array<[string, Buffer | string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of members) {
    const b = Buffer.from(data);
    parts.push(encodeMember(tarMember(Buffer.from(name), { size: b.length })), b, Buffer.alloc(padding(b.length)));
  }
  return Buffer.concat([...parts, Buffer.alloc(END_OF_ARCHIVE_LENGTH)]);
}

/** A copy of a layout directory with `edit` applied. */
function layoutCopy(name: string, from: string, edit: (dir: string) => void): string {
  fs.cpSync(W(from), W(name), { recursive: true });
  edit(W(name));
  return name;
}

/** Writes `doc` as a blob of `dir` and returns its descriptor fields. */
function putBlob(dir: string, doc: unknown): { digest: string; size: number } {
  const b = Buffer.from(JSON.stringify(doc));
  fs.writeFileSync(path.join(dir, 'blobs', sha256(b).replace(':', '/')), b);
  return { digest: sha256(b), size: b.length };
}

/** Rewrites the only image of layout `dir` with `edit` applied to its config, re-digesting config, manifest and index. */
function editConfig(dir: string, edit: (config: Record<string, any>) => void): void {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const manifest = layoutManifest(dir) as Record<string, any>;
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'blobs', manifest.config.digest.replace(':', '/')), 'utf8'));
  edit(config);
  manifest.config = { ...manifest.config, ...putBlob(dir, config) };
  index.manifests[0] = { ...index.manifests[0], ...putBlob(dir, manifest) };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
}

test('bad bases: one line naming fromImage, exit 1, no output', () => {
  const out = W('bad-out.tar');
  const configOf = (fromImage: string, extra: Record<string, unknown>) => ({ name: 'x', contents: ['top-src'], fromImage, ...extra });
  /** Through the CLI: exit 1, one line, no output file. */
  const cliFails = (fromImage: string, message: RegExp) => {
    const r = diskwright(['container', writeJson('bad.json', configOf(fromImage, {})), '-o', out], { cwd: work });
    assert.equal(r.status, 1, `${fromImage}: ${r.stderr}`);
    assert.match(r.stderr, message, fromImage);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!fs.existsSync(out));
  };
  /** In-process (a process start per case would cost seconds): planning, which writes nothing, refuses with one line naming the option. */
  const fails = (fromImage: string, message: RegExp, extra: Record<string, unknown> = {}) => {
    assert.throws(() => planContainer(validateContainerConfig(configOf(fromImage, extra), 'bad.json'), work, { layerCache: false }), (err: Error) => {
      assert.ok(err instanceof DiskwrightError, `${fromImage}: ${err.stack}`);
      assert.match(err.message, message, fromImage);
      assert.match(err.message, /^(fromImage|maxLayers)/);
      assert.ok(!err.message.includes('\n'), err.message);
      return true;
    });
  };
  const layer = layoutManifest(W('base-dw')).layers[0];
  const layerFile = (dir: string) => path.join(dir, 'blobs', layer.digest.replace(':', '/'));
  cliFails('missing.tar', /^diskwright: fromImage missing\.tar: no such file or directory/);
  fs.writeFileSync(W('text.tar'), 'hello, this is not a tar archive at all\n'.repeat(20));
  cliFails('text.tar', /^diskwright: fromImage text\.tar is not a valid tar archive/);
  fs.writeFileSync(W('other.tar'), tarOf([['README', 'a tar, not an image']]));
  fails('other.tar', /fromImage other\.tar is neither a docker-archive \(no manifest\.json\) nor an OCI image layout/);
  const whole = fs.readFileSync(W('base-skopeo.tar'));
  fs.writeFileSync(W('cut.tar'), whole.subarray(0, Math.floor(whole.length / 2)));
  cliFails('cut.tar', /^diskwright: fromImage cut\.tar (ends inside a tar member|: .* is missing)/);
  fs.writeFileSync(W('climb.tar'), tarOf([['../../etc/evil', 'x'], ['manifest.json', '[]']]));
  fails('climb.tar', /member "\.\.\/\.\.\/etc\/evil" names a path outside the archive/);
  fs.writeFileSync(W('climb2.tar'), tarOf([['manifest.json', JSON.stringify([{ Config: 'c.json', Layers: ['../../etc/passwd'] }])], ['c.json', '{}']]));
  fails('climb2.tar', /manifest\.json Layers\[0\] is not a relative path inside the archive/);
  fs.writeFileSync(W('badjson.tar'), tarOf([['manifest.json', '[{"Config": ']]));
  fails('badjson.tar', /manifest\.json is not valid JSON/);
  fs.writeFileSync(W('many.tar'), tarOf([['manifest.json', JSON.stringify([{ Config: 'c.json', Layers: Array.from({ length: 5000 }, (_, i) => `${i}.tar`) }])]]));
  fails('many.tar', /has 5000 layers; at most 126/);
  fails(layoutCopy('no-blob', 'base-dw', (d) => fs.rmSync(layerFile(d))), /layer 1 \(blobs\/sha256\/[0-9a-f]{64}\) is missing/);
  fails(layoutCopy('flipped', 'base-dw', (d) => {
    const b = fs.readFileSync(layerFile(d));
    b[100] ^= 1;
    fs.writeFileSync(layerFile(d), b);
  }), /layer 1 .* does not match its digest sha256:/);
  fails(layoutCopy('huge', 'base-dw', (d) => {
    const m = layoutManifest(d) as Record<string, any>;
    m.layers[0].size = 2 ** 52;
    const index = JSON.parse(fs.readFileSync(path.join(d, 'index.json'), 'utf8'));
    index.manifests[0] = { ...index.manifests[0], ...putBlob(d, m) };
    fs.writeFileSync(path.join(d, 'index.json'), JSON.stringify(index));
  }), /layer 1 .* is \d+ bytes where the manifest says 4503599627370496/);
  fails(layoutCopy('bad-index', 'base-dw', (d) => fs.writeFileSync(path.join(d, 'index.json'), '{"manifests": [')), /index\.json is not valid JSON/);
  fails(layoutCopy('bad-digest', 'base-dw', (d) => {
    const index = JSON.parse(fs.readFileSync(path.join(d, 'index.json'), 'utf8'));
    index.manifests[0].digest = 'sha256:../../../../etc/passwd';
    fs.writeFileSync(path.join(d, 'index.json'), JSON.stringify(index));
  }), /has digest "sha256:\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd", not sha256:<64 hex digits>/);
  // A gzip layer whose diff_id is not its tar's: found by decompressing it.
  fails(layoutCopy('gzip-diff', 'base-gzip', (d) => editConfig(d, (c) => (c.rootfs.diff_ids[0] = `sha256:${'0'.repeat(64)}`))), /decompresses to a tar whose sha256 is not its diff_id/);
  fails(layoutCopy('gzip-cut', 'base-gzip', (d) => {
    const m = layoutManifest(d) as Record<string, any>;
    const f = path.join(d, 'blobs', m.layers[0].digest.replace(':', '/'));
    const cut = fs.readFileSync(f).subarray(0, 60);
    fs.writeFileSync(path.join(d, 'blobs', sha256(cut).replace(':', '/')), cut);
    m.layers[0] = { ...m.layers[0], digest: sha256(cut), size: cut.length };
    const index = JSON.parse(fs.readFileSync(path.join(d, 'index.json'), 'utf8'));
    index.manifests[0] = { ...index.manifests[0], ...putBlob(d, m) };
    fs.writeFileSync(path.join(d, 'index.json'), JSON.stringify(index));
  }), /layer 1 .* does not decompress: unexpected end of file/);
  // A base changed (same size) between the check and the write: caught while writing, no output.
  const changing = layoutCopy('changing', 'base-dw', () => {});
  const plan = planContainer(validateContainerConfig(configOf(changing, {}), 'changing.json'), work, { layerCache: false });
  const b = fs.readFileSync(layerFile(W(changing)));
  b[600] ^= 1;
  fs.writeFileSync(layerFile(W(changing)), b);
  for (const format of ['docker-archive', 'oci-dir'] as const) {
    assert.throws(() => writeContainer(plan, format, out), /^DiskwrightError: fromImage changing layer 1 changed after it was checked/);
    assert.ok(!fs.existsSync(out));
  }
  plan.cleanup();
  fails('base-dw', /fromImage base-dw is an image for linux\/amd64, this one for linux\/arm64/, { system: 'aarch64-linux' });
  fails('base-dw', /no image matches nope:\*; it holds base:b1/, { fromImageName: 'nope' });
  // maxLayers counts the base's layers: two here, plus one for store paths and one on top.
  fails('top-base-dw.tar', /maxLayers: 3 is below the 4 layers this image needs \(2 from fromImage, 1 for store paths, 1 for the customisation layer\)/, { maxLayers: 3, storePaths: [`/nix/store/${'b'.repeat(32)}-x`] });
});
