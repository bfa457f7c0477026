// Source trees for the ext4 oracle tests. makeFeatureFixture builds (as root) a
// tree that touches every feature an ext4 writer must reproduce; makeSmallFixture
// is a handful of entries for quick tests.
//
// Paths in the returned description are snapshot keys (see snapshot.ts): '/'
// then the path's raw bytes as a latin1 "byte string", so they index a Snapshot
// directly. Use displayPath() from snapshot.ts to print them.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { findTool, run, requireRoot, requireTools } from './tools.ts';

export interface FixtureInfo {
  root: string;
  /** feature label -> snapshot keys of the entries that exercise it */
  features: Record<string, string[]>;
  /** Features the host refused, with the reason (only security.selinux may be skipped). */
  skipped: Array<{ feature: string; reason: string }>;
  notes: string[];
  /** Bytes of real (non-hole) data written, and the sum of apparent file sizes. */
  dataBytes: number;
  apparentBytes: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Deterministic pseudo-random bytes (AES-128-CTR keystream), distinct per seed. */
export function pseudoRandom(seed: string, length: number, offset = 0): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  // CTR: block counter in the low 64 bits of the IV.
  const firstBlock = Math.floor(offset / 16);
  iv.writeBigUInt64BE(BigInt(firstBlock), 8);
  const skip = offset - firstBlock * 16;
  const c = createCipheriv('aes-128-ctr', key, iv);
  return c.update(Buffer.alloc(length + skip)).subarray(skip);
}

/** Snapshot key of a path relative to the fixture root (text or raw bytes). */
function key(rel: string | Buffer): string {
  const bytes = typeof rel === 'string' ? Buffer.from(rel, 'utf8') : rel;
  return '/' + bytes.toString('latin1');
}

class Builder {
  readonly info: FixtureInfo;
  readonly root: string;
  private readonly times: Array<{ rel: string; stamp: string; sec: bigint; nsec: bigint }> = [];

  constructor(root: string) {
    this.root = root;
    this.info = { root, features: {}, skipped: [], notes: [], dataBytes: 0, apparentBytes: 0 };
  }

  abs(rel: string | Buffer): string | Buffer {
    if (typeof rel === 'string') return rel === '' ? this.root : join(this.root, rel);
    return Buffer.concat([Buffer.from(this.root + '/', 'utf8'), rel]);
  }

