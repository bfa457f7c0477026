// planImage plans on a worker thread: the plan it resolves with writes the
// bytes `diskwright build` writes; an abort stops the worker; a mistake in the
// config arrives as the DiskwrightError the worker threw; a prepared partition
// image (lazy extents) is planned on the caller's thread; and the event loop
// keeps turning through planning and writing a tree of 20k files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskwrightError, planExt4, planImage, writeImage, type DirEntry, type ImageConfigInput } from '../../src/api/index.ts';
import { isLazyExtent } from '../../src/image/extent-map.ts';
import { planBuild } from '../../src/api/build.ts';
import { configOf } from '../../src/config/load.ts';
import { diskwrightIn } from '../cli/run.ts';
import { measureTurns, type Turns } from './turns.ts';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-api-plan-'));
  fs.mkdirSync(path.join(work, 'root/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'root/etc/motd'), 'hello\n');
  fs.writeFileSync(path.join(work, 'root/big'), Buffer.alloc(3 << 20, 7));
  fs.mkdirSync(path.join(work, 'esp/EFI'), { recursive: true });
  fs.writeFileSync(path.join(work, 'esp/EFI/note'), 'esp\n');
  // The many-file tree: 20,000 files of 1-3,000 bytes in 200 directories.
  for (let d = 0; d < 200; d++) {
    const dir = path.join(work, 'many', `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(dir, `f${f}`), `${d}/${f}\n`.repeat(1 + ((d * 100 + f) * 7919) % 400));
  }
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** `diskwright build` of `config` written as a JSON file in `work`: the image's bytes. */
function cliBuild(name: string, config: object): Buffer {
  const file = path.join(work, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  const out = path.join(work, `cli-${name}`);
  diskwrightIn(work, ['build', file, '-o', out, '--quiet']);
  const layout = JSON.parse(fs.readFileSync(path.join(out, 'layout.json'), 'utf8')) as { image: string };
  const bytes = fs.readFileSync(path.join(out, layout.image));
  fs.rmSync(out, { recursive: true });
  return bytes;
}

async function apiBuild(config: ImageConfigInput, format?: 'qcow2'): Promise<Buffer> {
  const plan = await planImage(config, { baseDir: work });
  const out = path.join(work, 'api.img');
  await writeImage(plan.disk, out, format ? { format } : {});
  const bytes = fs.readFileSync(out);
  fs.rmSync(out);
  return bytes;
}

test('planImage + writeImage write the bytes `diskwright build` writes', async () => {
  const efi: ImageConfigInput = { partitionTableType: 'efi', bootSize: '16M', additionalSpace: '1M', root: 'root', espContents: [{ source: 'esp/', target: '/' }], contents: [{ source: 'many/d1', target: '/srv/d1' }] };
  assert.ok((await apiBuild(efi)).equals(cliBuild('efi', efi)), 'efi raw');
  const gpt: ImageConfigInput = { partitions: [{ label: 'root', type: 'root', fs: 'ext4', root: 'root', freeSpace: '1M' }, { label: 'data', fs: 'vfat', size: '4M', contents: [{ source: 'esp/', target: '/' }] }], format: 'qcow2' };
  assert.ok((await apiBuild(gpt, 'qcow2')).equals(cliBuild('gpt', gpt)), 'custom partitions, qcow2');
});

test('a mistake in the config arrives as the DiskwrightError the planner threw', async () => {
  const config: ImageConfigInput = { partitionTableType: 'efi', root: 'root', contents: [{ source: 'no-such-dir', target: '/x' }] };
  const err = await planImage(config, { baseDir: work }).then(() => assert.fail('planned'), (e: unknown) => e);
  assert.ok(err instanceof DiskwrightError, String(err));
  assert.equal(err.code, 'SOURCE_MISSING');
  assert.match(err.message, /source no-such-dir does not exist/);
  // With its data, as the same planning on this thread throws it.
  const small: ImageConfigInput = { partitionTableType: 'efi', root: 'root', diskSize: 20 };
  const loaded = configOf(small, 'config', work, 'config');
  const here = (() => { try { planBuild({ config: loaded.config, given: loaded.given, baseDir: work, file: 'config' }); } catch (e) { return e; } })();
  const there = await planImage(small, { baseDir: work }).then(() => assert.fail('planned'), (e: unknown) => e);
  assert.ok(here instanceof DiskwrightError && there instanceof DiskwrightError, String(there));
  assert.equal(there.code, 'SIZE_TOO_SMALL');
  assert.deepEqual([there.code, there.message, there.data], [here.code, here.message, here.data]);
  assert.equal(typeof there.data.minimum, 'number');
  await assert.rejects(planImage({ partitionTableType: 'efi', bogus: 1 } as never), (e: unknown) => e instanceof DiskwrightError && e.code === 'CONFIG_INVALID');
});

/** Threads of this process (Linux): a worker left running keeps its own. */
const threads = () => Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);

test('aborting mid-plan rejects with an AbortError and leaves no worker running', async () => {
  const config: ImageConfigInput = { partitionTableType: 'efi', root: 'many' };
  await planImage({ partitionTableType: 'efi', root: 'root' }, { baseDir: work }); // the thread pool as it stays
  const before = threads();
  const ac = new AbortController();
  const seen: number[] = [];
  await assert.rejects(
    planImage(config, { baseDir: work, signal: ac.signal, onProgress: (e) => {
      seen.push(e.done);
      // Aborted once the scan is under way.
      if (e.phase === 'scanning' && e.done > 0) ac.abort();
    } }),
    { name: 'AbortError' },
  );
  assert.ok(seen.some((d) => d > 0), 'progress came from the worker before the abort');
  assert.ok(threads() <= before, `threads: ${threads()} after, ${before} before`);
  await assert.rejects(planImage(config, { baseDir: work, signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('a prepared partition image (lazy extents) is planned on the caller\'s thread, with the same bytes as build', async () => {
  const meta = { uid: 0, gid: 0, mtimeSec: 1, mtimeNsec: 0, xattrs: [] };
  const content = Buffer.from('prepared\n'.repeat(5000));
  const tree: DirEntry = { type: 'dir', mode: 0o755, ...meta, children: new Map([['f', { type: 'file', mode: 0o644, ...meta, size: content.length, sourcePath: Buffer.from('(memory)'), content }]]) };
  await writeImage(planExt4(tree, { size: 'auto', epoch: 1 }).image, path.join(work, 'part.img.zst'), { compress: 'zstd' });
  const config: ImageConfigInput = { partitions: [{ label: 'a', image: 'part.img.zst' }, { label: 'b', fs: 'ext4', root: 'root' }] };
  const plan = await planImage(config, { baseDir: work });
  assert.ok(plan.disk.extents.some(isLazyExtent), 'the plan reads the .zst lazily');
  assert.ok((await apiBuild(config)).equals(cliBuild('prepared', config)));
});

/**
 * The bounds. Wall-clock gaps between 1 ms timer ticks also count the time
 * the OS gives other processes (at a load of 10 on two cores, 250 ms whatever
 * this thread does), so the tight bound is on this thread's CPU time between
 * two ticks (process.threadCpuUsage), as in write.test.ts; the wall-clock
 * gap need only stay below the control's: planBuild of the same tree run
 * synchronously, its whole second or more in one turn.
 */
const MAX_TURN_CPU_MS = 50;

test('planning and writing 20k files keep the event loop turning', async () => {
  const config: ImageConfigInput = { partitionTableType: 'efi', root: 'many', additionalSpace: '1M' };
  const loaded = configOf(config, 'many', work, 'many');
  const t0 = performance.now();
  planBuild({ config: loaded.config, given: loaded.given, baseDir: work });
  const control = performance.now() - t0;
  const [plan, planned] = await measureTurns(() => planImage(config, { baseDir: work }));
  const [, written] = await measureTurns(() => writeImage(plan.disk, path.join(work, 'many.img')));
  fs.rmSync(path.join(work, 'many.img'));
  const show = (t: Turns) => `longest gap ${t.gapMs.toFixed(1)} ms (${t.cpuMs.toFixed(1)} ms CPU in one turn) over ${t.ms.toFixed(0)} ms`;
  console.log(`# event loop: planBuild (sync) ${control.toFixed(0)} ms in one turn; planImage ${show(planned)}; writeImage ${show(written)}; ${plan.disk.extents.length} extents`);
  assert.ok(planned.cpuMs < MAX_TURN_CPU_MS && written.cpuMs < MAX_TURN_CPU_MS, `CPU in one turn: planImage ${planned.cpuMs.toFixed(1)} ms, writeImage ${written.cpuMs.toFixed(1)} ms`);
  assert.ok(planned.gapMs < control && written.gapMs < control, `gaps of ${planned.gapMs.toFixed(1)} and ${written.gapMs.toFixed(1)} ms; synchronous planning ${control.toFixed(0)} ms`);
});
