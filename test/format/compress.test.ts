// zstd and xz output: the zstd and xz tools decompress it to the raw image's
// bytes; a stream equals the file; thread count never changes the bytes
// (the frames of disk images, and container layers' one multi-threaded frame).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, diskwright } from '../cli/run.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { pseudoRandom } from '../oracle/fixture.ts';
import { finishImage } from '../../src/image/extent-map.ts';
import { emit, fileSink } from '../../src/format/raw.ts';
import { xzSink, zstdSink, zstdStreamSink } from '../../src/format/compress.ts';

let work: string;
before(() => {
  requireTools('zstd', 'xz', 'faketime');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-zstd-'));
  fs.mkdirSync(`${work}/src/d`, { recursive: true });
  fs.writeFileSync(`${work}/src/random.bin`, pseudoRandom('z', 5 << 20));
  fs.writeFileSync(`${work}/src/d/text`, 'hello\n'.repeat(100_000));
  // Sparse: data at both ends, so the image spans several 32 MiB frames.
  const fd = fs.openSync(`${work}/src/sparse`, 'w');
  fs.writeSync(fd, pseudoRandom('a', 70_000), 0, 70_000, 0);
  fs.writeSync(fd, pseudoRandom('b', 70_000), 0, 70_000, 90 << 20);
  fs.closeSync(fd);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('mkfs --compress zstd: zstd -d gives the raw image; -o - gives the same bytes', () => {
  const raw = path.join(work, 'a.img');
  const zst = path.join(work, 'a.img.zst');
  for (const args of [['-o', raw], ['-o', zst, '--compress', 'zstd']]) {
    const r = diskwright(['mkfs', 'ext4', `${work}/src`, '--size', '100M', ...args]);
    assert.equal(r.status, 0, r.stderr);
  }
  assert.equal(fs.statSync(raw).size, 100 << 20); // several 32 MiB frames
  run('zstd', ['-t', '-q', zst]);
  const back = run('zstd', ['-d', '-c', '-q', zst]).stdout;
  assert.ok(back.equals(fs.readFileSync(raw)));
  const streamed = diskwright(['mkfs', 'ext4', `${work}/src`, '--size', '100M', '-o', '-', '--compress', 'zstd']);
  assert.equal(streamed.status, 0);
  assert.ok(streamed.stdout.equals(fs.readFileSync(zst)));
  // Level 19 is smaller and still decodes to the same bytes.
  const z19 = path.join(work, 'a19.img.zst');
  assert.equal(diskwright(['mkfs', 'ext4', `${work}/src`, '--size', '100M', '-o', z19, '--compress', 'zstd', '--compress-level', '19']).status, 0);
  assert.ok(run('zstd', ['-d', '-c', '-q', z19]).stdout.equals(fs.readFileSync(raw)));
});

test('the number of zstd threads never changes the output', () => {
  const img = finishImage(80 << 20, [
    { offset: 4096, length: 3 << 20, buffer: pseudoRandom('x', 3 << 20) },
    { offset: 40 << 20, length: 1 << 20, buffer: Buffer.alloc(1 << 20, 7) },
  ]);
  const outs = [1, 2, 4].map((threads) => {
    const f = path.join(work, `t${threads}.zst`);
    const fd = fs.openSync(f, 'w');
    emit(img, zstdSink(fileSink(fd), { threads }));
    fs.closeSync(fd);
    return fs.readFileSync(f);
  });
  assert.ok(outs[0].equals(outs[1]) && outs[1].equals(outs[2]));
});

test("a layer's one zstd frame from libzstd's workers: zstd -t passes, zstd -d gives the bytes, 1 and 3 workers write the same", () => {
  const img = finishImage(40 << 20, [
    { offset: 4096, length: 3 << 20, buffer: pseudoRandom('x', 3 << 20) },
    { offset: 20 << 20, length: 1 << 20, buffer: Buffer.alloc(1 << 20, 7) },
  ]);
  const outs = [1, 3].map((threads) => {
    const f = path.join(work, `layer${threads}.zst`);
    const fd = fs.openSync(f, 'w');
    emit(img, zstdStreamSink(fileSink(fd), { threads }));
    fs.closeSync(fd);
    return f;
  });
  assert.ok(fs.readFileSync(outs[0]).equals(fs.readFileSync(outs[1])));
  run('zstd', ['-t', '-q', outs[0]]);
  const back = run('zstd', ['-d', '-c', '-q', outs[0]]).stdout;
  const raw = Buffer.alloc(40 << 20);
  emit(img, { write: (b, len, at) => void b.copy(raw, at, 0, len), finish: () => {} });
  assert.ok(back.equals(raw));
  assert.equal(run('zstd', ['-l', '-v', outs[0]]).stdout.toString().match(/# Zstandard Frames: (\d+)/)?.[1], '1');
});

test('build with compress: zstd/xz writes <baseName>.img.zst/.img.xz and names it in hydra-build-products', () => {
  for (const [compress, ext, tool] of [['zstd', 'zst', 'zstd'], ['xz', 'xz', 'xz']]) {
    fs.writeFileSync(path.join(work, 'c.json'), JSON.stringify({ partitionTableType: 'efi', bootSize: '16M', additionalSpace: '1M', root: 'src', compress, compressLevel: 1 }));
    const out = path.join(work, `out-${ext}`);
    const r = diskwright(['build', path.join(work, 'c.json'), '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    const img = path.join(out, `nixos.img.${ext}`);
    assert.equal(fs.readFileSync(path.join(out, 'nix-support/hydra-build-products'), 'utf8'), `file raw-image ${img}\n`);
    const layout = JSON.parse(fs.readFileSync(path.join(out, 'layout.json'), 'utf8'));
    assert.equal(run(tool, ['-d', '-c', img]).stdout.length, layout.size);
  }
});

test('compress applies to raw output only; zstd levels are 1-19, xz 0-9', () => {
  for (const bad of [['--compress', 'zstd', '--compress-level', '25'], ['--compress', 'xz', '--compress-level', '10'], ['--compress', 'xz', '--format', 'qcow2']]) {
    const r = diskwright(['mkfs', 'ext4', `${work}/src`, '-o', path.join(work, 'x'), ...bad]);
    assert.notEqual(r.status, 0, bad.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(!fs.existsSync(path.join(work, 'x')));
  }
  assert.match(diskwright(['mkfs', 'ext4', `${work}/src`, '-o', path.join(work, 'x'), '--compress', 'xz', '--compress-level', '10']).stderr, /xz takes a whole number from 0 to 9/);
});

test('mkfs --compress xz: xz -d gives the raw image; -o - gives the same bytes', () => {
  const raw = path.join(work, 'x.img');
  const xz = path.join(work, 'x.img.xz');
  for (const args of [['-o', raw], ['-o', xz, '--compress', 'xz', '--compress-level', '1']]) {
    const r = diskwright(['mkfs', 'ext4', `${work}/src`, '--size', '100M', ...args]);
    assert.equal(r.status, 0, r.stderr);
  }
  run('xz', ['-t', xz]);
  assert.ok(run('xz', ['-d', '-c', xz]).stdout.equals(fs.readFileSync(raw)));
  // Several blocks (level 1: 3 MiB each), as a multi-threaded xz writes them.
  assert.match(run('xz', ['-l', xz]).stdout.toString(), /^\s+1\s+(\d\d)\s/m);
  const streamed = diskwright(['mkfs', 'ext4', `${work}/src`, '--size', '100M', '-o', '-', '--compress', 'xz', '--compress-level', '1']);
  assert.equal(streamed.status, 0);
  assert.ok(streamed.stdout.equals(fs.readFileSync(xz)));
});

test("xz: the default level is 6, as the xz tool's, and the bytes equal `xz -T2 -6` of the raw image", () => {
  const raw = path.join(work, 's.img');
  const xz = path.join(work, 's.img.xz');
  fs.mkdirSync(path.join(work, 'small'), { recursive: true });
  fs.writeFileSync(path.join(work, 'small/text'), 'hello xz\n'.repeat(50_000));
  assert.equal(diskwright(['mkfs', 'ext4', `${work}/small`, '--size', '40M', '-o', raw]).status, 0);
  assert.equal(diskwright(['mkfs', 'ext4', `${work}/small`, '--size', '40M', '-o', xz, '--compress', 'xz']).status, 0);
  assert.ok(run('xz', ['-T2', '-6', '-c', raw]).stdout.equals(fs.readFileSync(xz)));
});

test('the number of xz threads never changes the output', () => {
  const img = finishImage(24 << 20, [
    { offset: 4096, length: 1 << 20, buffer: pseudoRandom('x', 1 << 20) },
    { offset: 12 << 20, length: 1 << 20, buffer: Buffer.alloc(1 << 20, 7) },
  ]);
  const outs = [1, 2, 3].map((threads) => {
    const f = path.join(work, `t${threads}.xz`);
    const fd = fs.openSync(f, 'w');
    emit(img, xzSink(fileSink(fd), { threads, level: 0 }));
    fs.closeSync(fd);
    return fs.readFileSync(f);
  });
  assert.ok(outs[0].equals(outs[1]) && outs[1].equals(outs[2]));
  assert.equal(run('xz', ['-d', '-c', path.join(work, 't1.xz')]).stdout.length, 24 << 20);
});

test('zstd and xz: a rebuild under another clock, time zone and working directory is byte-identical', () => {
  for (const [compress, ext] of [['zstd', 'zst'], ['xz', 'xz']]) {
    const out = path.join(work, `again.img.${ext}`);
    const args = ['mkfs', 'ext4', `${work}/src`, '--size', '100M', '--compress', compress, '--compress-level', '1'];
    assert.equal(diskwright([...args, '-o', out]).status, 0);
    const again = spawnSync('faketime', ['2031-05-05 10:00:00', process.execPath, BIN, ...args, '-o', '-'], {
      cwd: '/', env: { ...process.env, TZ: 'Asia/Kathmandu' }, maxBuffer: 1 << 30,
    });
    assert.equal(again.status, 0, String(again.stderr));
    assert.ok((again.stdout as Buffer).equals(fs.readFileSync(out)), compress);
  }
});
