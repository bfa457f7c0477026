// The tar header codec against GNU tar: archives we encode list and extract
// as written (tar -tvf, tar -xf as root, then lstat), and archives GNU tar
// writes in --format=posix decode to what lstat says about their sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeArchive, encodeMember, padding, parsePax, tarMember, END_OF_ARCHIVE_LENGTH, type TarMember } from '../../src/archive/tar.ts';
import { requireRoot, run } from '../oracle/tools.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { pattern } from '../property/pattern.ts';

function member(name: string | Buffer, over: Partial<TarMember> = {}): TarMember {
  return tarMember(Buffer.isBuffer(name) ? name : Buffer.from(name), { mtimeSec: 1, ...over });
}

function archive(members: Array<[TarMember, Buffer?]>): Buffer {
  const parts: Buffer[] = [];
  for (const [m, data] of members) {
    parts.push(encodeMember(m));
    if (data) parts.push(data, Buffer.alloc(padding(data.length)));
  }
  parts.push(Buffer.alloc(END_OF_ARCHIVE_LENGTH));
  return Buffer.concat(parts);
}

function decodeBuffer(b: Buffer) {
  return decodeArchive((at, len) => b.subarray(at, at + len), b.length, 'test.tar');
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dw-tar-'));
}

const LONG_DIR = 'd'.repeat(120) + '/' + 'e'.repeat(120) + '/';
const LONG_NAME = LONG_DIR + 'f'.repeat(90);
const VERY_LONG = 'x'.repeat(200) + '/' + 'y'.repeat(150); // no ustar split: prefix too long
const HELLO = Buffer.from('hello, tar\n');
const BIG = Buffer.alloc(1500, 7);

function sample(): Array<[TarMember, Buffer?]> {
  const mtime = { mtimeSec: 1_700_000_000, mtimeNsec: 0 };
  return [
    [member('dir/', { type: 'dir', mode: 0o755, ...mtime })],
    [member('dir/hello', { size: HELLO.length, uid: 1000, gid: 100, uname: 'alice', gname: 'users', ...mtime }), HELLO],
    [member('dir/big', { size: BIG.length, mode: 0o4755, ...mtime }), BIG],
    [member('dir/link-to-hello', { type: 'hardlink', linkname: Buffer.from('dir/hello'), mode: 0o644, uid: 1000, gid: 100, ...mtime })],
    [member('dir/sym', { type: 'symlink', mode: 0o777, linkname: Buffer.from('hello'), ...mtime })],
    [member('dir/longsym', { type: 'symlink', mode: 0o777, linkname: Buffer.from('t'.repeat(300)), ...mtime })],
    [member(LONG_DIR.slice(0, 121), { type: 'dir', mode: 0o700, ...mtime })],
    [member(LONG_DIR, { type: 'dir', mode: 0o750, ...mtime })],
    [member(LONG_NAME, { size: 3, ...mtime }), Buffer.from('abc')],
    [member('x'.repeat(200) + '/', { type: 'dir', mode: 0o755, ...mtime })],
    [member(VERY_LONG, { size: 1, ...mtime }), Buffer.from('z')],
    [member('dir/h\u00e9llo-\u65e5\u672c', { size: 2, ...mtime }), Buffer.from('ok')],
    [member(Buffer.from([0x64, 0x69, 0x72, 0x2f, 0x62, 0x61, 0x64, 0xff, 0xfe]), { size: 1, ...mtime }), Buffer.from('b')],
    [member('dir/bigids', { uid: 3_000_000, gid: 4_000_000_000, size: 0, ...mtime })],
    [member('dir/old', { mtimeSec: -86_400 * 365, mtimeNsec: 0 })],
    [member('dir/future', { mtimeSec: 9_000_000_000, mtimeNsec: 0 })],
    [member('dir/fraction', { mtimeSec: 1_600_000_000, mtimeNsec: 123_456_789 })],
    [member('dir/chr', { type: 'chr', mode: 0o600, devmajor: 1, devminor: 3, ...mtime })],
    [member('dir/blk', { type: 'blk', mode: 0o660, devmajor: 7, devminor: 1_000_000, ...mtime })],
    [member('dir/fifo', { type: 'fifo', mode: 0o644, ...mtime })],
    [member('dir/xattr', { size: 0, xattrs: [{ name: 'user.note', value: Buffer.from('v1') }], ...mtime })],
  ];
}

