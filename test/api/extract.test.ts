// `extract` stays inside DIR whatever the image says. A corpus of hostile
// ext4 and FAT images, each built by our writer and then patched in place
// (test/read/hostile.ts): names with '/', '..', '.', NUL, absolute names,
// invalid VFAT long names, a symlink and a directory of the same name in
// both orders, a hard link whose first name escapes, escapes in
// subdirectories. For each: the whole tree around DIR is the same before and
// after but for DIR, every unsafe entry is reported once (naming the image,
// the entry and its name escaped), everything else is extracted. Through the
// CLI: one warning line each and exit status 1; --strict stops at the first;
// a new DIR appears only complete (all or nothing); ls shows names escaped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { extractImage, type ExtractResult } from '../../src/api/extract.ts';
import { diffImages } from '../../src/api/diff.ts';
import { mkfsExt4, mkfsVfat } from '../../src/api/mkfs.ts';
import { cli, throwsOneLine } from '../read/commands-fixture.ts';
import { fatEntryOffsets, patchFatAttr, patchFatLongName, patchFatShortName, renameExt4Entries, treeState } from '../read/hostile.ts';

let work: string;
let box: string;
let ext4Img: string;
let ext4Clean: string;
let fatImg: string;

const b = (s: string) => Buffer.from(s, 'latin1');
const u16 = (s: string) => Buffer.from(s, 'utf16le');

/** Entry names the hostile ext4 image holds after patching, escaped as warnings show them. */
const EXT4_UNSAFE = [
  '..\\x2fesc1', '..', '.', 'a\\x00b', '\\x2fabs-esc', 'sd1', 'ds1', '..\\x2f', '..\\x2fdd', '..', '..\\x2fsl',
  '..\\x2f..\\x2fesc2', '..', '..\\x2f..\\x2f..\\x2f..\\x2fesc3',
];
/** What DIR must hold afterwards: every safe entry. */
const EXT4_SAFE = ['/ds1', '/ds1/planted2', '/hl2', '/lost+found', '/new\nline', '/safe.txt', '/sd1', '/sub', '/sub/deep', '/sub/deep/ok2', '/sub/ok'];

function makeExt4(): void {
  const src = path.join(work, 'src-ext4');
  const w = (rel: string, data = rel) => {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), data);
  };
  for (const f of ['safe.txt', 'PPPPPPP', 'p2', 'p', 'pnl', 'PABSESCX', 'sd2/planted', 'ds1/planted2', 'PDDDD/inner', 'pz/inner2', 'new\nline', 'sub/ok', 'sub/PPPPPPPPPP', 'sub/P3', 'sub/deep/ok2', 'sub/deep/PPPPPPPPPPPPPPPP']) w(f);
  fs.symlinkSync(path.join(box, 'outside-a'), path.join(src, 'sd1'));
  fs.symlinkSync(path.join(box, 'outside-b'), path.join(src, 'ds2'));
  fs.symlinkSync('/etc', path.join(src, 'PSLNK'));
  w('hl1', 'linked');
  fs.linkSync(path.join(src, 'hl1'), path.join(src, 'hl2'));
  ext4Clean = path.join(work, 'img', 'clean.ext4');
  mkfsExt4({ sources: [src], output: ext4Clean, owner: { uid: 0, gid: 0 } });
  ext4Img = path.join(work, 'img', 'hostile.ext4');
  fs.copyFileSync(ext4Clean, ext4Img);
  renameExt4Entries(ext4Img, '/', [
    ['PPPPPPP', b('../esc1')], ['p2', b('..')], ['p', b('.')], ['pnl', b('a\0b')], ['PABSESCX', b('/abs-esc')],
    ['sd2', b('sd1')], ['ds2', b('ds1')], ['hl1', b('../')], ['PDDDD', b('../dd')], ['pz', b('..')], ['PSLNK', b('../sl')],
  ]);
  renameExt4Entries(ext4Img, '/sub', [['PPPPPPPPPP', b('../../esc2')], ['P3', b('..')]]);
  renameExt4Entries(ext4Img, '/sub/deep', [['PPPPPPPPPPPPPPPP', b('../../../../esc3')]]);
}

