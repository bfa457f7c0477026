// What reaches the terminal when a command fails: a DiskwrightError's line, a
// system error in words with its path, a bug as one line asking for a report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DiskwrightError } from '../../src/errors.ts';
import { errorLine } from '../../src/cli/error-line.ts';

const sysError = (code: string, syscall: string, path?: string, dest?: string) => Object.assign(new Error(`${code}: raw`), { code, syscall, path, dest });

test('a DiskwrightError is its message', () => {
  assert.equal(errorLine(new DiskwrightError('IMAGE_CORRUPT', 'a.img: ext4: inode 12: bad; the image is damaged')), 'a.img: ext4: inode 12: bad; the image is damaged');
});

test('system errors are words with the path and what to do, never the errno code', () => {
  let real: unknown;
  try {
    fs.openSync('/nonexistent-dir/x.img', 'r');
  } catch (e) {
    real = e;
  }
  assert.equal(errorLine(real), 'cannot open /nonexistent-dir/x.img: no such file or directory; check the path');
  assert.equal(errorLine(sysError('EROFS', 'open', '/ro/out.img')), 'cannot open /ro/out.img: read-only file system; choose a writable location');
  assert.equal(errorLine(sysError('ENOSPC', 'write', '/full/out.img')), 'cannot write /full/out.img: no space left on device; free space or choose another output');
  assert.equal(errorLine(sysError('EACCES', 'mkdir', '/root/x')), 'cannot create /root/x: permission denied; check its permissions');
  assert.equal(errorLine(sysError('EISDIR', 'open', '/tmp')), 'cannot open /tmp: is a directory; give a file, not a directory');
  assert.equal(errorLine(sysError('EXDEV', 'rename', '/a/t', '/b/t')), 'cannot rename /a/t to /b/t: on another file system; keep the output on one file system');
  assert.equal(errorLine(sysError('EIO', 'read')), 'cannot read: input/output error');
});

test('anything else is a bug: one line asking for a report, no JavaScript message', () => {
  const saved = process.env.DISKWRIGHT_DEBUG;
  delete process.env.DISKWRIGHT_DEBUG;
  try {
    const line = errorLine(new TypeError("The argument 'path' must be a string"));
    assert.equal(line, 'internal error; please report it with the command you ran (DISKWRIGHT_DEBUG=1 shows the details)');
    assert.equal(errorLine(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_VALUE' })), line);
    process.env.DISKWRIGHT_DEBUG = '1';
    assert.equal(errorLine(new RangeError('offset')), 'internal error; please report it with the command you ran');
  } finally {
    if (saved === undefined) delete process.env.DISKWRIGHT_DEBUG;
    else process.env.DISKWRIGHT_DEBUG = saved;
  }
});
