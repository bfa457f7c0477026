// qcow2 writer and reader against qemu-img 7.2: check (no errors, no leaks),
// compare (identical to the raw build), info, map; streaming through a pipe;
// determinism; reading our own, qemu-img's plain, compressed, version 2 and
// zero-flag outputs; damaged and foreign files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../oracle/tools.ts';
import { assertChecks, assertSame, pseudoRandom, qemuJson } from './qemu.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { emit, streamSink, writeImageFile } from '../../src/format/raw.ts';
import { isQcow2, planQcow2, readQcow2, toQcow2, type Qcow2Options } from '../../src/format/qcow2.ts';
import { finishImage, isFileExtent, type BufferExtent, type FileExtent, type Image } from '../../src/image/extent-map.ts';

const K = 1024;
const M = 2 ** 20;
const G = 2 ** 30;
const C = 64 * K;
const dir = mkdtempSync(join(tmpdir(), 'diskwright-qcow2-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const p = (name: string) => join(dir, name);


const SOURCE = p('source.bin');
const SOURCE_SIZE = 24 * M;
const SOURCE_PATH = Buffer.from(SOURCE);
const buf = (offset: number, buffer: Buffer): BufferExtent => ({ offset, length: buffer.length, buffer });
const file = (offset: number, length: number, fileOffset: number): FileExtent => ({ offset, length, path: SOURCE_PATH, fileOffset, expectSize: SOURCE_SIZE });

/** Virtual clusters [first, last] that bytes [offset, offset+length) touch. */
function clustersOf(offset: number, length: number, cs = C): number[] {
  const out: number[] = [];
  for (let c = Math.floor(offset / cs); c <= Math.floor((offset + length - 1) / cs); c++) out.push(c);
  return out;
}

// ~300 MiB disk: buffers with unaligned starts and ends, an all-zero buffer,
// a buffer that is zero except in its middle cluster, file extents, a buffer
// and a file extent sharing a cluster, data in the last bytes of the disk.
const DISK_A_SIZE = 300 * M;
const mixed = Buffer.alloc(3 * C);
mixed.fill(0xff, C + 10, C + 20);
const diskA: Image = finishImage(DISK_A_SIZE, [
  buf(0, pseudoRandom(1000, 1)),
  buf(3 * C + 100, pseudoRandom(200000, 2)),
  buf(10 * M + 7, Buffer.alloc(3 * C + 5)), // all zero: never allocated
  buf(20 * M, mixed), // only its middle cluster holds data
  file(50 * M + 12345, 3 * M, 777),
  buf(100 * M, pseudoRandom(5000, 3)),
  file(100 * M + 5000, 70000, 4 * M + 3),
  buf(100 * M + 75000, Buffer.alloc(100)), // zero, in a cluster that is allocated anyway
  file(200 * M, C, 10 * M),
  buf(DISK_A_SIZE - 3000, pseudoRandom(3000, 4)),
]);
const DISK_A_CLUSTERS = [
  ...clustersOf(0, 1000),
  ...clustersOf(3 * C + 100, 200000),
  (20 * M) / C + 1,
  ...clustersOf(50 * M + 12345, 3 * M),
  ...clustersOf(100 * M, 75000),
  (200 * M) / C,
  DISK_A_SIZE / C - 1,
];

/** 6 GiB sparse: a little data at 1 GiB and 20 MiB near the end. */
const DISK_B_SIZE = 6 * G;
const diskB: Image = finishImage(DISK_B_SIZE, [
  buf(G + 5, pseudoRandom(10, 5)),
  buf(3 * G, Buffer.alloc(5 * C)),
  file(DISK_B_SIZE - 21 * M + 4097, 20 * M, 1234),
  buf(DISK_B_SIZE - 3000, pseudoRandom(3000, 6)),
]);




/** Writes the disk raw and as qcow2; returns both paths. */
function build(name: string, disk: Image, opts?: Qcow2Options): { raw: string; qcow2: string } {
  const raw = p(`${name}.img`);
  const qcow2 = p(`${name}.qcow2`);
  writeImageFile(disk, raw);
  writeImageFile(toQcow2(disk, opts), qcow2);
  return { raw, qcow2 };
}

/** readQcow2, written back as raw. */
function readBack(qcow2: string, name: string): { raw: string; image: Image } {
  const image = readQcow2(qcow2);
  const raw = p(`${name}.back.img`);
  writeImageFile(image, raw);
  return { raw, image };
}

function runsOf(clusters: number[]): [number, number][] {
  const sorted = [...new Set(clusters)].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (const c of sorted) {
    const last = runs.at(-1);
    if (last && last[1] === c) last[1] = c + 1;
    else runs.push([c, c + 1]);
  }
  return runs;
}

function assertThrowsOneLine(fn: () => unknown, path: string, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DiskwrightError, `expected a DiskwrightError, got ${err}`);
    assert.equal(err.code, 'SOURCE_UNREADABLE');
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    assert.ok(err.message.includes(path), `names the file: ${err.message}`);
    if (re) assert.match(err.message, re);
    return true;
  });
}

