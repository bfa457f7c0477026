// Deterministic gzip: what `gzip -d` reads back, a fixed header whatever the
// machine, one member (the kernel's initramfs unpacker wants each member to end
// on an archive boundary), and a valid file for empty input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSink } from '../../src/format/compress.ts';
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
