// Nix closures in images, against a real Nix (Debian's nix-bin 2.8) with a
// throwaway store (see nixstore.ts, fixture.nix): `build` and `mkfs ext4`
// with store paths hold the closure byte for byte (kernel loop mount and
// debugfs, against the store itself), /nix-path-registration is closureInfo's
// registration, and Nix accepts it (--load-db, then --verify --check-contents
// on the store extracted from our image). Then store-optimised hard links,
// onlyNixStore, the make-ext4-fs config, a chroot store, bad input and
// rebuild-and-compare.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diskwright, diskwrightIn, writeJsonIn } from '../cli/run.ts';
import { debugfs, dumpe2fs, e2fsck, requireRoot, requireTools, run, withLoopMount } from '../oracle/tools.ts';
import { diffSnapshots, snapshotTree, snapshotViaDebugfs, type Snapshot } from '../oracle/snapshot.ts';
import { cut } from '../build/fixture.ts';
import { buildClosureInfo, buildFixture, HERE, makeNixStore, type FixtureName, type NixStore } from './nixstore.ts';
import type { DiskLayout } from '../../src/api/build.ts';
import { rootTree } from '../../src/api/build.ts';
import { validateConfig } from '../../src/config/load.ts';
import { planExt4 } from '../../src/fs/ext4/planner.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { parseUuid } from '../../src/util/ids.ts';

const EPOCH = 1_700_000_000;
const MiB = 2 ** 20;
const BLOCK = 4096;
const REG = '/nix-path-registration';
const MAKE_EXT4_FS_UUID = '44444444-4444-4444-8888-888888888888';

type CiFiles = Record<'store-paths' | 'registration' | 'total-nar-size', string>;

let store: NixStore;
let out: Record<FixtureName, string>;
let S: string;
let work: string;
let ci: CiFiles;
/** The closure of out.root, as closureInfo lists it. */
let closurePaths: string[];
/** The root filesystem of a `build` (efi) and a `mkfs ext4` image of that closure. */
let buildImg: string;
let mkfsImg: string;
/** What both hold: the closure at S, the registration at /nix-path-registration. */
let expected: string;

const lines = (b: Buffer | string) => String(b).split('\n').filter((l) => l !== '');

function readCi(dir: string): CiFiles {
  const f = (n: string) => fs.readFileSync(path.join(dir, n), 'utf8');
  return { 'store-paths': f('store-paths'), registration: f('registration'), 'total-nar-size': f('total-nar-size') };
}

const writeJson = (name: string, value: unknown) => writeJsonIn(work, name, value);
/** `diskwright ARGS` that must succeed; runs in `work` unless told otherwise. */
const dw = (args: string[], opts: Parameters<typeof diskwright>[1] = {}) => diskwrightIn(work, args, opts);

/** Builds `config` into `work/<name>` and returns the root filesystem, cut out of the disk when there is a table. */
function buildRoot(name: string, config: object): { image: string; layout: DiskLayout; outDir: string } {
  const outDir = path.join(work, `out-${name}`);
  dw(['build', writeJson(`${name}.json`, config), '-o', outDir]);
  const layout: DiskLayout = JSON.parse(fs.readFileSync(path.join(outDir, 'layout.json'), 'utf8'));
  const disk = path.join(outDir, layout.image);
  if (layout.table === 'none') return { image: disk, layout, outDir };
  const root = layout.partitions.find((p) => p.role === 'root')!;
  const image = path.join(work, `${name}-root.img`);
  cut(disk, root.start, root.size, image);
  return { image, layout, outDir };
}

/**
 * Stages what an image should hold in `dir`: the store objects (copied with
 * one `cp -a`, so hard links among them stay links) in `storeDir` or, without
 * one, at the root; the registration at its path (0444). Directories diskwright
 * makes are 0755, root's, with the epoch as mtime.
 */
