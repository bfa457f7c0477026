// GRUB's i386-pc core.img from our assembler against grub-mkimage's (Debian's
// grub 2.06, from the boot cache): the diskboot sector and the decompressor
// equal, and the LZMA streams unpack to the same payload byte for byte, for
// several module sets, prefixes and configs. grubSetup's patches, and bad
// modules directories, modules and kernel.img files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import lzma from 'lzma-native';
import { DiskwrightError } from '../../src/errors.ts';
import { grubCoreImage, grubModuleOrder, grubSetup, type CoreImageOptions } from '../../src/boot/grub-image.ts';
import { bootCache } from './parts.ts';

let work: string;
let modulesDir: string;
let mkimage: string;

before(() => {
  const cache = bootCache();
  modulesDir = path.join(cache, 'grub-pc-bin/usr/lib/grub/i386-pc');
  mkimage = path.join(cache, 'grub-common/usr/bin/grub-mkimage');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-grub-image-'));
});
after(() => work && fs.rmSync(work, { recursive: true, force: true }));

let n = 0;

/** grub-mkimage -O i386-pc of the same options: the oracle. */
function mkimageCore(o: Omit<CoreImageOptions, 'modulesDir'>): Buffer {
  const out = path.join(work, `mk${n++}.img`);
  const args = ['-O', 'i386-pc', '-d', modulesDir, '-p', o.prefix, '-o', out];
  if (o.config !== undefined) {
    const cfg = path.join(work, `cfg${n++}`);
    fs.writeFileSync(cfg, o.config);
    args.push('-c', cfg);
  }
  execFileSync(mkimage, [...args, ...o.modules], { stdio: ['ignore', 'ignore', 'inherit'] });
  return fs.readFileSync(out);
}

function decode(stream: Buffer, size: bigint): Buffer {
  // An .lzma header in front of the raw stream: properties (lc 3, lp 0, pb 2), 64 KiB dictionary, size
  // (all ones: unknown, so the stream must end with its end marker).
  const header = Buffer.alloc(13);
  header[0] = (2 * 5 + 0) * 9 + 3;
  header.writeUInt32LE(1 << 16, 1);
  header.writeBigUInt64LE(size, 5);
  const s = new lzma.Stream();
  s.aloneDecoder_(null);
  const out: Buffer[] = [];
  let failed: Error | null = null;
  s.bufferHandler = (b, _c, e) => {
    if (e) failed = e;
    else if (b) out.push(b);
  };
  s.code(Buffer.concat([header, stream]), false);
  s.code(null, false);
  if (failed) throw failed;
  return Buffer.concat(out);
}

interface Parts {
  diskboot: Buffer;
  decompressor: Buffer;
  compressed: Buffer;
  payload: Buffer;
  tail: Buffer;
}

/** core.img cut into its parts, the LZMA stream unpacked. grub-mkimage's stream has no end marker (its size is known); ours has one. */
function split(core: Buffer, endMarker: boolean): Parts {
  const decLen = fs.statSync(path.join(modulesDir, 'lzma_decompress.img')).size;
  const compressedSize = core.readUInt32LE(512 + 0x08);
  const uncompressedSize = core.readUInt32LE(512 + 0x0c);
  const end = 512 + decLen + compressedSize;
  assert.ok(end <= core.length, 'the compressed size fits the file');
  const compressed = core.subarray(512 + decLen, end);
  const payload = decode(compressed, endMarker ? 0xffffffffffffffffn : BigInt(uncompressedSize));
  assert.equal(payload.length, uncompressedSize, 'the stream unpacks to the uncompressed size');
  return { diskboot: core.subarray(0, 512), decompressor: core.subarray(512, 512 + decLen), compressed, payload, tail: core.subarray(end) };
}

const CASES: Omit<CoreImageOptions, 'modulesDir'>[] = [
  { modules: ['biosdisk', 'part_msdos', 'part_gpt', 'ext2', 'fat'], prefix: '(,msdos1)/boot/grub', config: 'echo hi\n' },
  { modules: ['biosdisk', 'part_gpt', 'ext2'], prefix: '(,gpt2)/boot/grub' },
  { modules: ['serial', 'terminal', 'echo', 'halt'], prefix: '(hd0,msdos1)/grub', config: 'serial\nterminal_output serial\necho MARK\nhalt\n' },
  // Deep dependencies (normal, linux), a module named twice and one named with .mod; a config whose length is not a multiple of 4.
  { modules: ['normal', 'linux', 'search', 'ext2', 'search_fs_uuid', 'configfile', 'ext2', 'part_msdos', 'biosdisk', 'gzio.mod'], prefix: '/boot/grub', config: 'set root=(hd0,msdos1)' },
  { modules: [], prefix: '' },
];

