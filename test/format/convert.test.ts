// diskwright convert: every format we write converts to every other with the
// virtual disk unchanged (qemu-img compare; zstd/xz -d and cmp); images made
// by qemu-img convert back to the identical raw; random access through
// openImage equals the raw bytes; a stream equals the file; sparse inputs stay
// sparse; bad inputs fail with one line naming the file and leave no output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { BIN } from '../cli/run.ts';
import { requireTools, run } from '../oracle/tools.ts';
import { pseudoRandom } from '../oracle/fixture.ts';
import { finishImage, type ImageExtent } from '../../src/image/extent-map.ts';
import { writeImageFile } from '../../src/format/raw.ts';
import { COMPRESSIONS, FORMATS, type Compression, type Format } from '../../src/format/output.ts';
import { convertImage, outputChoice } from '../../src/api/convert.ts';
import { detectInput, openImage } from '../../src/format/input.ts';
import { RunFinder, RUN_GRANULE } from '../../src/image/runs.ts';
import { DiskwrightError } from '../../src/errors.ts';

const MiB = 1 << 20;
/** A whole number of MiB, so a fixed VHD (rounded up to MiB) keeps the size. */
const SIZE = 256 * MiB;
const EPOCH = 1_700_000_000;

interface Kind {
  name: string;
  /** File name suffix. */
  ext: string;
  format: Format;
  compress?: Compression;
  /** qemu-img's name for the format, or the tool that decompresses it. */
  qemu?: string;
  tool?: 'zstd' | 'xz';
  /** Written but not read by convert. */
  outputOnly?: boolean;
}

const has = (list: readonly string[], x: string) => list.includes(x);
const KINDS: Kind[] = [
  { name: 'raw', ext: 'img', format: 'raw', qemu: 'raw' },
  { name: 'qcow2', ext: 'qcow2', format: 'qcow2', qemu: 'qcow2' },
  { name: 'vdi', ext: 'vdi', format: 'vdi', qemu: 'vdi' },
  { name: 'vpc', ext: 'vhd', format: 'vpc', qemu: 'vpc' },
  { name: 'vhd-fixed', ext: 'fixed.vhd', format: 'vhd-fixed', qemu: 'vpc' },
  { name: 'zstd', ext: 'img.zst', format: 'raw', compress: 'zstd', tool: 'zstd' },
  ...(has(FORMATS, 'qcow2-compressed') ? [{ name: 'qcow2-compressed', ext: 'c.qcow2', format: 'qcow2-compressed' as Format, qemu: 'qcow2' }] : []),
];
/**
 * xz is written, not read, and costs seconds per 256 MiB even at level 0 (it
 * finds matches in the zeros too): it gets its own smaller disk below.
 */
const XZ: Kind | null = has(COMPRESSIONS, 'xz') ? { name: 'xz', ext: 'img.xz', format: 'raw', compress: 'xz' as Compression, tool: 'xz', outputOnly: true } : null;

let work: string;
let master: string;
let masterBytes: Buffer;
const p = (name: string) => path.join(work, name);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The disk: a boot sector, data at awkward places (frame, cluster and block edges), zeros written out, holes. */
function masterExtents(): ImageExtent[] {
  const mbr = pseudoRandom('mbr', 512);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const data = (seed: string, offset: number, length: number): ImageExtent => ({ offset, length, buffer: pseudoRandom(seed, length) });
  const text = Buffer.from('compressible line of a disk image\n'.repeat(Math.ceil((4 * MiB) / 34))).subarray(0, 4 * MiB);
  return [
    { offset: 0, length: 512, buffer: mbr },
    data('a', 1 * MiB, 3 * MiB + 5000),
    data('b', 7 * MiB + 123, 777),
    data('c', 32 * MiB - 10_000, 20_000), // across the first 32 MiB zstd frame
    data('d', 64 * MiB, 2 * MiB), // one whole VHD block
    data('e', 100 * MiB + 4096, 4096), // 4 KiB granules with a zero one between,
    data('f', 100 * MiB + 3 * 4096, 4096), // inside one 64 KiB cluster
    { offset: 130 * MiB, length: text.length, buffer: text },
    { offset: 150 * MiB, length: MiB, buffer: Buffer.alloc(MiB) }, // zeros written to the file: must become a hole
    data('g', 200 * MiB + 512, MiB),
    data('h', SIZE - 512, 512), // the last sector
  ];
}

