// qcow2-compressed against qemu-img 7.2: check (no errors, no leaks), compare
// (identical to the raw disk), info; the same bytes with any number of
// worker threads; the file's structure as qemu writes it (compressed cluster
// descriptors packed byte-wise, refcounts per host cluster touched,
// incompressible clusters stored whole, zero clusters unallocated); size
// close to `qemu-img convert -c`; readQcow2 reads it; levels; the CLI refuses
// to stream it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { run } from '../oracle/tools.ts';
import { assertChecks, assertSame, pseudoRandom, qemuJson } from './qemu.ts';
import { diskwright } from '../cli/run.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { readQcow2 } from '../../src/format/qcow2.ts';
import { checkDeflateLevel, writeQcow2Compressed } from '../../src/format/qcow2-compressed.ts';
import { finishImage, type BufferExtent, type FileExtent, type Image } from '../../src/image/extent-map.ts';

const K = 1024;
const M = 2 ** 20;
const C = 64 * K;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'diskwright-qcow2c-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const p = (name: string) => path.join(dir, name);


const WORDS = 'the of disk image cluster qemu zlib deflate sector table refcount header offset data file block inode journal extent tree root boot nixos store path'.split(' ');
/** Seeded word salad: compresses to about a third. */
function text(seed: number, length: number): Buffer {
  const r = pseudoRandom(Math.ceil(length / 3) + 16, seed);
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < length; i++) {
    const w = WORDS[r[i % r.length] % WORDS.length] + (r[(i * 7) % r.length] % 13 === 0 ? '\n' : ' ');
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

// The source file: text, zeros, noise, text.
const SOURCE = p('source.bin');
const SOURCE_SIZE = 19 * M;
const SOURCE_PATH = Buffer.from(SOURCE);
const buf = (offset: number, buffer: Buffer): BufferExtent => ({ offset, length: buffer.length, buffer });
const file = (offset: number, length: number, fileOffset: number): FileExtent => ({ offset, length, path: SOURCE_PATH, fileOffset, expectSize: SOURCE_SIZE });

// ~300 MiB disk, not a whole number of clusters: unaligned buffers, an
// all-zero buffer, compressible file data, zeros read from the file (not
// allocated), incompressible file data and buffer (stored), a small cluster
// right after a stored one, data in the last, partial cluster.
const DISK_SIZE = 300 * M + 1536;
const NOISE_CLUSTER = (60 * M) / C;
const disk: Image = finishImage(DISK_SIZE, [
  buf(0, text(1, 1000)),
  buf(3 * C + 100, text(2, 200000)),
  buf(10 * M + 7, Buffer.alloc(3 * C + 5)),
  file(20 * M, 8 * M, 0),
  file(40 * M, 2 * M, 8 * M),
  file(50 * M + 12345, M, 10 * M),
  buf(60 * M, pseudoRandom(C, 3)),
  buf(60 * M + C, text(4, 300)),
  file(100 * M, 8 * M, 11 * M),
  buf(DISK_SIZE - 3000, text(5, 3000)),
]);

const RAW = p('disk.img');
const OURS = p('disk.qcow2');

before(() => {
  fs.writeFileSync(SOURCE, Buffer.concat([text(10, 8 * M), Buffer.alloc(2 * M), pseudoRandom(M, 11), text(12, 8 * M)]));
  writeImageFile(disk, RAW);
  writeQcow2Compressed(disk, OURS);
});




function assertOptionInvalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DiskwrightError, String(err));
    assert.equal(err.code, 'OPTION_INVALID');
    assert.ok(!err.message.includes('\n'), err.message);
    assert.match(err.message, re);
    return true;
  });
}

// ------------------------------------------------------------------ parsing our file

interface Parsed {
  l1Offset: number;
  l1Size: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  /** Virtual cluster -> raw L2 entry (only non-zero ones). */
  entries: Map<number, bigint>;
  l2Offsets: number[];
  refcounts: number[];
}

