// Determinism: the same tree built under different TZ, umask, locale, working
// directory and directory creation order gives byte-identical images; the seed
// and --uuid are the only sources of identity.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { diskwright } from '../cli/run.ts';

let work: string;

interface Spec { path: string; kind: 'dir' | 'file' | 'link'; data?: string; mode: number; mtime: number }

function specs(): Spec[] {
  const out: Spec[] = [];
  for (let d = 0; d < 6; d++) {
    out.push({ path: `dir${d}`, kind: 'dir', mode: 0o755, mtime: 1_600_000_000 + d });
    for (let f = 0; f < 40; f++) {
      out.push({ path: `dir${d}/file-${f}`, kind: 'file', data: `content ${d} ${f}\n`.repeat(f * 37), mode: f % 3 ? 0o644 : 0o600, mtime: 1_500_000_000 + f * 1000 });
    }
    out.push({ path: `dir${d}/link`, kind: 'link', data: `file-${d}`, mode: 0o777, mtime: 1_400_000_000 });
  }
  // One directory big enough to be hashed, so the hash seed matters.
  out.push({ path: 'many', kind: 'dir', mode: 0o755, mtime: 1_700_000_000 });
  for (let i = 0; i < 600; i++) out.push({ path: `many/entry-with-a-longer-name-${i}`, kind: 'file', data: '', mode: 0o644, mtime: 1_700_000_000 });
  return out;
}

/** Creates the tree in the given order; modes and times are set explicitly so umask cannot leak in. */
function makeTree(root: string, order: Spec[]) {
  fs.mkdirSync(root, { recursive: true });
  const dirs = order.filter((s) => s.kind === 'dir');
  for (const s of dirs) fs.mkdirSync(path.join(root, s.path), { recursive: true });
  for (const s of order) {
    const p = path.join(root, s.path);
    if (s.kind === 'file') {
      fs.writeFileSync(p, s.data!);
      fs.chmodSync(p, s.mode);
      fs.utimesSync(p, s.mtime, s.mtime);
    } else if (s.kind === 'link') {
      fs.symlinkSync(s.data!, p);
      fs.lutimesSync(p, s.mtime, s.mtime);
    }
  }
  for (const s of [...dirs].reverse()) {
    fs.chmodSync(path.join(root, s.path), s.mode);
    fs.utimesSync(path.join(root, s.path), s.mtime, s.mtime);
  }
  fs.chmodSync(root, 0o755);
  fs.utimesSync(root, 1_234_567_890, 1_234_567_890);
}

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-repro-'));
  const s = specs();
  makeTree(path.join(work, 'a'), s);
  makeTree(path.join(work, 'b'), [...s].reverse());
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('byte-identical under different TZ, umask, locale, cwd and creation order', () => {
  const one = path.join(work, 'one.img');
  const two = path.join(work, 'two.img');
  const r1 = diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', one, '--free', '1M'], {
    cwd: '/', umask: '022', env: { ...process.env, TZ: 'UTC', LANG: 'C', LC_ALL: 'C', SOURCE_DATE_EPOCH: '1700000000' },
  });
  assert.equal(r1.status, 0, r1.stderr);
  const r2 = diskwright(['mkfs', 'ext4', path.join(work, 'b'), '-o', two, '--free', '1M'], {
    cwd: work, umask: '077', env: { ...process.env, TZ: 'Pacific/Chatham', LANG: 'de_DE.UTF-8', LC_ALL: 'tr_TR.UTF-8', SOURCE_DATE_EPOCH: '1700000000' },
  });
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(sha(one), sha(two));
});

test('streamed to stdout equals the file build', () => {
  const file = path.join(work, 'file.img');
  assert.equal(diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', file]).status, 0);
  const r = diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', '-']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(createHash('sha256').update(r.stdout).digest('hex'), sha(file));
});

test('the seed changes ids and nothing else is random; --uuid is used as given', () => {
  const base = path.join(work, 'seed-a.img');
  const other = path.join(work, 'seed-b.img');
  assert.equal(diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', base, '--seed', 'one']).status, 0);
  assert.equal(diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', other, '--seed', 'two']).status, 0);
  assert.notEqual(sha(base), sha(other));
  const again = path.join(work, 'seed-a2.img');
  assert.equal(diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', again, '--seed', 'one']).status, 0);
  assert.equal(sha(base), sha(again));
  const uuid = path.join(work, 'uuid.img');
  const r = diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', uuid, '--uuid', '01234567-89AB-4DEF-8123-456789ABCDEF']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(uuid).subarray(1024 + 0x68, 1024 + 0x78).toString('hex'), '0123456789ab4def8123456789abcdef');
});

test('filesystem times come from the epoch, never the clock', () => {
  const img = path.join(work, 'epoch.img');
  assert.equal(diskwright(['mkfs', 'ext4', path.join(work, 'a'), '-o', img, '--epoch', '1000000000']).status, 0);
  const sb = fs.readFileSync(img).subarray(1024, 2048);
  assert.equal(sb.readUInt32LE(0x30), 1_000_000_000); // s_wtime
  assert.equal(sb.readUInt32LE(0x40), 1_000_000_000); // s_lastcheck
  assert.equal(sb.readUInt32LE(0x108), 1_000_000_000); // s_mkfs_time
});
