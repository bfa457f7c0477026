// An Image packed for another thread and rebuilt: every extent kind that can
// cross (buffer, file, lazy as its bytes) comes back equal, bytes and all,
// with shared buffers and paths still shared; too many lazy bytes refuse to pack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { packImage, transferList, unpackImage, type PackedImage } from '../../src/image/transfer.ts';
import { isFileExtent, isLazyExtent, type Image, type ImageExtent } from '../../src/image/extent-map.ts';

function bytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Sent through a real port, its buffers transferred, as the plan worker sends it. */
async function viaPort(p: PackedImage): Promise<PackedImage> {
  const { port1, port2 } = new MessageChannel();
  const got = new Promise<PackedImage>((resolve) => port2.once('message', resolve));
  port1.postMessage(p, transferList(p));
  const r = await got;
  port1.close();
  return r;
}

function sameExtents(a: Image, b: Image): void {
  assert.equal(b.size, a.size);
  assert.equal(b.extents.length, a.extents.length);
  for (let i = 0; i < a.extents.length; i++) {
    const x = a.extents[i];
    const y = b.extents[i];
    assert.equal(y.offset, x.offset, `extent ${i}`);
    assert.equal(y.length, x.length, `extent ${i}`);
    if (isFileExtent(x)) {
      assert.ok(isFileExtent(y), `extent ${i} is a file extent`);
      assert.ok(y.path.equals(x.path));
      assert.equal(y.fileOffset, x.fileOffset);
      assert.equal(y.expectSize, x.expectSize);
    } else {
      assert.ok(!isFileExtent(y) && !isLazyExtent(y) && !isLazyExtent(x));
      assert.ok(Buffer.isBuffer(y.buffer));
      assert.ok(y.buffer.subarray(0, y.length).equals(x.buffer.subarray(0, x.length)), `extent ${i}: bytes`);
    }
  }
}

test('buffer and file extents cross with their bytes; shared buffers and paths stay shared', async () => {
  const shared = bytes(1, 4096);
  const pathA = Buffer.from([0x2f, 0x74, 0xff, 0x80, 0x61]); // /t\xff\x80a: not UTF-8
  const pathB = Buffer.from('/usr/share/b');
  const long = bytes(2, 10_000);
  const extents: ImageExtent[] = [
    { offset: 0, length: 4096, buffer: shared },
    { offset: 4096, length: 300, path: pathA, fileOffset: 0, expectSize: 12_345 },
    { offset: 8192, length: 4096, buffer: shared },
    // A buffer longer than its extent: only the extent's bytes are packed.
    { offset: 16_384, length: 1000, buffer: long },
    { offset: 20_480, length: 4096, path: pathA, fileOffset: 8192, expectSize: 12_345 },
    { offset: 2 ** 40, length: 7, path: pathB, fileOffset: 2 ** 33, expectSize: 2 ** 34 },
    { offset: 2 ** 40 + 4096, length: 1, buffer: Buffer.from([9]) },
  ];
  const image: Image = { size: 2 ** 41, extents };
  const back = await unpackImage(await viaPort(packImage(image)!));
  sameExtents(image, back);
  const [a, , c] = back.extents as { buffer: Buffer }[];
  assert.equal(a.buffer, c.buffer, 'one Buffer for a buffer the sender shared');
  const f = back.extents.filter(isFileExtent);
  assert.equal(f[0].path, f[1].path, 'one path Buffer for a path the sender shared');
  assert.notEqual(f[0].path, f[2].path);
});

test('big buffers go in several ArrayBuffers, none larger than the chunk unless one buffer is', async () => {
  const chunk = 1 << 20;
  const extents: ImageExtent[] = [];
  let at = 0;
  for (let i = 0; i < 12; i++) {
    // 300 KiB buffers, then one of 2.5 MiB, larger than a chunk on its own.
    const n = i === 7 ? 2.5 * chunk : 300 << 10;
    extents.push({ offset: at, length: n, buffer: bytes(i + 10, n) });
    at += n + 4096;
  }
  const image: Image = { size: at, extents };
  const packed = packImage(image, chunk)!;
  assert.ok(packed.chunks.length >= 5, `${packed.chunks.length} chunks`);
  for (const c of packed.chunks) assert.ok(c.byteLength <= chunk || c.byteLength === 2.5 * chunk, `a chunk of ${c.byteLength}`);
  const back = await unpackImage(await viaPort(packed));
  sameExtents(image, back);
  // The default chunk (64 MiB) holds 35 MiB of buffers in one transfer.
  assert.equal(packImage(image)!.chunks.length, 1);
});

test('lazy extents cross as the bytes they make, up to a limit past which the Image does not pack', async () => {
  const calls: number[] = [];
  const fill = (dst: Buffer, off: number, at: number, len: number) => {
    calls.push(at);
    for (let i = 0; i < len; i++) dst[off + i] = (at + i) * 31 & 0xff;
  };
  const extents: ImageExtent[] = [
    { offset: 0, length: 4096, from: 0, fill },
    { offset: 4096, length: 1, buffer: Buffer.from([1]) },
    { offset: 8192, length: 4096, from: 40_960, fill },
  ];
  const image: Image = { size: 1 << 20, extents };
  const back = await unpackImage(await viaPort(packImage(image)!));
  assert.deepEqual(calls, [0, 40_960], 'made once each, in image order');
  const made = (from: number) => { const b = Buffer.alloc(4096); fill(b, 0, from, 4096); return b; };
  sameExtents({ size: image.size, extents: [{ offset: 0, length: 4096, buffer: made(0) }, extents[1], { offset: 8192, length: 4096, buffer: made(40_960) }] }, back);
  assert.equal(packImage(image, undefined, 8191), undefined);
  assert.ok(packImage(image, undefined, 8192));
});

test('a large Image is rebuilt in slices with turns of the event loop between them', async () => {
  const n = 400_000;
  const path = Buffer.from('/f');
  const extents: ImageExtent[] = [];
  for (let i = 0; i < n; i++) extents.push(i & 1 ? { offset: i * 4096, length: 100, path, fileOffset: i, expectSize: n } : { offset: i * 4096, length: 8, buffer: bytes(i, 8) });
  const image: Image = { size: n * 4096, extents };
  const packed = await viaPort(packImage(image)!);
  let turns = 0;
  // This thread's CPU time between two timer ticks: a wall-clock gap also
  // counts the time a loaded machine gives other processes.
  const cpu = () => { const u = process.threadCpuUsage(); return (u.user + u.system) / 1000; };
  let longest = 0;
  let last = cpu();
  const tick = setInterval(() => {
    const now = cpu();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const t = performance.now();
  const back = await unpackImage(packed, () => turns++);
  const ms = performance.now() - t;
  clearInterval(tick);
  sameExtents(image, back);
  assert.ok(turns > 0, 'yielded at least once');
  console.log(`# rebuilt ${n} extents in ${turns + 1} slices over ${ms.toFixed(0)} ms; most CPU in one turn ${longest.toFixed(1)} ms`);
});
