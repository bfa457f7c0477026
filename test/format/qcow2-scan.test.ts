// convert raw -> qcow2 in one pass (qcow2-scan.ts): qemu-img check clean and
// compare equal, the same bytes as the extent-map path (a stream) and twice
// over (in another time zone too), for holes, written zeros, data in the last
// bytes, sizes that are no multiple of the cluster size, and an empty image.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { BIN } from '../cli/run.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { pseudoRandom } from '../oracle/fixture.ts';
import { convertImage } from '../../src/api/convert.ts';
import { openImage } from '../../src/format/input.ts';
import { toQcow2DataFirst } from '../../src/format/qcow2.ts';
import { writeImageFile } from '../../src/format/raw.ts';

const KiB = 1024;
const MiB = 1 << 20;
let work: string;
const p = (name: string) => path.join(work, name);
const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-qcow2-scan-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** A sparse raw file of `size` bytes holding `pieces` ([offset, bytes]). */
function rawFile(name: string, size: number, pieces: [number, Buffer][]): string {
  const file = p(name);
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, size);
  for (const [at, b] of pieces) fs.writeSync(fd, b, 0, b.length, at);
  fs.closeSync(fd);
  return file;
}

const CASES: [string, number, [number, Buffer][]][] = [
  ['holes and written zeros', 64 * MiB, [
    [0, pseudoRandom('head', 512)],
    [MiB + 100, pseudoRandom('a', 3 * MiB)],
    [10 * MiB, Buffer.alloc(2 * MiB)], // zeros written out: no cluster
    [20 * MiB - 10, pseudoRandom('edge', 20)], // across a cluster edge
    [30 * MiB + 4 * KiB, pseudoRandom('one granule', 4 * KiB)],
    [40 * MiB, Buffer.concat([Buffer.alloc(64 * KiB), pseudoRandom('after zeros', 64 * KiB), Buffer.alloc(128 * KiB)])],
  ]],
  ['data in the last bytes', 8 * MiB, [[8 * MiB - 1, Buffer.from([7])]]],
  ['size no multiple of the cluster size', 5 * MiB + 3 * 512, [[MiB, pseudoRandom('b', 4096)], [5 * MiB + 512, pseudoRandom('tail', 1024)]]],
  ['size no multiple of 512', 2 * MiB + 77, [[2 * MiB + 70, Buffer.from('last!!!')]]],
  ['all holes', 16 * MiB, []],
  ['empty', 0, []],
];

for (const [name, size, pieces] of CASES) {
  test(`one-pass convert: ${name}`, () => {
    requireTools('qemu-img');
    const input = rawFile(`${name}.img`, size, pieces);
    const out = p(`${name}.qcow2`);
    const r = convertImage({ input, output: out, inputFormat: 'raw' });
    assert.equal(r.input.size, size);
    run('qemu-img', ['check', out]);
    // qemu-img compares whole sectors: a raw input cut mid-sector reads as padded with zeros.
    const padded = rawFile(`${name}.padded.img`, Math.ceil(size / 512) * 512, pieces);
    if (size > 0) run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', padded, out]);
    else assert.match(run('qemu-img', ['info', out]).stdout.toString(), /virtual size: 0 B/);

    // The extent-map path (what a stream gets) writes the same bytes.
    const src = openImage(input, { format: 'raw' });
    const viaMap = p(`${name}.map.qcow2`);
    try {
      writeImageFile(toQcow2DataFirst(src.image()), viaMap);
      let dataBytes = 0;
      for (const e of src.image().extents) dataBytes += e.length;
      assert.equal(r.input.dataBytes, dataBytes, 'data bytes as the scan for zeros counts them');
    } finally {
      src.close();
    }
    assert.equal(sha(viaMap), sha(out), 'one pass = extent map');

    // Twice, through the CLI, in another time zone: the same bytes.
    const again = p(`${name}.again.qcow2`);
    const c = spawnSync(process.execPath, [BIN, 'convert', input, '-o', again, '--input-format', 'raw', '--format', 'qcow2'], { env: { ...process.env, TZ: 'Pacific/Kiritimati' }, encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    assert.equal(sha(again), sha(out), 'converting twice gives the same bytes');
  });
}
