// Unified kernel images (uapi-group specs/unified_kernel_image.md): systemd's
// stub linux<arch>.efi.stub with the system's os-release, command line,
// kernel version, initrd and kernel added as PE sections, laid out as
// systemd's ukify lays them: in that order, .linux last (newer stubs load
// it as a PE image and map it at its SizeOfImage); each new header after
// the stub's last one in the header padding; each section's data at the
// file's end, padded to FileAlignment; each section's address right after
// the one before, rounded to SectionAlignment; SizeOfImage grown to cover
// them and CheckSum left 0 (UEFI loaders do not check it, and the stub's
// own would be stale). systemd-boot lists such a file from EFI/Linux/
// without an entry file, titled from its .osrel.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import type { StoreDirs } from '../nix/store-path.ts';
import {
  EFI_MACHINES, FILE_HEADER, IMAGE_SCN_CNT_CODE, IMAGE_SCN_CNT_INITIALIZED_DATA, IMAGE_SCN_MEM_READ, OPTIONAL_HEADER, SECTION_HEADER,
  parsePe, peSizeOfImage, roundUp, type PeImage, type SectionHeader,
} from './pe.ts';
import type { BootPartFile } from './systemd-boot.ts';
import { kernelVersion, readSmall, type BootEntry, type BootFile } from './toplevel.ts';

export interface UkiSection {
  name: string;
  data: Buffer;
  /** Bytes the section takes in memory, when more than its data (the kernel's own SizeOfImage). */
  virtualSize?: number;
}

/** A PE image's addresses and file offsets are 32 bits; a FAT file ends below 4 GiB too. */
const MAX_IMAGE = 0xffffffff;
const tooLarge = () => new DiskwrightError('TOO_LARGE', 'uki: the kernel and initrd make an image of more than 4 GiB, more than a PE image (and a FAT file) holds; use a smaller initrd or set uki to false', {});

/** Where a section ends in memory: VirtualSize, or the raw size when a linker left it 0. */
const memEnd = (s: { VirtualAddress: number; VirtualSize: number; SizeOfRawData: number }) => s.VirtualAddress + (s.VirtualSize || s.SizeOfRawData);

/**
 * The stub with `sections` added (in the order given). `what` names the stub
 * in errors, `fix` says what to give instead.
 */
export function assembleUki(stub: PeImage, sections: UkiSection[], what: string, fix: string): Buffer {
  const { bytes, optional } = stub;
  const fa = optional.FileAlignment;
  const sa = optional.SectionAlignment;
  for (const s of stub.sections) {
    if (sections.some((n) => n.name === s.name)) {
      throw new DiskwrightError('INPUT_UNSUPPORTED', `${what} already has a ${s.name} section (is it a UKI already?); ${fix}`, { section: s.name });
    }
  }
  // New headers go into the padding after the table, up to the first section's data (ukify rounds SizeOfHeaders up to FileAlignment to make room).
  const sizeOfHeaders = roundUp(optional.SizeOfHeaders, fa);
  const tableEnd = stub.sectionTableAt + stub.sections.length * SECTION_HEADER.size;
  const newTableEnd = tableEnd + sections.length * SECTION_HEADER.size;
  if (newTableEnd > sizeOfHeaders || bytes.subarray(tableEnd, newTableEnd).some((b) => b !== 0)) {
    throw new DiskwrightError('INPUT_UNSUPPORTED', `${what} has no free room after its section table for ${sections.length} more section headers; ${fix}`, {});
  }
  const last = stub.sections[stub.sections.length - 1];
  let va = roundUp(memEnd(last), sa);
  let ptr = roundUp(bytes.length, fa);
  let initialized = optional.SizeOfInitializedData;
  const headers: SectionHeader[] = [];
  for (const s of sections) {
    const virtualSize = Math.max(s.data.length, s.virtualSize ?? 0);
    const raw = roundUp(s.data.length, fa);
    const h = {
      name: s.name, Name: Buffer.from(s.name, 'latin1'), VirtualSize: virtualSize, VirtualAddress: va, SizeOfRawData: raw, PointerToRawData: ptr,
      PointerToRelocations: 0, PointerToLinenumbers: 0, NumberOfRelocations: 0, NumberOfLinenumbers: 0,
      // The kernel is code: stubs that hand over to old kernels run it in place.
      Characteristics: IMAGE_SCN_MEM_READ | (s.name === '.linux' ? IMAGE_SCN_CNT_CODE : IMAGE_SCN_CNT_INITIALIZED_DATA),
    };
    headers.push(h);
    ptr += raw;
    va = roundUp(va + virtualSize, sa);
    initialized += virtualSize;
    if (ptr > MAX_IMAGE || va > MAX_IMAGE) throw tooLarge();
  }
  const out = Buffer.alloc(ptr);
  bytes.copy(out, 0);
  headers.forEach(({ name: _, ...h }, i) => {
    SECTION_HEADER.encode(out, tableEnd + i * SECTION_HEADER.size, h);
    sections[i].data.copy(out, h.PointerToRawData);
  });
  FILE_HEADER.encode(out, stub.fileHeaderAt, { NumberOfSections: stub.sections.length + sections.length });
  OPTIONAL_HEADER.encode(out, stub.optionalHeaderAt, {
    SizeOfHeaders: sizeOfHeaders,
    SizeOfInitializedData: Math.min(initialized, MAX_IMAGE),
    SizeOfImage: va,
    CheckSum: 0,
  });
  return out;
}

