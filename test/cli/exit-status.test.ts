// The exit statuses: src/cli/status.ts and README's table say the same, and
// the CLI exits with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diskwright, ROOT } from './run.ts';
import { COMMAND_ERROR_STATUS, ERROR_CODE_STATUS, errorStatus, EXIT } from '../../src/cli/status.ts';
import { DiskwrightError, type ErrorCode } from '../../src/errors.ts';

/** README's exit status table: status -> the error codes its row names. */
function readmeTable(): Map<number, string[]> {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = text.indexOf('**Exit status**');
  assert.ok(at > 0, 'README has the exit status table');
  const rows = new Map<number, string[]>();
  for (const line of text.slice(at).split('\n').slice(1)) {
    // Cells split at pipes that are not escaped: status | when | error codes.
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    if (/^\d+$/.test(cells[1] ?? '')) rows.set(Number(cells[1]), cells[3].match(/\b[A-Z][A-Z_]+[A-Z]\b/g) ?? []);
    else if (rows.size && !line.startsWith('|')) break;
  }
  return rows;
}

test('README lists each exit status once, and each error code under the status status.ts gives it', () => {
  const rows = readmeTable();
  assert.deepEqual([...rows.keys()].sort((a, b) => a - b), [...new Set(Object.values(EXIT))].sort((a, b) => a - b));
  const listed = new Map<string, number>();
  for (const [status, codes] of rows) for (const c of codes) listed.set(c, status);
  // Every code in src/errors.ts, no other.
  const declared = [...fs.readFileSync(path.join(ROOT, 'src/errors.ts'), 'utf8').matchAll(/^\s*\| '([A-Z_]+)'/gm)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(ERROR_CODE_STATUS).sort(), declared);
  assert.deepEqual([...listed.keys()].sort(), declared);
  for (const code of declared) assert.equal(listed.get(code), ERROR_CODE_STATUS[code as ErrorCode], code);
});

test('errorStatus: codes by the table, system errors 1, bugs 70, diff 2 for any error', () => {
  for (const [code, status] of Object.entries(ERROR_CODE_STATUS)) assert.equal(errorStatus(new DiskwrightError(code as ErrorCode, 'x'), 'build'), status);
  const enoent = Object.assign(new Error('ENOENT'), { code: 'ENOENT', syscall: 'open', path: '/x' });
  assert.equal(errorStatus(enoent, 'mkfs'), EXIT.error);
  assert.equal(errorStatus(new TypeError('undefined is not a function'), 'mkfs'), EXIT.internal);
  assert.equal(errorStatus(new DiskwrightError('IMAGE_CORRUPT', 'x'), 'diff'), COMMAND_ERROR_STATUS.diff);
  assert.equal(COMMAND_ERROR_STATUS.diff, EXIT.usage);
});

test('the CLI exits with them: usage 2, a bad input 1, diff errors 2, help 0', () => {
  const cases: Array<[string[], number]> = [
    [['mkfs', 'ext4', '--no-such-option'], EXIT.usage],
    [['build'], EXIT.usage],
    [['nar', 'hash', '/nonexistent/x'], ERROR_CODE_STATUS.SOURCE_MISSING],
    [['build', '/nonexistent/c.yaml'], ERROR_CODE_STATUS.CONFIG_UNREADABLE],
    [['diff', '/nonexistent/a', '/nonexistent/b'], EXIT.usage],
    [['schema', '--help'], EXIT.ok],
  ];
  for (const [args, status] of cases) {
    const r = diskwright(args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
  }
});