/** FAT: long names patched (any length up to what the entries hold), one 8.3 name, a file renamed onto a directory's name. */
const FAT_PATCHES: Array<[placeholder: string, units: Buffer, shown: string]> = [
  ['/placeholder-escape-1.txt', u16('../fat-esc1.txt'), '..\\x2ffat-esc1.txt'],
  ['/placeholder-dots-dir', u16('..'), '..'],
  ['/placeholder-dot.txt', u16('.'), '.'],
  ['/placeholder-nul.txt', u16('trunc\0ated.txt'), 'trunc\\x00ated.txt'],
  ['/placeholder-backslash.txt', u16('back\\slash.txt'), 'back\\\\slash.txt'],
  ['/placeholder-surrogate.txt', Buffer.concat([u16('lone'), Buffer.from([0x00, 0xd8]), u16('x.txt')]), 'lone\uFFFDx.txt'],
  ['/placeholder-abs.txt', u16('/fat-abs.txt'), '\\x2ffat-abs.txt'],
  ['/twin-b.txt', u16('twin-a'), 'twin-a'],
  ['/sub/placeholder-escape-2.txt', u16('../../fat-esc2.txt'), '..\\x2f..\\x2ffat-esc2.txt'],
];

function makeFat(): void {
  const src = path.join(work, 'src-fat');
  for (const f of ['safe-file.txt', 'SHORT.TXT', 'twin-a/in-twin.txt', 'sub/ok.txt', 'placeholder-dots-dir/inner.txt', ...FAT_PATCHES.map(([p]) => p.slice(1)).filter((p) => !p.includes('dots-dir'))]) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.writeFileSync(path.join(src, f), f);
  }
  fatImg = path.join(work, 'img', 'hostile.fat');
  mkfsVfat({ sources: [src], output: fatImg });
  const offsets = fatEntryOffsets(fatImg, [...FAT_PATCHES.map(([p]) => p), '/SHORT.TXT']);
  FAT_PATCHES.forEach(([, units], i) => patchFatLongName(fatImg, offsets[i], units));
  patchFatShortName(fatImg, offsets[FAT_PATCHES.length], 'SH/RT   TXT');
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-extract-'));
  box = path.join(work, 'box');
  for (const d of ['img', 'box/outside-a', 'box/outside-b']) fs.mkdirSync(path.join(work, d), { recursive: true });
  fs.writeFileSync(path.join(box, 'outside-a/keep'), 'keep');
  makeExt4();
  makeFat();
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Extracts into box/NAME and checks that nothing changed outside it: the whole work tree before and after (DIR's parent's mtime aside). */
function confined<T>(name: string, fn: (dir: string) => T): T {
  const dir = path.join(box, name);
  const parent = path.dirname(dir);
  const before = treeState(work, dir, parent);
  const r = fn(dir);
  assert.deepEqual(treeState(work, dir, parent), before, 'nothing outside DIR changed');
  assert.deepEqual(fs.readdirSync(parent).filter((n) => n.includes('.extract-')), [], 'no temporary directory left');
  return r;
}

/** DIR's tree as sorted paths ('/a', '/a/b'), raw names as latin1. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const go = (host: Buffer, rel: string) => {
    for (const n of fs.readdirSync(host, { encoding: 'buffer' })) {
      const child = Buffer.concat([host, Buffer.from('/'), n]);
      out.push(`${rel}/${n.toString('latin1')}`);
      if (fs.lstatSync(child).isDirectory()) go(child, `${rel}/${n.toString('latin1')}`);
    }
  };
  go(Buffer.from(dir), '');
  return out.sort();
}

/** The escaped names the skip lines show, sorted. */
const shownNames = (r: ExtractResult) => r.skipped.map((l) => /named "(.*)" in /.exec(l)![1]).sort();