/** The sections of a UKI for one system in ukify's order, .linux last; .uname only when the kernel release is known. */
export function ukiSections(osrel: string, cmdline: string, kernel: Buffer, initrd: Buffer | undefined, uname = kernelRelease(kernel)): UkiSection[] {
  const s: UkiSection[] = [
    { name: '.osrel', data: Buffer.from(osrel, 'utf8') },
    { name: '.cmdline', data: Buffer.from(cmdline, 'utf8') },
  ];
  if (uname !== undefined) s.push({ name: '.uname', data: Buffer.from(uname, 'latin1') });
  if (initrd !== undefined) s.push({ name: '.initrd', data: initrd });
  s.push({ name: '.linux', data: kernel, virtualSize: peSizeOfImage(kernel) });
  return s;
}

/** A kernel release: what `uname -r` prints (utsname holds 64 bytes), then a space or the string's end. */
const RELEASE = /^(\d+\.\d+[\x21-\x7e]{0,60})[\s\0]/;

/**
 * The kernel release (`uname -r`) an x86 bzImage names in its setup header
 * (Linux Documentation/arch/x86/boot.rst: "HdrS" at 0x202, kernel_version at
 * 0x20E pointing 0x200 bytes before a NUL-terminated string whose first word
 * is the release); undefined for other kernels or a string that is no release.
 */
export function kernelRelease(kernel: Buffer): string | undefined {
  if (kernel.length < 0x210 || kernel.toString('latin1', 0x202, 0x206) !== 'HdrS' || kernel.readUInt16LE(0x206) < 0x200) return undefined;
  const pointer = kernel.readUInt16LE(0x20e);
  if (pointer === 0) return undefined;
  const at = pointer + 0x200;
  // utsname's release holds 64 bytes; read a little more to find the word's end.
  const text = kernel.subarray(at, Math.min(at + 256, kernel.length)).toString('latin1');
  const m = RELEASE.exec(text);
  return m?.[1];
}