  /** Text path for tools (spawn arguments are strings; never used for non-UTF-8 names). */
  p(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  tag(feature: string, rel: string | Buffer): void {
    (this.info.features[feature] ??= []).push(key(rel));
  }

  mkdir(rel: string, mode = 0o755): void {
    fs.mkdirSync(this.abs(rel), { recursive: true });
    fs.chmodSync(this.abs(rel), mode);
  }

  file(rel: string | Buffer, data: Buffer | string, mode = 0o644): void {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    fs.writeFileSync(this.abs(rel), buf);
    fs.chmodSync(this.abs(rel), mode);
    this.info.dataBytes += buf.length;
    this.info.apparentBytes += buf.length;
  }

  /** Writes a file of pseudo-random content in chunks (never holds it all in memory). */
  randomFile(rel: string, size: number, mode = 0o644): void {
    const fd = fs.openSync(this.abs(rel), 'w', mode);
    try {
      for (let off = 0; off < size; off += 4 * MiB) {
        const n = Math.min(4 * MiB, size - off);
        fs.writeSync(fd, pseudoRandom(rel, n, off), 0, n, off);
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(this.abs(rel), mode);
    this.info.dataBytes += size;
    this.info.apparentBytes += size;
  }

  /** A sparse file: truncate to size, then write the given runs. */
  sparseFile(rel: string, size: number, runs: Array<[offset: number, length: number]>): void {
    const fd = fs.openSync(this.abs(rel), 'w', 0o644);
    try {
      fs.ftruncateSync(fd, size);
      for (const [offset, length] of runs) {
        fs.writeSync(fd, pseudoRandom(rel + ':' + offset, length), 0, length, offset);
        this.info.dataBytes += length;
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(this.abs(rel), 0o644);
    this.info.apparentBytes += size;
  }

  symlink(rel: string, target: string): void {
    fs.symlinkSync(target, this.abs(rel));
  }

  /** Records an exact mtime to set at the very end (after every directory is complete). */
  mtime(rel: string, sec: bigint, nsec: bigint): void {
    const total = sec * 1_000_000_000n + nsec;
    // touch -d @S.N with S.N = total/1e9 as a signed decimal (e.g. -1.5 = -2 s + 0.5e9 ns).
    const neg = total < 0n;
    const abs = neg ? -total : total;
    const stamp = `@${neg ? '-' : ''}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
    this.times.push({ rel, stamp, sec, nsec });
  }

  applyTimes(): void {
    for (const t of this.times) run('touch', ['-h', '-d', t.stamp, this.p(t.rel)]);
    for (const t of this.times) {
      const st = fs.lstatSync(this.p(t.rel), { bigint: true });
      const want = t.sec * 1_000_000_000n + t.nsec;
      if (st.mtimeNs !== want) {
        throw new Error(`fixture: host file system cannot store mtime ${t.stamp} on ${t.rel} (got ${st.mtimeNs} ns)`);
      }
    }
  }

  xattr(rel: string, name: string, value: Buffer): void {
    run('setfattr', ['-h', '-n', name, '-v', '0x' + value.toString('hex'), this.p(rel)]);
  }
}

/** A v2 file-capability blob (struct vfs_cap_data, VFS_CAP_REVISION_2): caps permitted+effective. */
export function capabilityV2(permittedBits: number[]): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000000 | 0x1, 0); // revision 2 | VFS_CAP_FLAGS_EFFECTIVE
  for (const bit of permittedBits) {
    const word = bit >> 5;
    b.writeUInt32LE((b.readUInt32LE(4 + word * 8) | (1 << (bit & 31))) >>> 0, 4 + word * 8);
  }
  return b; // inheritable words stay 0
}

/** mode for a umask-independent tree */
function withUmask<T>(mask: number, fn: () => T): T {
  const old = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

/**
 * Builds the full feature fixture in `dir` (created if missing; must be empty).
 * Needs root (mknod, chown, trusted.* xattrs) and coreutils, attr and acl.
 * About 23 MiB of real data; one sparse file has a 6 GiB apparent size.
 */
export function makeFeatureFixture(dir: string): FixtureInfo {
  requireRoot('makeFeatureFixture');
  requireTools('touch', 'mknod', 'mkfifo', 'setfattr', 'setfacl');
  fs.mkdirSync(dir, { recursive: true });
  if (fs.readdirSync(dir).length !== 0) throw new Error(`fixture: ${dir} is not empty`);
  return withUmask(0o022, () => buildFeatureFixture(new Builder(fs.realpathSync(dir))));
}

function buildFeatureFixture(b: Builder): FixtureInfo {
  const info = b.info;
  fs.chmodSync(b.root, 0o755);
  fs.chownSync(b.root, 0, 0);

  // ---- regular files of many sizes
  b.mkdir('files');
  b.file('files/empty', Buffer.alloc(0));
  b.file('files/one', 'x');
  b.file('files/sixty', pseudoRandom('sixty', 60)); // the inline-data / i_block size boundary
  for (const size of [4095, 4096, 4097, 8191, 65537]) b.randomFile(`files/b${size}`, size);
  b.randomFile('files/mib3', 3 * MiB);
  b.randomFile('files/mib5-plus-123', 5 * MiB + 123);
  b.randomFile('files/mib12', 12 * MiB);
  for (const n of ['empty', 'one', 'sixty', 'b4095', 'b4096', 'b4097', 'b8191', 'b65537', 'mib3', 'mib5-plus-123', 'mib12']) {
    b.tag('regular file sizes', `files/${n}`);
  }
  // Zero bytes that are written (not holes): a writer may store them as holes,
  // the content must read back identical either way.
  b.file('files/written-zeros', Buffer.concat([pseudoRandom('wz1', MiB), Buffer.alloc(MiB), pseudoRandom('wz2', MiB + 7)]));
  b.tag('written zero blocks', 'files/written-zeros');

  // ---- sparse files
  b.mkdir('sparse');
  b.sparseFile('sparse/holes', 10 * MiB + 17, [
    [1 * MiB, 5000], // hole at the start, unaligned end
    [5 * MiB + 100, 8192], // hole in the middle, unaligned data crossing blocks
  ]); // ... and a hole at the end
  b.tag('sparse: holes at start, middle, end', 'sparse/holes');
  b.sparseFile('sparse/last-byte', 8 * MiB, [[8 * MiB - 1, 1]]);
  b.tag('sparse: data only in the last byte', 'sparse/last-byte');
  b.sparseFile('sparse/all-hole', 1 * GiB, []);
  b.tag('sparse: no data at all', 'sparse/all-hole');
  const bigRuns: Array<[number, number]> = [];
  for (let off = 0; off < 6 * GiB; off += 4 * MiB) bigRuns.push([off, 4 * KiB]);
  b.sparseFile('sparse/big-6g', 6 * GiB, bigRuns);
  b.tag('sparse: 6 GiB, 1536 data blocks (needs an extent tree)', 'sparse/big-6g');

  // ---- a directory with 2,000 entries (every 100th a subdirectory)
  b.mkdir('many');
  const pad = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < 2000; i++) {
    const name = `many/e${String(i).padStart(4, '0')}-${pad.slice(0, i % 37)}`;
    if (i % 100 === 0) b.mkdir(name);
    else b.file(name, i % 7 === 0 ? `entry ${i}\n` : '');
  }
  b.tag('directory with 2000 entries', 'many');

  // ---- deep nesting
  let deep = 'deep';
  for (let i = 1; i <= 40; i++) deep += `/level-${String(i).padStart(2, '0')}`;
  b.mkdir(deep);
  b.file(`${deep}/leaf`, 'bottom\n');
  b.tag('deep nesting (41 levels)', `${deep}/leaf`);

  // ---- awkward names
  b.mkdir('names');
  const names: Array<string | Buffer> = [
    'ünïcödé',
    'emoji-🦀🎉👩‍👩‍👧',
    'a'.repeat(255),
    'ü'.repeat(127) + 'x', // 255 bytes of UTF-8
    'with space',
    ' leading and trailing space ',
    'new\nline',
    'tab\tand\rcr',
    '.hidden',
    '-leading-dash',
    `quote"'\\back`,
    '*?[glob]',
    'lost+found', // only the image root's lost+found is special
    Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0x2d, 0xe9, 0x2d, 0xff, 0xfe]), // not UTF-8
  ];
  for (const n of names) {
    const rel = typeof n === 'string' ? `names/${n}` : Buffer.concat([Buffer.from('names/'), n]);
    b.file(rel, `name ${typeof n === 'string' ? n : n.toString('hex')}\n`);
    b.tag('awkward names', rel);
  }
  b.mkdir('names/ünïcödé-dir/🦀');
  b.file('names/ünïcödé-dir/🦀/inside', 'crab\n');
  b.tag('awkward names', 'names/ünïcödé-dir/🦀/inside');

  // ---- symlinks
  b.mkdir('links');
  const t59 = 'fast/' + 'x'.repeat(54); // 59 bytes: the longest fast symlink
  const t60 = 'slow/' + 'x'.repeat(55); // 60 bytes: the shortest slow symlink
  const slow = (n: number) => ('segment/'.repeat(Math.ceil(n / 8)).slice(0, n - 1) + 'z');
  const symlinks: Array<[string, string, string]> = [
    ['links/fast', '../files/one', 'fast symlink'],
    ['links/fast-59', t59, 'fast symlink'],
    ['links/slow-60', t60, 'slow symlink'],
    ['links/slow-100', slow(100), 'slow symlink'],
    ['links/slow-1000', slow(1000), 'slow symlink'],
    ['links/slow-4095', slow(4095), 'slow symlink'],
    ['links/dangling', 'does/not/exist', 'dangling symlink'],
    ['links/to-dir', '../deep', 'symlink to a directory'],
    ['links/absolute', '/etc/passwd', 'absolute symlink (must not be followed)'],
    ['links/utf8', 'ünïcödé/🦀', 'symlink with a UTF-8 target'],
  ];
  for (const [rel, target, feature] of symlinks) {
    b.symlink(rel, target);
    b.tag(feature, rel);
  }
  for (const [rel, target] of symlinks) {
    if (fs.readlinkSync(b.p(rel)) !== target) throw new Error(`fixture: symlink ${rel} did not keep its target`);
  }

  // ---- hard links (3 names for one file, across directories) and linked specials
  b.mkdir('hard/a');
  b.mkdir('hard/b');
  b.file('hard/a/orig', 'shared by three names\n');
  fs.linkSync(b.p('hard/a/orig'), b.p('hard/b/second'));
  fs.linkSync(b.p('hard/a/orig'), b.p('hard/third'));
  for (const r of ['hard/a/orig', 'hard/b/second', 'hard/third']) b.tag('hard links (3 names, 3 dirs)', r);
  b.file('hard/empty-1', '');
  fs.linkSync(b.p('hard/empty-1'), b.p('hard/empty-2'));
  b.tag('hard-linked empty file', 'hard/empty-1');
  b.tag('hard-linked empty file', 'hard/empty-2');
  run('mkfifo', ['-m', '0644', b.p('hard/fifo')]);
  fs.linkSync(b.p('hard/fifo'), b.p('hard/fifo-link'));
  b.tag('hard-linked FIFO', 'hard/fifo');
  b.tag('hard-linked FIFO', 'hard/fifo-link');

  // ---- device nodes, FIFO, socket
  b.mkdir('special');
  const devices: Array<[string, 'c' | 'b', number, number]> = [
    ['special/chr-1-3', 'c', 1, 3],
    ['special/chr-0-0', 'c', 0, 0],
    ['special/chr-300-70000', 'c', 300, 70000],
    ['special/chr-4095-1048575', 'c', 4095, 1048575], // largest Linux dev_t: 12-bit major, 20-bit minor
    ['special/blk-8-1', 'b', 8, 1],
    ['special/blk-259-65541', 'b', 259, 65541],
    ['special/chr-255-255', 'c', 255, 255], // largest old-style encoding
    ['special/chr-256-0', 'c', 256, 0], // smallest major that needs the new encoding
  ];
  for (const [rel, kind, major, minor] of devices) {
    run('mknod', ['-m', '0640', b.p(rel), kind, String(major), String(minor)]);
    b.tag(kind === 'c' ? 'character device' : 'block device', rel);
  }
  run('mkfifo', ['-m', '0600', b.p('special/fifo')]);
  b.tag('FIFO', 'special/fifo');
  makeSocket(b.p('special'), 'socket');
  fs.chmodSync(b.p('special/socket'), 0o755);
  b.tag('unix socket', 'special/socket');
  info.notes.push(
    'special/socket: a child node process listens on the path and exits without closing the server ' +
      '(libuv unlinks the path on close, not on exit), so the socket file stays',
  );

  // ---- permission bits and ownership
  b.mkdir('perms');
  b.file('perms/setuid', '#!/bin/sh\n', 0o4755);
  b.file('perms/setgid', '#!/bin/sh\n', 0o2755);
  b.file('perms/all-bits', 'x', 0o7777);
  b.file('perms/no-bits', 'x', 0o000);
  b.mkdir('perms/sticky-dir', 0o1777);
  b.mkdir('perms/setgid-dir', 0o2775);
  b.file('perms/setgid-dir/file', 'x', 0o640);
  b.mkdir('perms/dir-0700', 0o700);
  b.mkdir('perms/dir-0000', 0o000);
  for (const r of ['perms/setuid', 'perms/setgid', 'perms/all-bits', 'perms/sticky-dir', 'perms/setgid-dir']) {
    b.tag('setuid/setgid/sticky bits', r);
  }
  b.file('perms/owner-high', '#!/bin/sh\n');
  fs.chownSync(b.p('perms/owner-high'), 100000, 200000);
  fs.chmodSync(b.p('perms/owner-high'), 0o6755); // chown clears setuid/setgid: chmod after it
  b.tag('uid/gid above 65535', 'perms/owner-high');
  b.mkdir('perms/owner-dir');
  fs.chownSync(b.p('perms/owner-dir'), 65536, 65537);
  b.tag('uid/gid above 65535', 'perms/owner-dir');
  b.file('perms/owner-max', 'x');
  fs.chownSync(b.p('perms/owner-max'), 4294967294, 4294967294); // (uid_t)-2: largest valid id
  b.tag('uid/gid above 65535', 'perms/owner-max');
  b.symlink('perms/owner-link', 'owner-high');
  fs.lchownSync(b.p('perms/owner-link'), 100001, 200001);
  b.tag('symlink ownership', 'perms/owner-link');
  b.file('perms/owner-small', 'x');
  fs.chownSync(b.p('perms/owner-small'), 1000, 100);

  // ---- xattrs and ACLs (after every chown: chown drops security.capability)
  b.mkdir('xattrs');
  b.file('xattrs/small', 'small\n');
  b.xattr('xattrs/small', 'user.small', Buffer.from('hello'));
  b.xattr('xattrs/small', 'user.empty', Buffer.alloc(0));
  b.xattr('xattrs/small', 'trusted.t', Buffer.from('trusted value'));
  b.tag('xattr: user.* small, empty value', 'xattrs/small');
  b.tag('xattr: trusted.*', 'xattrs/small');
  const bigValue = Buffer.from(pseudoRandom('bigx', 1500).toString('hex'), 'latin1'); // 3000 bytes
  b.file('xattrs/big', 'big\n');
  b.xattr('xattrs/big', 'user.big', bigValue);
  b.xattr('xattrs/big', 'user.also', Buffer.from('small one next to the big one'));
  b.tag('xattr: user.* 3000 bytes (outside the inode)', 'xattrs/big');
  b.file('xattrs/big-twin', 'twin\n');
  b.xattr('xattrs/big-twin', 'user.big', bigValue);
  b.xattr('xattrs/big-twin', 'user.also', Buffer.from('small one next to the big one'));
  b.tag('xattr: identical xattr sets on two inodes', 'xattrs/big-twin');
  b.file('xattrs/many', 'many\n');
  for (let i = 0; i < 24; i++) b.xattr('xattrs/many', `user.attr-${String(i).padStart(2, '0')}`, pseudoRandom(`xa${i}`, 40 + i));
  b.tag('xattr: many attributes', 'xattrs/many');
  b.file('xattrs/binary', 'bin\n');
  b.xattr('xattrs/binary', 'user.bytes', Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 10, 13]));
  b.tag('xattr: binary value', 'xattrs/binary');
  b.mkdir('xattrs/dir');
  b.xattr('xattrs/dir', 'user.on-dir', Buffer.from('directory attribute'));
  b.tag('xattr on a directory', 'xattrs/dir');
  b.symlink('xattrs/link', 'small');
  b.xattr('xattrs/link', 'trusted.on-link', Buffer.from('symlink attribute')); // user.* is refused on symlinks
  b.tag('xattr on a symlink', 'xattrs/link');
  run('mknod', ['-m', '0600', b.p('xattrs/dev'), 'c', '1', '7']);
  b.xattr('xattrs/dev', 'trusted.on-dev', Buffer.from('device attribute'));
  b.tag('xattr on a device node', 'xattrs/dev');
  b.file('xattrs/cap', '#!/bin/sh\n', 0o755);
  b.xattr('xattrs/cap', 'security.capability', capabilityV2([10])); // cap_net_bind_service+ep
  b.tag('xattr: security.capability (v2)', 'xattrs/cap');
  b.file('xattrs/selinux', 'label\n');
  const label = Buffer.from('system_u:object_r:etc_t:s0\0', 'latin1');
  const se = spawnSync(findTool('setfattr') as string, ['-h', '-n', 'security.selinux', '-v', '0x' + label.toString('hex'), b.p('xattrs/selinux')], {
    encoding: 'utf8',
  });
  if (se.status === 0) {
    b.tag('xattr: security.selinux', 'xattrs/selinux');
  } else {
    info.skipped.push({
      feature: 'xattr: security.selinux',
      reason: `host refused security.selinux (${(se.stderr || se.error?.message || '').trim()}); a kernel without SELinux usually stores it, one with an LSM that owns the name may not`,
    });
  }
  b.xattr('', 'user.root', Buffer.from('on the root directory'));
  b.tag('xattr on the root directory', '');

  b.file('xattrs/acl-file', 'acl\n', 0o640);
  run('setfacl', ['-m', 'u:1234:rw-,g:5678:r--,m::rw-', b.p('xattrs/acl-file')]);
  b.tag('POSIX access ACL (named user and group)', 'xattrs/acl-file');
  b.mkdir('xattrs/acl-dir', 0o750);
  run('setfacl', ['-m', 'u:1234:rwx,g:5678:r-x', b.p('xattrs/acl-dir')]);
  run('setfacl', ['-d', '-m', 'u::rwx,g::r-x,o::---,u:1234:rwx,g:5678:r-x', b.p('xattrs/acl-dir')]);
  b.tag('POSIX default ACL on a directory', 'xattrs/acl-dir');
  b.file('xattrs/acl-dir/inherited', 'inherits the default ACL\n', 0o640);
  b.mkdir('xattrs/acl-dir/subdir'); // inherits both access and default ACLs
  b.tag('POSIX ACL inherited from a default ACL', 'xattrs/acl-dir/inherited');
  b.tag('POSIX ACL inherited from a default ACL', 'xattrs/acl-dir/subdir');
  // b.mkdir chmods after creation, which rewrites the inherited ACL's mask: fine, it stays an ACL.

  // ---- timestamps (set last: creating entries changes directory mtimes)
  b.mkdir('times');
  const stamps: Array<[string, bigint, bigint, string]> = [
    ['times/nanoseconds', 1700000000n, 123456789n, 'mtime with nanoseconds'],
    ['times/before-1970', -2n, 500000000n, 'mtime before 1970'],
    ['times/int32-min', -2147483648n, 0n, 'mtime before 1970'],
    ['times/int32-max', 2147483647n, 999999999n, 'mtime at the 2038 limit'],
    ['times/after-2038', 2147483648n, 1n, 'mtime after 2038'],
    ['times/after-2106', 4294979641n, 500000000n, 'mtime after 2038'], // 2**32 + 12345
    ['times/ext4-max', 15032385535n, 0n, 'mtime after 2038'], // 3 * 2**32 + 2**31 - 1: the largest ext4 time (2446)
  ];
  for (const [rel, sec, nsec, feature] of stamps) {
    b.file(rel, `${sec}.${nsec}\n`);
    b.mtime(rel, sec, nsec);
    b.tag(feature, rel);
  }
  b.symlink('times/link', 'nanoseconds');
  b.mtime('times/link', 1600000000n, 987654321n);
  b.tag('symlink mtime', 'times/link');
  b.mkdir('times/dir');
  b.mtime('times/dir', 1500000000n, 111111111n);
  b.tag('directory mtime', 'times/dir');
  b.mtime('times', 1400000000n, 222222222n);
  b.applyTimes();

  info.notes.push(
    `real data ${(info.dataBytes / MiB).toFixed(1)} MiB, apparent size ${(info.apparentBytes / GiB).toFixed(2)} GiB`,
  );
  return info;
}

/** Leaves a unix socket file at dir/name (a child listens, then exits without closing). */
function makeSocket(dir: string, name: string): void {
  const script =
    "const s = require('node:net').createServer();" +
    's.on("error", (e) => { console.error(e.message); process.exit(2); });' +
    `s.listen(${JSON.stringify(name)}, () => process.exit(0));`;
  // Relative path + cwd keeps us clear of the 108-byte sun_path limit.
  const r = spawnSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`fixture: cannot create a socket in ${dir}: ${r.stderr}`);
  if (!fs.lstatSync(join(dir, name)).isSocket()) throw new Error(`fixture: ${dir}/${name} is not a socket`);
}

