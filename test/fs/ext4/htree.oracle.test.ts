// Large directories become hashed (htree) directories that e2fsck accepts and
// the kernel can look every name up in: one index level for 50,000 short
// names, two levels when long names need more than 507 leaf blocks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diskwright } from '../../cli/run.ts';
import { debugfs, e2fsck, withLoopMount } from '../../oracle/tools.ts';

let work: string;
before(() => { work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-htree-')); });
after(() => fs.rmSync(work, { recursive: true, force: true }));

async function check(name: string, count: number, nameOf: (i: number) => string, levels: number) {
  const src = path.join(work, name);
  const dir = path.join(src, 'big');
  fs.mkdirSync(dir, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = nameOf(i);
    names.push(n);
    fs.closeSync(fs.openSync(path.join(dir, n), 'w'));
  }
  const img = path.join(work, `${name}.img`);
  const r = diskwright(['mkfs', 'ext4', src, '-o', img]);
  assert.equal(r.status, 0, r.stderr);
  const fsck = e2fsck(img);
  assert.ok(fsck.clean, fsck.output);
  const dump = debugfs(img, ['htree /big']).stdout.toString('latin1');
  assert.match(dump, /Hash Version: 1/);
  assert.match(dump, new RegExp(`Indirect levels: ${levels}`));
  await withLoopMount(img, (mnt) => {
    const listed = fs.readdirSync(path.join(mnt, 'big'));
    assert.equal(listed.length, count);
    // Every name found by lookup, which walks the hash index.
    for (const n of names) assert.ok(fs.lstatSync(path.join(mnt, 'big', n)).isFile(), n);
    assert.throws(() => fs.lstatSync(path.join(mnt, 'big', 'not-there')));
  });
}

test('50,000 entries in one directory: single-level htree', async () => {
  await check('short', 50_000, (i) => `file-${i}`, 0);
});

test('50,000 long names: two-level htree', async () => {
  await check('long', 50_000, (i) => `${'n'.repeat(180)}-${i}`, 1);
});
