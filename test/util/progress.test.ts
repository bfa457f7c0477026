// Progress counters: silent and cheap without a listener, at most ~1000
// reports a phase with one, monotonic, ending at the total; counts without a
// total shared across the calls of one piece of work; contexts kept apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPhase, tally, throwIfAborted, withProgress, type ProgressEvent } from '../../src/util/progress.ts';

test('without a listener a phase reports nothing', () => {
  const c = startPhase('writing', 100);
  c.add(50);
  c.end();
  assert.equal(tally('scanning', 1).add, startPhase('writing', 1).add);
});

test('a phase with a total: from 0, monotonic, about every 0.1 %, ending at the total', () => {
  const events: ProgressEvent[] = [];
  withProgress({ onProgress: (e) => events.push(e) }, () => {
    const c = startPhase('writing', 10_000_000);
    for (let i = 0; i < 10_000; i++) c.add(1000);
    c.end();
  });
  assert.deepEqual(events[0], { phase: 'writing', done: 0, total: 10_000_000 });
  assert.deepEqual(events.at(-1), { phase: 'writing', done: 10_000_000, total: 10_000_000 });
  assert.ok(events.length >= 900 && events.length <= 1002, String(events.length));
  for (let i = 1; i < events.length; i++) assert.ok(events[i].done >= events[i - 1].done);
});

test('a tally without a total keeps counting across calls; concurrent work keeps its own', async () => {
  const a: ProgressEvent[] = [];
  const b: ProgressEvent[] = [];
  const run = (into: ProgressEvent[], n: number) => withProgress({ onProgress: (e) => into.push(e) }, async () => {
    for (let i = 0; i < n; i++) {
      tally('scanning', 10).add(5);
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  await Promise.all([run(a, 40), run(b, 20)]);
  assert.equal(a.at(-1)!.done, 200);
  assert.equal(b.at(-1)!.done, 100);
  assert.ok(a.every((e) => e.phase === 'scanning' && e.total === undefined));
});

test('an aborted signal throws an AbortError carrying its reason', () => {
  const ac = new AbortController();
  throwIfAborted(ac.signal);
  ac.abort('stop');
  assert.throws(() => throwIfAborted(ac.signal), (e: Error) => e.name === 'AbortError' && e.cause === 'stop');
  assert.throws(() => withProgress({ signal: ac.signal }, () => throwIfAborted()), { name: 'AbortError' });
});

test('NAR hashing and container layers report their phases', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { narDigest, narNodeOfPath } = await import('../../src/nix/nar.ts');
  const { digestImage } = await import('../../src/format/hash-sink.ts');
  const { emitAsync } = await import('../../src/format/raw.ts');
  const { hashingSink } = await import('../../src/format/hash-sink.ts');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-progress-nar-'));
  try {
    fs.writeFileSync(path.join(dir, 'f'), Buffer.alloc(3 << 20, 1));
    const events: ProgressEvent[] = [];
    const d = withProgress({ onProgress: (e) => events.push(e) }, () => narDigest(narNodeOfPath(dir)));
    const hashing = events.filter((e) => e.phase === 'hashing');
    assert.ok(hashing.length >= 2 && hashing.at(-1)!.done <= d.narSize && hashing.at(-1)!.done >= 2 << 20, JSON.stringify(hashing));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const layer = { size: 4 << 20, extents: [{ offset: 0, length: 4 << 20, buffer: Buffer.alloc(4 << 20, 7) }] };
  const events: ProgressEvent[] = [];
  const sync = withProgress({ onProgress: (e) => events.push(e) }, () => digestImage(layer, 'layers'));
  assert.ok(events.length >= 2 && events.every((e) => e.phase === 'layers' && e.total === 4 << 20));
  // The async emitter writes the same bytes.
  const sink = hashingSink();
  await emitAsync(layer, sink);
  assert.equal(sink.digest(), sync.digest);
});
