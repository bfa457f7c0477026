// Unified kernel images made from Debian's systemd 252 stub: binutils
// (objdump, objcopy) read the sections back in ukify's order, at the
// addresses and offsets ukify gives them, with our bytes; the stub's own
// sections stay as they were; a build with `uki: true` puts the image under
// EFI/Linux/ with no entry file; bad and hostile stubs are one-line errors.
// (ukify itself is not packaged in Debian 12; systemd-ukify came with 253.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DiskwrightError } from '../../src/errors.ts';
import { parsePe, roundUp, SECTION_HEADER } from '../../src/boot/pe.ts';
import { assembleUki, kernelRelease, osReleaseValue, ukiBootFile, ukiFileName, ukiSections } from '../../src/boot/uki.ts';
import { readToplevel } from '../../src/boot/toplevel.ts';
import { storeDirs } from '../../src/nix/store-path.ts';
import { buildConfig, buildFails, cutPartition } from '../disk/helpers.ts';
import { fsckFat, mcopyRead, mdirAll } from '../oracle/fat-tools.ts';
import { makeToplevel, parts, storeName, type Parts } from './parts.ts';

let work: string;
let p: Parts;
let stub: Buffer;
let n = 0;
const STUB_SECTIONS = ['.text', '.reloc', '.data', '.dynamic', '.rela', '.dynsym', '.sbat', '.sdmagic'];
const NEW_SECTIONS = ['.osrel', '.cmdline', '.uname', '.initrd', '.linux'];
const fix = 'give another stub';

