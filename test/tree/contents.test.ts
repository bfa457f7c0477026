// Contents lists: make-disk-image's placement rules, rsync's --chmod, owners
// by name through the image's own /etc/passwd (symlinks inside the image
// followed), globs in bytewise order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyOwners, contentsTree, parseMode } from '../../src/tree/contents.ts';
import { lookup } from '../../src/tree/owners.ts';
import { byteName, type DirEntry, type Entry } from '../../src/tree/model.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-contents-'));
  fs.mkdirSync(`${work}/d/sub`, { recursive: true });
  fs.writeFileSync(`${work}/d/a`, 'a');
  fs.writeFileSync(`${work}/d/sub/b`, 'b');
  fs.mkdirSync(`${work}/g`);
  for (const n of ['b.txt', 'B.txt', 'a.txt', 'é.txt', '.hidden.txt']) fs.writeFileSync(`${work}/g/${n}`, n);
  fs.writeFileSync(`${work}/f`, 'f');
  fs.linkSync(`${work}/f`, `${work}/f2`);
  fs.mkdirSync(`${work}/etc-real`);
  fs.writeFileSync(`${work}/etc-real/passwd`, 'root:x:0:0::/:/bin/sh\nalice:x:1000:100::/:/bin/sh\n');
  fs.writeFileSync(`${work}/etc-real/group`, 'root:x:0:\nusers:x:100:\n');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const opts = () => ({ what: 'contents', baseDir: work, epoch: 42, owner: { uid: 0, gid: 0 } });
const names = (d: Entry) => [...(d as DirEntry).children.keys()].map((k) => Buffer.from(k, 'latin1').toString());

test('a directory source becomes the target; a file source is copied to it; parents are made', () => {
  const t = contentsTree([{ source: 'd', target: '/x/y' }, { source: 'f', target: '/x/file' }], opts());
  assert.deepEqual(names(lookup(t, '/x/y')!), ['a', 'sub']);
  const x = lookup(t, '/x') as DirEntry;
  assert.equal(x.mode, 0o755);
  assert.equal(x.mtimeSec, 42);
  assert.equal(lookup(t, '/x/file')!.type, 'file');
});

test('globs copy every match into the target directory, sorted bytewise, skipping dot files', () => {
  const t = contentsTree([{ source: 'g/*.txt', target: '/t' }], opts());
  assert.deepEqual(names(lookup(t, '/t')!), ['B.txt', 'a.txt', 'b.txt', 'é.txt']);
});

test('a trailing slash merges a directory into an existing target; without it the target is a duplicate', () => {
  const t = contentsTree([{ source: 'd', target: '/m' }, { source: 'g/', target: '/m' }], opts());
  assert.ok(lookup(t, '/m/a') && lookup(t, '/m/a.txt'));
  assert.throws(() => contentsTree([{ source: 'd', target: '/m' }, { source: 'g', target: '/m' }], opts()), /duplicate entry \/m/);
});

test('modes as rsync --chmod: one mode for all, or D and F apart', () => {
  assert.deepEqual(parseMode('0644', 'x'), { dir: 0o644, file: 0o644 });
  assert.deepEqual(parseMode('D0755,F0600', 'x'), { dir: 0o755, file: 0o600 });
  const t = contentsTree([{ source: 'd', target: '/d', mode: 'D0750,F0600' }], opts());
  assert.equal(lookup(t, '/d')!.mode, 0o750);
  assert.equal(lookup(t, '/d/sub/b')!.mode, 0o600);
});

test('owners resolve through the image\'s passwd, following symlinks inside the image', () => {
  const t = contentsTree([
    { source: 'etc-real', target: '/etc-real' },
    { source: 'd', target: '/home/alice', user: 'alice', group: 'users' },
  ], opts());
  // /etc -> /etc-real inside the image, as NixOS links /etc/static.
  t.children.set(byteName('etc'), { type: 'symlink', target: Buffer.from('etc-real'), mode: 0o777, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, xattrs: [] });
  applyOwners(t, [{ source: 'd', target: '/home/alice', user: 'alice', group: 'users' }], 'contents');
  for (const p of ['/home/alice', '/home/alice/sub/b']) {
    const e = lookup(t, p)!;
    assert.deepEqual([e.uid, e.gid], [1000, 100], p);
  }
  assert.equal(lookup(t, '/home')!.uid, 0);
});

test('hard links in two separate entries do not become one inode', () => {
  const t = contentsTree([{ source: 'f', target: '/one' }, { source: 'f2', target: '/two' }], opts());
  assert.notEqual(lookup(t, '/one')!.linkKey, lookup(t, '/two')!.linkKey);
});
