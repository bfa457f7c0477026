// PE/COFF images as UEFI loads them: the headers a unified kernel image needs
// to read from systemd's stub and to extend with sections of its own.
// Microsoft "PE Format" (learn.microsoft.com/windows/win32/debug/pe-format):
// MS-DOS stub (e_lfanew at 0x3C), "PE\0\0", COFF file header, optional header
// (PE32 or PE32+), section table. The stub is a user input: every offset,
// count and size is checked against the file before it is used.
// (ukify's pe_add_sections in systemd's src/ukify/ukify.py makes the same
// repairs to old stubs: a trailing symbol table cut, section data aligned.)
import { DiskwrightError } from '../errors.ts';
import { defineStruct, type Decoded } from '../util/struct.ts';

export const DOS_HEADER = defineStruct(64, [
  ['e_magic', 0, 'u16'],
  ['e_lfanew', 0x3c, 'u32'],
]);

/** COFF file header, after the 4-byte signature. */
export const FILE_HEADER = defineStruct(20, [
  ['Machine', 0, 'u16'],
  ['NumberOfSections', 2, 'u16'],
  ['TimeDateStamp', 4, 'u32'],
  ['PointerToSymbolTable', 8, 'u32'],
  ['NumberOfSymbols', 12, 'u32'],
  ['SizeOfOptionalHeader', 16, 'u16'],
  ['Characteristics', 18, 'u16'],
]);

/** The optional header fields at the same offsets in PE32 and PE32+ (they differ from BaseOfData/ImageBase on). */
export const OPTIONAL_HEADER = defineStruct(70, [
  ['Magic', 0, 'u16'],
  ['SizeOfCode', 4, 'u32'],
  ['SizeOfInitializedData', 8, 'u32'],
  ['SizeOfUninitializedData', 12, 'u32'],
  ['AddressOfEntryPoint', 16, 'u32'],
  ['BaseOfCode', 20, 'u32'],
  ['SectionAlignment', 32, 'u32'],
  ['FileAlignment', 36, 'u32'],
  ['SizeOfImage', 56, 'u32'],
  ['SizeOfHeaders', 60, 'u32'],
  ['CheckSum', 64, 'u32'],
  ['Subsystem', 68, 'u16'],
]);

export const SECTION_HEADER = defineStruct(40, [
  ['Name', 0, { bytes: 8 }],
  ['VirtualSize', 8, 'u32'],
  ['VirtualAddress', 12, 'u32'],
  ['SizeOfRawData', 16, 'u32'],
  ['PointerToRawData', 20, 'u32'],
  ['PointerToRelocations', 24, 'u32'],
  ['PointerToLinenumbers', 28, 'u32'],
  ['NumberOfRelocations', 32, 'u16'],
  ['NumberOfLinenumbers', 34, 'u16'],
  ['Characteristics', 36, 'u32'],
]);

export const PE32_MAGIC = 0x10b;
export const PE32PLUS_MAGIC = 0x20b;
/** Where NumberOfRvaAndSizes sits; the data directories follow it. */
const RVA_COUNT_AT: Record<number, number> = { [PE32_MAGIC]: 92, [PE32PLUS_MAGIC]: 108 };
/** IMAGE_DIRECTORY_ENTRY_SECURITY: the Authenticode signature. */
const SECURITY_DIRECTORY = 4;
export const IMAGE_FILE_LOCAL_SYMS_STRIPPED = 0x0008;
export const IMAGE_SCN_CNT_CODE = 0x20;
export const IMAGE_SCN_CNT_INITIALIZED_DATA = 0x40;
export const IMAGE_SCN_MEM_READ = 0x40000000;
/** The spec's limit on sections (the loader's, too). */
const MAX_SECTIONS = 96;
const COFF_SYMBOL_SIZE = 18;

/** IMAGE_FILE_MACHINE_* of each EFI architecture name (systemd-boot's <arch>). */
export const EFI_MACHINES: Record<string, number[]> = {
  x64: [0x8664],
  ia32: [0x14c],
  aa64: [0xaa64],
  arm: [0x1c2, 0x1c4],
  riscv64: [0x5064],
  loongarch64: [0x6264],
};

export type SectionHeader = Decoded<typeof SECTION_HEADER.fields> & { name: string };

