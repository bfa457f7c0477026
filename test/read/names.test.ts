// The one rule for names read from an image (read/names.ts): which may be a
// host path component, and how a name or path is shown as one line of text.
// The hostile images that exercise it end to end are in test/api/extract.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entryDisplayPath, entryNameProblem, escapeName, escapePath, nameProblem, unsafeEntryLine } from '../../src/read/names.ts';
import { decodeLfn, encodeLfn, lfnEntries } from '../../src/fs/fat/lfn.ts';
import type { FsEntry } from '../../src/read/entry.ts';

const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

test('a name is one path component unless it is empty, . or .., or holds / or NUL', () => {
  for (const ok of ['a', '...', '.a', 'a.', ' ', '\\', 'a\nb', latin1('Ünïcødé'), '\xff\xfe', 'x'.repeat(255)]) assert.equal(nameProblem(ok), undefined, JSON.stringify(ok));
  assert.equal(nameProblem(''), 'the name is empty');
  assert.equal(nameProblem('.'), '"." would name the directory itself');
  assert.equal(nameProblem('..'), '".." would name its parent');
  for (const bad of ['/', 'a/b', '/abs', '../x', 'x/']) assert.equal(nameProblem(bad), 'the name holds a "/"');
  assert.equal(nameProblem('a\0b'), 'the name holds a NUL byte');
  // A filesystem's own verdict counts too; the root has no name and is safe.
  const e = (path: string, name: string, extra: Partial<FsEntry> = {}) => ({ path, name, ...extra }) as FsEntry;
  assert.equal(entryNameProblem(e('/', '')), undefined);
  assert.equal(entryNameProblem(e('/a:b', 'a:b', { nameProblem: 'not a valid long name' })), 'not a valid long name');
  assert.equal(entryNameProblem(e('/a/..', '..', { nameProblem: 'x' })), '".." would name its parent');
});

test('names and paths are shown as one line: UTF-8 kept, controls, DEL, backslash and bytes that are not UTF-8 escaped; / only inside a name', () => {
  assert.equal(escapeName(latin1('Ünïcødé 日本 🎉')), 'Ünïcødé 日本 🎉');
  assert.equal(escapeName('a\tb\nc\rd\\e\0f\x01\x1f\x7fg'), 'a\\tb\\nc\\rd\\\\e\\x00f\\x01\\x1f\\x7fg');
  assert.equal(escapeName('../x'), '..\\x2fx');
  assert.equal(escapePath('/a/b\n'), '/a/b\\n');
  // Not UTF-8: a lone continuation byte, a truncated sequence, an overlong form, a surrogate, a C1 control encoded in UTF-8.
  assert.equal(escapeName('\x80a'), '\\x80a');
  assert.equal(escapeName('\xe6\x97'), '\\xe6\\x97');
  assert.equal(escapeName('\xc0\xaf'), '\\xc0\\xaf');
  assert.equal(escapeName('\xed\xa0\x80'), '\\xed\\xa0\\x80');
  assert.equal(escapeName('\xc2\x85'), '\\xc2\\x85');
  // A literal backslash-x in a name cannot pass for an escape.
  assert.equal(escapeName('\\x2f'), '\\\\x2f');
});

test('an entry path for display escapes its last component as a name, relative to a base when given', () => {
  const e = { path: '/sub/../../x', name: '../../x' } as FsEntry;
  assert.equal(entryDisplayPath(e), '/sub/..\\x2f..\\x2fx');
  assert.equal(entryDisplayPath(e, '/'), 'sub/..\\x2f..\\x2fx');
  assert.equal(entryDisplayPath(e, '/sub'), '..\\x2f..\\x2fx');
  assert.equal(entryDisplayPath({ path: '/a\n/b', name: 'b' } as FsEntry, '/'), 'a\\n/b');
  const line = unsafeEntryLine('disk.img', { ...e, ino: 12 }, nameProblem(e.name)!);
  assert.equal(line, 'disk.img: skipped inode 12 named "..\\x2f..\\x2fx" in /sub: the name holds a "/"');
});

test('VFAT long names decode whole: a NUL inside is kept and refused, never cut; invalid names say why', () => {
  const units = (name: string) => {
    const buf = Buffer.alloc(32 * (lfnEntries(name) + 1));
    encodeLfn(buf, 0, name, Buffer.from('NAME       '));
    // In name order: the last long entry stored holds the first piece.
    const pieces: Buffer[] = [];
    for (let at = buf.length - 64; at >= 0; at -= 32) pieces.push(buf.subarray(at + 1, at + 11), buf.subarray(at + 14, at + 26), buf.subarray(at + 28, at + 32));
    return Buffer.concat(pieces);
  };
  for (const name of ['a', 'exactly13char', 'exactly26characters-long!!', 'Ünïcødé 🎉.txt', 'x'.repeat(255)]) assert.deepEqual(decodeLfn(units(name)), { name });
  const raw = (s: string, pad = 0xffff) => {
    const b = Buffer.alloc(26 * Math.ceil((s.length + 1) / 13), 0);
    b.write(s, 'utf16le');
    for (let i = s.length * 2 + 2; i < b.length; i += 2) b.writeUInt16LE(pad, i);
    return b;
  };
  assert.deepEqual(decodeLfn(raw('abc', 0)), { name: 'abc' }, 'zero padding is tolerated');
  assert.deepEqual(decodeLfn(raw('trunc\0ated')), { name: 'trunc\0ated', problem: 'not a valid long name: it holds a NUL character' });
  assert.equal(decodeLfn(raw('a\uffffb')).problem, 'not a valid long name: it holds a padding unit (0xFFFF) before its end');
  assert.equal(decodeLfn(raw('a\\b')).problem, 'not a valid long name: it holds U+005C (\\)');
  assert.equal(decodeLfn(raw('a:b')).problem, 'not a valid long name: it holds U+003A (:)');
  assert.equal(decodeLfn(raw('a\x01b')).problem, 'not a valid long name: it holds U+0001');
  assert.equal(decodeLfn(raw('a\ud800b')).problem, 'not a valid long name: it holds an unpaired UTF-16 surrogate');
  assert.equal(decodeLfn(raw('a\udc00')).problem, 'not a valid long name: it holds an unpaired UTF-16 surrogate');
  assert.equal(decodeLfn(raw('')).problem, 'not a valid long name: it is empty');
  assert.equal(decodeLfn(raw('y'.repeat(256))).problem, 'not a valid long name: it is 256 UTF-16 units long, more than 255');
});
