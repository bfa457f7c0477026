// Proves the oracle harness against the reference implementation: the real
// `mkfs.ext4 -d` (e2fsprogs 1.47). The same functions check our own writer.
//
// Needs root and e2fsprogs, attr, acl, util-linux, coreutils. Missing pieces
// fail the run (CI installs everything and runs as root); nothing is skipped.
//
// What mke2fs 1.47.0 -d does NOT keep (misc/create_inode.c), and so what
// expectedFromMke2fs() models:
//   - mtime nanoseconds: set_inode_extra() copies st_mtime (seconds) into the
//     32-bit i_mtime and never writes i_mtime_extra, which stays 0: nanoseconds
//     are lost and the epoch bits stay 0, so a time outside the signed 32-bit
//     range wraps (2**31 reads back as 1901, 2**32 + 12345 as 1970 + 12345 s).
//     Before 1970 down to -2**31 is kept (to the second).
//   - the root directory: populate_fs only copies the source root's xattrs; its
//     mode (0755), owner (-E root_owner) and times are mke2fs's own, so the root
//     mtime is the mkfs time. The fixture root is 0755 root:root, so only the
//     mtime differs.
// Everything else in the fixture survives: types, modes incl. setuid/setgid/
// sticky, 32-bit uid/gid, contents (written zero blocks become holes, which
// read back the same), sparse files, symlink targets of every length, device
// numbers in both encodings, FIFOs, sockets, hard links (also of FIFOs), names
// (any bytes), user/trusted/security xattrs, POSIX ACLs (converted to the ext4
// on-disk form and back). atime/ctime are not compared (mke2fs copies them too).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFeatureFixture, makeSmallFixture, type FixtureInfo } from './fixture.ts';
import { diffSnapshots, displayPath, snapshotTree, snapshotViaDebugfs, type Snapshot, type SnapEntry } from './snapshot.ts';
import { debugfs, dumpe2fs, e2fsck, requireRoot, requireTools, run, withLoopMount } from './tools.ts';

const TOOLS = ['mkfs.ext4', 'e2fsck', 'debugfs', 'dumpe2fs', 'mount', 'umount', 'setfattr', 'setfacl', 'mknod', 'mkfifo', 'touch'];

let work = '';
let info: FixtureInfo;
let source: Snapshot;
let image = '';
let mounted: Snapshot;
let viaDebugfs: Snapshot;
const timings: Record<string, number> = {};

function timed<T>(label: string, fn: () => T): T {
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    timings[label] = Math.round(performance.now() - t0);
  }
}

async function timedAsync<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[label] = Math.round(performance.now() - t0);
  }
}

function mkfsExt4(sourceDir: string, img: string, size: string): void {
  run('mkfs.ext4', ['-q', '-F', '-d', sourceDir, '-b', '4096', '-I', '256', '-E', 'root_owner=0:0', img, size]);
}

/** The source snapshot as mke2fs 1.47.0 -d is known to store it (see the header). */
function expectedFromMke2fs(src: Snapshot): Snapshot {
  const out: Snapshot = new Map();
  for (const [key, e] of src) {
    const sec = e.mtimeNs >= 0n ? e.mtimeNs / 1_000_000_000n : -((-e.mtimeNs + 999_999_999n) / 1_000_000_000n);
    out.set(key, { ...e, mtimeNs: BigInt.asIntN(32, sec) * 1_000_000_000n });
  }
  return out;
}

const rootMtime = (key: string, field: string) => key === '/' && field === 'mtime';

function fieldsOf(diff: string[]): Map<string, number> {
  const count = new Map<string, number>();
  for (const line of diff) {
    const m = /: (only in \S+|type|mode|uid|gid|mtime|size|content|target|device|links|xattr \S+) /.exec(line);
    const f = m ? m[1] : '?';
    count.set(f, (count.get(f) ?? 0) + 1);
  }
  return count;
}

before(async () => {
  requireRoot('the oracle harness test');
  requireTools(...TOOLS);
  work = fs.mkdtempSync(join(tmpdir(), 'oracle-harness-'));
  const fixture = join(work, 'fixture');
  info = timed('makeFeatureFixture', () => makeFeatureFixture(fixture));
  source = timed('snapshotTree(source)', () => snapshotTree(fixture));
  image = join(work, 'ref.ext4');
  timed('mkfs.ext4 -d', () => mkfsExt4(fixture, image, '200M'));
  mounted = await timedAsync('snapshotTree(loop mount)', () => withLoopMount(image, (dir) => snapshotTree(dir)));
  viaDebugfs = await timedAsync('snapshotViaDebugfs', () => snapshotViaDebugfs(image));
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
  console.log(`# oracle timings (ms): ${JSON.stringify(timings)}`);
});

