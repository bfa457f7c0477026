// Deterministic gzip: what `gzip -d` reads back, a fixed header whatever the
// machine, one member (the kernel's initramfs unpacker wants each member to end
// on an archive boundary), and a valid file for empty input; container layers'
// multi-threaded gzip gives the same bytes for any thread count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { gzipBlocksSink, gzipSink } from '../../src/format/compress.ts';
import type { Sink } from '../../src/format/raw.ts';
import { pattern } from '../property/pattern.ts';
import { run } from '../oracle/tools.ts';

function gzip(data: Buffer, holeAt?: number): Buffer {
  const parts: Buffer[] = [];
  let size = -1;
  const out: Sink = { write: (b, len) => void parts.push(Buffer.from(b.subarray(0, len))), finish: (n) => void (size = n) };
  const sink = gzipSink(out, { level: 6 });
  // A gap in the input reads as zeros, as the emitter hands holes over.
  if (holeAt === undefined) sink.write(data, data.length, 0);
  else sink.write(data.subarray(holeAt), data.length - holeAt, holeAt);
  sink.finish(data.length);
  const all = Buffer.concat(parts);
  assert.equal(size, all.length);
  return all;
}

test('gzip -d reads it back; one member, a fixed header', () => {
  const data = Buffer.concat([pattern(7, 40 << 20), Buffer.alloc(30 << 20, 0x61)]);
  const z = gzip(data);
  assert.deepEqual(run('gzip', ['-dc'], { input: z }).stdout, data);
  assert.deepEqual(z.subarray(0, 10), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]));
  assert.equal(z.indexOf(z.subarray(0, 10), 10), -1);
  assert.deepEqual(gzip(data), z);
  const holed = Buffer.concat([Buffer.alloc(1000), Buffer.from('after the hole')]);
  assert.deepEqual(run('gzip', ['-dc'], { input: gzip(holed, 1000) }).stdout, holed);
});

test('empty input is one empty member', () => {
  const z = gzip(Buffer.alloc(0));
  assert.ok(z.length > 10);
  assert.equal(run('gzip', ['-dc'], { input: z }).stdout.length, 0);
});

function gzipBlocks(data: Buffer, threads: number, piece: number, holeAt = 0): Buffer {
  const parts: Buffer[] = [];
  let size = -1;
  const sink = gzipBlocksSink({ write: (b, len) => void parts.push(Buffer.from(b.subarray(0, len))), finish: (n) => void (size = n) }, { level: 6, threads });
  for (let at = holeAt; at < data.length; at += piece) sink.write(data.subarray(at), Math.min(piece, data.length - at), at);
  sink.finish(data.length);
  const all = Buffer.concat(parts);
  assert.equal(size, all.length);
  return all;
}

test('gzip in 256 KiB blocks on worker threads: gzip -t passes, the same bytes for 1 and 3 threads, back-references cross blocks', () => {
  const data = Buffer.concat([pattern(11, 5 << 20), Buffer.alloc(3 << 20), pattern(3, 300 << 10), Buffer.from('the end')]);
  const one = gzipBlocks(data, 1, 1 << 20);
  assert.deepEqual(gzipBlocks(data, 3, 3_000_017), one);
  assert.deepEqual(one.subarray(0, 10), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]));
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dw-gzip-')), 'x.gz');
  try {
    fs.writeFileSync(file, one);
    run('gzip', ['-t', file]);
    assert.deepEqual(run('gzip', ['-dc', file]).stdout, data);
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
  for (const n of [0, 1, (256 << 10) - 1, 256 << 10, (2 << 20) + 3]) assert.deepEqual(zlib.gunzipSync(gzipBlocks(data.subarray(0, n), 2, 65536)), data.subarray(0, n), `${n} bytes`);
  const holed = Buffer.concat([Buffer.alloc(1000), Buffer.from('after the hole')]);
  assert.deepEqual(zlib.gunzipSync(gzipBlocks(holed, 2, 100, 1000)), holed);
  // 16 KiB of noise repeated over 4 blocks: only the first block pays for it, the others find it in their dictionary.
  const noise = pattern(5, 16 << 10);
  const repeated = Buffer.concat(Array.from({ length: 64 }, () => noise));
  assert.ok(gzipBlocks(repeated, 2, 1 << 20).length < noise.length + (8 << 10));
});
