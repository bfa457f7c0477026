// --stream is -o - for every command that writes an image; a reader that
// closes the pipe early stops the writer quietly, as SIGPIPE would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, diskwright } from './run.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-stream-'));
  fs.mkdirSync(path.join(work, 'src/d'), { recursive: true });
  fs.writeFileSync(path.join(work, 'src/d/f'), 'stream me\n'.repeat(1000));
  fs.writeFileSync(path.join(work, 'c.json'), JSON.stringify({ partitionTableType: 'efi', bootSize: '16M', additionalSpace: '1M', root: 'src' }));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('--stream equals -o - for mkfs, build and convert', () => {
  const src = path.join(work, 'src');
  for (const args of [['mkfs', 'ext4', src, '--format', 'vdi'], ['mkfs', 'vfat', src, '--compress', 'zstd'], ['build', path.join(work, 'c.json'), '--format', 'qcow2']]) {
    const a = diskwright([...args, '--stream']);
    const b = diskwright([...args, '-o', '-']);
    assert.equal(a.status, 0, a.stderr);
    assert.ok(a.stdout.length > 0 && a.stdout.equals(b.stdout), args.join(' '));
  }
  const img = path.join(work, 'in.img');
  assert.equal(diskwright(['mkfs', 'ext4', src, '-o', img]).status, 0);
  const a = diskwright(['convert', img, '--stream', '--format', 'vpc']);
  const b = diskwright(['convert', img, '-o', '-', '--format', 'vpc']);
  assert.equal(a.status, 0, a.stderr);
  assert.ok(a.stdout.equals(b.stdout));
});

test('no output named: one line, exit non-zero', () => {
  for (const args of [['mkfs', 'ext4', path.join(work, 'src')], ['convert', path.join(work, 'in.img')]]) {
    const r = diskwright(args);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--stream/);
  }
});

test('a reader that stops early ends the stream quietly with the SIGPIPE status', () => {
  const r = spawnSync('/bin/bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" mkfs ext4 "${work}/src" --size 64M --stream | head -c 1000 > /dev/null; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), '141');
  assert.equal(r.stderr, '');
});