/**
 * A handful of files and directories for quick tests. Works without root (no
 * devices, no ownership changes).
 */
export function makeSmallFixture(dir: string): FixtureInfo {
  fs.mkdirSync(dir, { recursive: true });
  if (fs.readdirSync(dir).length !== 0) throw new Error(`fixture: ${dir} is not empty`);
  return withUmask(0o022, () => {
    const b = new Builder(fs.realpathSync(dir));
    fs.chmodSync(b.root, 0o755);
    b.file('hello.txt', 'hello, world\n');
    b.tag('regular file', 'hello.txt');
    b.file('empty', '');
    b.tag('regular file', 'empty');
    b.mkdir('sub/dir');
    b.randomFile('sub/dir/data.bin', 10 * KiB + 3);
    b.tag('regular file', 'sub/dir/data.bin');
    b.file('sub/script.sh', '#!/bin/sh\necho hi\n', 0o755);
    b.tag('regular file', 'sub/script.sh');
    b.symlink('link', 'hello.txt');
    b.tag('fast symlink', 'link');
    fs.linkSync(b.p('hello.txt'), b.p('sub/hello-again.txt'));
    b.tag('hard links', 'hello.txt');
    b.tag('hard links', 'sub/hello-again.txt');
    b.mtime('hello.txt', 1700000000n, 5n);
    b.applyTimes();
    return b.info;
  });
}
