// GRUB 2's i386-pc core.img, assembled as grub-mkimage -O i386-pc does, and
// the patches grub-bios-setup makes to boot.img and core.img when core.img is
// embedded in consecutive sectors (the MBR gap or a BIOS boot partition).
// References (grub 2.06): util/mkimage.c, util/grub-mkimagexx.c (kernel.img
// loading), util/resolve.c (module order), util/setup.c, include/grub/offsets.h,
// include/grub/kernel.h, include/grub/i386/pc/boot.h, grub-core/boot/i386/pc/
// {boot,diskboot,startup_raw}.S.
//
// core.img:  diskboot.img (one sector; its first blocklist's length patched)
//            lzma_decompress.img (compressed and uncompressed sizes patched)
//            a raw LZMA1 stream (lc 3, lp 0, pb 2) of the payload, which the
//            decompressor unpacks to the kernel's link address 0x9000:
//              kernel.img's PROGBITS sections at their addresses - 0x9000
//              grub_module_info32, then objects, each a grub_module_header and
//              its bytes padded to 4: the modules (dependencies first), the
//              embedded config (NUL-terminated), the prefix (NUL-terminated)
//            zeros to a whole sector (grub-bios-setup pads the same way).
// The LZMA encoder is liblzma's (grub-mkimage has the LZMA SDK's), so the
// compressed bytes may differ from grub-mkimage's; the payload, and so what
// boots, is the same byte for byte. liblzma ends a raw LZMA1 stream with an
// end marker, which the decompressor never reaches: it stops at the
// uncompressed size.
import * as fs from 'node:fs';
import * as path from 'node:path';
import lzma from 'lzma-native';
import { DiskwrightError, type ErrorCode } from '../errors.ts';
import { defineStruct } from '../util/struct.ts';
import { elf32Sections, EM_386, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS } from './elf32.ts';

const SECTOR = 512;
const GRUB_KERNEL_I386_PC_LINK_ADDR = 0x9000;
const GRUB_BOOT_I386_PC_KERNEL_SEG = 0x800;
/** The decompressor runs at 0x8200 and must end below the kernel's link address. */
const GRUB_DECOMPRESSOR_I386_PC_MAX_DECOMPRESSOR_SIZE = 0x9000 - 0x8200;
/** core.img (after diskboot) is loaded from 0x8200 and must end below 0x78000; the unpacked kernel plus its bss below 0x68000 (mkimage's limits). */
const CORE_LIMIT = 0x78000;
const KERNEL_LIMIT = 0x68000;
/**
 * The modules stay where the decompressor unpacked them (1 MiB up), so
 * mkimage bounds them only by the compressed size; this bound on the unpacked
 * payload is ours, far above any payload whose stream fits below 0x78000
 * (GRUB's modules compress about 2.5 to 1), so that a huge file is refused
 * before it is read.
 */
const PAYLOAD_LIMIT = 16 << 20;
/** Sectors grub-bios-setup will embed at most: what fits between the link address and 0x78000. */
const MAX_CORE_SECTORS = (CORE_LIMIT - GRUB_KERNEL_I386_PC_LINK_ADDR) / SECTOR;

const GRUB_MODULE_MAGIC = 0x676d696d;
const OBJ_TYPE_ELF = 0;
const OBJ_TYPE_CONFIG = 2;
const OBJ_TYPE_PREFIX = 3;

// include/grub/kernel.h: on i386-pc addresses are 32-bit.
const grub_module_info32 = defineStruct(12, [
  ['magic', 0, 'u32'],
  ['offset', 4, 'u32'],
  ['size', 8, 'u32'],
] as const);
const grub_module_header = defineStruct(8, [
  ['type', 0, 'u32'],
  ['size', 4, 'u32'],
] as const);