let A: { raw: string; qcow2: string };

before(() => {
  writeFileSync(SOURCE, pseudoRandom(SOURCE_SIZE, 7));
  A = build('a', diskA);
});

test('300 MiB disk: qemu-img check is clean and compare says identical', () => {
  assertChecks(A.qcow2);
  assertSame(A.raw, A.qcow2, 'qcow2');
});

test('300 MiB disk: qemu-img info', () => {
  const info = qemuJson(['info', A.qcow2]);
  assert.equal(info.format, 'qcow2');
  assert.equal(info['virtual-size'], DISK_A_SIZE);
  assert.equal(info['cluster-size'], C);
  assert.equal(info['format-specific'].type, 'qcow2');
  assert.equal(info['format-specific'].data.compat, '1.1');
  assert.equal(info['format-specific'].data['refcount-bits'], 16);
  assert.equal(info['format-specific'].data['compression-type'], 'zlib');
  assert.equal(info['format-specific'].data['lazy-refcounts'], false);
  assert.equal(info['format-specific'].data.corrupt, false);
  assert.equal(info['backing-filename'], undefined);
});

test('300 MiB disk: qemu-img map shows data exactly in the expected clusters, in virtual order', () => {
  const map = qemuJson(['map', A.qcow2]) as { start: number; length: number; data: boolean; offset?: number }[];
  const got: [number, number][] = [];
  let lastHost = -1;
  for (const m of map) {
    if (!m.data) continue;
    assert.ok(m.offset! > lastHost, 'data clusters follow in virtual order');
    lastHost = m.offset!;
    const last = got.at(-1);
    if (last && last[1] === m.start) last[1] = m.start + m.length;
    else got.push([m.start, m.start + m.length]);
  }
  const want = runsOf(DISK_A_CLUSTERS).map(([a, b]) => [a * C, b * C]);
  assert.deepEqual(got, want);
  const L = planQcow2(diskA);
  assert.equal(L.dataClusters, new Set(DISK_A_CLUSTERS).size);
  assert.equal(statSync(A.qcow2).size, L.totalClusters * C);
  assert.equal(map.find((m) => m.data)!.offset, L.dataOffset);
});

test('an empty disk has the header, refcounts and L1 table qemu-img create writes', () => {
  const ours = p('empty.qcow2');
  const theirs = p('empty-qemu.qcow2');
  writeImageFile(toQcow2({ size: DISK_A_SIZE, extents: [] }), ours);
  run('qemu-img', ['create', '-q', '-f', 'qcow2', theirs, String(DISK_A_SIZE)]);
  const a = readFileSync(ours);
  const b = readFileSync(theirs);
  // Header fields through compression_type and padding; qemu-img adds a feature name table after them.
  assert.deepEqual(a.subarray(0, 112), b.subarray(0, 112));
  assert.deepEqual(a.subarray(112, 120), Buffer.alloc(8), 'header extension end marker');
  for (const at of [C, 2 * C, 3 * C]) assert.deepEqual(a.subarray(at, at + 8), b.subarray(at, at + 8), `cluster at ${at}`);
  assert.equal(a.length, 4 * C);
  assertChecks(ours);
});

