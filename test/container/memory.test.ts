// Peak memory of `diskwright container` does not grow with the bytes it
// packs: two images of the same files, one with each file 4.5 times as big
// (64 vs 288 MiB), built cold with every layer compression, their peak RSS
// (GNU time) compared. gzip's deflate workers grew 85 MB between
// these two on main before the fix (zlib dictionaries V8 did not collect).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN } from '../cli/run.ts';

const TIME = '/usr/bin/time';
const FILES = 16;
/** MiB per file of the small and the big image. */
const SMALL = 4;
const BIG = 18;
const MiB = 1 << 20;
/** Allowed growth of peak RSS from the small image to the big one: CI noise, not data. */
const BOUND_MB = 20;

let work: string;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-container-mem-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** 1 MiB of text-like bytes, deterministic, that deflate and zstd must work at (no long repeats within their windows). */
function block(): Buffer {
  const words = ['store', 'layer', 'digest', 'closure', 'tar', 'blob', 'gzip', 'zstd', 'manifest', 'path', '\n'];
  const b = Buffer.alloc(MiB);
  let x = 0x9e3779b9;
  let at = 0;
  while (at < b.length) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    at += b.write(`${words[(x >>> 0) % words.length]}${(x >>> 8) & 0xfff} `, at);
  }
  return b;
}

/** A config whose one layer holds FILES files of `mib` MiB each (a per-file prefix, then the block repeated). */
function tree(name: string, mib: number, compression: string): string {
  const dir = path.join(work, name);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir);
    const b = block();
    for (let f = 0; f < FILES; f++) {
      const fd = fs.openSync(path.join(dir, `file-${f}`), 'w');
      fs.writeSync(fd, `file ${f}\n`);
      for (let i = 0; i < mib; i++) fs.writeSync(fd, b);
      fs.closeSync(fd);
    }
  }
  const cfg = path.join(work, `${name}-${compression}.json`);
  fs.writeFileSync(cfg, JSON.stringify({ name: 'mem', tag: 't', contents: [dir], layerCompression: compression }));
  return cfg;
}

/** Peak RSS (MB) of a cold build of `cfg`. */
function peak(cfg: string): number {
  const out = path.join(work, 'out.tar');
  const r = spawnSync(TIME, ['-v', process.execPath, BIN, 'container', cfg, '-o', out, '--no-cache'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  fs.rmSync(out, { force: true });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  assert.ok(m, `no peak RSS from ${TIME}: ${r.stderr}`);
  return Number(m[1]) / 1024;
}

for (const compression of ['none', 'gzip', 'zstd']) {
  test(`container ${compression}: peak RSS of a ${FILES * BIG} MiB image within ${BOUND_MB} MB of a ${FILES * SMALL} MiB one`, { skip: !fs.existsSync(TIME) && `${TIME} (GNU time) is missing` }, (t) => {
    const small = peak(tree('small', SMALL, compression));
    const big = peak(tree('big', BIG, compression));
    t.diagnostic(`peak RSS ${small.toFixed(0)} MB, ${big.toFixed(0)} MB`);
    assert.ok(big - small < BOUND_MB, `peak RSS ${small.toFixed(0)} MB for ${FILES * SMALL} MiB, ${big.toFixed(0)} MB for ${FILES * BIG} MiB: grows with the data`);
  });
}
