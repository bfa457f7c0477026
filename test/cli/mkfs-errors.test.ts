// Every bad input of `mkfs ext4`: one line naming the input, exit 1, and no
// file (temporary or final) left at the output path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { diskwright } from './run.ts';
import { planExt4Image } from '../../src/api/mkfs.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { DiskwrightError } from '../../src/errors.ts';

let work: string;
let src: string;
let outDir: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-err-'));
  fs.chmodSync(work, 0o755);
  src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  fs.writeFileSync(path.join(src, 'd', 'f'), 'x'.repeat(100_000));
  outDir = path.join(work, 'out');
  fs.mkdirSync(outDir);
  fs.chmodSync(outDir, 0o777);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function expectError(args: string[], pattern: RegExp, opts: Parameters<typeof diskwright>[1] = {}, out = path.join(outDir, 'x.img')) {
  const r = diskwright([...args, '-o', out], opts);
  assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  if (!out.endsWith('/') && fs.existsSync(out)) assert.ok(fs.statSync(out).isDirectory(), 'no image left at the output');
  const left = fs.readdirSync(path.dirname(out)).filter((n) => n.includes('diskwright') || n === 'x.img');
  assert.deepEqual(left, [], 'no temporary file left');
}

test('missing source', () => expectError(['mkfs', 'ext4', path.join(work, 'nope')], /source .*nope does not exist/));

test('source that is not a directory', () => expectError(['mkfs', 'ext4', path.join(src, 'd', 'f')], /source .*\/d\/f is not a directory/));

test('unreadable file', () => {
  const s = path.join(work, 'locked');
  fs.mkdirSync(s, { recursive: true });
  fs.chmodSync(s, 0o755);
  fs.writeFileSync(path.join(s, 'secret'), 'no');
  fs.chmodSync(path.join(s, 'secret'), 0o000);
  expectError(['mkfs', 'ext4', s], /cannot read .*secret: permission denied; check its permissions/, { asUser: 65534 });
});

test('unreadable directory', () => {
  const s = path.join(work, 'lockeddir');
  fs.mkdirSync(path.join(s, 'inner'), { recursive: true });
  fs.chmodSync(s, 0o755);
  fs.chmodSync(path.join(s, 'inner'), 0o000);
  expectError(['mkfs', 'ext4', s], /cannot read .*inner: permission denied; fix its permissions/, { asUser: 65534 });
});

test('size too small names the minimum', () => {
  const r = diskwright(['mkfs', 'ext4', src, '-o', path.join(outDir, 'x.img'), '--size', '64K']);
  assert.equal(r.status, 1);
  const m = /needs at least (\d+) bytes/.exec(r.stderr);
  assert.ok(m, r.stderr);
  // The minimum it names really fits, and one block less does not.
  const min = Number(m[1]);
  const ok = diskwright(['mkfs', 'ext4', src, '-o', path.join(outDir, 'min.img'), '--size', String(min)]);
  assert.equal(ok.status, 0, ok.stderr);
  fs.rmSync(path.join(outDir, 'min.img'));
  expectError(['mkfs', 'ext4', src, '--size', String(min - 4096)], /too small .* at least \d+ bytes/);
});

test('output path is a directory', () => expectError(['mkfs', 'ext4', src], /output .* is a directory/, {}, outDir));

test('invalid UUID', () => expectError(['mkfs', 'ext4', src, '--uuid', 'not-a-uuid'], /--uuid not-a-uuid is not a UUID/));

test('label longer than 16 bytes', () => expectError(['mkfs', 'ext4', src, '--label', 'a-label-of-17-byt'], /label "a-label-of-17-byt" is 17 bytes/));

test('more inodes than ext4 can address', () => {
  expectError(['mkfs', 'ext4', src, '--free-inodes', '5000000000'], /needs 5000000\d+ inodes; ext4 addresses at most 4294967295/);
  expectError(['mkfs', 'ext4', src, '--size', '16M', '--free-inodes', '40000'], /needs 400\d\d inodes; a 16777216-byte ext4 holds at most 32768/);
});

