// Bad disk specs: one line naming the config key and what to do, exit 1, and
// nothing under the output directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeBuildSources } from '../build/fixture.ts';
import { buildFails } from './helpers.ts';
import { pseudoRandom } from '../oracle/fixture.ts';

let work: string;
let n = 0;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-disk-errors-'));
  makeBuildSources(work);
  fs.writeFileSync(path.join(work, 'notes.txt'), 'not a filesystem\n'.repeat(200));
  fs.writeFileSync(path.join(work, 'spl.bin'), pseudoRandom('spl', 4096));
  fs.mkdirSync(path.join(work, 'bigfw'));
  fs.writeFileSync(path.join(work, 'bigfw/kernel'), Buffer.alloc(3 * 2 ** 20, 1));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const fails = (config: object, pattern: RegExp): string => buildFails(work, `e${n++}`, config, pattern);

const ext4 = { fs: 'ext4', root: 'rootfs' };

test('overlapping partitions name both', () => {
  fails({ partitions: [{ label: 'a', start: '1M', size: '4M' }, { label: 'b', start: '4M', size: '4M' }] }, /partitions\[1\] \("b"\).*overlaps partitions\[0\] \("a"\)/);
});

test('two grow partitions', () => {
  fails({ partitions: [{ label: 'a', grow: true }, { label: 'b', grow: true }] }, /partitions\[0\] and partitions\[1\] both say grow/);
});

test('a blob over the partition table, and over a partition', () => {
  fails({ partitions: [{ label: 'a', size: '1M' }], rawBlobs: [{ source: 'spl.bin', offset: 1024 }] }, /rawBlobs\[0\] .* overlaps the primary GPT/);
  fails({ partitionTableType: 'mbr', partitions: [{ size: '1M' }], rawBlobs: [{ source: 'spl.bin', offset: 0 }] }, /rawBlobs\[0\] .* overlaps the MBR/);
  fails({ partitions: [{ label: 'a', size: '1M' }], rawBlobs: [{ source: 'spl.bin', offset: 2 ** 20 + 512 }] }, /rawBlobs\[0\] .* overlaps partitions\[0\] \("a"\)/);
});

test('an unknown type alias', () => {
  fails({ partitions: [{ label: 'a', type: 'rooot', ...ext4 }] }, /partitions\[0\]\.type: unknown type "rooot"; use a GPT type GUID or one of esp, /);
  fails({ partitionTableType: 'mbr', partitions: [{ type: 'bios-boot', size: '1M' }] }, /partitions\[0\]\.type: "bios-boot" is a GPT-only type/);
});

test('a size below the content says the minimum', () => {
  const line = fails({ partitions: [{ label: 'a', size: '1M', ...ext4 }] }, /partitions\[0\]\.size 1 MiB is too small for its content; it needs at least .* \((\d+) bytes\)/);
  const need = Number(/\((\d+) bytes\)/.exec(line)![1]);
  assert.ok(need > 2 ** 20);
});

test('an image: that is not a filesystem image', () => {
  fails({ partitions: [{ label: 'a', image: 'spl.bin' }] }, /partitions\[0\]\.image: .*spl\.bin is not a filesystem image/);
  fails({ partitions: [{ label: 'a', image: 'notes.txt' }] }, /partitions\[0\]\.image: .*notes\.txt is not a filesystem image/);
});

test('firmware contents that do not fit firmwareSize say the minimum', () => {
  fails({ builder: 'sd-image', firmwareSize: 2, firmwareContents: [{ source: 'bigfw/', target: '/' }] }, /firmwareSize 2 \(MiB\) is too small for firmwareContents; they need at least [3-9] \(MiB\)/);
});

test('flags on the wrong table, and make-disk-image keys beside partitions', () => {
  fails({ partitionTableType: 'mbr', partitions: [{ size: '1M', readOnly: true }] }, /partitions\[0\]\.readOnly: a GPT attribute/);
  fails({ partitions: [{ label: 'a', size: '1M', bootable: true }] }, /partitions\[0\]\.bootable: the MBR 0x80 flag/);
  fails({ root: 'rootfs', partitions: [{ label: 'a', size: '1M' }] }, /^diskwright: root: belongs to the make-disk-image layouts/);
  fails({ partitions: [{ label: 'a' }] }, /partitions\[0\]: an empty partition needs size, minSize or grow/);
  fails({ partitions: [{ label: 'a', grow: true }, { label: 'b', size: '1M' }] }, /partitions\[1\] comes after the grow partition partitions\[0\]/);
});