// include/grub/i386/pc/boot.h: diskboot.img's blocklists grow down from the end of its sector.
const grub_pc_bios_boot_blocklist = defineStruct(12, [
  ['start', 0, 'u64'],
  ['len', 8, 'u16'],
  ['segment', 10, 'u16'],
] as const);
const FIRST_BLOCKLIST = SECTOR - grub_pc_bios_boot_blocklist.size;
/** Where the sectors after diskboot are loaded (0x8200), as diskboot.img's first blocklist has it. */
const FIRST_SEGMENT = GRUB_BOOT_I386_PC_KERNEL_SEG + (SECTOR >> 4);

// include/grub/offsets.h: the data area at the start of lzma_decompress.img (startup_raw.S).
const decompressorHeader = defineStruct(0x1c, [
  ['compressed_size', 0x08, 'u32'],
  ['uncompressed_size', 0x0c, 'u32'],
  ['reed_solomon_redundancy', 0x10, 'u32'],
  ['no_reed_solomon_length', 0x14, 'u16'],
  ['boot_dev', 0x18, { bytes: 3 }],
  ['boot_drive', 0x1b, 'u8'],
] as const);

// include/grub/i386/pc/boot.h: boot.img's data area.
const bootImgData = defineStruct(0x68, [
  ['kernel_address', 0x5a, 'u16'],
  ['kernel_sector', 0x5c, 'u64'],
  ['boot_drive', 0x64, 'u8'],
  ['drive_check', 0x66, { bytes: 2 }],
] as const);
/** The part of the MBR sector that is boot code; the disk signature and partition table follow. */
const MBR_CODE = 440;

export interface CoreImageOptions {
  /** An i386-pc directory: boot.img, diskboot.img, lzma_decompress.img, kernel.img, *.mod, moddep.lst (as ${grub2}/lib/grub/i386-pc). */
  modulesDir: string;
  /** Modules to embed; their dependencies from moddep.lst are added, dependencies first, as grub-mkimage orders them. */
  modules: string[];
  /** e.g. "(,msdos1)/boot/grub" or "(,gpt2)/boot/grub". */
  prefix: string;
  /** Embedded early config (OBJ_TYPE_CONFIG). */
  config?: string;
  /** For errors: the config key that named modulesDir. */
  key?: string;
}

const DEFAULT_KEY = 'grub.modulesDir';
const WANT_DIR = "give GRUB's i386-pc modules directory (lib/grub/i386-pc of a grub2 package: kernel.img, boot.img, diskboot.img, lzma_decompress.img, moddep.lst, *.mod)";

const align4 = (n: number) => (n + 3) & ~3;
const roundSector = (n: number) => Math.ceil(n / SECTOR) * SECTOR;

class Dir {
  readonly dir: string;
  readonly key: string;
  constructor(dir: string, key: string) {
    this.dir = dir;
    this.key = key;
  }

  fail(code: ErrorCode, what: string, fix = WANT_DIR): never {
    throw new DiskwrightError(code, `${this.key} ${this.dir}: ${what}; ${fix}`, { key: this.key, path: this.dir });
  }

