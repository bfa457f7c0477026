// The library API from data to any sink: a FileTree or a config object is
// planned (the Image comes back before anything is written), then written to
// a path, a Writable or as chunks, with progress and cancellation. Every sink
// gives the bytes the CLI's synchronous writer gives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PassThrough, Writable } from 'node:stream';
import {
  planExt4, planImage, writeImage, imageChunks, buildImage, loadConfig, writeImageFile, digestImage,
  type DirEntry, type Image, type ProgressEvent,
} from '../../src/api/index.ts';
import { writeOutput } from '../../src/format/output.ts';
import { measureTurns, type Turns } from './turns.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-api-write-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const meta = { uid: 0, gid: 0, mtimeSec: 1, mtimeNsec: 0, xattrs: [] };

/** A FileTree made in memory: no source directory at all. */
function memoryTree(): DirEntry {
  const file = (text: string, n: number) => {
    const content = Buffer.from(text.repeat(n));
    return { type: 'file' as const, mode: 0o644, ...meta, size: content.length, sourcePath: Buffer.from('(memory)'), content };
  };
  const etc: DirEntry = { type: 'dir', mode: 0o755, ...meta, children: new Map([['hostname', file('api\n', 1)]]) };
  return { type: 'dir', mode: 0o755, ...meta, children: new Map<string, DirEntry | ReturnType<typeof file>>([['etc', etc], ['data', file('0123456789abcdef', 300_000)]]) };
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** A Writable that keeps what it is given. */
function memorySink(): { stream: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const stream = new Writable({ write(c: Buffer, _e, cb) { parts.push(c); cb(); } });
  return { stream, bytes: () => Buffer.concat(parts) };
}

/** Bytes of a lazy producer: a large image that needs no source file. */
function patternImage(size: number): Image {
  return { size, extents: [{ offset: 4096, length: size - 8192, from: 0, fill: (dst, off, at, len) => { for (let i = 0; i < len; i += 4096) dst.fill((at + i) >> 12 & 0xff, off + i, off + Math.min(len, i + 4096)); } }] };
}

test('a FileTree planned in memory: size and extents before writing; path, Writable and chunks give the same bytes as the CLI writer', async () => {
  const { image, stats } = planExt4(memoryTree(), { size: 'auto', epoch: 1, label: 'api' });
  assert.ok(image.size > 4_800_000 && image.extents.length > 3, `planned ${image.size} bytes in ${image.extents.length} extents`);
  assert.equal(stats.usedInodes >= 4, true);
  const ref = path.join(work, 'ref.img');
  writeImageFile(image, ref);
  const expected = fs.readFileSync(ref);

  const out = path.join(work, 'tree.img');
  const r = await writeImage(image, out);
  assert.ok(fs.readFileSync(out).equals(expected));
  assert.equal(r?.apparentBytes, image.size);
  assert.ok(r!.allocatedBytes < image.size, 'holes stay holes');
  const fsck = spawnSync('e2fsck', ['-fn', out], { encoding: 'utf8' });
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);

  const m = memorySink();
  assert.equal(await writeImage(image, m.stream), undefined);
  assert.ok(m.bytes().equals(expected));
  assert.ok((await collect(imageChunks(image))).equals(expected));
});

test('every format and compression through chunks equals the synchronous stream writer', async () => {
  const { image } = planExt4(memoryTree(), { size: 'auto', epoch: 1 });
  for (const o of [{ format: 'qcow2' }, { format: 'vdi' }, { format: 'vpc' }, { format: 'raw', compress: 'zstd' }, { format: 'raw', compress: 'xz', compressLevel: 1 }] as const) {
    const file = path.join(work, `sync-${o.format}`);
    writeOutput(image, { format: o.format, compress: 'compress' in o ? o.compress : undefined, level: 'compressLevel' in o ? o.compressLevel : undefined, seed: 'diskwright', epoch: 1 }, file);
    const got = await collect(imageChunks(image, o));
    assert.ok(got.equals(fs.readFileSync(file)), JSON.stringify(o));
    const viaPath = path.join(work, `async-${o.format}`);
    await writeImage(image, viaPath, o);
    assert.ok(fs.readFileSync(viaPath).equals(got), `${JSON.stringify(o)} to a path`);
  }
});

