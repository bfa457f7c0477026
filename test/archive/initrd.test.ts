// `diskwright initrd`: GNU cpio lists and unpacks our archive to the tree we
// meant (types, modes, owners, times, contents, symlinks, hard links,
// devices); gzip, zstd and xz outputs pass their tools' tests and decompress
// to the plain archive; builds are byte-identical whatever the TZ, umask,
// working directory and clock; makeInitrd's contents form; bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { diskwright } from '../cli/run.ts';
import { decodeArchive } from '../../src/archive/cpio.ts';

let work: string;
let src: string;
let over: string;
const EPOCH = 1_700_000_000;

/** The source tree: every type, odd modes, a 3-name hard link, a sparse file, names that sort "a-b" before "a/". */
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-initrd-'));
  fs.chmodSync(work, 0o755);
  src = path.join(work, 'src');
  for (const d of ['a', 'a/deep/er', 'bin', 'empty']) fs.mkdirSync(path.join(src, d), { recursive: true });
  fs.writeFileSync(path.join(src, 'a-b'), 'dash\n');
  fs.writeFileSync(path.join(src, 'a', 'x'), 'x in a\n');
  fs.writeFileSync(path.join(src, 'a', 'deep', 'er', 'file'), 'deep\n'.repeat(1000));
  fs.writeFileSync(path.join(src, 'bin', 'tool'), '#!/bin/sh\necho tool\n');
  fs.chmodSync(path.join(src, 'bin', 'tool'), 0o4755);
  fs.linkSync(path.join(src, 'bin', 'tool'), path.join(src, 'bin', 'tool2'));
  fs.linkSync(path.join(src, 'bin', 'tool'), path.join(src, 'a', 'tool3'));
  fs.symlinkSync('tool', path.join(src, 'bin', 'sh'));
  fs.symlinkSync('/nowhere/at/all', path.join(src, 'dangling'));
  fs.writeFileSync(path.join(src, 'zero'), '');
  fs.chmodSync(path.join(src, 'zero'), 0o600);
  const fd = fs.openSync(path.join(src, 'sparse'), 'w');
  fs.writeSync(fd, 'start', 0);
  fs.writeSync(fd, 'end', 3 << 20);
  fs.closeSync(fd);
  spawnSync('mkfifo', [path.join(src, 'fifo')]);
  const mk = spawnSync('mknod', [path.join(src, 'console'), 'c', '5', '1']);
  assert.equal(mk.status, 0, 'mknod (tests run as root)');
  fs.chmodSync(path.join(src, 'empty'), 0o700);
  // A later source wins: replaces a-b, adds to a/.
  over = path.join(work, 'over');
  fs.mkdirSync(path.join(over, 'a'), { recursive: true });
  fs.writeFileSync(path.join(over, 'a-b'), 'replaced\n');
  fs.writeFileSync(path.join(over, 'a', 'y'), 'y\n');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function build(args: string[], opts: Parameters<typeof diskwright>[1] = {}): string {
  const out = path.join(work, `out-${Math.abs(hashOf(args.join(' ')))}.cpio`);
  const r = diskwright(['initrd', src, over, '-o', out, '--epoch', String(EPOCH), ...args], opts);
  assert.equal(r.status, 0, r.stderr);
  return out;
}

function hashOf(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}

function unpack(archive: string, into: string): void {
  fs.rmSync(into, { recursive: true, force: true });
  fs.mkdirSync(into);
  const r = spawnSync('cpio', ['-idum', '--quiet', '--no-absolute-filenames'], { cwd: into, input: fs.readFileSync(archive) });
  assert.equal(r.status, 0, String(r.stderr));
}

/** Every path under root (relative, sorted bytewise) with what lstat says. */
function walk(root: string): Map<string, fs.BigIntStats> {
  const out = new Map<string, fs.BigIntStats>();
  const go = (rel: string) => {
    const st = fs.lstatSync(path.join(root, rel), { bigint: true });
    out.set(rel, st);
    if (st.isDirectory()) for (const n of fs.readdirSync(path.join(root, rel))) go(rel ? `${rel}/${n}` : n);
  };
  go('');
  return out;
}

const EXPECTED = [
  '.', 'a', 'a-b', 'a/deep', 'a/deep/er', 'a/deep/er/file', 'a/tool3', 'a/x', 'a/y', 'bin', 'bin/sh', 'bin/tool', 'bin/tool2',
  'console', 'dangling', 'empty', 'fifo', 'sparse', 'zero',
];

test('cpio -t lists every member once, root first, then bytewise by path', () => {
  const out = build([]);
  const r = spawnSync('cpio', ['-t', '--quiet'], { input: fs.readFileSync(out) });
  assert.equal(r.status, 0, String(r.stderr));
  assert.deepEqual(String(r.stdout).trimEnd().split('\n'), EXPECTED);
});