test('encoded members decode to themselves', () => {
  const members = sample();
  const decoded = decodeBuffer(archive(members));
  assert.equal(decoded.length, members.length);
  for (let i = 0; i < members.length; i++) {
    const [want] = members[i];
    const got = decoded[i];
    assert.deepEqual({ ...got, kind: undefined, typeflag: undefined, dataOffset: undefined }, { ...want, kind: undefined, typeflag: undefined, dataOffset: undefined }, want.name.toString());
  }
  const hello = decoded[1];
  const bytes = archive(members);
  assert.deepEqual(bytes.subarray(hello.dataOffset, hello.dataOffset + hello.size), HELLO);
});

test('GNU tar lists and extracts what we encode', () => {
  requireRoot('extracting devices and owners');
  const dir = tmp();
  try {
    const file = path.join(dir, 'a.tar');
    fs.writeFileSync(file, archive(sample()));
    const list = run('tar', ['-tvf', file, '--numeric-owner']).stdout.toString('latin1');
    assert.match(list, /^-rw-r--r-- 1000\/100 +11 2023-11-14 22:13 dir\/hello$/m);
    assert.match(list, /^hrw-r--r-- 1000\/100 +0 .* dir\/link-to-hello link to dir\/hello$/m);
    assert.match(list, /^-rw-r--r-- 3000000\/4000000000 /m);
    assert.ok(list.includes(LONG_NAME) && list.includes(VERY_LONG) && list.includes('t'.repeat(300)));
    const out = path.join(dir, 'x');
    fs.mkdirSync(out);
    run('tar', ['-xf', file, '-C', out, '--numeric-owner', '--same-permissions', '--xattrs', '--xattrs-include=user.*']);
    const at = (p: string | Buffer) => Buffer.concat([Buffer.from(out + '/'), Buffer.from(p)]);
    const st = (p: string | Buffer) => fs.lstatSync(at(p), { bigint: true });
    assert.deepEqual(fs.readFileSync(at('dir/hello')), HELLO);
    assert.deepEqual(fs.readFileSync(at('dir/big')), BIG);
    assert.equal(Number(st('dir/big').mode) & 0o7777, 0o4755);
    assert.equal(st('dir/hello').ino, st('dir/link-to-hello').ino, 'hard link');
    assert.equal(Number(st('dir/hello').uid), 1000);
    assert.equal(Number(st('dir/hello').gid), 100);
    assert.equal(fs.readlinkSync(at('dir/longsym')), 't'.repeat(300));
    assert.equal(fs.readFileSync(at(LONG_NAME), 'utf8'), 'abc');
    assert.equal(fs.readFileSync(at(VERY_LONG), 'utf8'), 'z');
    assert.equal(Number(st(LONG_DIR).mode) & 0o7777, 0o750);
    assert.equal(fs.readFileSync(at('dir/h\u00e9llo-\u65e5\u672c'), 'utf8'), 'ok');
    assert.equal(fs.readFileSync(at(Buffer.from([0x64, 0x69, 0x72, 0x2f, 0x62, 0x61, 0x64, 0xff, 0xfe])), 'utf8'), 'b');
    assert.equal(Number(st('dir/bigids').uid), 3_000_000);
    assert.equal(Number(st('dir/bigids').gid), 4_000_000_000);
    assert.equal(st('dir/old').mtimeNs, BigInt(-86_400 * 365) * 1_000_000_000n);
    assert.equal(st('dir/future').mtimeNs, 9_000_000_000n * 1_000_000_000n);
    assert.equal(st('dir/fraction').mtimeNs, 1_600_000_000_123_456_789n);
    assert.equal(st('dir/hello').mtimeNs, 1_700_000_000n * 1_000_000_000n);
    assert.ok(st('dir/chr').isCharacterDevice());
    assert.equal(st('dir/chr').rdev, BigInt((1 << 8) | 3));
    assert.ok(st('dir/blk').isBlockDevice());
    const blk = st('dir/blk').rdev;
    assert.deepEqual([((blk >> 8n) & 0xfffn) | ((blk >> 32n) & ~0xfffn), (blk & 0xffn) | ((blk >> 12n) & ~0xffn)], [7n, 1_000_000n]);
    assert.ok(st('dir/fifo').isFIFO());
    assert.equal(run('getfattr', ['--only-values', '-n', 'user.note', at('dir/xattr').toString()]).stdout.toString(), 'v1');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('GNU tar --format=posix archives decode to their sources', () => {
  requireRoot('making devices and owners');
  const dir = tmp();
  try {
    const src = path.join(dir, 'src');
    const deep = path.join(src, 'a'.repeat(100), 'b\u00fc'.repeat(60));
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'f'.repeat(120)), 'deep');
    fs.writeFileSync(path.join(src, 'plain'), 'plain data');
    fs.linkSync(path.join(src, 'plain'), path.join(src, 'plain-link'));
    fs.symlinkSync('../' + 'q'.repeat(150), path.join(src, 'sym'));
    fs.chownSync(path.join(src, 'plain'), 5_000_000, 7);
    run('mknod', [path.join(src, 'null'), 'c', '1', '3']);
    run('mkfifo', [path.join(src, 'pipe')]);
    fs.utimesSync(path.join(src, 'plain'), 1_500_000_000.25, 1_500_000_000.25);
    const file = path.join(dir, 'gnu.tar');
    run('tar', ['--format=posix', '--sort=name', '-cf', file, '-C', src, '.']);
    const bytes = fs.readFileSync(file);
    const got = decodeBuffer(bytes);
    const names = got.map((m) => m.name.toString());
    assert.equal(names[0], './');
    for (const m of got) {
      const rel = m.name.toString().replace(/\/$/, '');
      const st = fs.lstatSync(path.join(src, rel), { bigint: true });
      const what = rel;
      assert.equal(m.mode, Number(st.mode) & 0o7777, what);
      assert.equal(m.uid, Number(st.uid), what);
      assert.equal(m.gid, Number(st.gid), what);
      assert.equal(m.mtimeSec, Number(st.mtimeNs / 1_000_000_000n), what);
      if (m.kind === 'file') {
        assert.equal(m.size, Number(st.size), what);
        assert.deepEqual(bytes.subarray(m.dataOffset, m.dataOffset + m.size), fs.readFileSync(path.join(src, rel)), what);
      }
      if (m.kind === 'symlink') assert.equal(m.linkname.toString(), fs.readlinkSync(path.join(src, rel)));
      if (m.kind === 'chr') assert.deepEqual([m.devmajor, m.devminor], [1, 3]);
    }
    const kinds = Object.fromEntries(got.map((m) => [m.name.toString(), m.kind]));
    assert.equal(kinds['./pipe'], 'fifo');
    assert.equal(kinds['./null'], 'chr');
    assert.equal(kinds['./sym'], 'symlink');
    const link = got.find((m) => m.kind === 'hardlink');
    assert.ok(link && ['./plain', './plain-link'].includes(link.linkname.toString()));
    assert.ok(names.includes('./' + path.relative(src, path.join(deep, 'f'.repeat(120)))));
    // GNU tar records sub-second times in pax.
    const plain = got.find((m) => m.name.toString() === './plain')!;
    assert.equal(plain.mtimeNsec, 250_000_000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('pax records: lengths count their own digits; big sizes go to pax', () => {
  assert.equal(parsePax(Buffer.from('8 a=bcd\n'))?.get('a')?.toString(), 'bcd');
  // Records whose length crosses a digit boundary (a 99- or 100-byte record) must still parse.
  for (let n = 85; n <= 100; n++) {
    const h = encodeMember(member('p'.repeat(n + 120)));
    const dataLen = parseInt(h.toString('latin1', 124, 135), 8);
    const recs = parsePax(h.subarray(512, 512 + dataLen));
    assert.equal(recs?.get('path')?.length, n + 120);
    assert.equal(decodeBuffer(Buffer.concat([h, Buffer.alloc(1024)]))[0].name.length, n + 120);
  }
  // 8 GiB + 1: beyond the 11 octal digits of the size field.
  const size = 8 * 2 ** 30 + 1;
  const head = encodeMember(member('huge', { size }));
  const tail = Buffer.alloc(END_OF_ARCHIVE_LENGTH);
  const total = head.length + size + padding(size) + tail.length;
  const read = (at: number, len: number) => {
    const out = Buffer.alloc(Math.max(0, Math.min(len, total - at)));
    if (at < head.length) head.copy(out, 0, at, Math.min(head.length, at + len));
    return out;
  };
  const [m] = decodeArchive(read, total, 'huge.tar');
  assert.equal(m.size, size);
  assert.equal(m.dataOffset, head.length);
  assert.match(head.toString('latin1'), /\d+ size=8589934593\n/);
});

test('hostile archives fail with one line', () => {
  const good = archive([[member('a', { size: 3 }), Buffer.from('abc')]]);
  const flip = Buffer.from(good);
  flip[10] ^= 1;
  assert.throws(() => decodeBuffer(flip), { code: 'IMAGE_CORRUPT', message: /checksum/ });
  assert.throws(() => decodeBuffer(good.subarray(0, 700)), { code: 'IMAGE_TRUNCATED' });
  assert.throws(() => decodeBuffer(good.subarray(0, 300)), { code: 'IMAGE_TRUNCATED' });
  // A pax header that claims a gigabyte of records.
  const pax = encodeMember(member('p'.repeat(300)));
  const huge = Buffer.from(pax);
  huge.write('7777777777\0', 124, 'latin1');
  fixChecksum(huge);
  assert.throws(() => decodeBuffer(Buffer.concat([huge, Buffer.alloc(4096)])), { code: 'IMAGE_CORRUPT', message: /extended header/ });
  // Malformed records: a length that runs past the data, no newline.
  for (const bad of ['99 path=x\n', '5 path=xyz', 'x path=a\n', '6 =ab\n']) assert.equal(parsePax(Buffer.from(bad)), null, bad);
  // Octal field with garbage.
  const g = Buffer.from(good);
  g.write('12x4\0', 124, 'latin1');
  fixChecksum(g);
  assert.throws(() => decodeBuffer(g), { code: 'IMAGE_CORRUPT', message: /size/ });
  // A size beyond the archive.
  const s = Buffer.from(good);
  s.write('77777777777\0', 124, 'latin1');
  fixChecksum(s);
  assert.throws(() => decodeBuffer(s), { code: 'IMAGE_TRUNCATED' });
  assert.deepEqual(decodeBuffer(Buffer.alloc(1024)), []);
});

function fixChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}

test('mutated archives decode or fail with a DiskwrightError, never anything else', () => {
  const good = archive(sample());
  const noise = pattern(99, 4000 * 3);
  // Header blocks get their checksum fixed after mutation, so the parser behind the checksum is exercised too.
  const headers: number[] = [];
  for (let at = 0; at < good.length; at += 512) {
    const h = Buffer.from(good.subarray(at, at + 512));
    if (h.every((c) => c === 0)) continue;
    const stored = h.toString('latin1', 148, 156);
    fixChecksum(h);
    if (h.toString('latin1', 148, 156) === stored) headers.push(at);
  }
  assert.ok(headers.length >= sample().length);
  for (let i = 0; i < 4000; i++) {
    const bad = Buffer.from(good);
    // One to three bytes changed, mostly in headers and pax records.
    for (let k = 0; k <= noise[i * 3] % 3; k++) {
      const at = (noise[i * 3 + 1] * 256 + noise[i * 3 + 2] + k * 977) % Math.min(bad.length, 6000);
      bad[at] = noise[(i * 3 + k) % noise.length];
    }
    if (i % 2 === 0) for (const at of headers) fixChecksum(bad.subarray(at, at + 512));
    try {
      const members = decodeBuffer(bad);
      for (const m of members) assert.ok(m.dataOffset + m.size <= bad.length);
    } catch (err) {
      assert.ok(err instanceof DiskwrightError, String(err));
    }
  }
});
