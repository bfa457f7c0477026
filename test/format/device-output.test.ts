// An output name that is a device, fifo or socket is refused: the finished
// file is renamed over the name, and as root `-o /dev/null` would replace the
// device node with a regular file (every later `>/dev/null` then fills it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright } from '../cli/run.ts';

let work: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-devout-'));
  fs.mkdirSync(path.join(work, 'src'));
  fs.writeFileSync(path.join(work, 'src/hello'), 'hello\n');
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Special files to write to: a char device like /dev/null (root only) and a fifo. */
function specials(): { name: string; path: string; isKind(st: fs.Stats): boolean }[] {
  const out = [];
  const fifo = path.join(work, 'fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  out.push({ name: 'fifo', path: fifo, isKind: (st: fs.Stats) => st.isFIFO() });
  if (process.getuid?.() === 0) {
    const dev = path.join(work, 'null');
    assert.equal(spawnSync('mknod', ['-m', '666', dev, 'c', '1', '3']).status, 0);
    out.push({ name: 'char device', path: dev, isKind: (st: fs.Stats) => st.isCharacterDevice() });
  }
  return out;
}

test('mkfs and convert refuse a device or fifo as -o, in one line, and leave the node as it was', () => {
  const img = path.join(work, 'a.img');
  assert.equal(diskwright(['mkfs', 'ext4', 'src', '-o', img, '--free', '1M'], { cwd: work }).status, 0);
  for (const s of specials()) {
    for (const args of [
      ['mkfs', 'ext4', 'src', '-o', s.path, '--free', '1M'],
      ['mkfs', 'vfat', 'src', '-o', s.path],
      ['convert', img, '-o', s.path, '--format', 'raw'],
    ]) {
      const r = diskwright(args, { cwd: work, timeout: 60_000 });
      assert.notEqual(r.status, 0, `${args.join(' ')} into a ${s.name} must fail`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /is not a regular file.*'-' to write it to standard output/);
      assert.ok(lines[0]!.includes(s.path), lines[0]);
      assert.ok(s.isKind(fs.lstatSync(s.path)), `${s.name} ${s.path} replaced by ${args[0]}`);
      assert.deepEqual(fs.readdirSync(work).filter((n) => n.includes('diskwright')), []);
    }
  }
});
