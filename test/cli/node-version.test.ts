// The CLI on a Node too old for it: one line saying what it needs, exit 1.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import test from 'node:test';
import assert from 'node:assert/strict';
import { BIN, diskwright, ROOT } from './run.ts';

// Debian 12's own Node (20), which the CI machine has beside the registry's 24.
const OLD_NODE = ['/usr/bin/node', '/bin/node'].find((p) => fs.existsSync(p) && !spawnSync(p, ['--version']).stdout.toString().startsWith('v24'));

test('an old Node gets one line naming the version needed, and exit 1', () => {
  assert.ok(OLD_NODE, 'the machine\'s own Node (Debian 12: 20) is needed for this check');
  const r = spawnSync(OLD_NODE!, [BIN, 'build', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^diskwright: needs Node\.js 22\.15 or newer .*this is v\d+/);
});

test('--version prints the package version', () => {
  const { version } = JSON.parse(fs.readFileSync(`${ROOT}/package.json`, 'utf8'));
  const r = diskwright(['--version']);
  assert.equal(r.status, 0);
  assert.equal(r.stdout.toString().trim(), version);
});