before(() => {
  requireTools('qemu-img', 'zstd', 'cmp', ...(XZ ? ['xz'] : []));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-convert-'));
  master = p('master.img');
  writeImageFile(finishImage(SIZE, masterExtents()), master);
  masterBytes = fs.readFileSync(master);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Asserts that `file`, written as `kind`, holds the master disk (or `raw`). */
function assertHoldsMaster(file: string, kind: Kind, what: string, raw = master): void {
  if (kind.tool) {
    const r = run('sh', ['-c', `${kind.tool} -dcq "$1" | cmp - "$2"`, 'sh', file, raw], { allowFailure: true });
    assert.equal(r.status, 0, `${what}: ${r.stderr}${r.stdout}`);
    return;
  }
  const r = run('qemu-img', ['compare', '-q', '-f', 'raw', '-F', kind.qemu as string, raw, file], { allowFailure: true });
  assert.equal(r.status, 0, `${what}: ${r.stderr}${r.stdout}`);
}

function convert(input: string, kind: Kind, output: string) {
  return convertImage({ input, output, format: kind.format, compress: kind.compress ?? 'none', seed: 'convert-test', epoch: EPOCH });
}

const bases = new Map<string, string>();

test('master to every format, twice: content identical, bytes deterministic', () => {
  for (const k of KINDS) {
    const file = p(`base.${k.name}.${k.ext}`);
    const r = convert(master, k, file);
    assert.equal(r.input.format, 'raw');
    assert.equal(r.input.size, SIZE);
    assertHoldsMaster(file, k, `master -> ${k.name}`);
    const again = p(`again.${k.ext}`);
    convert(master, k, again);
    assert.equal(sha(fs.readFileSync(again)), sha(fs.readFileSync(file)), `${k.name}: converting twice gives the same bytes`);
    fs.rmSync(again);
    bases.set(k.name, file);
  }
});

test('every format converts to every other (all pairs) with the disk unchanged', () => {
  for (const a of KINDS.filter((k) => !k.outputOnly)) {
    const input = bases.get(a.name) as string;
    for (const b of KINDS) {
      const out = p(`pair.${b.ext}`);
      const r = convert(input, b, out);
      assert.equal(r.input.size, SIZE, `${a.name} input size`);
      assertHoldsMaster(out, b, `${a.name} -> ${b.name}`);
      fs.rmSync(out);
    }
  }
});

test('xz output (if the xz compressor is there) from every input format decompresses to the disk', { skip: XZ ? false : 'no xz in COMPRESSIONS' }, () => {
  const kind = XZ as Kind;
  const small = p('small.img');
  // Little incompressible data: xz is slow on it.
  const text = Buffer.from('an xz-compressed disk image\n'.repeat(40_000));
  writeImageFile(finishImage(8 * MiB, [
    ...masterExtents().filter((e) => e.offset + e.length <= 8 * MiB && e.length < 4096),
    { offset: 3 * MiB, length: text.length, buffer: text },
    { offset: 8 * MiB - 512, length: 512, buffer: pseudoRandom('xz', 512) },
  ]), small);
  for (const k of KINDS) {
    const input = p(`small-in.${k.ext}`);
    convert(small, k, input);
    const out = p('small.img.xz');
    convertImage({ input, output: out, compressLevel: 0 });
    assertHoldsMaster(out, kind, `${k.name} -> xz`, small);
    fs.rmSync(out);
    fs.rmSync(input);
  }
});

test('images made by qemu-img (qcow2, compressed qcow2, VDI, VHD dynamic and fixed) convert back to the identical raw', () => {
  const cases: [string, string[], boolean][] = [
    ['qcow2', ['-O', 'qcow2'], true],
    ['qcow2 -c', ['-O', 'qcow2', '-c'], true],
    ['qcow2 v2, 4 KiB clusters', ['-O', 'qcow2', '-o', 'compat=0.10,cluster_size=4096'], true],
    ['vdi', ['-O', 'vdi'], true],
    ['vdi static', ['-O', 'vdi', '-o', 'static=on'], true],
    ['vpc force_size', ['-O', 'vpc', '-o', 'force_size=on'], true],
    ['vpc fixed', ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on'], true],
    // Without force_size qemu sizes a VHD by its CHS geometry, rounding the disk up: we follow qemu's reading.
    ['vpc by geometry', ['-O', 'vpc'], false],
  ];
  for (const [name, args, exact] of cases) {
    const theirs = p('theirs');
    run('qemu-img', ['convert', '-f', 'raw', ...args, master, theirs]);
    const back = p('back.img');
    const r = convertImage({ input: theirs, output: back });
    if (exact) assert.ok(run('cmp', [master, back], { allowFailure: true }).status === 0, `${name}: not identical`);
    else {
      assert.equal(r.input.size, JSON.parse(run('qemu-img', ['info', '--output=json', theirs]).stdout.toString())['virtual-size']);
      run('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', master, back]);
    }
    // Sparse whatever qemu allocated: the zeros of static/fixed images are holes again.
    assert.ok(fs.statSync(back).blocks * 512 < 20 * MiB, `${name}: ${fs.statSync(back).blocks * 512} bytes allocated`);
    fs.rmSync(theirs);
    fs.rmSync(back);
  }
});

test('random access through openImage equals the raw bytes, for every input kind', () => {
  const foreign = p('foreign.img.zst');
  run('zstd', ['-q', '-f', master, '-o', foreign]); // one frame of the whole disk: the streaming decoder
  const piped = p('piped.img.zst');
  run('sh', ['-c', 'zstd -q < "$1" > "$2"', 'sh', master, piped]); // no content size in the header
  const qemuCompressed = p('qemu-c.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-c', master, qemuCompressed]);
  const inputs = [...KINDS.filter((k) => !k.outputOnly).map((k) => bases.get(k.name) as string), foreign, piped, qemuCompressed];
  // Deterministic offsets: edges of everything the master has, plus a few backwards jumps.
  const offsets = [0, 510, MiB - 100, 4 * MiB + 4000, 32 * MiB - 5, 100 * MiB + 4000, 31 * MiB, 130 * MiB + 77, 66 * MiB - 1, SIZE - 700, 5];
  for (const file of inputs) {
    const src = openImage(file);
    try {
      assert.equal(src.size, SIZE, file);
      for (const off of offsets) {
        const len = Math.min(300_000, SIZE - off);
        assert.ok(src.read(off, len).equals(masterBytes.subarray(off, off + len)), `${file} (${src.description}) at ${off}`);
      }
      assert.throws(() => src.read(SIZE - 10, 11), RangeError);
    } finally {
      src.close();
    }
  }
  for (const file of [foreign, piped]) {
    const out = p('from-foreign.qcow2');
    convertImage({ input: file, output: out });
    assertHoldsMaster(out, KINDS[1], `${file} -> qcow2`);
    fs.rmSync(out);
  }
});

test('a sparse raw stays sparse: zero blocks and holes are not allocated', () => {
  const out = p('sparse-copy.img');
  const r = convertImage({ input: master, output: out });
  // The master's data is a little over 11 MiB; its written megabyte of zeros must be a hole now.
  assert.ok(r.input.dataBytes < 12 * MiB, `${r.input.dataBytes} bytes of data`);
  assert.ok(r.write && r.write.allocatedBytes < 13 * MiB, `${r.write?.allocatedBytes} bytes allocated`);
  assert.equal(r.write?.apparentBytes, SIZE);
  assert.ok(fs.statSync(master).blocks * 512 > r.write.allocatedBytes, 'the written zeros became a hole');
  run('cmp', [master, out]);
  fs.rmSync(out);
});

// ---------------------------------------------------------------- CLI

interface Cli {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the CLI without blocking, so several run at once. */
function cli(args: string[]): Promise<Cli> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: work, env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
  });
}