export interface PeImage {
  /** The file, without a symbol table that ended it (image files should have none). */
  bytes: Buffer;
  fileHeaderAt: number;
  optionalHeaderAt: number;
  sectionTableAt: number;
  file: Decoded<typeof FILE_HEADER.fields>;
  optional: Decoded<typeof OPTIONAL_HEADER.fields>;
  sections: SectionHeader[];
}

export const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;
const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** A section name as the table holds it: up to 8 bytes, NUL-padded. */
export function sectionName(raw: Buffer): string {
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? raw.length : end).toString('latin1');
}

/**
 * Reads the headers of a PE image, checking each against the file. `what`
 * names the input in errors (the option and the path), `fix` says what to do.
 */
export function parsePe(buf: Buffer, what: string, fix: string): PeImage {
  const bad = (why: string): never => {
    throw new DiskwrightError('INPUT_UNSUPPORTED', `${what} ${why}; ${fix}`, {});
  };
  if (buf.length < DOS_HEADER.size || DOS_HEADER.decode(buf, 0).e_magic !== 0x5a4d) bad('is not a PE/COFF image (no MZ header)');
  const peAt = DOS_HEADER.decode(buf, 0).e_lfanew;
  const fileHeaderAt = peAt + 4;
  if (peAt < DOS_HEADER.size || fileHeaderAt + FILE_HEADER.size > buf.length || buf.readUInt32LE(peAt) !== 0x4550) bad('is not a PE/COFF image (no PE signature where e_lfanew points)');
  const file = FILE_HEADER.decode(buf, fileHeaderAt);
  const optionalHeaderAt = fileHeaderAt + FILE_HEADER.size;
  const sectionTableAt = optionalHeaderAt + file.SizeOfOptionalHeader;
  if (file.SizeOfOptionalHeader < OPTIONAL_HEADER.size || sectionTableAt > buf.length) bad('has no complete optional header');
  const optional = OPTIONAL_HEADER.decode(buf, optionalHeaderAt);
  const rvaCountAt = RVA_COUNT_AT[optional.Magic];
  if (rvaCountAt === undefined) bad(`has optional header magic 0x${optional.Magic.toString(16)}, neither PE32 nor PE32+`);
  if (rvaCountAt + 4 > file.SizeOfOptionalHeader) bad('has an optional header too short for its data directories');
  const dirs = Math.min(buf.readUInt32LE(optionalHeaderAt + rvaCountAt), Math.floor((file.SizeOfOptionalHeader - rvaCountAt - 4) / 8));
  if (dirs > SECURITY_DIRECTORY && buf.readUInt32LE(optionalHeaderAt + rvaCountAt + 4 + SECURITY_DIRECTORY * 8 + 4) !== 0) {
    bad('is signed (it has a certificate table), and adding sections would break the signature');
  }
  const fa = optional.FileAlignment;
  const sa = optional.SectionAlignment;
  if (!isPow2(fa) || fa < 512 || fa > 65536) bad(`has FileAlignment ${fa}, not a power of two from 512 to 64 KiB`);
  if (!isPow2(sa) || sa < fa || sa > 1 << 24) bad(`has SectionAlignment ${sa}, not a power of two at least FileAlignment`);
  if (file.NumberOfSections === 0 || file.NumberOfSections > MAX_SECTIONS) bad(`has ${file.NumberOfSections} sections, not 1 to ${MAX_SECTIONS}`);
  const tableEnd = sectionTableAt + file.NumberOfSections * SECTION_HEADER.size;
  if (tableEnd > buf.length || tableEnd > optional.SizeOfHeaders) bad('has a section table past its headers');
  const stripped = stripSymbols(buf, file, fileHeaderAt, tableEnd);
  if (optional.SizeOfHeaders > stripped.length) bad('is shorter than its own headers (SizeOfHeaders)');
  const sections: SectionHeader[] = [];
  let vaEnd = 0;
  let rawEnd = 0;
  for (let i = 0; i < file.NumberOfSections; i++) {
    const s = SECTION_HEADER.decode(buf, sectionTableAt + i * SECTION_HEADER.size);
    const name = sectionName(s.Name);
    if (s.SizeOfRawData > 0) {
      if (s.PointerToRawData < optional.SizeOfHeaders || s.PointerToRawData + s.SizeOfRawData > stripped.length) bad(`has section ${JSON.stringify(name)} whose data lies outside the file`);
      if (s.PointerToRawData < rawEnd) bad(`has section ${JSON.stringify(name)} whose data overlaps or precedes the section before it`);
      rawEnd = s.PointerToRawData + s.SizeOfRawData;
    }
    // The loader wants the sections in ascending, non-overlapping address order; new ones go after the last.
    if (s.VirtualAddress < vaEnd || s.VirtualAddress < optional.SizeOfHeaders) bad(`has section ${JSON.stringify(name)} at an address below the one before it or the headers`);
    vaEnd = s.VirtualAddress + (s.VirtualSize || s.SizeOfRawData);
    sections.push({ ...s, name });
  }
  if (vaEnd > optional.SizeOfImage) bad('has sections past its SizeOfImage');
  const bytes = alignRawData(stripped, sections, sectionTableAt, fa);
  return { bytes, fileHeaderAt, optionalHeaderAt, sectionTableAt, file, optional, sections };
}