  checkDir(): void {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.dir);
    } catch {
      throw new DiskwrightError('SOURCE_MISSING', `${this.key} ${this.dir} does not exist; ${WANT_DIR}`, { key: this.key, path: this.dir });
    }
    if (!st.isDirectory()) throw new DiskwrightError('SOURCE_NOT_DIR', `${this.key} ${this.dir} is not a directory; ${WANT_DIR}`, { key: this.key, path: this.dir });
  }

  /** A regular file's size, or undefined when it is not there. */
  size(name: string): number | undefined {
    try {
      const st = fs.statSync(path.join(this.dir, name));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /** A part of GRUB, at most `max` bytes (more is not GRUB's file). */
  read(name: string, max: number): Buffer {
    const size = this.size(name);
    if (size === undefined) this.fail('SOURCE_MISSING', `no ${name}`);
    if (size > max) this.fail('INPUT_UNSUPPORTED', `${name} is ${size} bytes, more than GRUB's i386-pc ${name} can be (${max})`);
    try {
      const buf = fs.readFileSync(path.join(this.dir, name));
      if (buf.length !== size) throw new Error('changed');
      return buf;
    } catch {
      return this.fail('SOURCE_UNREADABLE', `${name} cannot be read`, 'make it readable');
    }
  }
}

/** A module name as grub-mkimage takes it (a trailing .mod is dropped); never a path. */
function moduleName(d: Dir, name: string, from: string): string {
  const n = name.endsWith('.mod') ? name.slice(0, -4) : name;
  if (!n || n === '.' || n === '..' || /[/\\\0]/.test(n)) d.fail('OPTION_INVALID', `${from} names the module ${JSON.stringify(name)}, which is not a module name`, 'give names such as biosdisk, part_msdos, ext2');
  return n;
}

/** moddep.lst: "name: dep dep ...". A name listed twice takes its last line, each line's dependencies are visited last to first: both as resolve.c's prepended lists do. */
function readModdep(d: Dir): Map<string, string[]> {
  const text = d.read('moddep.lst', 4 << 20).toString('latin1');
  const deps = new Map<string, string[]>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    if (colon < 0) d.fail('INPUT_UNSUPPORTED', `moddep.lst line ${i + 1} has no ':'`);
    const name = moduleName(d, line.slice(0, colon), `moddep.lst line ${i + 1}`);
    deps.set(name, line.slice(colon + 1).split(/\s+/).filter(Boolean).map((m) => moduleName(d, m, `moddep.lst line ${i + 1}`)).reverse());
  }
  return deps;
}

/** The modules to embed, dependencies first, in grub-mkimage's order. Iterative, so a deep or cyclic moddep.lst cannot exhaust the stack. */
export function grubModuleOrder(modulesDir: string, modules: string[], key = DEFAULT_KEY): string[] {
  const d = new Dir(modulesDir, key);
  d.checkDir();
  return moduleOrder(d, modules, readModdep(d));
}

function moduleOrder(d: Dir, modules: string[], deps: Map<string, string[]>): string[] {
  const order: string[] = [];
  const added = new Set<string>();
  const onStack = new Set<string>();
  for (const given of modules) {
    const root = moduleName(d, given, 'the module list');
    if (added.has(root)) continue;
    const stack = [{ name: root, deps: deps.get(root) ?? [], next: 0 }];
    onStack.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.next < top.deps.length) {
        const dep = top.deps[top.next++];
        if (added.has(dep)) continue;
        if (onStack.has(dep)) d.fail('INPUT_UNSUPPORTED', `moddep.lst makes ${dep} depend on itself (through ${top.name})`);
        onStack.add(dep);
        stack.push({ name: dep, deps: deps.get(dep) ?? [], next: 0 });
        continue;
      }
      stack.pop();
      onStack.delete(top.name);
      added.add(top.name);
      order.push(top.name);
    }
  }
  return order;
}