for (const c of CASES) {
  test(`core.img of [${c.modules.join(' ')}] prefix '${c.prefix}'${c.config === undefined ? '' : ' with config'} matches grub-mkimage's`, () => {
    const ours = grubCoreImage({ modulesDir, ...c });
    const theirs = mkimageCore(c);
    assert.equal(ours.length % 512, 0, 'whole sectors');
    const a = split(ours, true);
    const b = split(theirs, false);
    assert.ok(a.payload.equals(b.payload), 'the payloads are the same bytes');
    assert.ok(a.tail.equals(Buffer.alloc(a.tail.length)), 'zeros after the stream');
    assert.equal(a.compressed.length > 0, true);
    // diskboot.img: identical but for its blocklist length, which counts the sectors of our (possibly other-sized) stream.
    assert.equal(a.diskboot.readUInt16LE(0x1fc), Math.ceil((a.decompressor.length + a.compressed.length) / 512));
    assert.equal(a.diskboot.readUInt16LE(0x1fc), ours.length / 512 - 1);
    const blank = (buf: Buffer) => Buffer.concat([buf.subarray(0, 0x1fc), buf.subarray(0x1fe)]);
    assert.ok(blank(a.diskboot).equals(blank(b.diskboot)), 'diskboot sector');
    // The decompressor: identical but for its compressed size.
    assert.equal(a.decompressor.readUInt32LE(0x08), a.compressed.length);
    assert.ok(a.decompressor.subarray(0, 0x08).equals(b.decompressor.subarray(0, 0x08)));
    assert.ok(a.decompressor.subarray(0x0c).equals(b.decompressor.subarray(0x0c)), 'decompressor after the compressed size (uncompressed size, Reed-Solomon fields, code)');
    assert.equal(a.decompressor.readUInt32LE(0x10), 0, 'no Reed-Solomon redundancy');
    if (a.compressed.equals(b.compressed)) console.log('# the LZMA streams are identical too');
  });
}

test('grubCoreImage is deterministic', () => {
  const o = { modulesDir, ...CASES[0] };
  assert.ok(grubCoreImage(o).equals(grubCoreImage(o)));
});

test('module order: dependencies first, as grub-mkimage (moddep.lst read with its last-to-first visiting)', () => {
  const order = grubModuleOrder(modulesDir, ['normal', 'ext2']);
  assert.equal(order[order.length - 1], 'ext2');
  assert.ok(order.indexOf('normal') > order.indexOf('crypto'), 'normal after its dependency crypto');
  assert.equal(new Set(order).size, order.length, 'each once');
});

test('grubSetup patches boot.img and core.img as grub-bios-setup does for a hard disk', () => {
  const core = grubCoreImage({ modulesDir, ...CASES[0] });
  const boot = fs.readFileSync(path.join(modulesDir, 'boot.img'));
  for (const sector of [1, 2048, 2 ** 40]) {
    const r = grubSetup(modulesDir, core, sector);
    assert.equal(r.mbrCode.length, 440);
    assert.equal(r.mbrCode.readBigUInt64LE(0x5c), BigInt(sector), 'kernel_sector');
    assert.equal(r.mbrCode[0x64], 0xff, 'boot_drive: the drive the BIOS passes');
    assert.deepEqual([...r.mbrCode.subarray(0x66, 0x68)], [0x90, 0x90], 'drive check jump replaced by NOPs');
    const others = (b: Buffer) => Buffer.concat([b.subarray(0, 0x5c), b.subarray(0x65, 0x66), b.subarray(0x68, 440)]);
    assert.ok(others(r.mbrCode).equals(others(boot)), 'the rest of boot.img unchanged');

    assert.equal(r.core.length, core.length);
    assert.equal(r.core.readBigUInt64LE(0x1f4), BigInt(sector + 1), 'first blocklist: the sector after core.img\'s first');
    assert.equal(r.core.readUInt16LE(0x1fc), core.length / 512 - 1, 'the rest of core.img');
    assert.equal(r.core.readUInt16LE(0x1fe), 0x820, 'loaded at 0x8200');
    assert.ok(r.core.subarray(0x1e8, 0x1f4).equals(Buffer.alloc(12)), 'terminator');
    assert.ok(r.core.subarray(0, 0x1f4).equals(core.subarray(0, 0x1f4)));
    assert.ok(r.core.subarray(512).equals(core.subarray(512)));
  }
  // A core.img not a whole number of sectors (as grub-mkimage writes it) is padded with zeros.
  const mk = mkimageCore(CASES[0]);
  const r = grubSetup(modulesDir, mk, 1);
  assert.equal(r.core.length, Math.ceil(mk.length / 512) * 512);
  assert.ok(r.core.subarray(mk.length).equals(Buffer.alloc(r.core.length - mk.length)));
  assert.equal(r.core.readUInt16LE(0x1fc), r.core.length / 512 - 1);
});

