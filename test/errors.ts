// The shape every user error has, for tests: a DiskwrightError with the
// expected code and one line of message.
import assert from 'node:assert/strict';
import { DiskwrightError } from '../src/errors.ts';

export function expectUserError(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DiskwrightError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}