test('ext4: every escape route is skipped with a line naming the image, the inode and the name; the rest is extracted inside DIR', () => {
  const warnings: string[] = [];
  const r = confined('ext4-out', (dir) => extractImage(ext4Img, '/', dir, { onWarning: (l) => warnings.push(l) }));
  const dir = path.join(box, 'ext4-out');
  assert.deepEqual(shownNames(r), [...EXT4_UNSAFE].sort());
  for (const l of r.skipped) {
    assert.ok(!l.includes('\n') && !l.includes('\0'), `one line: ${JSON.stringify(l)}`);
    assert.match(l, new RegExp(`^${ext4Img.replace(/[.]/g, '\\.')}: skipped inode \\d+ named ".*" in /(sub(/deep)?)?: `));
  }
  assert.deepEqual(warnings, r.skipped, 'each reported once, as it happens');
  assert.deepEqual(listing(dir), EXT4_SAFE);
  // The symlink is written as a symlink, the directory of the same name is not followed into it ...
  assert.equal(fs.readlinkSync(path.join(dir, 'sd1')), path.join(box, 'outside-a'));
  assert.deepEqual(fs.readdirSync(path.join(box, 'outside-a')), ['keep']);
  // ... the directory kept over the symlink of its name holds its own file ...
  assert.equal(fs.readFileSync(path.join(dir, 'ds1/planted2'), 'utf8'), 'ds1/planted2');
  // ... and the hard link whose first name escaped is written once, inside.
  assert.equal(fs.readFileSync(path.join(dir, 'hl2'), 'utf8'), 'linked');
  assert.equal(fs.statSync(path.join(dir, 'hl2')).nlink, 1);
  assert.equal(fs.readFileSync(path.join(dir, 'sub/deep/ok2'), 'utf8'), 'sub/deep/ok2');
  assert.equal(r.entries, EXT4_SAFE.length + 1);
});

test('FAT: long names with / .. . NUL \\ or a lone surrogate, an absolute name, a / in an 8.3 name, a duplicate: skipped; the rest extracted', () => {
  const r = confined('fat-out', (dir) => extractImage(fatImg, '/', dir));
  const dir = path.join(box, 'fat-out');
  assert.deepEqual(shownNames(r), [...FAT_PATCHES.map(([, , shown]) => shown), 'SH\\x2fRT.TXT'].sort());
  for (const l of r.skipped) assert.match(l, /^.*hostile\.fat: skipped directory entry at byte \d+ named ".*" in \/(sub)?: /);
  assert.match(r.skipped.find((l) => l.includes('trunc'))!, /the name holds a NUL byte/);
  assert.match(r.skipped.find((l) => l.includes('back'))!, /not a valid long name: it holds U\+005C \(\\\)/);
  assert.match(r.skipped.find((l) => l.includes('lone'))!, /not a valid long name: it holds an unpaired UTF-16 surrogate/);
  assert.match(r.skipped.find((l) => l.includes('twin'))!, /an entry of the same name was extracted before it/);
  // The directory comes first in the directory (names in order when written): the file renamed onto it is the one skipped.
  assert.deepEqual(listing(dir), ['/safe-file.txt', '/sub', '/sub/ok.txt', '/twin-a', '/twin-a/in-twin.txt']);
  assert.equal(fs.readFileSync(path.join(dir, 'twin-a/in-twin.txt'), 'utf8'), 'twin-a/in-twin.txt');
});

test('a subtree: escapes below PATH are skipped the same way', () => {
  const r = confined('sub-out', (dir) => extractImage(ext4Img, '/sub', dir));
  assert.deepEqual(shownNames(r), ['..', '..\\x2f..\\x2fesc2', '..\\x2f..\\x2f..\\x2f..\\x2fesc3'].sort());
  assert.deepEqual(listing(path.join(box, 'sub-out')), ['/deep', '/deep/ok2', '/ok']);
});

test('CLI: one warning line per skipped entry naming the image, the summary says so, exit status 1', () => {
  const r = confined('cli-out', (dir) => cli(['extract', ext4Img, dir], 1));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const warnings = lines.filter((l) => l.startsWith('diskwright: warning: '));
  assert.equal(warnings.length, EXT4_UNSAFE.length, r.stderr);
  for (const l of warnings) assert.ok(l.startsWith(`diskwright: warning: ${ext4Img}: skipped inode `), l);
  assert.equal(lines.length, warnings.length + 1, r.stderr);
  assert.match(lines.at(-1)!, new RegExp(`^extracted ${EXT4_SAFE.length + 1} entries \\(6 files, .* of data\\) to .*cli-out; ${EXT4_UNSAFE.length} skipped for their names \\(see the warnings\\)$`));
  assert.deepEqual(listing(path.join(box, 'cli-out')), EXT4_SAFE);
  // A clean image: no warning, status 0.
  confined('clean-out', (dir) => cli(['extract', '-q', ext4Clean, dir], 0));
});

