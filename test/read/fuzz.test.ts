// Hostile input for every reader: small images built by our own writers
// (bare ext4 and FAT, MBR and GPT disks holding both, and those disks as
// qcow2, VHD, VDI and .zst), mutated where their metadata lies (byte flips,
// huge size and count fields, zeroed structures, truncation), each through
// inspect, ls -R, cat, extract, diff and convert in worker threads. Nothing
// may hang (20 s per image, then worker.terminate()), throw anything but a
// DiskwrightError, print more than one line, or fail to name the image.
// Seeded: DISKWRIGHT_FUZZ_SEED=... reproduces a run; the seed is printed
// (DISKWRIGHT_FUZZ_IMAGES=N runs N images instead of 320).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { planExt4Image, planVfatImage } from '../../src/api/mkfs.ts';
import { writeOutput } from '../../src/format/output.ts';
import { composeDisk } from '../../src/image/compose.ts';
import type { Image } from '../../src/image/extent-map.ts';
import { encodeTable } from '../../src/partition/table.ts';
import { GPT_TYPE } from '../../src/partition/types.ts';
import { Ext4Reader } from '../../src/read/ext4.ts';
import { FatReader } from '../../src/read/fat.ts';
import { fileSource, subSource } from '../../src/read/source.ts';
import { pseudoRandom } from '../oracle/fixture.ts';
import { diskwright } from '../cli/run.ts';
import type { FuzzJob, FuzzOutcome } from './fuzz-worker.ts';

const SEED = process.env.DISKWRIGHT_FUZZ_SEED || 'diskwright-fuzz-1';
const IMAGES = Number(process.env.DISKWRIGHT_FUZZ_IMAGES) || 320;
const WORKERS = 2;
const LIMIT_MS = 20_000;
const MiB = 1 << 20;

/** A seeded stream of numbers drawn from pseudoRandom's bytes. */
class Rng {
  private buf: Buffer = Buffer.alloc(0);
  private at = 0;
  private block = 0;
  private readonly seed: string;
  constructor(seed: string) {
    this.seed = seed;
  }
  u32(): number {
    if (this.at + 4 > this.buf.length) {
      this.buf = pseudoRandom(`${this.seed}/${this.block++}`, 1 << 16);
      this.at = 0;
    }
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  below(n: number): number {
    return Math.floor((this.u32() / 2 ** 32) * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)];
  }
}

/** A byte range of a base file worth damaging, and what it is. */
type Region = [offset: number, length: number, what: string];

interface Base {
  name: string;
  file: string;
  family: string;
  volumes: (file: string) => string[];
  regions: Region[];
}

let work: string;
const bases: Base[] = [];

