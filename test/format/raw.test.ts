// The async emitter's turns: a stage of many small source files ends after
// 64 of them are opened, so one turn is not hundreds of open, read, close
// calls; the bytes are those the synchronous emitter writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { emit, emitSteps, type Sink } from '../../src/format/raw.ts';
import type { Image, ImageExtent } from '../../src/image/extent-map.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-raw-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** A sink keeping the image in memory and the size of every write. */
function memory(size: number): { sink: Sink; bytes: Buffer; writes: number[] } {
  const bytes = Buffer.alloc(size);
  const writes: number[] = [];
  return { bytes, writes, sink: { write(buf, len, at) { buf.copy(bytes, at, 0, len); writes.push(len); }, finish() {} } };
}

test('the async emitter opens at most 64 source files per turn, and writes the synchronous bytes', async () => {
  const files = 200;
  const extents: ImageExtent[] = [];
  for (let i = 0; i < files; i++) {
    const p = path.join(work, `f${i}`);
    const data = Buffer.alloc(100 + i, i);
    fs.writeFileSync(p, data);
    // 4 KiB apart: all in one 1 MiB stage, the gaps filled with zeros.
    extents.push({ offset: i * 4096, length: data.length, path: Buffer.from(p), fileOffset: 0, expectSize: data.length });
  }
  extents.push({ offset: files * 4096, length: 5, buffer: Buffer.from('tail\n') });
  const image: Image = { size: (files + 1) * 4096, extents };
  const sync = memory(image.size);
  emit(image, sync.sink, null);
  assert.deepEqual(sync.writes.length, 1, 'one stage for the synchronous emitter');
  const turns = memory(image.size);
  for await (const _ of emitSteps(image, turns.sink, 'writing', undefined)) {
    // One write per step.
  }
  assert.equal(turns.writes.length, Math.ceil(files / 64), `writes of ${turns.writes.join(', ')} bytes`);
  assert.ok(turns.bytes.equals(sync.bytes));
});