function parse(f: Buffer): Parsed {
  const num = (at: number) => Number(f.readBigUInt64BE(at));
  assert.equal(f.readUInt32BE(0), 0x514649fb);
  assert.equal(f.readUInt32BE(4), 3);
  assert.equal(f.readUInt32BE(20), 16);
  assert.equal(f.readUInt32BE(96), 4, 'refcount_order');
  const l1Size = f.readUInt32BE(36);
  const l1Offset = num(40);
  const refcountTableOffset = num(48);
  const refcountTableClusters = f.readUInt32BE(56);
  const entries = new Map<number, bigint>();
  const l2Offsets: number[] = [];
  for (let i = 0; i < l1Size; i++) {
    const e = f.readBigUInt64BE(l1Offset + i * 8);
    if (e === 0n) continue;
    assert.equal(e >> 63n, 1n, 'L1 entries carry COPIED');
    const l2 = Number(e & 0x00fffffffffffe00n);
    l2Offsets.push(l2);
    for (let j = 0; j < C / 8; j++) {
      const v = f.readBigUInt64BE(l2 + j * 8);
      if (v !== 0n) entries.set(i * (C / 8) + j, v);
    }
  }
  const refcounts: number[] = [];
  for (let b = 0; b < (refcountTableClusters * C) / 8; b++) {
    const rb = num(refcountTableOffset + b * 8);
    if (rb === 0) continue;
    for (let k = 0; k < C / 2; k++) refcounts[b * (C / 2) + k] = f.readUInt16BE(rb + k * 2);
  }
  return { l1Offset, l1Size, refcountTableOffset, refcountTableClusters, entries, l2Offsets, refcounts };
}

const deflatedLength = (b: Buffer) => zlib.deflateRawSync(b, { level: 6, windowBits: 12, memLevel: 9 }).length;

const COMPRESSED = 1n << 62n;
/** A compressed descriptor (cluster_bits 16): offset in bits 0-53, extra sectors in 54-61. */
function descriptor(v: bigint): { offset: number; sectors: number } {
  return { offset: Number(v & ((1n << 54n) - 1n)), sectors: Number((v >> 54n) & 0xffn) };
}

// ------------------------------------------------------------------ tests

test('300 MiB disk: qemu-img check is clean, compare says identical, info reports the virtual size', () => {
  assertChecks(OURS);
  assertSame(RAW, OURS, 'qcow2');
  const info = qemuJson(['info', OURS]);
  assert.equal(info.format, 'qcow2');
  assert.equal(info['virtual-size'], DISK_SIZE);
  assert.equal(info['cluster-size'], C);
  assert.equal(info['format-specific'].data.compat, '1.1');
  assert.equal(info['format-specific'].data['refcount-bits'], 16);
  assert.equal(info['format-specific'].data['compression-type'], 'zlib');
});

test('1 and 2 worker threads write the same bytes as the default; so does a second build', () => {
  const want = fs.readFileSync(OURS);
  for (const threads of [1, 2]) {
    const out = p(`threads-${threads}.qcow2`);
    writeQcow2Compressed(disk, out, { threads });
    assert.ok(want.equals(fs.readFileSync(out)), `${threads} threads`);
    fs.rmSync(out);
  }
});