/**
 * Stubs that were `strip`ped can have section data at offsets and of sizes
 * that are not multiples of FileAlignment (ukify fixes them up too): each
 * such section is moved up to the next aligned offset and zero-padded to an
 * aligned size, everything after it moving along. `sections` (in file order,
 * checked not to overlap) are updated, and so are their headers in the copy.
 */
function alignRawData(buf: Buffer, sections: SectionHeader[], tableAt: number, fa: number): Buffer {
  if (sections.every((s) => s.SizeOfRawData === 0 || (s.PointerToRawData % fa === 0 && s.SizeOfRawData % fa === 0))) return buf;
  const parts: Buffer[] = [];
  let cursor = 0;
  let outLen = 0;
  const take = (b: Buffer) => {
    parts.push(b);
    outLen += b.length;
  };
  for (const s of sections) {
    if (s.SizeOfRawData === 0) continue;
    take(buf.subarray(cursor, s.PointerToRawData));
    take(Buffer.alloc(roundUp(outLen, fa) - outLen));
    const at = outLen;
    take(buf.subarray(s.PointerToRawData, s.PointerToRawData + s.SizeOfRawData));
    take(Buffer.alloc(roundUp(s.SizeOfRawData, fa) - s.SizeOfRawData));
    cursor = s.PointerToRawData + s.SizeOfRawData;
    s.PointerToRawData = at;
    s.SizeOfRawData = outLen - at;
  }
  take(buf.subarray(cursor));
  const out = Buffer.concat(parts);
  sections.forEach((s, i) => SECTION_HEADER.encode(out, tableAt + i * SECTION_HEADER.size, { PointerToRawData: s.PointerToRawData, SizeOfRawData: s.SizeOfRawData }));
  return out;
}

/**
 * Old stubs still carry a COFF symbol table (image files should not): when
 * it (and the string table after it) ends the file, it is cut off and the
 * header says so; anywhere else it is left alone.
 */
function stripSymbols(buf: Buffer, file: Decoded<typeof FILE_HEADER.fields>, fileHeaderAt: number, headersEnd: number): Buffer {
  const at = file.PointerToSymbolTable;
  if (at < headersEnd) return buf;
  let end = at + file.NumberOfSymbols * COFF_SYMBOL_SIZE;
  if (end + 4 <= buf.length) end += buf.readUInt32LE(end);
  if (end !== buf.length || at > buf.length) return buf;
  const out = Buffer.from(buf.subarray(0, at));
  FILE_HEADER.encode(out, fileHeaderAt, {
    PointerToSymbolTable: 0, NumberOfSymbols: 0, Characteristics: file.Characteristics | IMAGE_FILE_LOCAL_SYMS_STRIPPED,
  });
  return out;
}

/** SizeOfImage of a PE image, or undefined when `buf` is not one (a kernel that is not an EFI application). */
export function peSizeOfImage(buf: Buffer): number | undefined {
  if (buf.length < DOS_HEADER.size || buf.readUInt16LE(0) !== 0x5a4d) return undefined;
  const peAt = buf.readUInt32LE(0x3c);
  const optAt = peAt + 4 + FILE_HEADER.size;
  if (optAt + OPTIONAL_HEADER.size > buf.length || buf.readUInt32LE(peAt) !== 0x4550) return undefined;
  const o = OPTIONAL_HEADER.decode(buf, optAt);
  return RVA_COUNT_AT[o.Magic] === undefined ? undefined : o.SizeOfImage;
}
