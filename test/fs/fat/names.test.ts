// Names: 8.3 basis names and numeric tails as Linux's vfat makes them (but
// deterministic), long-name entries and their checksum, and every name FAT
// cannot hold rejected with the path in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignShortNames, basisName } from '../../../src/fs/fat/short-name.ts';
import { encodeLfn, foldName, lfnEntries, shortNameChecksum } from '../../../src/fs/fat/lfn.ts';
import { fatTime } from '../../../src/fs/fat/dir-entry.ts';
import { planFat } from '../../../src/fs/fat/planner.ts';
import { DiskwrightError } from '../../../src/errors.ts';
import type { DirEntry, Entry } from '../../../src/tree/model.ts';

const shorts = (names: string[]) => assignShortNames(names)!.map((s) => `${s.name.toString('latin1')}${s.needsLfn ? '+' : ''}`);

test('basis names', () => {
  const b = (n: string) => { const x = basisName(n); return `${x.base}.${x.ext}${x.lossy ? ' lossy' : ''}${x.lower ? ' lower' : ''}`; };
  assert.equal(b('README.TXT'), 'README.TXT');
  assert.equal(b('readme.txt'), 'README.TXT lower');
  assert.equal(b('MixedCase.Txt'), 'MIXEDCAS.TXT lossy lower');
  assert.equal(b('.bashrc'), 'BASHRC. lossy lower');
  assert.equal(b('...test'), 'TEST. lossy lower');
  assert.equal(b('a.b.c'), 'AB.C lossy lower');
  assert.equal(b('x+y=z;[1].txt'), 'X_Y_Z__1.TXT lossy lower');
  assert.equal(b('Ünïcødé.txt'), '_N_C_D_.TXT lossy lower');
  assert.equal(b('name.html'), 'NAME.HTM lossy lower');
  assert.equal(b('NOEXT'), 'NOEXT.');
  assert.equal(b("A$%'-_@~`!(){}^#&.X"), "A$%'-_@~.X lossy");
});

test('short names: no tail when lossless, ~N in name order otherwise', () => {
  assert.deepEqual(shorts(['README.TXT', 'readme2.txt', 'Makefile']), ['README  TXT', 'README2 TXT+', 'MAKEFILE   +']);
  const many = Array.from({ length: 12 }, (_, i) => `longfilename-${String(i + 1).padStart(2, '0')}.txt`);
  const got = shorts(many);
  assert.equal(got[0], 'LONGFI~1TXT+');
  assert.equal(got[8], 'LONGFI~9TXT+');
  assert.equal(got[9], 'LONGF~10TXT+');
  assert.equal(new Set(got).size, got.length);
  // An 8.3 name already in the directory keeps its name; the tail skips it.
  assert.deepEqual(shorts(['LONGFI~1.TXT', 'longfilename.txt']), ['LONGFI~1TXT', 'LONGFI~2TXT+']);
  // A valid 8.3 name in lower case: its long name and the plain alias. Short bases are not cut for the tail.
  assert.deepEqual(shorts(['a.b', 'a.b.c', 'a+b']), ['A       B  +', 'AB~1    C  +', 'A_B~1      +']);
  // Deterministic: the same names give the same result.
  assert.deepEqual(shorts(many), got);
});

test('thousands of colliding names stay fast and unique', () => {
  const names = Array.from({ length: 20000 }, (_, i) => `collision-${String(i).padStart(5, '0')}.dat`);
  const t = Date.now();
  const got = assignShortNames(names)!;
  assert.ok(Date.now() - t < 2000);
  assert.equal(new Set(got.map((s) => s.name.toString('latin1'))).size, names.length);
  assert.equal(got[19999].name.toString('latin1'), 'CO~20000DAT');
});

test('long-name entries: order, terminator, padding, checksum', () => {
  const short = Buffer.from('ABCDEF~1TXT', 'latin1');
  // Checksum of fatgen103's example algorithm, computed by hand for this name.
  let sum = 0;
  for (const c of short) sum = (((sum & 1) << 7) + (sum >> 1) + c) & 0xff;
  assert.equal(shortNameChecksum(short), sum);
  const name = 'abcdefghijklmnopq.txt'; // 21 units: two entries
  assert.equal(lfnEntries(name), 2);
  const buf = Buffer.alloc(64);
  assert.equal(encodeLfn(buf, 0, name, short), 64);
  assert.equal(buf[0], 0x42); // last piece first, with 0x40
  assert.equal(buf[32], 0x01);
  assert.equal(buf[11], 0x0f);
  assert.equal(buf[13], sum);
  const units = (e: Buffer) => Buffer.concat([e.subarray(1, 11), e.subarray(14, 26), e.subarray(28, 32)]);
  const piece2 = units(buf.subarray(0, 32));
  assert.equal(piece2.subarray(0, 16).toString('utf16le'), 'nopq.txt');
  assert.equal(piece2.readUInt16LE(16), 0, 'NUL after the name');
  assert.ok(piece2.subarray(18).every((b) => b === 0xff), '0xFFFF padding');
  assert.equal(units(buf.subarray(32, 64)).toString('utf16le'), 'abcdefghijklm');
  // Exactly 13 units: no terminator, no padding.
  const b13 = Buffer.alloc(32);
  encodeLfn(b13, 0, 'abcdefghijklm', short);
  assert.equal(units(b13).toString('utf16le'), 'abcdefghijklm');
});