test('clusters as qemu stores them: deflated and packed byte-wise, incompressible ones whole, zero ones unallocated; refcounts per host cluster touched', () => {
  const f = fs.readFileSync(OURS);
  const raw = fs.readFileSync(RAW);
  const P = parse(f);
  const refs = new Map<number, number>();
  const touch = (first: number, last: number) => {
    for (let h = first; h <= last; h++) refs.set(h, (refs.get(h) ?? 0) + 1);
  };
  touch(0, 0);
  let lastEnd = C; // data starts in cluster 1
  let stored = 0;
  let compressed = 0;
  const hostOf = new Map<number, number>();
  for (const [vc, v] of [...P.entries].sort((a, b) => a[0] - b[0])) {
    const want = Buffer.alloc(C);
    raw.copy(want, 0, vc * C, Math.min(raw.length, vc * C + C));
    assert.ok(want.some((b) => b !== 0), `cluster ${vc} holds data`);
    if (v & COMPRESSED) {
      compressed++;
      assert.equal(v >> 63n, 0n, 'compressed entries have no COPIED flag');
      const { offset, sectors } = descriptor(v);
      hostOf.set(vc, offset);
      const end = (Math.floor(offset / 512) + sectors + 1) * 512;
      const data = zlib.inflateRawSync(f.subarray(offset, end), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      assert.ok(data.equals(want), `cluster ${vc} inflates to its bytes`);
      // Its exact length: deflate it again the way qemu does.
      const len = deflatedLength(want);
      assert.ok(len < C);
      assert.equal(sectors, Math.floor((offset + len - 1) / 512) - Math.floor(offset / 512), `cluster ${vc}: extra sectors`);
      touch(Math.floor(offset / C), Math.floor((offset + len - 1) / C));
      // Right after the previous compressed cluster, or at a fresh host cluster.
      assert.ok(offset === lastEnd || offset % C === 0, `cluster ${vc} at ${offset} follows ${lastEnd}`);
      lastEnd = offset + len;
    } else {
      stored++;
      assert.equal(v >> 63n, 1n, 'uncompressed entries carry COPIED');
      const offset = Number(v & 0x00fffffffffffe00n);
      assert.equal(offset % C, 0);
      assert.ok(deflatedLength(want) >= C, `cluster ${vc} does not deflate smaller`);
      hostOf.set(vc, offset);
      assert.ok(f.subarray(offset, offset + C).equals(want), `cluster ${vc} stored as it is`);
      touch(offset / C, offset / C);
    }
  }
  // The noise: 15 whole clusters from the file and one buffer cluster.
  assert.equal(stored, 16);
  assert.ok(compressed > 250);
  for (let vc = (40 * M) / C; vc < (42 * M) / C; vc++) assert.ok(!P.entries.has(vc), `zeros from the file: cluster ${vc} unallocated`);
  assert.ok(!P.entries.has((10 * M) / C + 1), 'all-zero buffer: unallocated');
  // The small cluster after the stored noise went back into the partly filled cluster before it, as qemu_alloc_bytes does.
  assert.ok(hostOf.get(NOISE_CLUSTER + 1)! < hostOf.get(NOISE_CLUSTER)!);
  // Tables after the data: L2 tables, L1, refcount table, refcount blocks; header cluster 0.
  const dataEnd = Math.max(...[...refs.keys()]) + 1;
  assert.deepEqual(P.l2Offsets, P.l2Offsets.map((_, i) => (dataEnd + i) * C));
  assert.equal(P.l1Offset, (dataEnd + P.l2Offsets.length) * C);
  assert.equal(P.refcountTableOffset, P.l1Offset + C);
  for (let h = dataEnd; h < f.length / C; h++) touch(h, h);
  assert.equal(f.length % C, 0);
  for (let h = 0; h < f.length / C; h++) assert.equal(P.refcounts[h] ?? 0, refs.get(h) ?? 0, `refcount of host cluster ${h}`);
  assert.ok(P.refcounts.slice(f.length / C).every((r) => r === 0));
});

test('size is close to qemu-img convert -c of the same raw disk', () => {
  const theirs = p('qemu-c.qcow2');
  run('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', RAW, theirs]);
  const a = fs.statSync(OURS).size;
  const b = fs.statSync(theirs).size;
  assert.ok(Math.abs(a - b) <= 0.03 * b + 4 * C, `ours ${a} bytes, qemu-img -c ${b} bytes`);
});

test('readQcow2 reads it back as the raw disk', () => {
  const image = readQcow2(OURS);
  assert.equal(image.size, DISK_SIZE);
  const back = p('back.img');
  writeImageFile(image, back);
  assertSame(RAW, back, 'raw');
});

test('levels: default 6 as qemu; level 1 is valid and larger; levels outside 1-9 are refused', () => {
  assert.equal(checkDeflateLevel(undefined), 6);
  const one = p('level1.qcow2');
  writeQcow2Compressed(disk, one, { level: 1 });
  assertChecks(one);
  assertSame(RAW, one, 'qcow2');
  assert.ok(fs.statSync(one).size > fs.statSync(OURS).size);
  for (const level of [0, 10, 2.5]) assertOptionInvalid(() => writeQcow2Compressed(disk, p('bad.qcow2'), { level }), /qcow2-compressed .*1 to 9/);
  assert.ok(!fs.existsSync(p('bad.qcow2')));
});