function stage(dir: string, objects: string[], o: { storeDir?: string; registration?: { path: string; content: string } } = {}): string {
  const made = new Set<string>([dir]);
  const mkdirs = (target: string) => {
    for (let d = target; d !== dir && d.startsWith(dir + '/'); d = path.dirname(d)) made.add(d);
    fs.mkdirSync(target, { recursive: true });
  };
  const storeIn = o.storeDir ? path.join(dir, o.storeDir) : dir;
  mkdirs(storeIn);
  run('cp', ['-a', ...objects, storeIn + '/']);
  if (o.registration) {
    const file = path.join(dir, o.registration.path);
    mkdirs(path.dirname(file));
    fs.writeFileSync(file, o.registration.content);
    fs.chmodSync(file, 0o444);
    fs.utimesSync(file, EPOCH, EPOCH);
  }
  for (const d of made) {
    fs.chmodSync(d, 0o755);
    fs.chownSync(d, 0, 0);
    fs.utimesSync(d, EPOCH, EPOCH);
  }
  return dir;
}

/** e2fsck -fn clean, and the tree through a read-only loop mount and through debugfs equals `want`. */
async function checkImage(image: string, want: Snapshot, what: string): Promise<Snapshot> {
  const fsck = e2fsck(image);
  assert.ok(fsck.clean, `${what}: e2fsck -fn\n${fsck.output}`);
  const viaMount = await withLoopMount(image, (mnt) => snapshotTree(mnt));
  assert.deepEqual(diffSnapshots(want, viaMount, { labels: ['store', 'mount'] }), [], `${what}: loop mount`);
  const viaDebugfs = await snapshotViaDebugfs(image);
  assert.deepEqual(diffSnapshots(want, viaDebugfs, { labels: ['store', 'debugfs'] }), [], `${what}: debugfs`);
  return viaDebugfs;
}

/** The names in a directory of the image, per debugfs `ls -p`. */
function imageLs(image: string, dir: string): string[] {
  const r = debugfs(image, [`ls -p ${dir}`]);
  assert.doesNotMatch(r.stderr, /not found|error/i, r.stderr);
  return [...r.outputs[0].toString('latin1').matchAll(/^\/\d+\/\d+\/\d+\/\d+\/([^/]*)\/\d*\/$/gm)].map((m) => m[1]).filter((n) => n !== '.' && n !== '..');
}

function imageCat(image: string, file: string): Buffer {
  const r = debugfs(image, [`cat ${file}`]);
  assert.doesNotMatch(r.stderr, /not found|error/i, r.stderr);
  return r.outputs[0];
}

/** Inode number and link count of a path in the image (debugfs stat). */
function imageInode(image: string, file: string): { ino: number; links: number } {
  const text = debugfs(image, [`stat ${file}`]).outputs[0].toString('latin1');
  const ino = /^Inode: (\d+)/m.exec(text);
  const links = /^Links: (\d+)/m.exec(text);
  assert.ok(ino && links, `stat ${file}: ${text.slice(0, 300)}`);
  return { ino: Number(ino[1]), links: Number(links[1]) };
}

before(() => {
  requireRoot('image tests (loop mounts, chown in the expected trees)');
  requireTools('e2fsck', 'debugfs', 'dumpe2fs', 'mount', 'zstd', 'cp', 'dd');
  store = makeNixStore();
  S = store.storeDir;
  out = buildFixture(store);
  ci = readCi(buildClosureInfo(store, [out.root]));
  closurePaths = lines(ci['store-paths']);
  work = path.join(store.root, 'work');
  fs.mkdirSync(work);
  // A root the way a user has one: ./result next to the config, in the working directory.
  fs.symlinkSync(out.root, path.join(work, 'result'));

  expected = stage(path.join(work, 'expected'), closurePaths, { storeDir: S, registration: { path: REG, content: ci.registration } });
  // tool is in root's closure: additionalPaths adds nothing here, but goes through the same path.
  buildImg = buildRoot('efi', {
    partitionTableType: 'efi', bootSize: '40M', additionalSpace: '1M', epoch: EPOCH,
    storePaths: [out.tool], additionalPaths: ['./result'], nixStoreDir: S,
  }).image;
  mkfsImg = path.join(work, 'mkfs.img');
  dw(['mkfs', 'ext4', '--store-path', './result', '--nix-store-dir', S, '--epoch', String(EPOCH), '-o', mkfsImg]);
});

after(() => store?.cleanup());

