// Killed builds leave nothing: kill -9 at seeded random points while raw,
// qcow2, zstd and xz images are being written leaves nothing under the
// output name (or the complete image, when the kill came after it was
// named), and the next build leaves nothing else in the directory. The
// named fallback (DISKWRIGHT_NO_TMPFILE=1) is removed on SIGTERM, SIGINT and
// SIGHUP, and after SIGKILL by the next build.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from '../cli/run.ts';
import { pseudoRandom } from './qemu.ts';
import { NO_TMPFILE_ENV, sweepStale } from '../../src/format/atomic-file.ts';

const KILLS = 10;
// Given, it replays a run's delays; else a fresh one, printed.
const SEED = Number(process.env.DISKWRIGHT_KILL_SEED ?? randomInt(1, 2 ** 31));

let work: string;

/**
 * Each format with a tree whose writing takes long enough for kills to land
 * in it (mkfs: the same output path as build, with less to start up). Files
 * of PIECE bytes, under the size the emitter hands to the kernel to copy
 * (copy_file_range), so the write passes through the process as a long one.
 */
const PIECE = 512 << 10;
const CASES = [
  { name: 'raw', image: 'x.img', args: ['--format', 'raw'], kib: 24 << 10 },
  { name: 'qcow2', image: 'x.qcow2', args: ['--format', 'qcow2'], kib: 24 << 10 },
  { name: 'zstd', image: 'x.img.zst', args: ['--compress', 'zstd'], kib: 12 << 10 },
  // xz is slow on incompressible bytes: fewer of them.
  { name: 'xz', image: 'x.img.xz', args: ['--compress', 'xz', '--compress-level', '0'], kib: 512 },
];

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-kill-'));
  for (const c of CASES) {
    const root = path.join(work, `root-${c.name}`);
    fs.mkdirSync(root);
    const data = pseudoRandom(c.kib << 10, 11);
    for (let at = 0, i = 0; at < data.length; at += PIECE, i++) fs.writeFileSync(path.join(root, `data-${String(i).padStart(3, '0')}`), data.subarray(at, at + PIECE));
  }
  fs.writeFileSync(path.join(work, 'raw.json'), JSON.stringify({ root: 'root-raw', partitionTableType: 'none', additionalSpace: '1M' }));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** xorshift32: the kill delays, reproducible from the printed seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

/**
 * Whether process `pid` has its output open in `dir`: an anonymous file
 * (`DIR/#INODE (deleted)`) or its named temporary, not a stale one it sweeps.
 */
function writingIn(pid: number, dir: string): boolean {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      const t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      return t.startsWith(`${dir}/`) && (/^#\d+ \(deleted\)$/.test(t.slice(dir.length + 1)) || t.endsWith(`.diskwright-${pid}.tmp`));
    } catch {
      return false;
    }
  });
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  pid: number;
  /** ms from the output file's opening to the exit. */
  writing: number;
}

/**
 * `diskwright ARGS` writing into `dir`; once it has its output open, waits
 * `delay` ms and sends `signal` (none: lets it finish).
 */