test('bad option values', () => {
  expectError(['mkfs', 'ext4', src, '--size', 'lots'], /--size lots: give 'auto' or a size/);
  expectError(['mkfs', 'ext4', src, '--owner', 'root'], /--owner root: give numeric UID:GID/);
  expectError(['mkfs', 'ext4', src, '--inode-size', '128'], /--inode-size 128: use 256, 512 or 1024/);
});

/** A tmpfs at WORK/name with mount options `o`, unmounted after the test. */
function tmpfs(t: { after: (fn: () => void) => void }, name: string, o: string): string {
  const mnt = path.join(work, name);
  fs.mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', o, 'tmpfs', mnt]);
  assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
  t.after(() => spawnSync('umount', [mnt]));
  return mnt;
}

test('output disk that fills up', (t) => {
  const mnt = tmpfs(t, 'small', 'size=1m');
  // Free space stays a hole, so it takes file data to fill the disk.
  const big = path.join(work, 'big');
  fs.mkdirSync(big);
  fs.writeFileSync(path.join(big, 'f'), Buffer.alloc(3 << 20, 1));
  expectError(['mkfs', 'ext4', big], /cannot write .*: no space left on device/, {}, path.join(mnt, 'x.img'));
});

test('a file that changes size while being copied', () => {
  const s = path.join(work, 'changing');
  fs.mkdirSync(s);
  const f = path.join(s, 'grows');
  fs.writeFileSync(f, Buffer.alloc(50_000, 7));
  const { image } = planExt4Image({ sources: [s] });
  fs.appendFileSync(f, 'more');
  const out = path.join(outDir, 'changed.img');
  assert.throws(() => writeImageFile(image, out), (e: unknown) => e instanceof DiskwrightError && e.code === 'SOURCE_CHANGED' && /grows changed size/.test(e.message));
  assert.equal(fs.existsSync(out), false);
  fs.truncateSync(f, 10_000); // shrinking mid-copy is caught as well
  assert.throws(() => writeImageFile(image, out), (e: unknown) => e instanceof DiskwrightError && e.code === 'SOURCE_CHANGED');
  assert.deepEqual(fs.readdirSync(outDir).filter((n) => n.includes('changed') || n.includes('diskwright')), []);
});

test('owners and times ext4 cannot store name the flag or the variable', () => {
  expectError(['mkfs', 'ext4', src, '--owner', '99999999999:0'], /--owner uid 99999999999: give a whole number from 0 to 4294967295/);
  expectError(['mkfs', 'ext4', src, '--owner', '0:4294967296'], /--owner gid 4294967296: give a whole number from 0 to 4294967295/);
  expectError(['mkfs', 'ext4', src, '--epoch', '15032385536'], /--epoch 15032385536: give a whole number from 0 to 15032385535/);
  for (const v of ['garbage', '-1', '99999999999']) {
    expectError(['mkfs', 'ext4', src], /SOURCE_DATE_EPOCH ".*" is not a whole number of seconds from 0 to 15032385535.*; set it to one such as/, { env: { ...process.env, SOURCE_DATE_EPOCH: v } });
  }
});

test('a read-only output file system says so, naming the path', (t) => {
  const mnt = tmpfs(t, 'ro', 'ro');
  const out = path.join(mnt, 'x.img');
  expectError(['mkfs', 'ext4', src], new RegExp(`cannot create ${out}: read-only file system; choose a writable location`), {}, out);
  // A directory to make there: the error is the directory's, not ENOENT.
  const sub = path.join(mnt, 'sub');
  const r = diskwright(['mkfs', 'ext4', src, '-o', path.join(sub, 'x.img')]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `diskwright: cannot create the directory ${sub}: read-only file system; choose a writable location\n`);
  // A build into it likewise.
  const config = path.join(work, 'ro.json');
  fs.writeFileSync(config, JSON.stringify({ root: 'src', additionalSpace: '1M' }));
  const b = diskwright(['build', config, '-o', mnt]);
  assert.equal(b.status, 1);
  assert.equal(b.stderr, `diskwright: cannot create ${path.join(mnt, 'nixos.img')}: read-only file system; choose a writable location\n`);
});