test('build and mkfs ext4 with store paths: every closure path byte for byte, nothing else, e2fsck clean, closureInfo\'s registration at 0444', async () => {
  assert.ok(closurePaths.length >= 9 && !closurePaths.includes(out.other), 'the fixture closure (other is outside it)');
  const want = snapshotTree(expected);
  for (const [what, image] of [['build efi', buildImg], ['mkfs ext4', mkfsImg]] as const) {
    const snap = await checkImage(image, want, what);
    assert.deepEqual(imageLs(image, S).sort(), closurePaths.map((p) => path.basename(p)).sort(), `${what}: the store holds the closure, nothing else`);
    assert.equal(imageCat(image, REG).toString(), ci.registration, `${what}: ${REG} is closureInfo's registration`);
    assert.equal(snap.get(REG)!.mode, 0o444);
    assert.equal(snap.get(REG)!.uid, 0);
  }
});

test('nix-store --load-db of our registration, then --verify --check-contents on the store extracted from our image: nothing wrong', () => {
  const dest = path.join(store.root, 'extracted');
  fs.mkdirSync(dest);
  // debugfs rdump S DEST writes DEST/store: the image's store, outside the image.
  const r = run('debugfs', ['-R', `rdump ${S} ${dest}`, buildImg]);
  assert.deepEqual(lines(r.stderr).filter((l) => !/^debugfs \d/.test(l)), [], 'rdump');
  const real = path.join(dest, path.basename(S));
  assert.deepEqual(fs.readdirSync(real).sort(), closurePaths.map((p) => path.basename(p)).sort());

  const fresh = path.join(store.root, 'extracted-state');
  const url = `local?real=${real}&state=${fresh}`;
  store.run('nix-store', ['--store', url, '--load-db'], { input: imageCat(buildImg, REG) });
  const v = store.run('nix-store', ['--store', url, '--verify', '--check-contents'], { allowFailure: true });
  const complaints = lines(v.stderr).filter((l) => !/^(reading the Nix store|checking path existence|checking link hashes|checking store hashes)\.\.\.$/.test(l));
  assert.equal(v.status, 0, v.stderr);
  assert.deepEqual(complaints, []);
  // Nix now knows exactly the closure, with the hashes it recorded when it built the paths.
  assert.deepEqual(lines(store.run('nix-store', ['--store', url, '-qR', out.root]).stdout).sort(), closurePaths);
  assert.deepEqual(
    lines(store.run('nix-store', ['--store', url, '-q', '--hash', ...closurePaths]).stdout),
    lines(store.run('nix-store', ['-q', '--hash', ...closurePaths]).stdout),
  );
});

test('hard links from nix-store --optimise: one inode in the image, its data and inode counted once', () => {
  const pairs = [[`${out.dup1}/same`, `${out.dup2}/same`], [`${out.lib}/eight`, `${out.lib}/eight-hardlink`]];
  for (const [a, b] of pairs) {
    assert.equal(fs.statSync(a).ino, fs.statSync(b).ino, `${a}: optimised into one inode in the store`);
    for (const image of [buildImg, mkfsImg]) {
      const x = imageInode(image, a);
      assert.deepEqual(imageInode(image, b), x, `${b} is ${a} in the image`);
      assert.equal(x.links, 2, 'two names in the image (the store\'s .links entry is not in the closure)');
    }
  }

  // The same closure with every hard link broken (cp -R keeps no links), in a
  // filesystem of the same size: it uses exactly the duplicated data more.
  const copy = path.join(work, 'unlinked');
  fs.mkdirSync(copy);
  run('cp', ['-R', '--preserve=mode,ownership,timestamps', ...closurePaths, copy + '/']);
  const groups = new Map<number, { names: number; size: number }>();
  // Names need not be UTF-8 (lib has one in Latin-1): walk with Buffers.
  const walk = (p: Buffer) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const n of fs.readdirSync(p, { encoding: 'buffer' })) walk(Buffer.concat([p, Buffer.from('/'), n]));
    else if (st.isFile()) {
      const g = groups.get(st.ino) ?? { names: 0, size: st.size };
      g.names++;
      groups.set(st.ino, g);
    }
  };
  closurePaths.forEach((p) => walk(Buffer.from(p)));
  const extraNames = [...groups.values()].reduce((n, g) => n + g.names - 1, 0);
  const extraBlocks = [...groups.values()].reduce((n, g) => n + (g.names - 1) * Math.ceil(g.size / BLOCK), 0);
  assert.ok(extraBlocks >= 26, `the fixture has linked data (${extraBlocks} blocks)`);

  const linked = path.join(work, 'linked-16M.img');
  const unlinked = path.join(work, 'unlinked-16M.img');
  const common = ['--store-path', out.root, '--nix-store-dir', S, '--size', '16M', '--epoch', String(EPOCH)];
  dw(['mkfs', 'ext4', ...common, '-o', linked]);
  dw(['mkfs', 'ext4', ...common, '--store-dir', copy, '-o', unlinked]);
  const a = dumpe2fs(linked);
  const b = dumpe2fs(unlinked);
  assert.equal(a['Block count'], b['Block count']);
  assert.equal(a['Inode count'], b['Inode count']);
  assert.equal(Number(a['Free blocks']) - Number(b['Free blocks']), extraBlocks, 'data blocks of linked files counted once');
  assert.equal(Number(a['Free inodes']) - Number(b['Free inodes']), extraNames, 'one inode per linked file');
  // A NAR has no hard links: the registration does not change.
  assert.deepEqual(imageCat(unlinked, REG), imageCat(linked, REG));
  for (const image of [linked, unlinked]) assert.ok(e2fsck(image).clean, image);
});