test('cpio -idv unpacks the same tree: types, modes, contents, links, devices; owners 0:0, times the epoch', () => {
  const out = build([]);
  const x = path.join(work, 'x');
  unpack(out, x);
  const got = walk(x);
  const want = walk(src);
  for (const [rel, st] of walk(over)) if (!want.has(rel) || st.isFile()) want.set(rel, st);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [rel, w] of want) {
    const g = got.get(rel)!;
    if (rel !== '') assert.equal(g.mode, w.mode, `${rel} mode`);
    assert.equal(g.uid, 0n, `${rel} uid`);
    assert.equal(g.gid, 0n, `${rel} gid`);
    // GNU cpio sets a directory's time before unpacking into it: directories' times are checked in the archive below.
    if (!g.isSymbolicLink() && !g.isDirectory()) assert.equal(g.mtimeMs, BigInt(EPOCH) * 1000n, `${rel} mtime`);
    if (g.isFile()) {
      const from = fs.existsSync(path.join(over, rel)) ? over : src;
      assert.ok(fs.readFileSync(path.join(x, rel)).equals(fs.readFileSync(path.join(from, rel))), `${rel} content`);
    }
    if (g.isSymbolicLink()) assert.equal(fs.readlinkSync(path.join(x, rel)), fs.readlinkSync(path.join(src, rel)));
    if (g.isCharacterDevice()) assert.equal(g.rdev, w.rdev, `${rel} rdev`);
  }
  // The three names of bin/tool are one inode again, with its setuid mode and data.
  const tool = got.get('bin/tool')!;
  assert.equal(tool.nlink, 3n);
  assert.equal(got.get('bin/tool2')!.ino, tool.ino);
  assert.equal(got.get('a/tool3')!.ino, tool.ino);
  assert.equal(Number(tool.mode) & 0o7777, 0o4755);
  assert.equal(fs.readFileSync(path.join(x, 'a-b'), 'utf8'), 'replaced\n');
});

test('the archive holds hard links as newc wants them: one inode number, link count, data with the last name only', () => {
  const members = decodeArchive(fs.readFileSync(build([])));
  const byName = new Map(members.map((m) => [m.name.toString(), m]));
  const names = ['a/tool3', 'bin/tool', 'bin/tool2'];
  const [first, second, last] = names.map((n) => byName.get(n)!);
  assert.equal(first.c_ino, last.c_ino);
  assert.equal(second.c_ino, last.c_ino);
  for (const m of [first, second, last]) assert.equal(m.c_nlink, 3);
  assert.deepEqual([first.c_filesize, second.c_filesize, last.c_filesize], [0, 0, 20]);
  assert.ok(members.every((m) => m.c_mtime === EPOCH && m.c_uid === 0 && m.c_gid === 0));
  // Inode numbers in archive order, device numbers fixed at 0.
  const inos = [...new Set(members.map((m) => m.c_ino))];
  assert.deepEqual(inos, inos.map((_, i) => i + 1));
  assert.ok(members.every((m) => m.c_maj === 0 && m.c_min === 0));
  const dev = byName.get('console')!;
  assert.deepEqual([dev.c_rmaj, dev.c_rmin], [5, 1]);
  assert.equal(byName.get('sparse')!.c_filesize, (3 << 20) + 3);
});

test('--mtime source keeps the files\' times; --owner sets every owner', () => {
  const stamp = 1_234_567_890;
  fs.utimesSync(path.join(src, 'a', 'x'), stamp, stamp);
  const out = build(['--mtime', 'source', '--owner', '12:34']);
  const x = path.join(work, 'x-src');
  unpack(out, x);
  const st = fs.statSync(path.join(x, 'a', 'x'));
  assert.equal(st.mtimeMs, stamp * 1000);
  assert.equal(st.uid, 12);
  assert.equal(st.gid, 34);
  const clamped = decodeArchive(fs.readFileSync(build(['--mtime', 'clamp'])));
  assert.ok(clamped.every((m) => m.c_mtime <= EPOCH));
  assert.equal(clamped.find((m) => m.name.toString() === 'a/x')!.c_mtime, stamp);
});

test('gzip, zstd and xz outputs pass gzip -t, zstd -t, xz -t and decompress to the plain archive', () => {
  const plain = fs.readFileSync(build([]));
  for (const [method, tool] of [['gzip', 'gzip'], ['zstd', 'zstd'], ['xz', 'xz']] as const) {
    const out = build(['--compress', method]);
    const t = spawnSync(tool, ['-t', out]);
    assert.equal(t.status, 0, `${tool} -t: ${t.stderr}`);
    const d = spawnSync(tool, ['-dc', out], { maxBuffer: 1 << 30 });
    assert.equal(d.status, 0);
    assert.ok((d.stdout as Buffer).equals(plain), `${method} decompresses to the archive`);
  }
  // gzip: our fixed header (no name, mtime 0, OS Unix); xz: the CRC32 check the kernel needs.
  const gz = fs.readFileSync(build(['--compress', 'gzip']));
  assert.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
  const xz = fs.readFileSync(build(['--compress', 'xz']));
  assert.equal(xz[7] & 0x0f, 1, 'xz stream flags: CRC32');
});

