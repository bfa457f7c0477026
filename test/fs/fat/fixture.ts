// A source tree that touches every case the FAT writer must get right: 8.3 and
// long names, Unicode (inside and outside the BMP), mixed case, names that
// need ~N tails, deep and empty directories, a directory of several clusters,
// empty, odd-sized, sparse and multi-MiB files, a read-only file, and times
// inside and outside FAT's range.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pseudoRandom } from '../../oracle/fixture.ts';

export const NAMES = {
  upper83: 'README.TXT',
  lower83: 'readme2.txt',
  mixed: 'MixedCase.Txt',
  unicode: 'Ünïcødé 文件.txt',
  bmpSymbol: '☃ snow.txt',
  astral: '🦀 crab.md',
  dotfile: '.hidden',
  dots: 'a.b.c.d',
  spaces: 'name with spaces.text',
  replaced: 'x+y=z;[1],2.txt',
  longExt: '1234567890.12345',
  longest: 'L'.repeat(250) + '.txt',
};

/** Times (seconds since 1970, UTC) set on some entries, and what FAT must store. */
export const TIMES = {
  plain: { path: 'README.TXT', sec: Date.UTC(2001, 1, 3, 4, 5, 7) / 1000, nsec: 895_000_000 },
  early: { path: 'readme2.txt', sec: 86400, nsec: 0 },
  late: { path: 'MixedCase.Txt', sec: Date.UTC(2200, 0, 1) / 1000, nsec: 0 },
};

export function makeFatFixture(root: string): void {
  const w = (p: string, data: string | Buffer, mode?: number) => {
    fs.mkdirSync(join(root, p, '..'), { recursive: true });
    fs.writeFileSync(join(root, p), data);
    if (mode !== undefined) fs.chmodSync(join(root, p), mode);
  };
  for (const [k, n] of Object.entries(NAMES)) w(n, `${k}\n`);
  for (let i = 1; i <= 20; i++) w(`Sub/longfilename-${String(i).padStart(2, '0')}.txt`, `n${i}\n`);
  w('Sub/LONGFI~1.TXT', 'an existing tail-like 8.3 name\n');
  let deep = 'deep';
  for (let i = 1; i <= 12; i++) deep += `/level ${i}`;
  w(`${deep}/leaf.txt`, 'leaf\n');
  w('empty', '');
  fs.mkdirSync(join(root, 'emptydir'), { recursive: true });
  for (let i = 0; i < 200; i++) w(`bigdir/entry number ${String(i).padStart(3, '0')} of many.dat`, `${i}`);
  w('data/random.bin', pseudoRandom('fat-random', 3 * 1024 * 1024 + 123));
  w('data/odd.bin', pseudoRandom('fat-odd', 4097));
  // Sparse: a 1 MiB hole, 5000 bytes of data, another hole to 2 MiB.
  const sparse = join(root, 'data/sparse.bin');
  const fd = fs.openSync(sparse, 'w');
  fs.writeSync(fd, pseudoRandom('fat-sparse', 5000), 0, 5000, 1 << 20);
  fs.ftruncateSync(fd, 2 << 20);
  fs.closeSync(fd);
  w('locked.txt', 'read only\n', 0o444);
  for (const t of Object.values(TIMES)) {
    const s = t.sec + t.nsec / 1e9;
    fs.utimesSync(join(root, t.path), s, s);
  }
}

/** How mtools 4.0.32 shows a name: each UTF-16 unit of a character outside the BMP becomes '_'. */
export function mtoolsName(name: string): string {
  return name.replace(/[\u{10000}-\u{10FFFF}]/gu, '__');
}