test('the feature fixture has every feature, as the source snapshot sees it', () => {
  const get = (rel: string): SnapEntry => {
    const e = source.get('/' + Buffer.from(rel, 'utf8').toString('latin1'));
    assert.ok(e, `missing ${rel}`);
    return e;
  };
  assert.deepEqual(
    info.skipped.filter((s) => s.feature !== 'xattr: security.selinux'),
    [],
    'only security.selinux may be skipped',
  );
  for (const [feature, keys] of Object.entries(info.features)) {
    for (const k of keys) assert.ok(source.has(k), `${feature}: ${displayPath(k)} not in the snapshot`);
  }
  assert.equal(get('sparse/big-6g').size, 6n * 1024n ** 3n);
  assert.equal(get('files/b4097').size, 4097n);
  assert.equal(get('files/empty').size, 0n);
  assert.equal(get('special/socket').type, 'sock');
  assert.equal(get('special/fifo').type, 'fifo');
  assert.deepEqual([get('special/chr-300-70000').major, get('special/chr-300-70000').minor], [300, 70000]);
  assert.equal(get('special/blk-259-65541').type, 'blk');
  assert.equal(get('links/slow-4095').target?.length, 4095);
  assert.equal(get('links/fast-59').target?.length, 59);
  assert.deepEqual(get('hard/b/second').links, ['/hard/a/orig', '/hard/b/second', '/hard/third']);
  assert.equal(get('perms/setuid').mode, 0o4755);
  assert.equal(get('perms/sticky-dir').mode, 0o1777);
  assert.equal(get('perms/owner-high').mode, 0o6755);
  assert.deepEqual([get('perms/owner-high').uid, get('perms/owner-high').gid], [100000, 200000]);
  assert.equal(get('perms/owner-max').uid, 4294967294);
  assert.equal(get('times/nanoseconds').mtimeNs, 1700000000123456789n);
  assert.equal(get('times/after-2106').mtimeNs, 4294979641500000000n);
  assert.equal(get('times/before-1970').mtimeNs, -1500000000n);
  const names = (rel: string) => get(rel).xattrs.map(([n]) => n);
  assert.deepEqual(names('xattrs/acl-dir'), ['system.posix_acl_access', 'system.posix_acl_default']);
  assert.deepEqual(names('xattrs/acl-file'), ['system.posix_acl_access']);
  assert.deepEqual(names('xattrs/cap'), ['security.capability']);
  assert.deepEqual(names('xattrs/small'), ['trusted.t', 'user.empty', 'user.small']);
  assert.equal(get('xattrs/big').xattrs.find(([n]) => n === 'user.big')?.[1].length, 6000);
  assert.deepEqual(names(''), ['user.root']);
  if (!info.skipped.length) assert.deepEqual(names('xattrs/selinux'), ['security.selinux']);
  assert.equal([...source.keys()].filter((k) => k.startsWith('/many/')).length, 2000);
  assert.ok(source.has('/names/latin1-\xe9-\xff\xfe'), 'non-UTF-8 name');
});

test('e2fsck -fn finds the mkfs.ext4 -d image clean; dumpe2fs reads its superblock', () => {
  const r = timed('e2fsck', () => e2fsck(image));
  assert.equal(r.status, 0, r.output);
  assert.deepEqual(r.problems, [], r.output);
  assert.ok(r.clean);
  const sb = dumpe2fs(image);
  assert.equal(sb['Block size'], '4096');
  assert.equal(sb['Inode size'], '256');
  assert.equal(sb['Filesystem state'], 'clean');
  assert.match(sb['Filesystem features'], /\bextent\b/);
  assert.match(sb['Filesystem features'], /\bext_attr\b/);
});

test('loop-mounted image equals the source, modulo documented mke2fs 1.47.0 behaviour', () => {
  // Raw: only mtimes differ (nanoseconds, post-2038 wrap, the root's mkfs time).
  const raw = diffSnapshots(source, mounted, { labels: ['source', 'image'] });
  assert.deepEqual([...fieldsOf(raw).keys()], ['mtime'], raw.filter((l) => !/: mtime /.test(l)).join('\n'));
  assert.ok(raw.some((l) => l.startsWith('/times/after-2106: mtime')), 'post-2038 wrap is visible');
  // Modelled: exactly equal.
  const diff = diffSnapshots(expectedFromMke2fs(source), mounted, { labels: ['expected', 'image'], ignore: rootMtime });
  assert.deepEqual(diff, []);
});