/** An os-release value as a shell-style double-quoted string. */
const quote = (v: string) => `"${v.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;

/**
 * The .osrel of a NixOS system: its own os-release (what NixOS's boot.uki
 * puts there) when the toplevel has etc/os-release, else one made from
 * nixos-version: enough for systemd-boot's menu (a name and a version).
 */
export function systemOsRelease(toplevel: string, dirs: StoreDirs): string {
  const own = readSmall(`${toplevel}/etc/os-release`, dirs, 'toplevel');
  if (own !== undefined) return own;
  const version = (readSmall(`${toplevel}/nixos-version`, dirs, 'toplevel') ?? '').trim().replace(/[^\x20-\x7e]/g, '');
  const versionId = /^\d+\.\d+/.exec(version)?.[0];
  return `NAME=NixOS\nID=nixos\n${versionId ? `VERSION_ID=${quote(versionId)}\n` : ''}PRETTY_NAME=${quote(`NixOS ${version || 'unknown'}`)}\n${version ? `BUILD_ID=${quote(version)}\n` : ''}`;
}

/** The value of `key` in an os-release text (KEY=value lines, values optionally quoted). */
export function osReleaseValue(text: string, key: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*?)\s*$/.exec(line);
    if (m?.[1] !== key) continue;
    const v = m[2];
    return /^(["']).*\1$/.test(v) ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
  }
  return undefined;
}

/**
 * NixOS's UKI file name (nixos/modules/system/boot/uki.nix: boot.uki.name,
 * system.image.id or "nixos", then `_` and boot.uki.version,
 * system.image.version, when set), read back from the os-release NixOS
 * writes those two into as IMAGE_ID and IMAGE_VERSION.
 */
export function ukiFileName(osrel: string): string {
  const id = osReleaseValue(osrel, 'IMAGE_ID') || 'nixos';
  const version = osReleaseValue(osrel, 'IMAGE_VERSION');
  // os-release allows [a-z0-9._-] in both; anything else could be a path, and systemd-boot skips names starting with a dot.
  const ok = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
  if (!ok.test(id) || (version && !ok.test(version))) {
    throw new DiskwrightError('CONFIG_INVALID', `toplevel: its os-release has IMAGE_ID or IMAGE_VERSION with characters outside [a-z0-9._-]; fix system.image.id and system.image.version`, {});
  }
  return `${id}${version ? `_${version}` : ''}.efi`;
}

/** Where UKIs go on the boot partition: systemd-boot lists EFI/Linux/*.efi as type #2 entries. */
export const UKI_DIR = 'EFI/Linux';
/** Stubs are some 100 KiB; more is no stub. */
const MAX_STUB = 16 << 20;

export interface UkiOptions {
  /** The stub, and how the config names it (the option's value or default) for errors. */
  stub: BootFile & { shown: string };
  /** EFI architecture name (x64, aa64, ...). */
  arch: string;
  toplevel: string;
  dirs: StoreDirs;
}

/** The UKI of a NixOS system's entry: EFI/Linux/<name>.efi, made from the stub, the kernel and the initrd. */
export function ukiBootFile(entry: BootEntry, o: UkiOptions): BootPartFile {
  const what = `systemdBoot.stubFile: ${o.stub.shown}`;
  const fix = `set systemdBoot.stubFile to systemd's linux${o.arch}.efi.stub (lib/systemd/boot/efi/)`;
  if (o.stub.size > MAX_STUB) throw new DiskwrightError('INPUT_UNSUPPORTED', `${what} is ${o.stub.size} bytes, too big for a stub; ${fix}`, {});
  const stub = parsePe(fs.readFileSync(o.stub.host), what, fix);
  const machines = EFI_MACHINES[o.arch] ?? [];
  if (!machines.includes(stub.file.Machine)) {
    throw new DiskwrightError('INPUT_UNSUPPORTED', `${what} is for machine 0x${stub.file.Machine.toString(16)}, not ${o.arch}; ${fix}`, {});
  }
  const total = o.stub.size + entry.kernel.size + (entry.initrd?.size ?? 0);
  if (total > MAX_IMAGE) throw tooLarge();
  const osrel = systemOsRelease(o.toplevel, o.dirs);
  const kernel = fs.readFileSync(entry.kernel.host);
  const initrd = entry.initrd && fs.readFileSync(entry.initrd.host);
  // The setup header names the release of x86 kernels; others (arm64's Image) leave the system's one modules directory.
  const modules = kernelVersion(o.toplevel, o.dirs);
  const uname = kernelRelease(kernel) ?? (modules !== undefined && RELEASE.test(`${modules}\0`) ? modules : undefined);
  const content = assembleUki(stub, ukiSections(osrel, entry.options, kernel, initrd, uname), what, fix);
  return { path: `${UKI_DIR}/${ukiFileName(osrel)}`, size: content.length, content };
}