before(() => {
  p = parts();
  stub = fs.readFileSync(p.linuxStub);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-uki-'));
  for (const f of ['initrd', 'busybox']) fs.writeFileSync(path.join(work, f), `fake ${f}\n`.repeat(100));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

interface ObjSection { name: string; size: number; vma: number; off: number }
function objdumpH(file: string): ObjSection[] {
  const r = spawnSync('objdump', ['-h', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return [...r.stdout.matchAll(/^\s*\d+\s+(\S+)\s+([0-9a-f]{8})\s+([0-9a-f]{16})\s+[0-9a-f]{16}\s+([0-9a-f]{8})/gm)]
    .map((m) => ({ name: m[1], size: parseInt(m[2], 16), vma: parseInt(m[3], 16), off: parseInt(m[4], 16) }));
}
function objdumpP(file: string): Record<string, string> {
  const r = spawnSync('objdump', ['-p', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries([...r.stdout.matchAll(/^(\w+)\s+([0-9a-f]+)/gm)].map((m) => [m[1], m[2]]));
}
const dumpSection = (file: string, name: string): Buffer => {
  const out = path.join(work, `dump-${n++}`);
  const r = spawnSync('objcopy', [`--dump-section`, `${name}=${out}`, file, path.join(work, `scratch-${n++}`)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return fs.readFileSync(out);
};

test('the kernel release from the bzImage setup header', () => {
  assert.equal(kernelRelease(fs.readFileSync(p.vmlinuz)), p.kernelVersion);
  assert.equal(kernelRelease(Buffer.alloc(4096)), undefined);
  // A kernel_version pointer past the file's end, or at text that is no release.
  const k = Buffer.alloc(0x400);
  k.write('HdrS', 0x202, 'latin1');
  k.writeUInt16LE(0x20f, 0x206);
  k.writeUInt16LE(0xfff0, 0x20e);
  assert.equal(kernelRelease(k), undefined);
  k.writeUInt16LE(0x100, 0x20e);
  k.write('hello world\0', 0x300, 'latin1');
  assert.equal(kernelRelease(k), undefined);
  k.write('6.6.1-rc2+ #1 SMP\0', 0x300, 'latin1');
  assert.equal(kernelRelease(k), '6.6.1-rc2+');
});

test('a kernel whose header names no release: .uname from the system\'s one modules directory, else none', () => {
  fs.writeFileSync(path.join(work, 'Image'), 'an arm64 Image has no x86 setup header\n');
  const t = makeToplevel(path.join(work, 'store-image'), {
    kernel: path.join(work, 'Image'), initrd: path.join(work, 'initrd'), busybox: path.join(work, 'busybox'), kernelParams: 'quiet',
  });
  const dirs = storeDirs({ nixStoreDir: '/nix/store', storeDir: path.join(work, 'store-image') });
  const names = () => {
    const entry = readToplevel(t.toplevel, dirs).entries[0];
    const f = ukiBootFile(entry, { stub: { host: p.linuxStub, size: stub.length, shown: 'stub' }, arch: 'x64', toplevel: t.toplevel, dirs });
    const file = path.join(work, `image-${n++}.efi`);
    fs.writeFileSync(file, f.content!);
    return { names: objdumpH(file).map((s) => s.name), file };
  };
  assert.deepEqual(names().names, [...STUB_SECTIONS, '.osrel', '.cmdline', '.initrd', '.linux']);
  const modules = storeName('linux-6.12.1-modules');
  fs.mkdirSync(path.join(work, 'store-image', modules, 'lib/modules/6.12.1-arm64'), { recursive: true });
  fs.symlinkSync(`/nix/store/${modules}`, path.join(work, 'store-image', path.basename(t.toplevel), 'kernel-modules'));
  const withModules = names();
  assert.deepEqual(withModules.names, [...STUB_SECTIONS, ...NEW_SECTIONS]);
  assert.equal(dumpSection(withModules.file, '.uname').toString(), '6.12.1-arm64');
});

test('sections in ukify\'s order after the stub\'s, aligned, with our bytes; SizeOfImage grown, CheckSum 0', () => {
  const kernel = fs.readFileSync(p.vmlinuz);
  const initrd = Buffer.from('an initrd of odd length\n'.repeat(77));
  const osrel = 'NAME=NixOS\nID=nixos\nVERSION_ID="24.11"\n';
  const cmdline = 'init=/nix/store/x-nixos-system/init root=LABEL=nixos console=ttyS0';
  const uki = assembleUki(parsePe(stub, 'stub', fix), ukiSections(osrel, cmdline, kernel, initrd), 'stub', fix);
  const file = path.join(work, 'uki.efi');
  fs.writeFileSync(file, uki);

  const before = objdumpH(p.linuxStub);
  const after = objdumpH(file);
  assert.deepEqual(after.map((s) => s.name), [...STUB_SECTIONS, ...NEW_SECTIONS]);
  assert.deepEqual(after.slice(0, STUB_SECTIONS.length), before, 'the stub\'s sections stay where they were');
  const pe = objdumpP(p.linuxStub);
  const sa = parseInt(pe.SectionAlignment, 16);
  const fa = parseInt(pe.FileAlignment, 16);
  // The kernel is mapped at its own SizeOfImage (objdump shows min(VirtualSize, SizeOfRawData)).
  const kernelImage = parseInt(objdumpP(p.vmlinuz).SizeOfImage, 16);
  const data = [Buffer.from(osrel), Buffer.from(cmdline), Buffer.from(p.kernelVersion), initrd, kernel];
  const vsizes = data.map((d, i) => (i === 4 ? Math.max(kernelImage, d.length) : d.length));
  const last = before[before.length - 1];
  let va = roundUp(last.vma + last.size, sa);
  // This stub still ends in a COFF symbol table, which ukify (and we) cut off: the new data starts there.
  const symbols = stub.readUInt32LE(stub.readUInt32LE(0x3c) + 12);
  assert.ok(symbols > 0);
  let off = roundUp(symbols, fa);
  for (let i = 0; i < NEW_SECTIONS.length; i++) {
    const s = after[STUB_SECTIONS.length + i];
    assert.equal(s.vma, va, `${s.name} address`);
    assert.equal(s.off, off, `${s.name} file offset`);
    assert.equal(s.size, Math.min(vsizes[i], roundUp(data[i].length, fa)), `${s.name} size`);
    const back = dumpSection(file, s.name);
    assert.deepEqual(back.subarray(0, data[i].length), data[i], `${s.name} bytes`);
    assert.ok(back.subarray(data[i].length).every((b) => b === 0), `${s.name} padding`);
    va = roundUp(va + vsizes[i], sa);
    off += roundUp(data[i].length, fa);
  }
  assert.equal(uki.length, off);
  const hdr = objdumpP(file);
  assert.equal(parseInt(hdr.SizeOfImage, 16), va);
  assert.equal(parseInt(hdr.CheckSum, 16), 0);
  assert.match(spawnSync('objdump', ['-p', file], { encoding: 'utf8' }).stdout, /symbols stripped/);
  assert.equal(hdr.AddressOfEntryPoint, pe.AddressOfEntryPoint);
  // Past the headers, the stub's bytes are untouched.
  const headers = parseInt(pe.SizeOfHeaders, 16);
  assert.deepEqual(uki.subarray(headers, symbols), stub.subarray(headers, symbols));
  // The same inputs give the same bytes.
  assert.deepEqual(assembleUki(parsePe(stub, 'stub', fix), ukiSections(osrel, cmdline, kernel, initrd), 'stub', fix), uki);
});

test('objcopy as systemd 252\'s documentation builds a UKI reads the same section bytes at its fixed addresses', () => {
  // The documented recipe pins each section to an address; ukify (and we) place them right after the stub.
  const files = { osrel: 'NAME=NixOS\nID=nixos\nVERSION_ID="24.11"\n', cmdline: 'init=/x/init quiet', initrd: 'initrd bytes\n'.repeat(9) };
  for (const [k, v] of Object.entries(files)) fs.writeFileSync(path.join(work, `oc-${k}`), v);
  const oc = path.join(work, 'objcopy.efi');
  const vmas: Record<string, string> = { osrel: '0x20000', cmdline: '0x30000', linux: '0x2000000', initrd: '0x3000000' };
  const args = Object.entries(vmas).flatMap(([k, vma]) => ['--add-section', `.${k}=${k === 'linux' ? p.vmlinuz : path.join(work, `oc-${k}`)}`, '--change-section-vma', `.${k}=${vma}`]);
  const r = spawnSync('objcopy', [...args, p.linuxStub, oc], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const ours = path.join(work, 'ours.efi');
  fs.writeFileSync(ours, assembleUki(parsePe(stub, 'stub', fix), ukiSections(files.osrel, files.cmdline, fs.readFileSync(p.vmlinuz), Buffer.from(files.initrd)), 'stub', fix));
  for (const name of ['.osrel', '.cmdline', '.initrd', '.linux']) {
    const a = dumpSection(oc, name);
    const b = dumpSection(ours, name);
    const len = Math.min(a.length, b.length);
    assert.ok(len > 0);
    assert.deepEqual(a.subarray(0, len), b.subarray(0, len), name);
  }
});

test('the file name NixOS\'s boot.uki gives: IMAGE_ID or nixos, then _IMAGE_VERSION', () => {
  assert.equal(ukiFileName('NAME=NixOS\nID=nixos\n'), 'nixos.efi');
  assert.equal(ukiFileName('ID=nixos\nIMAGE_ID="appliance"\nIMAGE_VERSION=1.2\n'), 'appliance_1.2.efi');
  assert.equal(osReleaseValue('PRETTY_NAME="NixOS 24.11 (Vicuna)"\n', 'PRETTY_NAME'), 'NixOS 24.11 (Vicuna)');
  assert.throws(() => ukiFileName('IMAGE_ID=../../x\n'), (e: unknown) => e instanceof DiskwrightError && /IMAGE_ID or IMAGE_VERSION/.test(e.message));
  assert.throws(() => ukiFileName('IMAGE_ID=.hidden\n'), (e: unknown) => e instanceof DiskwrightError && /IMAGE_ID or IMAGE_VERSION/.test(e.message));
});

test('a stripped stub with unaligned section data is aligned first, as ukify does: the same UKI as from the aligned stub', () => {
  const peAt = stub.readUInt32LE(0x3c);
  const tableAt = peAt + 24 + stub.readUInt16LE(peAt + 20);
  const symbols = stub.readUInt32LE(peAt + 12);
  const sec = (i: number) => tableAt + i * SECTION_HEADER.size;
  // What `strip` leaves: no symbol table, .sbat (6) and .sdmagic (7) cut to their VirtualSize, packed together.
  const sbat = stub.readUInt32LE(sec(6) + 20);
  const sbatSize = stub.readUInt32LE(sec(6) + 8);
  const magic = stub.readUInt32LE(sec(7) + 20);
  const magicSize = stub.readUInt32LE(sec(7) + 8);
  assert.ok(sbatSize % 512 !== 0 && magicSize % 512 !== 0 && symbols === magic + 512);
  const packed = Buffer.concat([stub.subarray(0, sbat + sbatSize), stub.subarray(magic, magic + magicSize)]);
  packed.writeUInt32LE(0, peAt + 12);
  packed.writeUInt32LE(0, peAt + 16);
  packed.writeUInt16LE(stub.readUInt16LE(peAt + 22) | 0x0008, peAt + 22);
  packed.writeUInt32LE(sbatSize, sec(6) + 16);
  packed.writeUInt32LE(sbat + sbatSize, sec(7) + 20);
  packed.writeUInt32LE(magicSize, sec(7) + 16);
  const sections = ukiSections('ID=nixos\n', 'x', fs.readFileSync(p.vmlinuz), Buffer.from('initrd'));
  const fromPacked = assembleUki(parsePe(packed, 'stub', fix), sections, 'stub', fix);
  assert.deepEqual(fromPacked, assembleUki(parsePe(stub, 'stub', fix), sections, 'stub', fix));
});

test('bad and hostile stubs: one DiskwrightError each, never a crash', () => {
  const sections = ukiSections('ID=nixos\n', 'x', Buffer.from('kernel'), undefined);
  const build = (b: Buffer) => assembleUki(parsePe(b, 'stub', fix), sections, 'stub', fix);
  const rejects = (b: Buffer, re: RegExp) => assert.throws(() => build(b), (e: unknown) => e instanceof DiskwrightError && re.test(e.message) && e.message.endsWith(fix));
  rejects(Buffer.from('#!/bin/sh\n'), /not a PE\/COFF image \(no MZ header\)/);
  rejects(stub.subarray(0, 0x90), /no PE signature/);
  rejects(stub.subarray(0, 0x100), /no complete optional header/);
  const peAt = stub.readUInt32LE(0x3c);
  const optAt = peAt + 24;
  const patched = (at: number, v: number, bytes = 4) => {
    const b = Buffer.from(stub);
    b.writeUIntLE(v, at, bytes);
    return b;
  };
  // A signed stub (certificate table, data directory 4 of PE32+ at +112).
  rejects(patched(optAt + 112 + 4 * 8 + 4, 0x100), /is signed/);
  rejects(patched(peAt + 6, 200, 2), /200 sections/);
  rejects(patched(optAt + 36, 0x300), /FileAlignment 768/);
  const tableAt = optAt + stub.readUInt16LE(peAt + 20);
  rejects(patched(tableAt + 20, 0x7ffffe00), /section ".text" whose data lies outside the file/);
  rejects(patched(tableAt + 40 + 12, 0x100), /section ".reloc" at an address below/);
  // A stub that is a UKI already.
  const twice = build(stub);
  rejects(twice, /already has a \.osrel section/);
  // Seeded byte flips in the headers: a UKI or a DiskwrightError, nothing else.
  let seed = 0x2545f491;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const headers = tableAt + 8 * SECTION_HEADER.size;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(stub);
    for (let j = next() % 4; j >= 0; j--) b[next() % headers] = next() & 0xff;
    try {
      build(b);
    } catch (e) {
      assert.ok(e instanceof DiskwrightError, `flip ${i}: ${e}`);
    }
  }
});

function toplevelIn(name: string, withStub = true) {
  const store = path.join(work, name);
  const t = makeToplevel(store, {
    kernel: p.vmlinuz, initrd: path.join(work, 'initrd'), busybox: path.join(work, 'busybox'),
    systemdBootEfi: p.systemdBootEfi, linuxStub: withStub ? p.linuxStub : undefined, kernelParams: 'root=LABEL=nixos console=ttyS0', bootJson: true,
  });
  return { toplevel: t.toplevel, storeDir: name };
}

const files = (part: string) => [...mdirAll(part)].flatMap(([dir, es]) => es.filter((e) => !e.dir).map((e) => `${dir === '/' ? '' : dir}/${e.name}`)).sort();

test('uki: true on efi: EFI/Linux/nixos.efi and no entry file or loose kernel; loader.conf defaults to it; two builds are the same bytes', () => {
  const t = toplevelIn('store-efi');
  const cfg = { partitionTableType: 'efi', ...t, epoch: 1, uki: true, additionalSpace: '16M' };
  const b = buildConfig(work, 'efi', cfg);
  const esp = cutPartition(work, b.image, b.layout, 1);
  assert.ok(fsckFat(esp).clean);
  assert.deepEqual(files(esp), ['/EFI/BOOT/BOOTX64.EFI', '/EFI/Linux/nixos.efi', '/EFI/systemd/systemd-bootx64.efi', '/loader/entries.srel', '/loader/loader.conf']);
  assert.equal(mcopyRead(esp, '/loader/loader.conf').toString(), 'timeout 5\ndefault nixos.efi\nconsole-mode keep\n');
  const uki = path.join(work, 'from-esp.efi');
  fs.writeFileSync(uki, mcopyRead(esp, '/EFI/Linux/nixos.efi'));
  assert.deepEqual(objdumpH(uki).map((s) => s.name), [...STUB_SECTIONS, ...NEW_SECTIONS]);
  assert.equal(dumpSection(uki, '.cmdline').toString().replace(/\0+$/, ''), `init=${t.toplevel}/init root=LABEL=nixos console=ttyS0`);
  assert.equal(dumpSection(uki, '.osrel').toString(), 'NAME=NixOS\nID=nixos\nVERSION_ID="24.11"\nPRETTY_NAME="NixOS 24.11.20241204.diskwright"\nBUILD_ID="24.11.20241204.diskwright"\n');
  assert.equal(dumpSection(uki, '.uname').toString(), p.kernelVersion);
  assert.deepEqual(dumpSection(uki, '.initrd'), fs.readFileSync(path.join(work, 'initrd')));
  const again = buildConfig(work, 'efi-again', cfg);
  assert.ok(fs.readFileSync(again.image).equals(fs.readFileSync(b.image)), 'two builds differ');
});

test('uki: true on efixbootldr: the UKI on XBOOTLDR, named from the system\'s own os-release', () => {
  const t = toplevelIn('store-x');
  // A toplevel's etc/os-release, with system.image.id and .version set.
  const top = path.join(work, t.storeDir, path.basename(t.toplevel));
  fs.mkdirSync(path.join(top, 'etc'));
  const osrel = 'NAME=NixOS\nID=nixos\nVERSION_ID="24.11"\nPRETTY_NAME="NixOS 24.11 (Vicuna)"\nIMAGE_ID=appliance\nIMAGE_VERSION=7\n';
  fs.writeFileSync(path.join(top, 'etc/os-release'), osrel);
  const b = buildConfig(work, 'x', { partitionTableType: 'efixbootldr', bootSize: '160M', ...t, epoch: 1, uki: true, additionalSpace: '16M' });
  const esp = cutPartition(work, b.image, b.layout, 1);
  const xb = cutPartition(work, b.image, b.layout, 2);
  assert.deepEqual(files(esp), ['/EFI/BOOT/BOOTX64.EFI', '/EFI/systemd/systemd-bootx64.efi', '/loader/entries.srel', '/loader/loader.conf']);
  assert.deepEqual(files(xb), ['/EFI/Linux/appliance_7.efi', '/loader/entries.srel']);
  assert.match(mcopyRead(esp, '/loader/loader.conf').toString(), /^default appliance_7\.efi$/m);
  const uki = path.join(work, 'from-xb.efi');
  fs.writeFileSync(uki, mcopyRead(xb, '/EFI/Linux/appliance_7.efi'));
  assert.equal(dumpSection(uki, '.osrel').toString(), osrel);
  assert.ok(fsckFat(esp).clean && fsckFat(xb).clean);
});

test('bad input: a missing or foreign stub names systemdBoot.stubFile; uki without systemd-boot or without a toplevel', () => {
  const fails = (config: object, re: RegExp) => buildFails(work, `e${n++}`, config, re);
  fails({ partitionTableType: 'efi', ...toplevelIn('store-nostub', false), uki: true },
    /^diskwright: systemd stub \/nix\/store\/\S+\/systemd\/lib\/systemd\/boot\/efi\/linuxx64\.efi\.stub does not exist; set systemdBoot\.stubFile to a linuxx64\.efi\.stub/);
  const t = toplevelIn('store-bad');
  fails({ partitionTableType: 'efi', ...t, uki: true, systemdBoot: { stubFile: 'nope.stub' } }, /^diskwright: systemd stub nope\.stub does not exist; set systemdBoot\.stubFile/);
  fails({ partitionTableType: 'efi', ...t, uki: true, systemdBoot: { stubFile: 'busybox' } },
    /^diskwright: systemdBoot\.stubFile: busybox is not a PE\/COFF image \(no MZ header\); set systemdBoot\.stubFile to systemd's linuxx64\.efi\.stub/);
  const arm = Buffer.from(stub);
  arm.writeUInt16LE(0xaa64, arm.readUInt32LE(0x3c) + 4);
  fs.writeFileSync(path.join(work, 'aa64.stub'), arm);
  fails({ partitionTableType: 'efi', ...t, uki: true, systemdBoot: { stubFile: 'aa64.stub' } }, /^diskwright: systemdBoot\.stubFile: aa64\.stub is for machine 0xaa64, not x64; set systemdBoot\.stubFile/);
  fails({ partitionTableType: 'legacy', bootLoader: 'grub', ...t, uki: true }, /^diskwright: uki: bootLoader grub does not boot unified kernel images/);
  fails({ partitionTableType: 'efi', uki: true, systemdBoot: { efiFile: p.systemdBootEfi, stubFile: p.linuxStub }, bootEntries: [{ title: 'x', kernel: 'busybox', cmdline: '' }] }, /^diskwright: uki: needs toplevel/);
});
