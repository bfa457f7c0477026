// ELF32 little-endian headers, as far as loading a statically linked image by
// its section headers needs (GRUB's i386-pc kernel.img). Spec: System V ABI,
// "ELF Header" and "Sections" (Elf32_Ehdr, Elf32_Shdr).
// The input is hostile: every offset and count is checked against the file
// before it is read, and a problem comes back as a reason, not an exception,
// so the caller can name the input it came from.
import { defineStruct } from '../util/struct.ts';

export const Elf32_Ehdr = defineStruct(52, [
  ['e_ident', 0, { bytes: 16 }],
  ['e_type', 16, 'u16'],
  ['e_machine', 18, 'u16'],
  ['e_version', 20, 'u32'],
  ['e_entry', 24, 'u32'],
  ['e_phoff', 28, 'u32'],
  ['e_shoff', 32, 'u32'],
  ['e_flags', 36, 'u32'],
  ['e_ehsize', 40, 'u16'],
  ['e_phentsize', 42, 'u16'],
  ['e_phnum', 44, 'u16'],
  ['e_shentsize', 46, 'u16'],
  ['e_shnum', 48, 'u16'],
  ['e_shstrndx', 50, 'u16'],
] as const);

export const Elf32_Shdr = defineStruct(40, [
  ['sh_name', 0, 'u32'],
  ['sh_type', 4, 'u32'],
  ['sh_flags', 8, 'u32'],
  ['sh_addr', 12, 'u32'],
  ['sh_offset', 16, 'u32'],
  ['sh_size', 20, 'u32'],
  ['sh_link', 24, 'u32'],
  ['sh_info', 28, 'u32'],
  ['sh_addralign', 32, 'u32'],
  ['sh_entsize', 36, 'u32'],
] as const);

export const SHT_PROGBITS = 1;
export const SHT_NOBITS = 8;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const EM_386 = 3;

export interface Elf32Section {
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
}

/** The section headers of a little-endian ELF32 file, or why it is not one (a predicate: "is not an ELF file"). PROGBITS sections are checked to lie within the file. */
export function elf32Sections(buf: Buffer, machine: number): Elf32Section[] | string {
  if (buf.length < Elf32_Ehdr.size || buf.readUInt32BE(0) !== 0x7f454c46) return 'is not an ELF file';
  const h = Elf32_Ehdr.decode(buf, 0);
  // EI_CLASS 1 (32-bit), EI_DATA 1 (little-endian), EI_VERSION 1.
  if (h.e_ident[4] !== 1 || h.e_ident[5] !== 1 || h.e_ident[6] !== 1 || h.e_version !== 1) return 'is not a little-endian ELF32 file';
  if (h.e_machine !== machine) return `is built for ELF machine ${h.e_machine}, not ${machine}`;
  if (h.e_shentsize < Elf32_Shdr.size) return `has section headers of ${h.e_shentsize} bytes, fewer than ${Elf32_Shdr.size}`;
  if (h.e_shoff + h.e_shentsize * h.e_shnum > buf.length) return `has ${h.e_shnum} section headers that run past the end of the file (${buf.length} bytes)`;
  const out: Elf32Section[] = [];
  for (let i = 0; i < h.e_shnum; i++) {
    const s = Elf32_Shdr.decode(buf, h.e_shoff + i * h.e_shentsize);
    if (s.sh_type === SHT_PROGBITS && s.sh_offset + s.sh_size > buf.length) return `has a section ${i} that runs past the end of the file (${buf.length} bytes)`;
    out.push({ type: s.sh_type, flags: s.sh_flags, addr: s.sh_addr, offset: s.sh_offset, size: s.sh_size });
  }
  return out;
}