test('onlyNixStore: the store objects are the root, label nix-store, no registration (build and mkfs --only-nix-store)', async () => {
  const want = snapshotTree(stage(path.join(work, 'expected-only'), closurePaths));
  const { image } = buildRoot('only', { partitionTableType: 'none', onlyNixStore: true, storePaths: ['./result'], nixStoreDir: S, additionalSpace: '1M', epoch: EPOCH });
  const mkfsOnly = path.join(work, 'mkfs-only.img');
  dw(['mkfs', 'ext4', '--only-nix-store', '--store-path', out.root, '--nix-store-dir', S, '--epoch', String(EPOCH), '-o', mkfsOnly]);
  for (const [what, img] of [['build', image], ['mkfs', mkfsOnly]] as const) {
    const snap = await checkImage(img, want, `onlyNixStore ${what}`);
    assert.equal(snap.has(REG), false);
    assert.equal(dumpe2fs(img)['Filesystem volume name'], 'nix-store', `${what}: label`);
  }
  // A label given wins.
  const labelled = buildRoot('only-label', { partitionTableType: 'none', onlyNixStore: true, storePaths: [out.data], nixStoreDir: S, label: 'store', additionalSpace: '0' });
  assert.equal(dumpe2fs(labelled.image)['Filesystem volume name'], 'store');
});

test('nixPathRegistration false and --no-nix-path-registration: the store without a registration', () => {
  const { image } = buildRoot('no-reg', { partitionTableType: 'none', storePaths: [out.dup1], nixStoreDir: S, nixPathRegistration: false, additionalSpace: '0', epoch: EPOCH });
  const img = path.join(work, 'no-reg.img');
  dw(['mkfs', 'ext4', '--store-path', out.dup1, '--nix-store-dir', S, '--no-nix-path-registration', '-o', img]);
  for (const i of [image, img]) {
    assert.deepEqual(imageLs(i, '/').sort(), ['lost+found', S.split('/')[1]]);
    assert.deepEqual(imageLs(i, S), [path.basename(out.dup1)]);
    assert.ok(e2fsck(i).clean);
  }
});