test('--strict: stops at the first unsafe entry; a new DIR is not created, an existing one is said to hold what was written', () => {
  const fresh = path.join(box, 'strict-out');
  const r = confined('strict-out', () => cli(['extract', '--strict', ext4Img, fresh], 1));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], new RegExp(`^diskwright: ${ext4Img.replace(/[.]/g, '\\.')}: skipped inode \\d+ named "\\." in /: "\\." would name the directory itself; stopped there \\(strict\\); nothing written \\(.*strict-out not created\\)$`));
  assert.ok(!fs.existsSync(fresh));
  const existing = path.join(box, 'strict-existing');
  fs.mkdirSync(existing);
  confined('strict-existing', () =>
    throwsOneLine(() => extractImage(ext4Img, '/', existing, { strict: true }), 'UNSAFE_NAME', /; stopped there \(strict\); .*strict-existing is left empty$/),
  );
});

test('all or nothing: a new DIR does not appear when the host refuses an entry; an existing one keeps what was written and the error says so', () => {
  // A valid long name of 250 characters of 3 UTF-8 bytes each: 750 bytes, more than a Linux file name can hold.
  const src = path.join(work, 'src-long');
  fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
  fs.writeFileSync(path.join(src, 'dir/a.txt'), 'a');
  fs.writeFileSync(path.join(src, 'x'.repeat(250)), 'long');
  const img = path.join(work, 'img', 'long.fat');
  mkfsVfat({ sources: [src], output: img });
  patchFatLongName(img, fatEntryOffsets(img, ['/' + 'x'.repeat(250)])[0], u16('語'.repeat(250)));
  const fresh = path.join(box, 'long-out');
  confined('long-out', () => throwsOneLine(() => extractImage(img, '/', fresh), 'OUTPUT_WRITE', /long\.fat: cannot write .*long-out\/語+: file name too long; nothing written \(.*long-out not created\)$/));
  assert.ok(!fs.existsSync(fresh));
  const existing = path.join(box, 'long-existing');
  fs.mkdirSync(existing);
  confined('long-existing', () => throwsOneLine(() => extractImage(img, '/', existing), 'OUTPUT_WRITE', /file name too long; .*long-existing holds the 2 entries written before this; remove them to start again$/));
  assert.deepEqual(listing(existing), ['/dir', '/dir/a.txt']);
  // As a user who cannot write into a read-only directory (FAT's read-only attribute: mode 0555), the
  // temporary tree is still removed: 'dir' is finished, with its mode, before the long name fails.
  const ro = path.join(work, 'img', 'long-ro.fat');
  fs.copyFileSync(img, ro);
  const dirEntry = fatEntryOffsets(ro, ['/dir'])[0];
  const attr = fs.readFileSync(ro).subarray(dirEntry + 11, dirEntry + 12);
  patchFatAttr(ro, dirEntry, attr[0] | 0x01);
  const userBox = path.join(box, 'user');
  fs.mkdirSync(userBox, { mode: 0o777 });
  fs.chmodSync(userBox, 0o777);
  for (const d of [work, path.join(work, 'img'), box]) fs.chmodSync(d, 0o755);
  fs.chmodSync(ro, 0o644);
  const userOut = path.join(userBox, 'out');
  const r = confined('user/out', () => cli(['extract', ro, userOut], 1, { asUser: 65534 }));
  assert.match(r.stderr, /\ndiskwright: .*long-ro\.fat: cannot write .*: file name too long; nothing written \(.*user\/out not created\)\n$/);
  assert.deepEqual(fs.readdirSync(userBox), []);
});

test('ls shows unsafe names escaped, -R each as one component; diff leaves them out with a warning', () => {
  const names = cli(['ls', ext4Img]).out.split('\n').filter(Boolean);
  for (const n of ['..\\x2fesc1', 'a\\x00b', '\\x2fabs-esc', 'new\\nline', '..']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
  const all = cli(['ls', '-R', ext4Img]).out.split('\n').filter(Boolean);
  for (const n of ['sub/..\\x2f..\\x2fesc2', 'sub/deep/..\\x2f..\\x2f..\\x2f..\\x2fesc3', 'sub/deep/ok2', 'ds1/planted2']) assert.ok(all.includes(n), `${n} in ${all.join(' ')}`);
  // Not below the directories whose names are unsafe ('../dd', '..').
  assert.ok(!all.some((l) => l.includes('inner')), all.join(' '));
  assert.ok(cli(['ls', '-l', fatImg]).out.includes('back\\\\slash.txt'));
  const d = diffImages(ext4Clean, ext4Img);
  // The names that are only duplicates (sd1, ds1) are not unsafe as paths: diff compares one of each.
  assert.equal(d.warnings.filter((l) => / skipped inode \d+ named /.test(l)).length, EXT4_UNSAFE.length - 2, d.warnings.join('\n'));
});
