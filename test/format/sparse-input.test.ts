// Raw inputs are read around their holes, never through them: the file
// system says where the data is (SEEK_DATA / SEEK_HOLE). A raw image with a
// 10 GB hole converts to qcow2 reading less than 1% of its size, and the
// result equals qemu-img convert's; random reads fill holes with zeros;
// stored() leaves holes out; the tree scan finds a sparse file's runs the
// same way.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireTools, run } from '../oracle/tools.ts';
import { convertImage } from '../../src/api/convert.ts';
import { openImage } from '../../src/format/input.ts';
import { dataRuns } from '../../src/tree/scan.ts';
import { dataSegments } from '../../src/util/sparse.ts';

const MiB = 2 ** 20;
const GB = 10 ** 9;
const SIZE = 10 * GB + 64 * MiB;
let work: string;
let img: string;
/** [offset, bytes] written into the otherwise empty image. */
const pieces: Array<[number, Buffer]> = [];

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-sparse-'));
  img = path.join(work, 'in.img');
  const fd = fs.openSync(img, 'w');
  fs.ftruncateSync(fd, SIZE);
  // The first MiB stays zero (detected as raw); data on both sides of the 10 GB hole.
  const data = (n: number, salt: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + salt + (i >> 9)) & 0xff || 1));
  pieces.push([MiB, data(3 * MiB + 100, 1)], [SIZE - 8 * MiB + 4096 * 3, data(5000, 2)], [SIZE - 4096, data(4096, 3)]);
  for (const [at, b] of pieces) fs.writeSync(fd, b, 0, b.length, at);
  fs.closeSync(fd);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Bytes this process has read through read-like system calls so far (Linux /proc/self/io rchar). */
function bytesRead(): number {
  const m = /^rchar: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
  assert.ok(m, '/proc/self/io has rchar');
  return Number(m[1]);
}

test('the addon reports the data segments, not the hole', () => {
  const fd = fs.openSync(img, 'r');
  try {
    const segs = dataSegments(fd, SIZE);
    let total = 0;
    for (const [s, t] of segs) total += t - s;
    assert.ok(total < 16 * MiB, `data segments cover ${total} bytes`);
    for (const [at, b] of pieces) assert.ok(segs.some(([s, t]) => s <= at && at + b.length <= t), `piece at ${at} inside a segment`);
    assert.deepEqual(dataSegments(fd, SIZE, 1), [[segs[0][0], SIZE]], 'past maxRuns the rest is one range');
  } finally {
    fs.closeSync(fd);
  }
});

test('convert raw -> qcow2 reads under 1% of a 10 GB hole and equals qemu-img convert', () => {
  requireTools('qemu-img');
  const ours = path.join(work, 'ours.qcow2');
  const before = bytesRead();
  convertImage({ input: img, output: ours, seed: 'sparse-test', epoch: 1 });
  const read = bytesRead() - before;
  assert.ok(read < SIZE / 100, `convert read ${read} bytes of a ${SIZE}-byte image`);
  const theirs = path.join(work, 'theirs.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', img, theirs]);
  run('qemu-img', ['check', ours]);
  run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', ours, theirs]);
  run('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', ours, img]);
});

test('random reads and stored(): holes come back as zeros without being read', () => {
  const src = openImage(img);
  try {
    assert.equal(src.format, 'raw');
    let stored = 0;
    for (const e of src.stored().extents) stored += e.length;
    assert.ok(stored < 16 * MiB, `stored() covers ${stored} bytes`);
    const fd = fs.openSync(img, 'r');
    try {
      // Windows across every data/hole boundary, compared with plain reads.
      for (const [at, b] of pieces) {
        for (const [from, len] of [[at - 5000, 9000], [at + b.length - 4000, 12000], [at - 1, b.length + 2]]) {
          const s = Math.max(0, from);
          const n = Math.min(len, SIZE - s);
          const want = Buffer.alloc(n);
          fs.readSync(fd, want, 0, n, s);
          assert.ok(src.read(s, n).equals(want), `read ${n} at ${s}`);
        }
      }
      const before = bytesRead();
      const hole = src.read(2 * GB, 64 * MiB);
      assert.ok(hole.equals(Buffer.alloc(64 * MiB)));
      assert.ok(bytesRead() - before < MiB, 'a read inside the hole reads nothing');
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    src.close();
  }
});

test('tree scan: a sparse file\'s data runs come from the file system', () => {
  const f = path.join(work, 'sparse-file');
  const fd = fs.openSync(f, 'w');
  fs.ftruncateSync(fd, 3 * GB + 10);
  fs.writeSync(fd, Buffer.alloc(10, 7), 0, 10, 3 * GB);
  fs.writeSync(fd, Buffer.alloc(5000, 9), 0, 5000, GB + 100);
  fs.closeSync(fd);
  const before = bytesRead();
  const runs = dataRuns(f, 3 * GB + 10, 4096);
  assert.ok(bytesRead() - before < MiB, 'found without reading the file');
  // Block-aligned, holding every written byte, and nothing like the file's size.
  for (const r of runs) assert.equal(r.offset % 4096, 0);
  const covers = (at: number, n: number) => runs.some((r) => r.offset <= at && at + n <= r.offset + r.length);
  assert.ok(covers(GB + 100, 5000) && covers(3 * GB, 10), JSON.stringify(runs));
  assert.ok(runs.reduce((s, r) => s + r.length, 0) < MiB, JSON.stringify(runs));
  assert.equal(runs[runs.length - 1].offset + runs[runs.length - 1].length, 3 * GB + 10, 'the last run ends at the file\'s end');
});
