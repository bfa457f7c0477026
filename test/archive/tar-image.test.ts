// FileTrees as tar Images, checked by GNU tar: extracting the archive gives a
// tree equal to the source (types, modes, owners, times, symlinks, hard links,
// contents, device numbers, sparse files), the options (owner, mtime, prefix,
// perms) show in the decoded headers, and equal trees give equal bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tarImage } from '../../src/archive/tar-image.ts';
import { decodeArchive } from '../../src/archive/tar.ts';
import { digestImage } from '../../src/format/hash-sink.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { scanSources } from '../../src/tree/scan.ts';
import { requireRoot, run } from '../oracle/tools.ts';
import { makeSource, walk } from './source-tree.ts';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dw-tarimg-'));
}

/** Runs `fn` with a fresh source tree in `dir/src`, removing everything after. */
function withSource(fn: (dir: string, src: string) => void): void {
  requireRoot('devices and owners');
  const dir = tmp();
  try {
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    makeSource(src, 'forward');
    fn(dir, src);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('GNU tar extracts a tree equal to the source', () =>
  withSource((dir, src) => {
    const t = tarImage(scanSources([src]));
    assert.deepEqual(t.skipped, []);
    const file = path.join(dir, 'out.tar');
    writeImageFile(t.image, file);
    const list = run('tar', ['-tvf', file, '--numeric-owner']).stdout.toString();
    assert.match(list, /^h.* bin\/tool2 link to bin\/tool$/m);
    assert.match(list, /^h.* etc\/tool-link link to bin\/tool$/m);
    const out = path.join(dir, 'x');
    fs.mkdirSync(out);
    run('tar', ['-xpf', file, '--numeric-owner', '-C', out]);
    assert.deepEqual(walk(out), walk(src));
    // The hole stays a gap in the image: no file extent covers it.
    const sparseData = t.image.extents.filter((e) => 'path' in e && e.path.toString().endsWith('etc/sparse'));
    assert.equal(sparseData.length, 2);
    // The digest streamed through the hashing sink is the file's sha256.
    assert.equal(digestImage(t.image).digest, createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    assert.equal(digestImage(t.image).size, fs.statSync(file).size);
  }));

test('owner, mtime, prefix and perms apply to every member', () =>
  withSource((dir, src) => {
    const t = tarImage(scanSources([src]), {
      owner: { uid: 0, gid: 0, uname: 'root', gname: 'root' },
      mtime: 1,
      prefix: 'rootfs/',
      perms: [
        { path: '/etc', regex: '\\.pem$', mode: 0o600, uid: 1000, uname: 'app' },
        { path: '/bin/tool', mode: 0o555 },
        { path: '/nowhere', mode: 0o777 },
      ],
    });
    assert.deepEqual(t.unmatchedPerms, [2]);
    const file = path.join(dir, 'out.tar');
    writeImageFile(t.image, file);
    const bytes = fs.readFileSync(file);
    const members = decodeArchive((at, len) => bytes.subarray(at, at + len), bytes.length, file);
    const by = new Map(members.map((m) => [m.name.toString(), m]));
    for (const m of members) {
      assert.ok(m.name.toString().startsWith('rootfs/'), m.name.toString());
      assert.equal(m.mtimeSec, 1);
      assert.equal(m.mtimeNsec, 0);
    }
    assert.deepEqual(['mode', 'uid', 'gid', 'uname', 'gname'].map((k) => by.get('rootfs/etc/ssl/cert.pem')![k as 'mode']), [0o600, 1000, 0, 'app', 'root']);
    assert.equal(by.get('rootfs/bin/tool')!.mode, 0o555);
    assert.equal(by.get('rootfs/bin/tool2')!.kind, 'hardlink');
    assert.equal(by.get('rootfs/bin/tool2')!.linkname.toString(), 'rootfs/bin/tool');
    assert.equal(by.get('rootfs/bin/cert')!.uid, 0);
    assert.equal(by.get('rootfs/etc/ssl/')!.mode, 0o700);
    // GNU tar agrees.
    const list = run('tar', ['-tvf', file]).stdout.toString();
    assert.match(list, /^-rw------- app\/root +12 1970-01-01 00:00 rootfs\/etc\/ssl\/cert.pem$/m);
  }));

test('equal trees give equal archives whatever the creation order, umask, time zone and cwd', () => {
  requireRoot('devices and owners');
  const dir = tmp();
  const umask = process.umask(0o022);
  const tz = process.env.TZ;
  try {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    makeSource(a, 'forward');
    makeSource(b, 'reverse');
    assert.deepEqual(walk(a), walk(b));
    const da = digestImage(tarImage(scanSources([a])).image);
    // The archive of b is made under another umask, time zone and working directory.
    process.umask(0o077);
    process.env.TZ = 'Pacific/Chatham';
    const cwd = process.cwd();
    process.chdir(b);
    const db = digestImage(tarImage(scanSources(['.'])).image);
    process.chdir(cwd);
    assert.deepEqual(da, db);
  } finally {
    process.umask(umask);
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('sockets are left out and reported', () => {
  const root = scanSources([fs.mkdtempSync(path.join(os.tmpdir(), 'dw-sock-'))]);
  root.children.set('s', { type: 'sock', mode: 0o755, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, xattrs: [] });
  const t = tarImage(root);
  assert.deepEqual(t.skipped.map(String), ['s']);
  assert.equal(t.members, 0);
  assert.equal(t.image.size, 1024);
});