async function inPairs<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < jobs.length; i += 2) results.push(...(await Promise.all(jobs.slice(i, i + 2).map((j) => j()))));
  return results;
}

test('CLI: the format follows the extension; a stream (-o -) equals the file; the summary says apparent and allocated size', async () => {
  const streams: [string, string[], string][] = [
    ['qcow2', ['--format', 'qcow2'], 'cli.qcow2'],
    ['vpc', ['--format', 'vpc'], 'cli.vhd'],
    ['zstd', ['--format', 'raw', '--compress', 'zstd'], 'cli.img.zst'],
    ['raw from qcow2', ['--format', 'raw'], 'cli.img'],
  ];
  const input = (name: string) => (name === 'raw from qcow2' ? bases.get('qcow2') as string : master);
  const results = await inPairs(streams.flatMap(([name, args, file]) => [
    () => cli(['convert', input(name), '-o', file]),
    () => cli(['convert', input(name), '-o', '-', ...args]),
  ]));
  streams.forEach(([name, , file], i) => {
    const toFile = results[2 * i];
    const piped = results[2 * i + 1];
    assert.equal(toFile.status, 0, toFile.stderr);
    assert.equal(piped.status, 0, piped.stderr);
    const bytes = fs.readFileSync(p(file));
    assert.equal(sha(piped.stdout), sha(bytes), `${name}: stream = file`);
    // The allocation may still change while the file system settles: only its form is checked.
    assert.match(toFile.stderr, new RegExp(`wrote ${file.replace(/\./g, '\\.')}: ${bytes.length} bytes apparent, \\d+ allocated`));
    assert.match(toFile.stderr, /virtual size 256 MiB \(268435456 bytes\)/);
    assert.ok(!piped.stderr.includes('wrote'), 'a stream has no file to report');
  });
  assertHoldsMaster(p('cli.qcow2'), KINDS[1], 'cli.qcow2');
  assertHoldsMaster(p('cli.vhd'), KINDS[3], 'cli.vhd');
  assertHoldsMaster(p('cli.img.zst'), KINDS[5], 'cli.img.zst');
  run('cmp', [master, p('cli.img')]);
});