test('case folding for duplicate detection', () => {
  assert.equal(foldName('readme.TXT'), 'README.TXT');
  assert.equal(foldName('ünï'), 'ÜNÏ');
  assert.equal(foldName('straße'), 'STRAßE', 'ß has no one-character upper case: kept');
});

test('FAT times: UTC, 2 s, 10 ms creation part, clamped', () => {
  assert.deepEqual(fatTime(Date.UTC(2020, 1, 29, 23, 59, 59) / 1000, 990_000_000), {
    date: (40 << 9) | (2 << 5) | 29, time: (23 << 11) | (59 << 5) | 29, centis: 199,
  });
  assert.deepEqual(fatTime(-1e9), { date: (1 << 5) | 1, time: 0, centis: 0 });
  assert.deepEqual(fatTime(1e11), { date: (127 << 9) | (12 << 5) | 31, time: (23 << 11) | (59 << 5) | 29, centis: 199 });
});

// ---------------------------------------------------------------- errors

const meta = { mode: 0o644, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, xattrs: [] };
function tree(children: Record<string, Entry>): DirEntry {
  const m = new Map<string, Entry>();
  for (const [k, v] of Object.entries(children)) m.set(Buffer.from(k, 'utf8').toString('latin1'), v);
  return { type: 'dir', ...meta, mode: 0o755, children: m };
}
const file = (size = 1): Entry => ({ type: 'file', ...meta, size, sourcePath: Buffer.from('/dev/null') });

function rejects(root: DirEntry, code: string, pattern: RegExp) {
  assert.throws(() => planFat(root, { size: 'auto' }), (err: unknown) => {
    assert.ok(err instanceof DiskwrightError);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

test('names FAT cannot hold are errors naming the path', () => {
  for (const bad of ['a:b', 'what?', 'x*y', 'back\\slash', 'pi|pe', 'q"uote', 'l<t', 'g>t', 'tab\there']) {
    const shown = bad.includes('\t') ? JSON.stringify(`/d/${bad}`) : `/d/${bad}`;
    const escaped = shown.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    rejects(tree({ d: tree({ [bad]: file() }) }), 'NAME_INVALID', new RegExp(`^${escaped}: FAT names cannot contain`));
  }
  rejects(tree({ 'dot.': file() }), 'NAME_INVALID', /^\/dot\.: .*end in a dot or a space/);
  rejects(tree({ 'space ': file() }), 'NAME_INVALID', /^\/space : /);
  rejects(tree({ ['x'.repeat(256)]: file() }), 'NAME_TOO_LONG', /256 UTF-16 units; .* at most 255/);
  // 128 emoji are 256 UTF-16 units, though only 128 characters.
  rejects(tree({ ['🦀'.repeat(128)]: file() }), 'NAME_TOO_LONG', /256 UTF-16 units/);
  const latin1 = new Map<string, Entry>([['\xff\xfe.txt', file()]]);
  rejects({ type: 'dir', ...meta, children: latin1 }, 'NAME_INVALID', /not valid UTF-8/);
  rejects(tree({ sub: tree({ Readme: file(), README: file() }) }), 'DUPLICATE_ENTRY', /^\/sub\/README and \/sub\/Readme differ only in case/);
  rejects(tree({ 'Ünï': file(), 'üNÏ': file() }), 'DUPLICATE_ENTRY', /differ only in case/);
});

test('only files and directories: other types are errors naming the path', () => {
  rejects(tree({ etc: tree({ link: { type: 'symlink', ...meta, target: Buffer.from('x') } }) }), 'NAME_INVALID', /^\/etc\/link is a symbolic link; FAT holds only files and directories/);
  rejects(tree({ null: { type: 'chr', ...meta, major: 1, minor: 3 } }), 'NAME_INVALID', /^\/null is a character device/);
  rejects(tree({ p: { type: 'fifo', ...meta } }), 'NAME_INVALID', /^\/p is a FIFO/);
  rejects(tree({ s: { type: 'sock', ...meta } }), 'NAME_INVALID', /^\/s is a socket/);
});

test('files over 4 GiB - 1 and over-full directories are errors', () => {
  rejects(tree({ huge: file(2 ** 32) }), 'TOO_LARGE', /^\/huge is 4294967296 bytes; FAT files hold at most 4294967295/);
  const many: Record<string, Entry> = {};
  for (let i = 0; i < 22000; i++) many[`a long name ${i}`] = file(0);
  rejects(tree({ big: tree(many) }), 'TOO_MANY_FILES', /^\/big\/ needs \d+ directory entries; a FAT directory holds at most 65536/);
});

test('labels: at most 11 printable ASCII, mkfs.fat rules', () => {
  const plan = (label: string) => planFat(tree({}), { size: 'auto', label });
  assert.equal(plan('EFI').stats.label, 'EFI');
  assert.equal(plan('NO NAME').stats.label, '');
  assert.throws(() => plan('TWELVE CHARS'), { code: 'LABEL_TOO_LONG' });
  assert.throws(() => plan('a.b'), { code: 'OPTION_INVALID' });
  assert.throws(() => plan(' lead'), { code: 'OPTION_INVALID' });
  assert.throws(() => plan('ÜBER'), { code: 'OPTION_INVALID' });
});