/** kernel.img laid out as grub-mkimagexx.c does for a non-relocatable target: each PROGBITS section at its address minus the link address; the size is where the last text, then the last data section ends. */
function loadKernel(d: Dir): Buffer {
  const buf = d.read('kernel.img', KERNEL_LIMIT);
  const bad = (why: string): never => d.fail('INPUT_UNSUPPORTED', `kernel.img ${why}`, "give GRUB's own i386-pc kernel.img (from the same grub2 as the modules)");
  const sections = elf32Sections(buf, EM_386);
  if (typeof sections === 'string') return bad(sections);
  const kind = (s: { type: number; flags: number }) =>
    s.type !== SHT_PROGBITS ? undefined : (s.flags & (SHF_ALLOC | SHF_EXECINSTR)) === (SHF_ALLOC | SHF_EXECINSTR) ? 'text' : (s.flags & (SHF_ALLOC | SHF_EXECINSTR)) === SHF_ALLOC ? 'data' : undefined;
  const kept = sections.filter((s) => kind(s));
  let size = 0;
  let text = false;
  for (const pass of ['text', 'data'] as const) {
    for (const s of kept) {
      if (kind(s) !== pass) continue;
      if (pass === 'text') {
        if (s.addr !== GRUB_KERNEL_I386_PC_LINK_ADDR) bad(`has code at 0x${s.addr.toString(16)}, not at the link address 0x9000`);
        text = true;
      }
      if (s.addr < GRUB_KERNEL_I386_PC_LINK_ADDR) bad(`has data at 0x${s.addr.toString(16)}, below the link address 0x9000`);
      size = s.addr - GRUB_KERNEL_I386_PC_LINK_ADDR + s.size;
    }
  }
  if (!text) bad('has no code section');
  let end = size;
  for (const s of sections) if (s.type === SHT_NOBITS) end = s.addr - GRUB_KERNEL_I386_PC_LINK_ADDR + s.size;
  if (Math.max(size, end) + GRUB_KERNEL_I386_PC_LINK_ADDR > KERNEL_LIMIT) {
    d.fail('TOO_LARGE', `kernel.img needs memory up to 0x${(Math.max(size, end) + GRUB_KERNEL_I386_PC_LINK_ADDR).toString(16)}, past 0x68000`, "give GRUB's own i386-pc kernel.img");
  }
  const image = Buffer.alloc(size);
  for (const s of kept) {
    const at = s.addr - GRUB_KERNEL_I386_PC_LINK_ADDR;
    // mkimage takes the last section's end as the size; a section ending past it would overlap the modules.
    if (at + s.size > size) bad(`has a section at 0x${s.addr.toString(16)} past the end of its last data section`);
    buf.copy(image, at, s.offset, s.offset + s.size);
  }
  return image;
}

/** The objects after the kernel, each with its header, in mkimage's order. */
function moduleArea(d: Dir, names: string[], config: string | undefined, prefix: string, room: number): Buffer {
  const objects: { type: number; data: Buffer }[] = [];
  let total = grub_module_info32.size;
  // Each object is measured before it is read, so a huge file is refused unread.
  const reserve = (len: number) => {
    total += grub_module_header.size + align4(len);
    if (total > room) d.fail('TOO_LARGE', `the kernel and modules come to more than ${PAYLOAD_LIMIT >> 20} MiB, far more than GRUB's i386-pc core.img can hold`, 'embed fewer modules (load the others from the prefix with insmod)');
  };
  const add = (type: number, data: Buffer) => {
    reserve(data.length);
    objects.push({ type, data });
  };
  for (const name of names) {
    const size = d.size(`${name}.mod`);
    if (size === undefined) d.fail('SOURCE_MISSING', `no module ${name} (${name}.mod)`, `give module names that ${d.dir} has, or a modules directory that has ${name}`);
    reserve(size);
    objects.push({ type: OBJ_TYPE_ELF, data: d.read(`${name}.mod`, size) });
  }
  // The config and prefix are C strings: a NUL ends them, and mkimage pads after it.
  if (config !== undefined) add(OBJ_TYPE_CONFIG, Buffer.concat([Buffer.from(config, 'utf8'), Buffer.alloc(1)]));
  add(OBJ_TYPE_PREFIX, Buffer.concat([Buffer.from(prefix, 'utf8'), Buffer.alloc(1)]));

  const area = Buffer.alloc(total);
  grub_module_info32.encode(area, 0, { magic: GRUB_MODULE_MAGIC, offset: grub_module_info32.size, size: total });
  let at = grub_module_info32.size;
  for (const o of objects) {
    grub_module_header.encode(area, at, { type: o.type, size: grub_module_header.size + align4(o.data.length) });
    o.data.copy(area, at + grub_module_header.size);
    at += grub_module_header.size + align4(o.data.length);
  }
  return area;
}

