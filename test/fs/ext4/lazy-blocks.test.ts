// Inode tables, directory blocks and slow symlinks' blocks are lazy extents,
// made from the prepared tree when read. A reader may ask for any range in
// any order (random access, a format's tables first): every way of reading
// must give the same bytes, and a second planned image must not disturb the first.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanSources } from '../../../src/tree/scan.ts';
import { planExt4 } from '../../../src/fs/ext4/planner.ts';
import { isLazyExtent } from '../../../src/image/extent-map.ts';
import { imageSource } from '../../../src/read/source.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-lazy-blocks-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
// A htree directory (hundreds of names), a small one, and symlinks fast and slow.
fs.mkdirSync(path.join(dir, 'big'));
for (let i = 0; i < 600; i++) fs.writeFileSync(path.join(dir, 'big', `entry-with-a-longish-name-${i}`), `${i}`);
fs.mkdirSync(path.join(dir, 'small'));
fs.symlinkSync('short', path.join(dir, 'small', 'fast'));
fs.symlinkSync('t'.repeat(300), path.join(dir, 'small', 'slow'));

test('lazy extents read the same in odd pieces, backwards, as in one go', () => {
  const image = planExt4(scanSources([dir]), { size: 'auto', epoch: 1 }).image;
  const lazy = image.extents.filter(isLazyExtent);
  assert.ok(lazy.length >= 4, 'inode table, directory and symlink blocks are lazy');
  const src = imageSource(image);
  // A second plan of another tree in between: the producers share no state that it could change.
  planExt4(scanSources([path.join(dir, 'small')]), { size: 'auto', epoch: 7 });
  for (const e of lazy) {
    const whole = src.read(e.offset, e.length);
    const pieces = Buffer.alloc(e.length);
    // Pieces of 100 bytes from the end: every inode and block cut at a different place.
    for (let end = e.length; end > 0; end -= 100) {
      const from = Math.max(0, end - 100);
      src.read(e.offset + from, end - from).copy(pieces, from);
    }
    assert.ok(whole.equals(pieces), `extent at ${e.offset}`);
    assert.ok(whole.some((b) => b !== 0));
  }
});