/** A modules directory of links to the real one, with some files replaced or removed. */
function fakeDir(changes: Record<string, Buffer | null>): string {
  const dir = path.join(work, `fake${n++}`);
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(modulesDir)) if (!(f in changes)) fs.symlinkSync(path.join(modulesDir, f), path.join(dir, f));
  for (const [f, data] of Object.entries(changes)) if (data) fs.writeFileSync(path.join(dir, f), data);
  return dir;
}

function fails(fn: () => unknown, pattern: RegExp, code?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DiskwrightError, `a DiskwrightError: ${String(e)}`);
    assert.doesNotMatch(e.message, /\n/, 'one line');
    assert.match(e.message, pattern);
    if (code) assert.equal(e.code, code);
    return true;
  });
}

const core = (dir: string, extra: Partial<CoreImageOptions> = {}) => () => grubCoreImage({ modulesDir: dir, modules: ['biosdisk', 'ext2'], prefix: '(,msdos1)/boot/grub', ...extra });

test('bad modules directories name the key and say what to give', () => {
  fails(core(path.join(work, 'nothing')), /^grub\.modulesDir \S+nothing does not exist; give GRUB's i386-pc modules directory/, 'SOURCE_MISSING');
  fails(core(path.join(work, 'nothing'), { key: 'boot.grub.modules' }), /^boot\.grub\.modules \S+nothing does not exist; give/);
  fails(core(mkimage), /^grub\.modulesDir \S+ is not a directory; give GRUB's i386-pc modules directory/, 'SOURCE_NOT_DIR');
  fails(core(fakeDir({ 'kernel.img': null })), /^grub\.modulesDir \S+: no kernel\.img; give GRUB's i386-pc modules directory/, 'SOURCE_MISSING');
  fails(core(fakeDir({ 'moddep.lst': null })), /^grub\.modulesDir \S+: no moddep\.lst; give/);
  fails(core(fakeDir({ 'diskboot.img': Buffer.alloc(100) })), /diskboot\.img is 100 bytes, not 512; give GRUB's own/);
  fails(core(fakeDir({ 'lzma_decompress.img': Buffer.alloc(0x1000) })), /lzma_decompress\.img is 4096 bytes, more than GRUB's i386-pc lzma_decompress\.img can be/);
  fails(() => grubSetup(fakeDir({ 'boot.img': null }), Buffer.alloc(4096), 1, 'grub.dir'), /^grub\.dir \S+: no boot\.img; give GRUB's i386-pc modules directory/);
});

test('unknown modules, module names that are paths, and a cyclic moddep.lst', () => {
  fails(core(modulesDir, { modules: ['ext2', 'nosuchmodule'] }), /^grub\.modulesDir \S+: no module nosuchmodule \(nosuchmodule\.mod\); give module names that \S+ has/, 'SOURCE_MISSING');
  fails(core(modulesDir, { modules: ['../../etc/passwd'] }), /names the module "\.\.\/\.\.\/etc\/passwd", which is not a module name; give names such as biosdisk/);
  const cyclic = fakeDir({ 'moddep.lst': Buffer.from('ext2: fshelp\nfshelp: ext2\n') });
  fails(core(cyclic), /moddep\.lst makes \S+ depend on itself/);
  // A dependency that moddep.lst names but the directory lacks.
  fails(core(fakeDir({ 'fshelp.mod': null })), /no module fshelp \(fshelp\.mod\)/);
  fails(core(modulesDir, { prefix: 'a\0b' }), /the prefix holds a NUL byte/);
});

test('too much to embed: a core.img past 0x78000, a module file too big to read', () => {
  const all = fs.readdirSync(modulesDir).filter((f) => f.endsWith('.mod')).map((f) => f.slice(0, -4));
  fails(core(modulesDir, { modules: all }), /^grub\.modulesDir \S+: core\.img would be \d+ bytes, more than GRUB's i386-pc loader can load \(455168\); embed fewer modules/, 'TOO_LARGE');
  const dir = fakeDir({ 'ext2.mod': Buffer.alloc(0) });
  fs.truncateSync(path.join(dir, 'ext2.mod'), 17 << 20);
  fails(core(dir), /the kernel and modules come to more than 16 MiB, far more than GRUB's i386-pc core\.img can hold; embed fewer modules/, 'TOO_LARGE');
});

test('a truncated or hostile kernel.img is refused in one line', () => {
  const kernel = fs.readFileSync(path.join(modulesDir, 'kernel.img'));
  const bad = (mutate: (k: Buffer) => Buffer, pattern: RegExp) => {
    const dir = fakeDir({ 'kernel.img': mutate(Buffer.from(kernel)) });
    fails(core(dir), pattern);
    fails(core(dir), /^grub\.modulesDir \S+: kernel\.img .*; give GRUB's own i386-pc kernel\.img/);
  };
  const shoff = kernel.readUInt32LE(32);
  bad((k) => k.subarray(0, 40), /kernel\.img is not an ELF file; give GRUB's own i386-pc kernel\.img/);
  bad((k) => k.subarray(0, 1000), /kernel\.img has 6 section headers that run past the end of the file \(1000 bytes\)/);
  bad((k) => k.subarray(0, shoff + 100), /run past the end of the file/);
  bad((k) => (k.writeUInt16LE(62, 18), k), /built for ELF machine 62, not 3/);
  bad((k) => (k[4] = 2, k), /not a little-endian ELF32 file/);
  bad((k) => (k.writeUInt16LE(8, 46), k), /section headers of 8 bytes/);
  bad((k) => (k.writeUInt16LE(0xffff, 48), k), /65535 section headers that run past the end/);
  // .text (section 1) at another address; .data (section 3) below the link address, or huge, or its bytes past the file.
  bad((k) => (k.writeUInt32LE(0x8000, shoff + 40 + 12), k), /has code at 0x8000, not at the link address 0x9000/);
  bad((k) => (k.writeUInt32LE(0x100, shoff + 3 * 40 + 12), k), /has data at 0x100, below the link address/);
  bad((k) => (k.writeUInt32LE(0x7fffffff, shoff + 3 * 40 + 20), k), /has a section 3 that runs past the end of the file/);
  bad((k) => (k.writeUInt32LE(0x100000, shoff + 3 * 40 + 12), k), /kernel\.img needs memory up to 0x\w+, past 0x68000/);
  // .rodata (section 2) moved past .data, the last data section: it would overlap the modules.
  bad((k) => (k.writeUInt32LE(0x10000, shoff + 2 * 40 + 12), k), /a section at 0x10000 past the end of its last data section/);
  // No code at all.
  bad((k) => (k.writeUInt32LE(2, shoff + 40 + 8), k), /kernel\.img has no code section/);
});

test('grubSetup refuses what is not a core.img', () => {
  fails(() => grubSetup(modulesDir, Buffer.alloc(100), 1), /core\.img of 100 bytes is too small to be GRUB's; give the core\.img grubCoreImage made/);
  fails(() => grubSetup(modulesDir, Buffer.alloc(1000 * 512), 1), /core\.img of 1000 sectors is more than GRUB's i386-pc loader can load \(888\)/);
  const c = grubCoreImage({ modulesDir, ...CASES[1] });
  fails(() => grubSetup(modulesDir, c, 0), /core\.img sector 0: give the whole-number sector after the MBR/);
  fails(() => grubSetup(modulesDir, c, 1.5), /core\.img sector 1\.5/);
  const noTerminator = Buffer.from(c);
  for (let at = 0x1f4; at > 0; at -= 12) noTerminator.writeUInt16LE(1, at + 8);
  fails(() => grubSetup(modulesDir, noTerminator, 1), /core\.img has no blocklist terminator/);
});