test('a config object: planImage returns the disk and layout, writeImage writes what build writes', async () => {
  fs.mkdirSync(path.join(work, 'root/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'root/etc/motd'), 'hello\n');
  const config = { partitionTableType: 'efi', bootSize: '16M', additionalSpace: '1M', root: 'root' } as const;
  const events: ProgressEvent[] = [];
  const plan = await planImage(config, { baseDir: work, onProgress: (e) => events.push(e) });
  assert.equal(plan.layout.table, 'gpt');
  assert.equal(plan.disk.size, plan.layout.size);
  assert.ok(events.some((e) => e.phase === 'scanning' && e.done >= 0));
  const out = path.join(work, 'from-object.img');
  await writeImage(plan.disk, out);
  fs.writeFileSync(path.join(work, 'c.json'), JSON.stringify(config));
  const loaded = await loadConfig(path.join(work, 'c.json'));
  const built = buildImage({ ...loaded, outDir: path.join(work, 'built') });
  assert.ok(fs.readFileSync(out).equals(fs.readFileSync(built.imagePath)));
  await assert.rejects(planImage({ partitionTableType: 'efi', bogus: 1 } as never), /config: .*bogus/);
});

test('onProgress: one phase, done never decreasing, total given, ending at total', async () => {
  const image = patternImage(64 << 20);
  const events: ProgressEvent[] = [];
  await writeImage(image, path.join(work, 'progress.img'), { onProgress: (e) => events.push(e) });
  assert.ok(events.length > 10 && events.length <= 1100, `${events.length} events`);
  for (const [i, e] of events.entries()) {
    assert.equal(e.phase, 'writing');
    assert.equal(e.total, image.size - 8192);
    if (i) assert.ok(e.done >= events[i - 1].done);
  }
  assert.equal(events.at(-1)!.done, events.at(-1)!.total);
  const z: ProgressEvent[] = [];
  await collect(imageChunks(patternImage(8 << 20), { compress: 'zstd', onProgress: (e) => z.push(e) }));
  assert.ok(z.length > 1 && z.every((e) => e.phase === 'compressing'));
});

test('AbortSignal: rejects with an AbortError and leaves no file, for a path, a Writable and chunks', async () => {
  const image = patternImage(256 << 20);
  const dir = path.join(work, 'abort');
  const out = path.join(dir, 'x.img');
  const ac = new AbortController();
  await assert.rejects(writeImage(image, out, { signal: ac.signal, onProgress: (e) => { if (e.done > 8 << 20) ac.abort(); } }), { name: 'AbortError' });
  assert.deepEqual(fs.readdirSync(dir), []);
  // A named temporary file (file systems without O_TMPFILE) is removed too.
  process.env.DISKWRIGHT_NO_TMPFILE = '1';
  try {
    const ac2 = new AbortController();
    const p = writeImage(image, out, { signal: ac2.signal });
    setTimeout(() => ac2.abort(), 20);
    await assert.rejects(p, { name: 'AbortError' });
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    delete process.env.DISKWRIGHT_NO_TMPFILE;
  }
  const ac3 = new AbortController();
  const sink = new PassThrough();
  sink.resume();
  const p3 = writeImage(image, sink, { signal: ac3.signal });
  setTimeout(() => ac3.abort(), 20);
  await assert.rejects(p3, { name: 'AbortError' });
  const ac4 = new AbortController();
  let seen = 0;
  await assert.rejects(async () => {
    for await (const c of imageChunks(image, { signal: ac4.signal })) {
      seen += c.length;
      if (seen > 4 << 20) ac4.abort();
    }
  }, { name: 'AbortError' });
  assert.ok(seen < 16 << 20, 'stopped soon after the abort');
  await assert.rejects(writeImage(image, out, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  assert.deepEqual(fs.readdirSync(dir), []);
});

/**
 * The bound. Each turn of the async writer copies at most 1 MiB and hands one
 * 1 MiB write to libuv's threads: about a millisecond of this thread's CPU.
 * The wall-clock delay a timer sees (monitorEventLoopDelay) also counts the
 * time the OS gives other processes, which on a loaded two-core CI machine
 * reaches a hundred ms and more whatever this code does; so the hard bound is
 * on this thread's own CPU time between two turns of the loop
 * (process.threadCpuUsage, which a thread waiting for a core does not
 * accrue): 50 ms. Measured here with a load average of 18 on two cores
 * (a virtual machine's CPU time swells with contention too), the longest
 * turn took 5-18 ms; the synchronous emitter (the control) spends its whole
 * pass in one turn. The wall-clock delay must
 * stay below the control's too.
 */
const MAX_TURN_CPU_MS = 50;

/** The turns of `work` (turns.ts). */
const measureLag = async (work: () => Promise<unknown> | unknown): Promise<Turns> => (await measureTurns(work))[1];

const show = (l: Turns) => `${l.cpuMs.toFixed(1)} ms CPU in one turn, max event-loop delay ${l.delayMs.toFixed(1)} ms, over ${l.ms.toFixed(0)} ms`;

test(`writing 128 MiB keeps the event loop turning (< ${MAX_TURN_CPU_MS} ms of CPU per turn)`, async () => {
  const image = patternImage(128 << 20);
  // The control: the synchronous emitter hashing 512 MiB (digestImage), 330 ms
  // of CPU in one turn here, several times the bound even on a fast idle machine.
  const control = await measureLag(() => digestImage(patternImage(512 << 20)));
  assert.ok(control.cpuMs > MAX_TURN_CPU_MS, `the synchronous writer holds the loop (${show(control)}): the measure sees blocking`);
  const a = await measureLag(() => writeImage(image, path.join(work, 'lag.img')));
  assert.ok(a.cpuMs < MAX_TURN_CPU_MS && a.delayMs < control.delayMs, `to a path: ${show(a)}; synchronous: ${show(control)}`);
  const sink = new PassThrough();
  sink.resume();
  const b = await measureLag(() => writeImage(image, sink, { format: 'qcow2' }));
  assert.ok(b.cpuMs < MAX_TURN_CPU_MS && b.delayMs < control.delayMs, `qcow2 to a Writable: ${show(b)}; synchronous: ${show(control)}`);
  const c = await measureLag(() => writeImage(image, path.join(work, 'lag.img.zst'), { compress: 'zstd' }));
  assert.ok(c.cpuMs < MAX_TURN_CPU_MS && c.delayMs < control.delayMs, `zstd to a path: ${show(c)}; synchronous: ${show(control)}`);
  console.log(`# event loop: sync ${show(control)}; async path ${show(a)}; async qcow2 Writable ${show(b)}; async zstd ${show(c)}`);
  fs.rmSync(path.join(work, 'lag.img'));
  fs.rmSync(path.join(work, 'lag.img.zst'));
});