test('byte-identical under different TZ, umask, cwd, clock and locale', () => {
  for (const method of ['none', 'gzip']) {
    const one = path.join(work, `one-${method}`);
    const two = path.join(work, `two-${method}`);
    const bin = path.join(import.meta.dirname, '../../bin/diskwright.js');
    const r1 = spawnSync('/bin/sh', ['-c', 'umask 002; exec faketime "$@"', 'sh', '2001-02-03 04:05:06', process.execPath, bin, 'initrd', src, over, '-o', one, '--compress', method], {
      cwd: '/', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C', SOURCE_DATE_EPOCH: String(EPOCH) },
    });
    assert.equal(r1.status, 0, String(r1.stderr));
    const r = diskwright(['initrd', src, over, '-o', two, '--compress', method], {
      cwd: work, umask: '077', env: { ...process.env, TZ: 'Pacific/Chatham', LC_ALL: 'tr_TR.UTF-8', SOURCE_DATE_EPOCH: String(EPOCH) },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.readFileSync(one).equals(fs.readFileSync(two)), `${method}: same bytes`);
  }
});

test('makeInitrd contents: the objects\' closure under /nix/store and a symlink to each object', () => {
  const store = path.join(work, 'store');
  const h = (c: string) => c.repeat(32);
  const A = `${h('a')}-init`;
  const B = `${h('b')}-lib`;
  fs.mkdirSync(path.join(store, A, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(store, A, 'bin', 'init'), `#!/nix/store/${B}/sh\n`);
  fs.writeFileSync(path.join(store, B), 'the library\n');
  const cfg = path.join(work, 'initrd.json');
  fs.writeFileSync(cfg, JSON.stringify({
    contents: [{ object: `/nix/store/${A}/bin/init`, symlink: '/init' }, { object: `/nix/store/${A}`, symlink: '/sbin/a', suffix: '/bin' }, { object: `/nix/store/${B}`, symlink: null }],
    storeDir: 'store',
    compressor: 'gzip',
  }));
  const out = path.join(work, 'contents.cpio.gz');
  const r = diskwright(['initrd', '--config', cfg, '-o', out, '--epoch', String(EPOCH)]);
  assert.equal(r.status, 0, r.stderr);
  const members = decodeArchive(spawnSync('gzip', ['-dc', out]).stdout as Buffer);
  const list = members.map((m) => m.name.toString());
  assert.deepEqual(list, ['.', 'init', 'nix', 'nix/store', `nix/store/${A}`, `nix/store/${A}/bin`, `nix/store/${A}/bin/init`, `nix/store/${B}`, 'sbin', 'sbin/a']);
  const link = (n: string) => members.find((m) => m.name.toString() === n)!.data.toString();
  assert.equal(link('init'), `/nix/store/${A}/bin/init`);
  assert.equal(link('sbin/a'), `/nix/store/${A}/bin`);
  assert.equal(link(`nix/store/${B}`), 'the library\n');
});

function expectError(args: string[], pattern: RegExp, opts: Parameters<typeof diskwright>[1] = {}, out = path.join(work, 'bad', 'x.cpio')) {
  fs.mkdirSync(path.join(work, 'bad'), { recursive: true, mode: 0o777 });
  fs.chmodSync(path.join(work, 'bad'), 0o777);
  const r = diskwright(['initrd', ...args, '-o', out], opts);
  assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], pattern);
  const left = fs.readdirSync(path.join(work, 'bad')).filter((n) => n !== 'adir');
  assert.deepEqual(left, [], 'no output and no temporary file left');
}

test('bad input: one line, exit 1, no output', () => {
  expectError([path.join(work, 'nope')], /^diskwright: source .*nope does not exist/);
  expectError([path.join(src, 'zero')], /^diskwright: source .*zero is not a directory/);
  const locked = path.join(work, 'locked');
  fs.mkdirSync(locked);
  fs.writeFileSync(path.join(locked, 'secret'), 'no');
  fs.chmodSync(path.join(locked, 'secret'), 0);
  expectError([locked, '--compress', 'gzip'], /^diskwright: cannot read .*secret/, { asUser: 65534 });
  fs.mkdirSync(path.join(work, 'bad', 'adir'), { recursive: true });
  expectError([src], /^diskwright: output .*adir is a directory/, {}, path.join(work, 'bad', 'adir'));
  expectError([src, '--compress', 'gzip', '--compress-level', '12'], /^diskwright: compression level 12: gzip takes a whole number from 1 to 9/);
  expectError([], /^diskwright: no source directory and no contents given/);
});