/** liblzma's raw LZMA1 encoder with grub-mkimage's settings (64 KiB dictionary, lc 3, lp 0, pb 2, normal mode, binary-tree match finder). */
function lzmaRaw(data: Buffer): Buffer {
  const stream = new lzma.Stream();
  stream.rawEncoder_([{ id: 'LZMA_FILTER_LZMA1', options: { dictSize: 1 << 16, lc: 3, lp: 0, pb: 2, mode: lzma.MODE_NORMAL, mf: lzma.MF_BT4, niceLen: 32 } }]);
  const out: Buffer[] = [];
  let failed: Error | null = null;
  stream.bufferHandler = (buf, _chunks, err) => {
    if (err) failed = err;
    else if (buf) out.push(buf);
  };
  stream.code(data, false);
  stream.code(null, false);
  if (failed) throw new Error(`internal: LZMA compression failed: ${(failed as Error).message}`);
  return Buffer.concat(out);
}

/** GRUB's i386-pc core.img for `o`, a multiple of 512 bytes: what grub-mkimage -O i386-pc -p PREFIX [-c CONFIG] MODULES writes, padded with zeros to a whole sector. */
export function grubCoreImage(o: CoreImageOptions): Buffer {
  const d = new Dir(o.modulesDir, o.key ?? DEFAULT_KEY);
  d.checkDir();
  if (o.prefix.includes('\0')) d.fail('OPTION_INVALID', 'the prefix holds a NUL byte', 'give a prefix such as (,msdos1)/boot/grub');
  if (o.config?.includes('\0')) d.fail('OPTION_INVALID', 'the embedded config holds a NUL byte', 'remove it');
  // Read the small parts first, so a directory that is not GRUB's fails before any work.
  const diskboot = Buffer.from(d.read('diskboot.img', SECTOR));
  if (diskboot.length !== SECTOR) d.fail('INPUT_UNSUPPORTED', `diskboot.img is ${diskboot.length} bytes, not ${SECTOR}`, "give GRUB's own i386-pc diskboot.img");
  const first = grub_pc_bios_boot_blocklist.decode(diskboot, FIRST_BLOCKLIST);
  if (first.segment !== FIRST_SEGMENT) d.fail('INPUT_UNSUPPORTED', `diskboot.img does not load to segment 0x${FIRST_SEGMENT.toString(16)}`, "give GRUB's own i386-pc diskboot.img");
  const decompressor = Buffer.from(d.read('lzma_decompress.img', GRUB_DECOMPRESSOR_I386_PC_MAX_DECOMPRESSOR_SIZE));
  if (decompressor.length < decompressorHeader.size) d.fail('INPUT_UNSUPPORTED', `lzma_decompress.img is only ${decompressor.length} bytes`, "give GRUB's own i386-pc lzma_decompress.img");
  const moddep = readModdep(d);
  const names = moduleOrder(d, o.modules, moddep);

  const kernel = loadKernel(d);
  const modules = moduleArea(d, names, o.config, o.prefix, PAYLOAD_LIMIT - kernel.length);
  const payload = Buffer.concat([kernel, modules]);
  const compressed = lzmaRaw(payload);

  decompressorHeader.encode(decompressor, 0, { compressed_size: compressed.length, uncompressed_size: payload.length });
  const body = decompressor.length + compressed.length;
  if (GRUB_KERNEL_I386_PC_LINK_ADDR + body > CORE_LIMIT) {
    d.fail('TOO_LARGE', `core.img would be ${body + SECTOR} bytes, more than GRUB's i386-pc loader can load (${CORE_LIMIT - GRUB_KERNEL_I386_PC_LINK_ADDR + SECTOR})`, 'embed fewer modules (load the others from the prefix with insmod)');
  }
  grub_pc_bios_boot_blocklist.encode(diskboot, FIRST_BLOCKLIST, { len: Math.ceil(body / SECTOR) });

  const core = Buffer.alloc(roundSector(SECTOR + body));
  diskboot.copy(core, 0);
  decompressor.copy(core, SECTOR);
  compressed.copy(core, SECTOR + decompressor.length);
  return core;
}