function writeSources(dir: string, symlinks: boolean): void {
  fs.mkdirSync(path.join(dir, 'etc/conf.d'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'many'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/hostname'), 'fuzz\n');
  fs.writeFileSync(path.join(dir, 'etc/conf.d/a.conf'), 'x=1\n'.repeat(300));
  fs.writeFileSync(path.join(dir, 'blob.bin'), pseudoRandom('fuzz blob', 300 * 1024));
  // A hole between two pieces of data.
  const sparse = fs.openSync(path.join(dir, 'sparse.bin'), 'w');
  fs.writeSync(sparse, Buffer.alloc(4096, 1), 0, 4096, 0);
  fs.writeSync(sparse, Buffer.alloc(4096, 2), 0, 4096, 512 * 1024);
  fs.closeSync(sparse);
  // Enough long names for a directory of several blocks (an htree on ext4, a chain of clusters on FAT).
  for (let i = 0; i < 120; i++) fs.writeFileSync(path.join(dir, 'many', `a-rather-long-file-name-number-${String(i).padStart(3, '0')}.txt`), `${i}\n`);
  if (symlinks) {
    fs.symlinkSync('etc/hostname', path.join(dir, 'link'));
    fs.symlinkSync('x'.repeat(200), path.join(dir, 'slowlink'));
  }
}

/** Regions of a filesystem at `base` in the file: its metadata and directories, as its own reader maps them (the journal left out: nothing reads it). */
function fsRegions(file: string, base: number, size: number, kind: 'ext4' | 'fat'): Region[] {
  const src = fileSource(file);
  try {
    const part = subSource(src, base, size);
    const r = kind === 'ext4' ? new Ext4Reader(part) : new FatReader(part);
    const out: Region[] = [];
    for (const x of r.allocation()) {
      if (x.what === 'journal' || x.what.startsWith('reserved GDT')) continue;
      if (x.kind === 'data' && !/directory|symlink/.test(x.what)) continue;
      // Inode tables are mostly unused: their first 64 KiB hold every inode in use here.
      out.push([base + x.offset, Math.min(x.length, 65536), `${kind} ${x.what}`]);
    }
    return out;
  } finally {
    src.close();
  }
}

function tableRegions(kind: 'mbr' | 'gpt', size: number): Region[] {
  if (kind === 'mbr') return [[0, 512, 'MBR']];
  return [[0, 512, 'protective MBR'], [512, 512, 'GPT header'], [1024, 512, 'GPT entries'], [size - 512, 512, 'backup GPT header'], [size - 33 * 512, 512, 'backup GPT entries']];
}

/** Regions of a container file: its headers and tables, found as its reader finds them. */
function containerRegions(file: string, format: string): Region[] {
  const b = fs.readFileSync(file);
  switch (format) {
    case 'qcow2': {
      const cs = 2 ** b.readUInt32BE(20);
      const l1 = Number(b.readBigUInt64BE(40));
      const l1Size = b.readUInt32BE(36);
      const out: Region[] = [[0, 112, 'qcow2 header'], [l1, l1Size * 8, 'qcow2 L1 table'], [Number(b.readBigUInt64BE(48)), 64, 'qcow2 refcount table']];
      for (let i = 0; i < l1Size; i++) {
        const l2 = Number(b.readBigUInt64BE(l1 + 8 * i) & 0x00fffffffffffe00n);
        if (l2) out.push([l2, Math.min(cs, 4096), 'qcow2 L2 table']);
      }
      return out;
    }
    case 'vpc': {
      const dyn = Number(b.readBigUInt64BE(16));
      const bat = Number(b.readBigUInt64BE(dyn + 16));
      return [[0, 512, 'VHD footer copy'], [b.length - 512, 512, 'VHD footer'], [dyn, 1024, 'VHD dynamic header'], [bat, b.readUInt32BE(dyn + 28) * 4, 'VHD BAT']];
    }
    case 'vdi':
      return [[0, 512, 'VDI header'], [b.readUInt32LE(0x154), b.readUInt32LE(0x180) * 4, 'VDI block map']];
    default: {
      // zstd: every frame's header (standard and skippable frames alike start with a 4-byte magic).
      const out: Region[] = [];
      for (let i = 0; i + 4 <= b.length; i++) {
        const m = b.readUInt32LE(i);
        if (m === 0xfd2fb528 || (m & 0xfffffff0) >>> 0 === 0x184d2a50) out.push([i, 18, 'zstd frame header']);
      }
      return out;
    }
  }
}

function write(image: Image, file: string, format = 'raw', compress = 'none'): string {
  writeOutput(image, { format: format as 'raw', compress: compress as 'none', seed: 'fuzz', epoch: 1 }, file);
  return file;
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-fuzz-'));
  const src = path.join(work, 'src');
  const fatSrc = path.join(work, 'fat-src');
  writeSources(src, true);
  writeSources(fatSrc, false);
  const ext4 = planExt4Image({ sources: [src], epoch: 1, seed: 'fuzz', journal: false, freeBytes: 256 * 1024 }).image;
  const fat12 = planVfatImage({ sources: [fatSrc], epoch: 1, seed: 'fuzz', label: 'FUZZ' }).image;
  const fat16 = planVfatImage({ sources: [fatSrc], epoch: 1, seed: 'fuzz', fatType: 16, size: 2.5 * MiB, sectorsPerCluster: 1 }).image;
  const bare = (file: string) => [file];
  const two = (file: string) => [`${file}:1`, `${file}:2`];

  const add = (name: string, file: string, family: string, volumes: (f: string) => string[], regions: Region[]) =>
    bases.push({ name, file, family, volumes, regions });
  const ext4File = write(ext4, path.join(work, 'ext4.img'));
  add('ext4', ext4File, 'ext4', bare, fsRegions(ext4File, 0, ext4.size, 'ext4'));
  const fat12File = write(fat12, path.join(work, 'fat12.img'));
  add('fat12', fat12File, 'FAT', bare, fsRegions(fat12File, 0, fat12.size, 'fat'));
  const fat16File = write(fat16, path.join(work, 'fat16.img'));
  add('fat16', fat16File, 'FAT', bare, fsRegions(fat16File, 0, fat16.size, 'fat'));

  // Disks: the FAT12 filesystem and the ext4 one in two partitions.
  const align = (n: number) => Math.ceil(n / MiB) * MiB;
  const p1 = MiB;
  const p2 = p1 + align(fat12.size);
  const diskSize = p2 + align(ext4.size) + MiB;
  for (const kind of ['mbr', 'gpt'] as const) {
    const table = encodeTable({
      kind,
      diskSize,
      seed: 'fuzz',
      partitions: [
        { name: 'esp', start: p1, size: fat12.size, typeGuid: GPT_TYPE.microsoftBasicData },
        { name: 'root', start: p2, size: align(ext4.size), typeGuid: GPT_TYPE.linuxData },
      ],
    });
    const disk = composeDisk(diskSize, [{ offset: p1, image: fat12 }, { offset: p2, image: ext4 }], table);
    const file = write(disk, path.join(work, `${kind}.img`));
    const inner = [...tableRegions(kind, diskSize), ...fsRegions(file, p1, fat12.size, 'fat'), ...fsRegions(file, p2, ext4.size, 'ext4')];
    add(kind, file, kind.toUpperCase(), two, inner);
    // The container formats hold the GPT disk (the MBR one as VHD and .zst): their own tables are the targets.
    const containers: Array<[string, string, string, string]> = kind === 'gpt'
      ? [['qcow2', 'qcow2', 'none', 'qcow2'], ['vdi', 'vdi', 'none', 'vdi']]
      : [['vhd', 'vpc', 'none', 'vpc'], ['img.zst', 'raw', 'zstd', 'zstd']];
    for (const [ext, format, compress, family] of containers) {
      const cfile = write(disk, path.join(work, `${kind}.${ext}`), format, compress);
      add(`${kind}.${ext}`, cfile, family, two, containerRegions(cfile, family));
    }
  }
});

after(() => {
  // DISKWRIGHT_FUZZ_KEEP=1 keeps the bases and the images that failed, to look at.
  if (work && !process.env.DISKWRIGHT_FUZZ_KEEP) fs.rmSync(work, { recursive: true, force: true });
});

const HUGE_32 = [0xffffffff, 0x7fffffff, 0x80000000, 0x10000, 0xfffe, 0, 1];

/** A mutated copy of `base`: the file and what was done to it. */
function mutate(base: Base, rng: Rng, file: string): string {
  const bytes = fs.readFileSync(base.file);
  const done: string[] = [];
  const region = () => rng.pick(base.regions);
  const kind = rng.below(100);
  let buf = bytes;
  const steps = 1 + rng.below(3);
  for (let s = 0; s < steps; s++) {
    const [off, len, what] = region();
    if (kind < 15 && /inode table|directory/.test(what)) {
      // A size field made huge where one lies: ext4 i_size_lo/i_size_high of an inode, FAT DIR_FileSize of an entry.
      const ext4 = what.includes('inode table');
      const slot = ext4 ? 256 : 32;
      const at = off + rng.below(Math.floor(len / slot)) * slot;
      if (ext4) {
        buf.writeUInt32LE(rng.pick([0xffffffff, 0, 0x1000]), at + 0x04);
        buf.writeUInt32LE(rng.pick([0x7fffffff, 0x1000, 0x100, 1]), at + 0x6c);
      } else buf.writeUInt32LE(rng.pick([0xffffffff, 0x7fffffff, 0x10000]), at + 28);
      done.push(`huge size at ${at} in ${what}`);
    } else if (kind < 45) {
      // Flip a few bytes.
      const n = 1 + rng.below(8);
      for (let i = 0; i < n; i++) {
        const at = off + rng.below(len);
        if (at < buf.length) buf[at] ^= 1 + rng.below(255);
      }
      done.push(`flip ${n} in ${what}`);
    } else if (kind < 85) {
      // A size, count or pointer field made huge (or zero).
      const at = off + (rng.below(len) & ~3);
      if (at + 8 > buf.length) continue;
      const v = rng.pick(HUGE_32);
      const w = rng.below(3);
      if (w === 0) buf.writeUInt32LE(v, at);
      else if (w === 1) buf.writeUInt32BE(v, at);
      else buf.writeUInt16LE(v & 0xffff, at);
      if (rng.below(4) === 0 && at + 8 <= buf.length) buf.writeUInt32LE(0xffffffff, at + 4);
      done.push(`field ${v.toString(16)} at ${at} in ${what}`);
    } else if (kind < 92) {
      buf.fill(0, off, Math.min(buf.length, off + Math.min(len, 512)));
      done.push(`zero ${what}`);
    } else {
      // Truncated: inside a structure, or anywhere.
      const cut = rng.below(2) ? off + rng.below(len) : rng.below(buf.length);
      buf = buf.subarray(0, Math.max(1, cut));
      done.push(`truncate at ${cut} (${what})`);
      break;
    }
  }
  fs.writeFileSync(file, buf);
  return done.join(', ');
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

function spawn(): Worker {
  return new Worker(new URL('./fuzz-worker.ts', import.meta.url), {
    // Metadata of a few MiB needs a few MiB: far less than this; more is a memory bomb.
    resourceLimits: { maxOldGenerationSizeMb: 384, maxYoungGenerationSizeMb: 48 },
    stdout: true,
    stderr: true,
  });
}

/** Runs `job` on the worker; resolves with its outcomes, or a failure for a hang or a dead worker. */
function run(slot: Slot, job: FuzzJob): Promise<{ outcomes: FuzzOutcome[]; failure?: string }> {
  return new Promise((resolve) => {
    const w = slot.worker;
    let settled = false;
    const finish = (r: { outcomes: FuzzOutcome[]; failure?: string }, replace: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
      if (replace) {
        void w.terminate();
        slot.worker = spawn();
      }
      resolve(r);
    };
    const timer = setTimeout(() => finish({ outcomes: [], failure: `no answer in ${LIMIT_MS / 1000} s (a hang)` }, true), LIMIT_MS);
    const onMessage = (m: { id: number; outcomes: FuzzOutcome[] }) => finish({ outcomes: m.outcomes }, false);
    const onError = (e: Error) => finish({ outcomes: [], failure: `the worker died: ${e.stack ?? e}` }, true);
    const onExit = (code: number) => finish({ outcomes: [], failure: `the worker exited (${code})` }, true);
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    w.postMessage(job);
  });
}

/** What is wrong with one outcome, or null. */
function judge(o: FuzzOutcome, image: string, scratch: string): string | null {
  if (o.bug) return `${o.op}: not a DiskwrightError: ${o.bug}`;
  if (o.message === undefined) {
    // cat reads what the image holds, never more than its size (holes are not data).
    if (o.bytes !== undefined && o.bytes > 1024 * MiB) return `${o.op}: read ${o.bytes} bytes from a small image`;
    return null;
  }
  if (o.message.includes('\n')) return `${o.op}: more than one line: ${o.message}`;
  // Errors about the output name the output; all others name the image.
  const named = o.code === 'OUTPUT_WRITE' || o.code === 'NAME_INVALID' ? o.message.includes(scratch) || o.message.includes(image) : o.message.includes(image);
  if (!named) return `${o.op}: ${o.code} does not name ${o.code === 'OUTPUT_WRITE' ? 'the output or ' : ''}the image: ${o.message}`;
  if (/\bERR_[A-Z_]+\b|\b(TypeError|RangeError)\b|undefined|NaN/.test(o.message)) return `${o.op}: a JavaScript message leaks: ${o.message}`;
  return null;
}

const kept: Array<{ image: string; args: string[] }> = [];

test(`fuzz: ${IMAGES} mutated images through inspect, ls -R, cat, extract, diff and convert`, { timeout: 300_000 }, async (t) => {
  t.diagnostic(`seed ${SEED} (DISKWRIGHT_FUZZ_SEED=${SEED} reproduces this run)`);
  const rng = new Rng(SEED);
  const slots: Slot[] = Array.from({ length: WORKERS }, () => ({ worker: spawn(), busy: false }));
  const failures: string[] = [];
  const counts = new Map<string, { images: number; errors: number; ms: number }>();
  let next = 0;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const started = Date.now();
  const convertTo = ['qcow2', 'vdi', 'vpc', 'raw'];
  const one = async (slot: Slot) => {
    while (next < IMAGES) {
      const n = next++;
      const base = bases[n % bases.length];
      const image = path.join(work, `m${n}-${path.basename(base.file)}`);
      const what = mutate(base, rng, image);
      const scratch = path.join(work, `scratch-${n}`);
      fs.mkdirSync(scratch);
      const job: FuzzJob = { id: n, image, base: base.file, volumes: base.volumes(image), scratch, convertTo: convertTo[n % convertTo.length] };
      const t0 = Date.now();
      const r = await run(slot, job);
      const c = counts.get(base.family) ?? { images: 0, errors: 0, ms: 0 };
      c.images++;
      c.ms += Date.now() - t0;
      const bad: string[] = r.failure ? [r.failure] : [];
      for (const o of r.outcomes) {
        const why = judge(o, image, scratch);
        if (why) bad.push(why);
        if (o.message) c.errors++;
        // A few refusals to repeat through the CLI: inspect and ls, which need no path inside the image.
        if (o.message && !o.bug && kept.length < 6 && /^(inspect|ls)/.test(o.op) && !kept.some((k) => k.image === image)) {
          kept.push({ image, args: o.op === 'inspect' ? ['inspect', image] : ['ls', '-R', o.op.split(' ').pop()!] });
        }
      }
      counts.set(base.family, c);
      if (bad.length) failures.push(`image ${n} (${base.name}; ${what}):\n  ${bad.join('\n  ')}`);
      else if (!kept.some((k) => k.image === image)) fs.rmSync(image, { force: true });
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  };
  try {
    await Promise.all(slots.map(one));
  } finally {
    clearInterval(sampler);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
  t.diagnostic(`${IMAGES} images in ${((Date.now() - started) / 1000).toFixed(1)} s, peak RSS ${Math.round(peakRss / MiB)} MiB; ${[...counts].map(([f, c]) => `${f} ${c.images} (${c.errors} errors, ${Math.round(c.ms / c.images)} ms each)`).join(', ')}`);
  assert.deepEqual(failures, [], `seed ${SEED}:\n${failures.join('\n')}`);
  // Every family was reached, and the damage was seen: most images must fail somewhere.
  assert.equal(counts.size, 8);
  for (const [f, c] of counts) assert.ok(c.errors > 0, `${f}: no mutated image was refused`);
});

test('fuzz: what reaches the terminal is one line naming the image', () => {
  assert.ok(kept.length >= 2, 'the fuzz run kept images that fail ls or cat');
  for (const { image, args } of kept) {
    const r = diskwright(args);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(lines.length, 1, `${args.join(' ')}: one line, got:\n${r.stderr}`);
    assert.match(lines[0], /^diskwright: /);
    assert.ok(lines[0].includes(image), lines[0]);
    assert.doesNotMatch(lines[0], /internal error/);
  }
});