test('make-ext4-fs config: ext4-fs.img with its label and uuid, files at the root, exactly 16 MiB free; compressImage gives ext4-fs.img.zst', async () => {
  const put = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
    fs.writeFileSync(path.join(work, file), text);
  };
  put('files1/boot/extlinux/extlinux.conf', 'DEFAULT nixos\n');
  put('files1/x', 'one\n');
  put('files2/etc/motd', 'hi\n');
  put('files2/x', 'two\n');
  const raw = { builder: 'make-ext4-fs', storePaths: ['./result'], volumeLabel: 'NIXOS_SD', nixStoreDir: S, files: ['files1', 'files2'], epoch: EPOCH };
  const outDir = path.join(work, 'out-me');
  dw(['build', writeJson('me.json', raw), '-o', outDir]);
  assert.deepEqual(fs.readdirSync(outDir).sort(), ['ext4-fs.img', 'layout.json', 'nix-support']);
  const image = path.join(outDir, 'ext4-fs.img');
  const fsck = e2fsck(image);
  assert.ok(fsck.clean, fsck.output);
  const d = dumpe2fs(image);
  assert.equal(d['Filesystem volume name'], 'NIXOS_SD');
  assert.equal(d['Filesystem UUID'], MAKE_EXT4_FS_UUID);
  assert.equal(Number(d['Block size']), BLOCK);
  const blocks = Number(d['Block count']);
  assert.equal(fs.statSync(image).size, blocks * BLOCK, 'a bare filesystem');
  assert.ok(Number(d['Free blocks']) * BLOCK >= 16 * MiB, `free blocks ${d['Free blocks']}`);

  // Exactly the smallest filesystem with 16 MiB (and its 1024 inodes) free:
  // planned at the image's size it is the image; one block less cannot hold it.
  const cfg = validateConfig(raw, 'me.json');
  const tree = rootTree(cfg, work, EPOCH);
  const opts = { label: 'NIXOS_SD', uuid: parseUuid(MAKE_EXT4_FS_UUID)!, seed: cfg.seed, role: 'root', epoch: EPOCH, freeBytes: 16 * MiB, freeInodes: (16 * MiB) / 16384, inodeRatio: 16384 };
  const same = planExt4(tree, { ...opts, size: blocks * BLOCK });
  assert.equal(same.stats.freeBlocks, Number(d['Free blocks']));
  assert.equal(same.stats.freeInodes, Number(d['Free inodes']));
  assert.throws(() => planExt4(tree, { ...opts, size: (blocks - 1) * BLOCK }), (e: unknown) => e instanceof DiskwrightError && e.code === 'SIZE_TOO_SMALL');

  // files' contents are merged at the root (later directories win), beside the store and the registration.
  const listing = imageLs(image, '/').sort();
  assert.deepEqual(listing, ['boot', 'etc', 'lost+found', REG.slice(1), S.split('/')[1], 'x'].sort());
  assert.equal(imageCat(image, '/x').toString(), 'two\n');
  assert.equal(imageCat(image, '/etc/motd').toString(), 'hi\n');
  assert.equal(imageCat(image, '/boot/extlinux/extlinux.conf').toString(), 'DEFAULT nixos\n');
  assert.equal(imageCat(image, REG).toString(), ci.registration);
  const storePart = (snap: Snapshot) => new Map([...snap].filter(([k]) => k === REG || k === S || k.startsWith(S + '/')));
  assert.deepEqual(diffSnapshots(storePart(snapshotTree(expected)), storePart(await snapshotViaDebugfs(image)), { labels: ['store', 'debugfs'] }), []);

  // compressImage: only ext4-fs.img.zst, which zstd -d turns into the same image.
  const zOut = path.join(work, 'out-me-zst');
  dw(['build', writeJson('me-zst.json', { ...raw, compressImage: true }), '-o', zOut]);
  assert.deepEqual(fs.readdirSync(zOut).sort(), ['ext4-fs.img.zst', 'layout.json', 'nix-support']);
  const unz = run('zstd', ['-d', '-c', path.join(zOut, 'ext4-fs.img.zst')]).stdout;
  assert.ok(unz.equals(fs.readFileSync(image)), 'zstd -d gives the uncompressed build');
});

test('sd-image with storePaths: the closure in the root; expandOnBoot keeps /nix-path-registration (the first-boot script keys on it), false drops it', () => {
  const raw = { builder: 'sd-image', storePaths: ['./result'], nixStoreDir: S, compressImage: false, epoch: EPOCH };
  const withReg = buildRoot('sd-store', raw).image;
  assert.ok(e2fsck(withReg).clean);
  assert.deepEqual(imageLs(withReg, S).sort(), closurePaths.map((p) => path.basename(p)).sort());
  assert.equal(imageCat(withReg, REG).toString(), ci.registration);
  const without = buildRoot('sd-store-noexpand', { ...raw, expandOnBoot: false }).image;
  assert.ok(e2fsck(without).clean);
  assert.deepEqual(imageLs(without, S).sort(), closurePaths.map((p) => path.basename(p)).sort());
  assert.ok(!imageLs(without, '/').includes(REG.slice(1)));
});

