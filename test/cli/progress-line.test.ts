// The progress line's text and pace: phase, done of total, rate, time left;
// at most ten redraws a second, a new phase at once; erased at the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe, progressLine } from '../../src/cli/progress-line.ts';

test('text: bytes done of total with percentage, rate and ETA; scanning counts entries', () => {
  assert.equal(describe({ phase: 'writing', done: 2 ** 30, total: 4 * 2 ** 30 }, 4), 'writing      1 GiB of 4 GiB (25%)  256 MiB/s  ETA 0:12');
  assert.equal(describe({ phase: 'compressing', done: 0, total: 100 }, 0), 'compressing  0 B of 100 B (0%)');
  assert.equal(describe({ phase: 'hashing', done: 3 << 20 }, 1), 'hashing      3 MiB  3 MiB/s');
  assert.equal(describe({ phase: 'scanning', done: 1234 }, 3), 'scanning  1234 entries');
  assert.match(describe({ phase: 'writing', done: 1 << 20, total: 8000 * 2 ** 20 }, 1), /ETA 2:13:19$/);
});

test('redraws at most every 100 ms, at once for a new phase, cut to the terminal width, erased at the end', () => {
  let out = '';
  let now = 0;
  const line = progressLine({ write: (s) => (out += s), columns: 30 }, () => now);
  line.listener({ phase: 'scanning', done: 0 });
  for (let i = 1; i <= 100; i++) {
    now = i * 10;
    line.listener({ phase: 'writing', done: i, total: 100 });
  }
  const draws = out.split('\r').filter(Boolean);
  // scanning, writing at once (new phase), then one per 100 ms over 990 ms.
  assert.equal(draws.length, 2 + 9);
  assert.ok(draws.every((d) => d.endsWith('\x1b[K') && d.length - 3 <= 29), JSON.stringify(draws));
  line.end();
  assert.ok(out.endsWith('\r\x1b[K'));
  const before = out.length;
  line.end();
  assert.equal(out.length, before, 'nothing to erase twice');
});