/**
 * boot.img's first 440 bytes patched for a core.img at coreSector, and core.img
 * with its blocklist pointing at the sectors after its first: what
 * grub-bios-setup writes for a hard disk when it embeds core.img in
 * consecutive sectors (without Reed-Solomon codes, as --no-rs-codes).
 * boot.img's BPB area stays as boot.img has it (zeros): grub-bios-setup copies
 * it from the disk's old sector 0, blank on a new disk.
 */
export function grubSetup(modulesDir: string, core: Buffer, coreSector: number, key = DEFAULT_KEY): { mbrCode: Buffer; core: Buffer } {
  const d = new Dir(modulesDir, key);
  d.checkDir();
  const boot = Buffer.from(d.read('boot.img', SECTOR));
  if (boot.length !== SECTOR) d.fail('INPUT_UNSUPPORTED', `boot.img is ${boot.length} bytes, not ${SECTOR}`, "give GRUB's own i386-pc boot.img");
  const sectors = Math.ceil(core.length / SECTOR);
  if (core.length < SECTOR + decompressorHeader.size) throw new DiskwrightError('OPTION_INVALID', `core.img of ${core.length} bytes is too small to be GRUB's; give the core.img grubCoreImage made`, { size: core.length });
  if (sectors > MAX_CORE_SECTORS) throw new DiskwrightError('TOO_LARGE', `core.img of ${sectors} sectors is more than GRUB's i386-pc loader can load (${MAX_CORE_SECTORS}); embed fewer modules`, { size: core.length });
  if (!Number.isSafeInteger(coreSector) || coreSector < 1 || coreSector + sectors > Number.MAX_SAFE_INTEGER) {
    throw new DiskwrightError('OPTION_INVALID', `core.img sector ${coreSector}: give the whole-number sector after the MBR where core.img starts (1 for the MBR gap)`, { sector: coreSector });
  }
  const out = Buffer.alloc(sectors * SECTOR);
  core.copy(out);
  if (out.readUInt16LE(SECTOR + decompressorHeader.offsets.no_reed_solomon_length) === 0xffff) {
    throw new DiskwrightError('OPTION_INVALID', 'core.img does not match this GRUB (no Reed-Solomon length); give the core.img grubCoreImage made from the same modules directory', {});
  }
  // Clear the blocklists mkimage left, down to their terminator, then write the one run of sectors that follows the first.
  let at = FIRST_BLOCKLIST;
  while (grub_pc_bios_boot_blocklist.decode(out, at).len !== 0) {
    out.fill(0, at, at + grub_pc_bios_boot_blocklist.size);
    at -= grub_pc_bios_boot_blocklist.size;
    if (at <= 0) throw new DiskwrightError('OPTION_INVALID', 'core.img has no blocklist terminator; give the core.img grubCoreImage made', {});
  }
  // core.img is at least two sectors (checked above), so the first blocklist is used and the next ends the list.
  grub_pc_bios_boot_blocklist.encode(out, FIRST_BLOCKLIST, { start: coreSector + 1, len: sectors - 1, segment: FIRST_SEGMENT });
  grub_pc_bios_boot_blocklist.encode(out, FIRST_BLOCKLIST - grub_pc_bios_boot_blocklist.size, { start: 0, len: 0, segment: 0 });

  // Hard disk: boot_drive 0xff (use the drive the BIOS passes in DL) and the
  // jump over the buggy-BIOS drive check replaced by two NOPs.
  bootImgData.encode(boot, 0, { kernel_sector: coreSector, boot_drive: 0xff, drive_check: Buffer.from([0x90, 0x90]) });
  return { mbrCode: Buffer.from(boot.subarray(0, MBR_CODE)), core: out };
}