test('a chroot store via storeDir: files read from ROOT/nix/store, named and placed under the store dir', async () => {
  // Built here, copied by Nix into a chroot store, then deleted here: an image
  // can only get these paths from the chroot.
  const [top] = store.build(path.join(HERE, 'image-chroot.nix'), ['--argstr', 'tag', 'image-chroot']);
  const ciDir = buildClosureInfo(store, [top]);
  const chrootCi = readCi(ciDir);
  const paths = lines(chrootCi['store-paths']);
  assert.equal(paths.length, 2);
  const chroot = path.join(store.root, 'chroot');
  store.run('nix', ['copy', '--no-check-sigs', '--to', `local?root=${chroot}`, top]);
  const real = path.join(chroot, 'nix/store');
  // Referrers first (Nix deletes in the order given); the closureInfo .drv names top as an input.
  const ciDrv = lines(store.run('nix-store', ['-q', '--deriver', ciDir]).stdout)[0];
  store.run('nix-store', ['--delete', ciDir, ciDrv, top, ...paths.filter((p) => p !== top)]);
  assert.equal(fs.existsSync(top), false, 'gone from the test store');
  assert.ok(fs.existsSync(path.join(real, path.basename(top))), 'present in the chroot store');

  const config = {
    partitionTableType: 'legacy', additionalSpace: '1M', epoch: EPOCH,
    storePaths: [top], storeDir: path.relative(work, real), nixStoreDir: S, nixPathRegistration: '/var/lib/nix-registration',
  };
  const { image } = buildRoot('chroot', config);
  const want = snapshotTree(stage(path.join(work, 'expected-chroot'), paths.map((p) => path.join(real, path.basename(p))), {
    storeDir: S, registration: { path: '/var/lib/nix-registration', content: chrootCi.registration },
  }));
  const snap = await checkImage(image, want, 'chroot store');
  assert.equal(snap.has(REG), false, 'the registration went where nixPathRegistration says');
  // Without storeDir the paths are looked for under their names, where they no longer are.
  const { storeDir: _, ...without } = config;
  const r = diskwright(['build', writeJson('chroot-no-dir.json', without), '-o', path.join(work, 'out-chroot-no-dir')], { cwd: work });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^diskwright: store path .*-chroot-top-image-chroot does not exist/);
});