test('debugfs snapshot (no mount) equals the kernel view of the same image', () => {
  const diff = diffSnapshots(mounted, viaDebugfs, { labels: ['mount', 'debugfs'] });
  assert.deepEqual(diff, []);
  const vsSource = diffSnapshots(expectedFromMke2fs(source), viaDebugfs, { labels: ['expected', 'debugfs'], ignore: rootMtime });
  assert.deepEqual(vsSource, []);
});

test('the harness detects every kind of difference, through the mount and through debugfs', async () => {
  const img = join(work, 'mutated.ext4');
  fs.copyFileSync(image, img);
  const block = (path: string): number => {
    const r = debugfs(img, [`bmap ${path.includes(' ') ? path : path + ' 0'}`]);
    const n = Number(r.outputs[0].toString().trim());
    assert.ok(n > 0, `bmap ${path}: ${r.stdout}${r.stderr}`);
    return n;
  };
  /** Flips the bits of one byte of the image. */
  const flip = (blk: number, offset: number) => {
    const fd = fs.openSync(img, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, blk * 4096 + offset);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, blk * 4096 + offset);
    fs.closeSync(fd);
  };
  flip(block('/files/b4096'), 100); // one content byte
  flip(block('/links/slow-100'), 0); // a slow symlink target byte
  flip(block('/sparse/big-6g 1024'), 4095); // last byte of the 2nd data block (4 MiB in) of the extent-mapped file
  const oneIno = debugfs(img, ['ls -p /files']).outputs[0].toString().match(/\/(\d+)\/[0-7]+\/-?\d+\/-?\d+\/one\//)![1];
  const r = debugfs(
    img,
    [
      'sif /files/b4095 mode 0100600',
      'sif /perms/owner-small gid 101',
      'sif /times/nanoseconds mtime_extra 4', // + 1 ns
      'sif /special/chr-1-3 block[0] 0x0104', // 1:3 -> 1:4
      'sif /files/b8191 size 8190',
      'ea_set /xattrs/small user.small HELLO',
      'ea_rm /xattrs/big user.also',
      `ln <${oneIno}> /files/one-more-name`, // new hard link (link count left wrong on purpose)
      'unlink /names/.hidden',
    ],
    { writable: true },
  );
  assert.equal(r.stderr.replace(/^debugfs .*\n/, ''), '', 'debugfs -w reported errors');

  const expected = [
    '/files/b4095: mode',
    '/files/b4096: content',
    '/files/b8191: size',
    '/files/b8191: content',
    '/files/one: links',
    '/files/one-more-name: only in',
    '/links/slow-100: target',
    '/names/.hidden: only in',
    '/perms/owner-small: gid',
    '/sparse/big-6g: content',
    '/special/chr-1-3: device',
    '/times/nanoseconds: mtime',
    '/xattrs/big: xattr user.also',
    '/xattrs/small: xattr user.small',
  ].sort();
  const check = (label: string, snap: Snapshot) => {
    const diff = diffSnapshots(viaDebugfs, snap, { labels: ['original', label] });
    const found = diff.map((l) => {
      const m = /^(.*?: (?:only in|xattr \S+|\S+))/.exec(l);
      return m![1];
    });
    assert.deepEqual(found.sort(), expected, `${label}:\n${diff.join('\n')}`);
  };
  check('debugfs', await snapshotViaDebugfs(img));
  check('mount', await withLoopMount(img, (dir) => snapshotTree(dir)));

  const fsck = e2fsck(img);
  assert.equal(fsck.clean, false, 'e2fsck must report the wrong link count');
  assert.ok(fsck.problems.length > 0);
  assert.notEqual(fsck.status, 0);
});

test('small fixture round-trips through mkfs.ext4 -d', async () => {
  const dir = join(work, 'small');
  const small = makeSmallFixture(dir);
  const img = join(work, 'small.ext4');
  mkfsExt4(dir, img, '8M');
  assert.ok(e2fsck(img).clean);
  const want = expectedFromMke2fs(snapshotTree(dir));
  assert.deepEqual(diffSnapshots(want, await snapshotViaDebugfs(img), { ignore: rootMtime }), []);
  assert.deepEqual(diffSnapshots(want, await withLoopMount(img, (d) => snapshotTree(d)), { ignore: rootMtime }), []);
  assert.ok(Object.keys(small.features).length >= 3);
});