test('CLI: bad inputs and options fail with one line, exit non-zero, and leave no output', async () => {
  const cut = (from: string, to: string, keep: (n: number) => number) => {
    const b = fs.readFileSync(from);
    fs.writeFileSync(p(to), b.subarray(0, keep(b.length)));
    return to;
  };
  fs.writeFileSync(p('notes.txt'), 'these are my notes\nnot a disk image\n'.repeat(100));
  fs.writeFileSync(p('small.bin'), pseudoRandom('junk', 70_000));
  run('sh', ['-c', 'head -c 100000 "$1" | gzip -c > "$2"', 'sh', master, p('disk.img.gz')]);
  const cases: [string, string[], RegExp][] = [
    ['unknown --format', ['convert', 'master.img', '-o', 'out.img', '--format', 'vmdk'], /vmdk/],
    ['unknown extension', ['convert', 'master.img', '-o', 'out.bin'], /cannot tell the output format from the name out\.bin/],
    ['stream without --format', ['convert', 'master.img', '-o', '-'], /give --format/],
    ['text file', ['convert', 'notes.txt', '-o', 'out.img'], /notes\.txt is a text file, not a disk image/],
    ['random bytes', ['convert', 'small.bin', '-o', 'out.img'], /small\.bin does not look like a disk image .*--input-format raw/],
    ['gzip', ['convert', 'disk.img.gz', '-o', 'out.img'], /disk\.img\.gz is a gzip-compressed file/],
    ['nonexistent', ['convert', 'missing.qcow2', '-o', 'out.img'], /missing\.qcow2 does not exist/],
    ['truncated qcow2', ['convert', cut(bases.get('qcow2') as string, 'cut.qcow2', (n) => n >> 1), '-o', 'out.img'], /cut\.qcow2 is truncated/],
    ['truncated VHD', ['convert', cut(bases.get('vpc') as string, 'cut.vhd', (n) => n - 4096), '-o', 'out.img'], /cut\.vhd is truncated/],
    ['truncated VDI', ['convert', cut(bases.get('vdi') as string, 'cut.vdi', (n) => n - 3 * MiB), '-o', 'out.img'], /cut\.vdi is truncated/],
    ['truncated zstd', ['convert', cut(bases.get('zstd') as string, 'cut.img.zst', (n) => n - 1000), '-o', 'out.img'], /cut\.img\.zst is truncated/],
    ['compress on qcow2', ['convert', 'master.img', '-o', 'out.qcow2', '--compress', 'zstd'], /applies to raw output only/],
    ...(has(FORMATS, 'qcow2-compressed') ? [['qcow2-compressed to a stream', ['convert', 'master.img', '-o', '-', '--format', 'qcow2-compressed'], /cannot be streamed/] as [string, string[], RegExp]] : []),
  ];
  const before = new Set(fs.readdirSync(work));
  const results = await inPairs(cases.map(([, args]) => () => cli(args)));
  cases.forEach(([name, , re], i) => {
    const r = results[i];
    assert.notEqual(r.status, 0, `${name}: exit status`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, re, name);
    assert.equal(r.stdout.length, 0, `${name}: nothing on stdout`);
  });
  assert.deepEqual(fs.readdirSync(work).filter((f) => !before.has(f)), [], 'no output or temporary file left');
});

// ---------------------------------------------------------------- units