test('a source file that changed size: SOURCE_CHANGED, no output and no temporary file left', () => {
  const changing = p('changing.bin');
  fs.writeFileSync(changing, text(30, 4 * M));
  const d: Image = { size: 64 * M, extents: [buf(0, text(31, 3 * M)), { offset: 8 * M, length: 4 * M, path: Buffer.from(changing), fileOffset: 0, expectSize: 5 * M }] };
  const outDir = p('changed');
  fs.mkdirSync(outDir);
  assert.throws(() => writeQcow2Compressed(d, path.join(outDir, 'x.qcow2')), (err: unknown) => err instanceof DiskwrightError && err.code === 'SOURCE_CHANGED');
  assert.deepEqual(fs.readdirSync(outDir), []);
});

test('6 GiB sparse disk: several L1 entries and L2 tables', () => {
  const size = 6 * 1024 * M;
  const d = finishImage(size, [buf(1024 * M + 5, text(40, 10)), buf(3 * 1024 * M, pseudoRandom(C, 41)), buf(size - 3000, text(42, 3000))]);
  const raw = p('big.img');
  const out = p('big.qcow2');
  writeImageFile(d, raw);
  writeQcow2Compressed(d, out);
  assertChecks(out);
  assertSame(raw, out, 'qcow2');
  const P = parse(fs.readFileSync(out));
  assert.equal(P.l1Size, 12);
  assert.equal(P.l2Offsets.length, 3);
  assert.equal(P.entries.size, 3);
});

test('an empty disk and a 0-byte disk are valid qcow2 files', () => {
  for (const size of [64 * M, 0]) {
    const out = p(`empty-${size}.qcow2`);
    writeQcow2Compressed({ size, extents: [] }, out);
    assertChecks(out);
    assert.equal(qemuJson(['info', out])['virtual-size'], size);
    assert.equal(readQcow2(out).extents.length, 0);
  }
});

test('CLI: mkfs ext4 and vfat write it (--compress-level too); a stream is refused up front with one line and nothing written', () => {
  const src = p('tree');
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  fs.writeFileSync(path.join(src, 'd/words.txt'), text(20, 300 * K));
  fs.writeFileSync(path.join(src, 'noise.bin'), pseudoRandom(200 * K, 21));
  for (const fsType of ['ext4', 'vfat']) {
    const raw = p(`cli-${fsType}.img`);
    const out = p(`cli-${fsType}.qcow2`);
    assert.equal(diskwright(['mkfs', fsType, src, '-o', raw]).status, 0);
    const r = diskwright(['mkfs', fsType, src, '-o', out, '--format', 'qcow2-compressed', '--compress-level', '9']);
    assert.equal(r.status, 0, r.stderr);
    assertChecks(out);
    assertSame(raw, out, 'qcow2');
  }
  const cwd = p('stream');
  fs.mkdirSync(cwd);
  const refusals = [diskwright(['mkfs', 'ext4', src, '-o', '-', '--format', 'qcow2-compressed'], { cwd })];
  fs.writeFileSync(path.join(cwd, 'disk.json'), JSON.stringify({ partitionTableType: 'none', root: src, format: 'qcow2-compressed' }));
  refusals.push(diskwright(['build', 'disk.json', '-o', '-'], { cwd }));
  for (const r of refusals) {
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /^diskwright: qcow2-compressed cannot be streamed .*write it to a file, or use --format qcow2 for a stream\n$/);
  }
  assert.deepEqual(fs.readdirSync(cwd), ['disk.json']);
  const bad = diskwright(['mkfs', 'ext4', src, '-o', p('bad.qcow2'), '--format', 'qcow2-compressed', '--compress-level', '12']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^diskwright: compression level 12: qcow2-compressed .*1 to 9.*\n$/);
});
