// qemu-img and stream helpers shared by the format tests.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import type { Image } from '../../src/image/extent-map.ts';
import { emit, streamSink, writeImageFile } from '../../src/format/raw.ts';

export function pseudoRandom(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function qemu(...args: string[]) {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

export function info(file: string, format?: string): { 'virtual-size': number; format: string } {
  const r = qemu('info', '--output=json', ...(format ? ['-f', format] : []), file);
  assert.equal(r.status, 0, r.err);
  return JSON.parse(r.out);
}

/** `qemu-img ARGS --output=json`, parsed. */
export function qemuJson(args: string[]): any {
  const r = qemu(...args, '--output=json');
  assert.equal(r.status, 0, r.err);
  return JSON.parse(r.out);
}

/** qemu-img check: exit 0, no errors, no corruptions, no leaks, end offset = file size. */
export function assertChecks(image: string): void {
  const r = qemu('check', '--output=json', image);
  assert.equal(r.status, 0, `qemu-img check ${image}: ${r.out}${r.err}`);
  const j = JSON.parse(r.out);
  assert.equal(j['check-errors'], 0);
  assert.equal(j.corruptions ?? 0, 0);
  assert.equal(j.leaks ?? 0, 0);
  assert.equal(j['image-end-offset'], fs.statSync(image).size);
}

/**
 * Each case's file (made by `qemu-img convert ARGS` from the raw disk, or
 * already written when ARGS is empty) read with `read` and written raw again
 * equals the raw disk; `check` looks at what `read` made of it first.
 */
export function assertReadsBack(raw: string, dir: string, cases: [string, string[]][], read: (file: string) => Image, check: (img: Image, file: string, name: string) => void): void {
  const back = path.join(dir, 'back.raw');
  for (const [name, args] of cases) {
    const file = path.join(dir, name);
    if (args.length) {
      const r = qemu('convert', '-f', 'raw', ...args, raw, file);
      assert.equal(r.status, 0, r.err);
    }
    const img = read(file);
    check(img, file, name);
    writeImageFile(img, back);
    assertSame(raw, back, 'raw');
    fs.rmSync(file);
  }
  fs.rmSync(back);
}

export function assertSame(rawFile: string, other: string, format: string) {
  const r = qemu('compare', '-f', 'raw', '-F', format, rawFile, other);
  assert.equal(r.status, 0, `${r.out}${r.err}`);
  assert.match(r.out, /Images are identical/);
}

/** Disk offsets (in blocks of `blockSize`) that qemu-img map reports as data. */
export function dataBlocks(file: string, format: string, blockSize: number): number[] {
  const r = qemu('map', '--output=json', '-f', format, file);
  assert.equal(r.status, 0, r.err);
  const set = new Set<number>();
  for (const m of JSON.parse(r.out) as { start: number; length: number; data: boolean }[]) {
    if (!m.data) continue;
    for (let b = Math.floor(m.start / blockSize); b * blockSize < m.start + m.length; b++) set.add(b);
  }
  return [...set].sort((a, b) => a - b);
}

export function sameFile(a: string, b: string): boolean {
  return spawnSync('cmp', ['-s', a, b]).status === 0;
}

/** Byte offsets where two files differ (they must have the same length). */
export function diffOffsets(a: string, b: string): number[] {
  const x = fs.readFileSync(a);
  const y = fs.readFileSync(b);
  assert.equal(x.length, y.length);
  const out: number[] = [];
  for (let i = 0; i < x.length; i += 65536) {
    const end = Math.min(x.length, i + 65536);
    if (x.subarray(i, end).equals(y.subarray(i, end))) continue;
    for (let j = i; j < end; j++) if (x[j] !== y[j]) out.push(j);
  }
  return out;
}

let fifoCount = 0;
/** Emits `image` into a pipe that `cat` copies to `out`: the streaming path. */
export async function streamTo(image: Image, out: string, dir: string) {
  const fifo = path.join(dir, `fifo${fifoCount++}`);
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const child = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', fifo, out], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const fd = fs.openSync(fifo, 'w'); // blocks until cat opens the other end
  try {
    emit(image, streamSink(fd));
  } finally {
    fs.closeSync(fd);
  }
  const [code] = await exited;
  assert.equal(code, 0);
  fs.rmSync(fifo);
}

export function assertOneLine(fn: () => unknown, file: string, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DiskwrightError, String(e));
    assert.equal(e.code, 'SOURCE_UNREADABLE');
    assert.ok(!e.message.includes('\n'), e.message);
    assert.ok(e.message.includes(file), e.message);
    assert.match(e.message, re);
    return true;
  });
}