test('RunFinder: runs of non-zero 4 KiB granules, whatever the chunking', () => {
  const n = 300 * RUN_GRANULE + 1234;
  const bytes = Buffer.alloc(n);
  for (const [at, len] of [[0, 1], [5000, 3], [8191, 2], [20 * 4096, 70 * 4096], [100 * 4096 - 1, 1], [200 * 4096 + 4095, 1], [n - 1, 1]]) {
    bytes.fill(7, at, at + len);
  }
  const expected: [number, number][] = [];
  for (let g = 0; g * RUN_GRANULE < n; g++) {
    const s = g * RUN_GRANULE;
    const e = Math.min(n, s + RUN_GRANULE);
    if (bytes.subarray(s, e).some((b) => b !== 0)) {
      const last = expected[expected.length - 1];
      if (last && last[1] === s) last[1] = e;
      else expected.push([s, e]);
    }
  }
  for (const chunk of [1, 7, 4096, 5000, 65536, 1 << 20]) {
    const f = new RunFinder();
    for (let i = 0; i < n; i += chunk) f.push(bytes.subarray(i, Math.min(n, i + chunk)));
    assert.deepEqual(f.finish(), expected, `chunk ${chunk}`);
  }
});

test('detectInput: container magics decide, other files are refused by name, raw needs evidence', () => {
  const sector = (fill: (b: Buffer) => void, size = 1 << 20) => {
    const b = Buffer.alloc(Math.min(size, 1 << 20));
    fill(b);
    return b;
  };
  const detect = (head: Buffer, size = 1 << 20) => detectInput('x.img', head, head.subarray(Math.max(0, head.length - 512)), size);
  assert.equal(detect(sector((b) => b.writeUInt32BE(0x514649fb, 0))), 'qcow2');
  assert.equal(detect(sector((b) => b.writeUInt32LE(0xfd2fb528, 0))), 'zstd');
  assert.equal(detect(sector((b) => b.write('conectix', 0))), 'vpc');
  assert.equal(detect(sector(() => {})), 'raw'); // all zero
  assert.equal(detect(sector((b) => { b[510] = 0x55; b[511] = 0xaa; b[0] = 0xeb; })), 'raw');
  assert.equal(detect(sector((b) => { b[0] = 1; b.write('EFI PART', 512); })), 'raw');
  assert.equal(detect(sector((b) => { b[0] = 1; b.writeUInt16LE(0xef53, 1080); })), 'raw');
  assert.equal(detect(sector((b) => { b[0] = 1; b.write('CD001', 0x8001); })), 'raw');
  const refused = (head: Buffer, re: RegExp, size = 1 << 20) => assert.throws(() => detect(head, size), (e: unknown) => {
    assert.ok(e instanceof DiskwrightError);
    assert.ok(e.message.startsWith('x.img '), e.message);
    assert.match(e.message, re);
    return true;
  });
  refused(sector((b) => b.write('\x7fELF', 0, 'latin1')), /an ELF executable/);
  refused(sector((b) => b.write('ustar', 257)), /a tar archive/);
  refused(sector((b) => b.write('KDMV', 0)), /VMDK/);
  refused(sector((b) => { b[510] = 0x55; b[511] = 0xaa; }, 1000), /size \(1000 bytes\) is not a multiple of 512/, 1000);
  refused(Buffer.alloc(0), /is empty/, 0);
});

test('outputChoice: extensions pick the format, given options win', () => {
  assert.deepEqual(outputChoice('a.qcow2'), { format: 'qcow2', compress: 'none' });
  assert.deepEqual(outputChoice('a.vdi'), { format: 'vdi', compress: 'none' });
  assert.deepEqual(outputChoice('dir/a.VHD'), { format: 'vpc', compress: 'none' });
  assert.deepEqual(outputChoice('a.raw'), { format: 'raw', compress: 'none' });
  assert.deepEqual(outputChoice('a.img.zst'), { format: 'raw', compress: 'zstd' });
  assert.deepEqual(outputChoice('a.zst'), { format: 'raw', compress: 'zstd' });
  assert.deepEqual(outputChoice('a.vhd', 'vhd-fixed'), { format: 'vhd-fixed', compress: 'none' });
  assert.deepEqual(outputChoice('-', 'qcow2'), { format: 'qcow2', compress: 'none' });
  if (has(COMPRESSIONS, 'xz')) assert.deepEqual(outputChoice('a.img.xz'), { format: 'raw', compress: 'xz' });
  assert.throws(() => outputChoice('a.bin'), /cannot tell the output format/);
  assert.throws(() => outputChoice('-'), /give --format/);
  assert.throws(() => outputChoice('a.img', 'vmdk'), /output format vmdk/);
});