test('bad input through the CLI: one line, exit 1, no output', () => {
  const missing = `${S}/${'0'.repeat(32)}-nope`;
  const outside = path.join(work, 'outside-file');
  fs.writeFileSync(outside, 'not in the store\n');
  // closureInfo's registration with one entry changed or one path left out.
  const entries: string[][] = [];
  const regLines = ci.registration.split('\n').slice(0, -1);
  for (let i = 0; i < regLines.length; ) {
    const n = 5 + Number(regLines[i + 4]);
    entries.push(regLines.slice(i, i + n));
    i += n;
  }
  const text = (es: string[][]) => es.flat().map((l) => l + '\n').join('');
  const badSize = entries.map((e, i) => (i === 0 ? [e[0], e[1], '12x', ...e.slice(3)] : e));
  fs.writeFileSync(path.join(work, 'reg-bad-size'), text(badSize));
  fs.writeFileSync(path.join(work, 'reg-no-data'), text(entries.filter((e) => e[0] !== out.data)));
  const firstPath = entries[0][0];

  let n = 0;
  const expectMkfs = (args: string[], pattern: RegExp) => {
    const img = path.join(work, `bad-${n++}.img`);
    const r = diskwright(['mkfs', 'ext4', ...args, '--nix-store-dir', S, '-o', img], { cwd: work });
    check(r, pattern, img);
  };
  const expectBuild = (config: object, pattern: RegExp) => {
    const outDir = path.join(work, `out-bad-${n++}`);
    const r = diskwright(['build', writeJson(`bad-${n}.json`, { partitionTableType: 'efi', nixStoreDir: S, ...config }), '-o', outDir], { cwd: work });
    check(r, pattern, outDir);
  };
  const check = (r: ReturnType<typeof diskwright>, pattern: RegExp, output: string) => {
    assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
    const l = r.stderr.trimEnd().split('\n');
    assert.equal(l.length, 1, `one line: ${r.stderr}`);
    assert.match(l[0], pattern);
    assert.equal(fs.existsSync(output), false, `nothing written at ${output}`);
  };

  const notThere = /^diskwright: store path \S+-nope does not exist \(a root\); build or copy it there/;
  expectMkfs(['--store-path', missing], notThere);
  expectBuild({ storePaths: [out.root], additionalPaths: [missing] }, notThere);
  const isOutside = /^diskwright: root \S+outside-file is outside the store dir \S+; give a store path or a symlink to one/;
  expectMkfs(['--store-path', outside], isOutside);
  expectBuild({ storePaths: ['outside-file'] }, isOutside);
  const badLine = new RegExp(`^diskwright: registration \\S+reg-bad-size line 3: expected the narSize of ${firstPath} \\(a decimal number\\), found "12x"`);
  expectMkfs(['--store-path', out.root, '--references-from', 'reg-bad-size'], badLine);
  const noData = new RegExp(`^diskwright: (${out.app}|${out.link}) \\(\\S+reg-no-data line \\d+\\) refers to ${out.data}, which is missing from \\S+reg-no-data; give references for the whole closure`);
  expectBuild({ storePaths: [out.root], storeReferences: 'reg-no-data' }, noData);
  fs.mkdirSync(path.join(work, 'extra'), { recursive: true });
  fs.writeFileSync(path.join(work, 'extra/motd'), 'hi\n');
  expectBuild({ partitionTableType: 'none', onlyNixStore: true, storePaths: [out.root], contents: [{ source: 'extra/motd', target: '/etc/motd' }] }, /^diskwright: onlyNixStore: the image holds only the store; remove contents/);
  expectBuild({ onlyNixStore: true }, /^diskwright: onlyNixStore: no storePaths given/);
  expectBuild({ storePaths: [out.data], exactSize: true }, /^diskwright: exactSize: only with partitionTableType none and diskSize auto/);
  // Refused before the closure is looked at: the missing root is not reported.
  expectMkfs(['--only-nix-store', '--store-path', missing, 'extra'], /^diskwright: onlyNixStore: the image holds only the store; remove root/);
});

test('rebuild and compare: the same image under another TZ, working directory and copy of the store', () => {
  const other = path.join(work, 'elsewhere');
  fs.mkdirSync(other);
  // A copy of the store in another place: other inode numbers and directory order.
  const copy = path.join(store.root, 'copied-store');
  fs.mkdirSync(copy);
  run('cp', ['-a', ...closurePaths, copy + '/']);
  fs.symlinkSync(path.join(copy, path.basename(out.root)), path.join(other, 'result'));
  const env = (tz: string) => ({ ...process.env, TZ: tz, SOURCE_DATE_EPOCH: undefined });

  const config = writeJson('det.json', { partitionTableType: 'legacy', storePaths: ['./result'], nixStoreDir: S, additionalSpace: '1M', epoch: EPOCH });
  dw(['build', config, '-o', path.join(work, 'det-1')], { cwd: '/', env: env('UTC') });
  dw(['build', config, '-o', path.join(work, 'det-2')], { cwd: other, env: env('Pacific/Chatham') });
  const img = (d: string) => fs.readFileSync(path.join(work, d, 'nixos.img'));
  assert.ok(img('det-1').equals(img('det-2')), 'build: byte-identical');
  assert.equal(fs.readFileSync(path.join(work, 'det-1/layout.json'), 'utf8'), fs.readFileSync(path.join(work, 'det-2/layout.json'), 'utf8'));

  const m1 = path.join(work, 'det-1.img');
  const m2 = path.join(work, 'det-2.img');
  dw(['mkfs', 'ext4', '--store-path', './result', '--nix-store-dir', S, '--epoch', String(EPOCH), '-o', m1], { cwd: work, env: env('America/St_Johns') });
  dw(['mkfs', 'ext4', '--store-path', './result', '--store-dir', copy, '--nix-store-dir', S, '--epoch', String(EPOCH), '-o', m2], { cwd: other, env: env('Asia/Kathmandu') });
  assert.ok(fs.readFileSync(m1).equals(fs.readFileSync(m2)), 'mkfs from the store and from a copy of it: byte-identical');
  assert.ok(fs.readFileSync(m1).equals(fs.readFileSync(mkfsImg)), 'and the same as the first mkfs');
});