test('streaming through a pipe gives the same bytes as the file build; builds are deterministic', async () => {
  const fifo = p('pipe');
  const streamed = p('streamed.qcow2');
  run('mkfifo', [fifo]);
  const outFd = openSync(streamed, 'w');
  const reader = spawn('cat', [fifo], { stdio: ['ignore', outFd, 'inherit'] });
  closeSync(outFd);
  const exited = once(reader, 'exit');
  const fd = openSync(fifo, 'w'); // blocks until cat opens the other end
  try {
    emit(toQcow2(diskA), streamSink(fd));
  } finally {
    closeSync(fd);
  }
  const [code] = await exited;
  assert.equal(code, 0);
  const fileBytes = readFileSync(A.qcow2);
  assert.ok(fileBytes.equals(readFileSync(streamed)), 'pipe build = file build');
  const again = p('again.qcow2');
  writeImageFile(toQcow2(diskA), again);
  assert.ok(fileBytes.equals(readFileSync(again)), 'two builds are identical');
});

test('readQcow2 of our output gives back the raw disk, with merged file extents', () => {
  const { raw, image } = readBack(A.qcow2, 'a-ours');
  assert.equal(image.size, DISK_A_SIZE);
  assertSame(A.raw, raw, 'raw');
  assert.ok(image.extents.every(isFileExtent));
  assert.equal(image.extents.length, runsOf(DISK_A_CLUSTERS).length, 'one extent per run of clusters');
});

test('readQcow2 of qemu-img convert outputs (plain, compressed, version 2, 4 KiB compressed) gives back the raw disk', () => {
  const cases: [string, string[], boolean][] = [
    ['plain', [], false],
    ['compressed', ['-c'], true],
    ['v2', ['-o', 'compat=0.10'], false],
    ['compressed-4k', ['-c', '-o', 'cluster_size=4096'], true],
  ];
  for (const [name, args, compressed] of cases) {
    const qcow2 = p(`conv-${name}.qcow2`);
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...args, A.raw, qcow2]);
    const { raw, image } = readBack(qcow2, `conv-${name}`);
    assert.equal(image.size, DISK_A_SIZE, name);
    assertSame(A.raw, raw, 'raw');
    assert.equal(image.extents.some((e) => !isFileExtent(e)), compressed, `${name}: inflated clusters`);
  }
});

test('readQcow2 reads zero-flag clusters as zeros', () => {
  const qcow2 = p('zeroed.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', A.raw, qcow2]);
  run('qemu-io', ['-f', 'qcow2', '-c', `write -z 0 ${C}`, '-c', `write -z ${50 * M} ${2 * C}`, qcow2]);
  const map = qemuJson(['map', qcow2]) as { start: number; zero: boolean; offset?: number }[];
  assert.ok(map.some((m) => m.start === 0 && m.zero && m.offset !== undefined), 'qemu kept the cluster, flagged zero');
  const { raw } = readBack(qcow2, 'zeroed');
  const r = run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, qcow2], { allowFailure: true });
  assert.equal(r.status, 0, r.stdout.toString());
});

test('truncated copies and foreign files give one-line errors naming the file', () => {
  const whole = readFileSync(A.qcow2);
  const L = planQcow2(diskA);
  const cuts: [number, RegExp][] = [
    [3, /not a qcow2 image/],
    [50, /is truncated: its 104-byte header is longer than the file \(50 bytes\)/],
    [100, /is truncated: its 104-byte header/],
    [L.l1TableOffset + 4, /is truncated: L1 table at \d+ is past the end \(\d+ bytes\); the file is damaged or still being written/],
    [L.l2TablesOffset + 100, /is truncated: L2 table at \d+ is past the end/],
    [L.dataOffset + 5 * C + 17, /is truncated: data cluster at \d+ \(virtual offset \d+\) is past the end/],
  ];
  for (const [n, re] of cuts) {
    const cut = p(`cut-${n}.qcow2`);
    writeFileSync(cut, whole.subarray(0, n));
    assertThrowsOneLine(() => readQcow2(cut), cut, re);
  }
  // A compressed image cut inside its compressed data.
  const compressed = p('cut-source-compressed.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-c', A.raw, compressed]);
  const c = readFileSync(compressed);
  const cutC = p('cut-compressed.qcow2');
  writeFileSync(cutC, c.subarray(0, c.length - 3 * C - 300));
  assertThrowsOneLine(() => readQcow2(cutC), cutC, /is (truncated|damaged)/);

  assertThrowsOneLine(() => readQcow2(A.raw), A.raw, /is not a qcow2 image/);
  assertThrowsOneLine(() => readQcow2(p('missing.qcow2')), p('missing.qcow2'), /: no such file or directory; check the path$/);
  assert.equal(isQcow2(whole.subarray(0, 512)), true);
  assert.equal(isQcow2(readFileSync(A.raw).subarray(0, 512)), false);
  assert.equal(isQcow2(Buffer.from('QF')), false);
});