async function run(args: string[], dir: string, opts: { signal?: NodeJS.Signals; delay?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: work, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let done = false;
  void exited.then(() => (done = true));
  let opened = 0;
  while (!done) {
    if (writingIn(child.pid!, dir)) {
      opened = performance.now();
      break;
    }
    await sleep(2);
  }
  if (opened && opts.signal) {
    await sleep(opts.delay ?? 0);
    child.kill(opts.signal);
  }
  const [code, signal] = await exited;
  if (!opts.signal) assert.equal(code, 0, stderr);
  return { code, signal, pid: child.pid!, writing: opened ? performance.now() - opened : 0 };
}

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Ten kills of one format's build, then two whole builds: the output and nothing else. */
async function killFormat(c: (typeof CASES)[number], next: () => number, log: (s: string) => void): Promise<void> {
  const dir = path.join(work, `out-${c.name}`);
  const image = path.join(dir, c.image);
  const args = ['mkfs', 'ext4', `root-${c.name}`, '-o', image, ...c.args];
  const ref = await run(args, dir);
  const want = sha(image);
  fs.rmSync(dir, { recursive: true });
  let midWrite = 0;
  // How long the write takes: the reference's time from opening to exit, cut
  // down whenever a run shows it shorter (a busy machine makes it vary).
  let writing = ref.writing;
  for (let i = 0; i < KILLS; i++) {
    // A seeded fraction of it, mostly inside the write (the time measured includes the exit).
    const delay = next() * writing * 0.7;
    const r = await run(args, dir, { signal: 'SIGKILL', delay });
    if (fs.existsSync(image)) {
      // The kill came after the image was named: then it is whole.
      assert.equal(sha(image), want, `${c.name} kill ${i} (${delay.toFixed(0)} ms): a partial image under the output name`);
      fs.rmSync(image);
      writing = Math.min(writing, r.code === 0 ? r.writing : delay);
    } else {
      assert.equal(r.signal, 'SIGKILL', `${c.name} kill ${i}: exited ${r.code} without an image`);
      midWrite++;
    }
    assert.deepEqual(fs.readdirSync(dir), [], `${c.name} kill ${i}: left in the output directory`);
  }
  log(`${c.name}: ${midWrite} of ${KILLS} kills landed while writing (the write took ~${ref.writing.toFixed(0)} ms, later ~${writing.toFixed(0)} ms)`);
  assert.ok(midWrite >= KILLS / 4, `${c.name}: only ${midWrite} kills landed mid-write`);
  // Twice: the second replaces a complete image (linkat cannot; a rename does).
  await run(args, dir);
  await run(args, dir);
  assert.deepEqual(fs.readdirSync(dir), [c.image]);
  assert.equal(sha(image), want);
}

test(`kill -9 at random points of raw, qcow2, zstd and xz builds leaves no partial output and no temporary file (seed ${SEED})`, async (t) => {
  t.diagnostic(`kill delays seeded with ${SEED} (as fractions of the write time); DISKWRIGHT_KILL_SEED=${SEED} replays them`);
  // One sequence of delays per format, so running them side by side keeps them reproducible.
  const seeds = rng(SEED);
  await Promise.all(CASES.map((c) => killFormat(c, rng(Math.floor(seeds() * 2 ** 32)), (s) => t.diagnostic(s))));
});

const OUTPUTS = ['layout.json', 'nix-support'];

test('the named fallback: removed on SIGTERM, SIGINT and SIGHUP; after kill -9, by the next build', async () => {
  const out = path.join(work, 'out-fallback');
  const build = ['build', 'raw.json', '-o', out];
  const env = { [NO_TMPFILE_ENV]: '1' };
  const temp = (pid: number) => path.join(out, `.nixos.img.diskwright-${pid}.tmp`);
  const killed = await run(build, out, { signal: 'SIGKILL', env });
  assert.equal(killed.signal, 'SIGKILL');
  assert.ok(fs.existsSync(temp(killed.pid)), 'the named temporary is what a kill -9 leaves');
  assert.equal(fs.existsSync(path.join(out, 'nixos.img')), false);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const r = await run(build, out, { signal, env });
    assert.equal(r.signal, signal, `ended by ${signal}`);
    assert.equal(fs.existsSync(temp(r.pid)), false, `${signal} removed its temporary`);
    // The first of them swept the stale one.
    assert.deepEqual(fs.readdirSync(out), []);
  }
  await run(build, out);
  assert.deepEqual(fs.readdirSync(out).sort(), [...OUTPUTS, 'nixos.img'].sort());
});

test('the sweep keeps the temporary files of writers still running', async () => {
  const dir = path.join(work, 'sweep');
  fs.mkdirSync(dir);
  const live = spawn('sleep', ['60']);
  const mine = path.join(dir, `.a.img.diskwright-${live.pid}.tmp`);
  const gone = spawnSync('true').pid;
  const stale = path.join(dir, `.b.img.diskwright-${gone}.tmp`);
  const staleNew = path.join(dir, `.b.img.diskwright-${gone}.new`);
  const other = path.join(dir, `b.img.diskwright-${gone}.tmp`); // not one of ours: no leading dot
  for (const f of [mine, stale, staleNew, other]) fs.writeFileSync(f, 'x');
  sweepStale(dir);
  assert.deepEqual(fs.readdirSync(dir).sort(), [path.basename(mine), path.basename(other)].sort());
  live.kill('SIGKILL');
  await once(live, 'exit');
  sweepStale(dir);
  assert.deepEqual(fs.readdirSync(dir), [path.basename(other)]);
});