test('backing files and encryption are refused', () => {
  const base = p('base.qcow2');
  const child = p('child.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1M']);
  run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', child]);
  assertThrowsOneLine(() => readQcow2(child), child, /backing file/);
  const enc = p('enc.qcow2');
  // qemu-img times PBKDF2 by the thread's CPU clock, which can read 0 ms on a
  // busy machine ("Unable to get accurate CPU usage"): that one failure is retried.
  const args = ['create', '-q', '-f', 'qcow2', '--object', 'secret,id=sec0,data=123456', '-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', enc, '1M'];
  for (let i = 0; ; i++) {
    const r = run('qemu-img', args, { allowFailure: true });
    if (r.status === 0) break;
    if (i >= 4 || !r.stderr.includes('accurate CPU usage')) run('qemu-img', args);
  }
  assertThrowsOneLine(() => readQcow2(enc), enc, /encrypted/);
});

test('6 GiB sparse disk, 64 KiB clusters: several L1 entries', () => {
  const B = build('b', diskB);
  const L = planQcow2(diskB);
  assert.equal(L.l1Size, 12);
  assert.equal(L.l2Tables, 2);
  assertChecks(B.qcow2);
  assertSame(B.raw, B.qcow2, 'qcow2');
  assert.equal(qemuJson(['info', B.qcow2])['virtual-size'], DISK_B_SIZE);
});

test('6 GiB sparse disk, 4 KiB and 512-byte clusters: several refcount blocks, multi-cluster L1 and refcount tables', () => {
  for (const clusterBits of [12, 9]) {
    const B = build(`b-${clusterBits}`, diskB, { clusterBits });
    const L = planQcow2(diskB, { clusterBits });
    assert.ok(L.refcountBlocks >= 3, `${clusterBits}: ${L.refcountBlocks} refcount blocks`);
    assert.ok(L.l1Clusters > 1, `${clusterBits}: ${L.l1Clusters} L1 clusters`);
    if (clusterBits === 9) assert.ok(L.refcountTableClusters > 1, `${L.refcountTableClusters} refcount table clusters`);
    assertChecks(B.qcow2);
    assertSame(B.raw, B.qcow2, 'qcow2');
    assert.equal(qemuJson(['info', B.qcow2])['cluster-size'], 2 ** clusterBits);
    const { raw } = readBack(B.qcow2, `b-${clusterBits}`);
    assertSame(B.raw, raw, 'raw');
  }
});

test('odd and empty sizes: virtual size rounded up to 512 bytes as qemu does', () => {
  const odd: Image = { size: 1000, extents: [buf(0, pseudoRandom(1000, 8))] };
  const O = build('odd', odd);
  assertChecks(O.qcow2);
  assertSame(O.raw, O.qcow2, 'qcow2');
  assert.equal(qemuJson(['info', O.qcow2])['virtual-size'], 1024);
  const empty = p('zero-size.qcow2');
  writeImageFile(toQcow2({ size: 0, extents: [] }), empty);
  assertChecks(empty);
  assert.deepEqual(readQcow2(empty), { size: 0, extents: [] });
});

test('cluster bits outside 9..21 are refused', () => {
  for (const clusterBits of [8, 22, 16.5]) {
    assert.throws(() => toQcow2(diskA, { clusterBits }), (err: unknown) => err instanceof DiskwrightError && err.code === 'OPTION_INVALID');
  }
});
