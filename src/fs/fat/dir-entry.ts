// Short (8.3) directory entries and FAT timestamps. Spec: fatgen103 section 6
// (Directory Structure), 6.1 (File/Folder Name), 6.3 (Date/Time format).
import { defineStruct } from '../../util/struct.ts';
import { ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READ_ONLY, DIR_ENTRY_SIZE } from './constants.ts';

export const DIR = defineStruct(DIR_ENTRY_SIZE, [
  ['DIR_Name', 0, { bytes: 11 }],
  ['DIR_Attr', 11, 'u8'],
  ['DIR_NTRes', 12, 'u8'],
  ['DIR_CrtTimeTenth', 13, 'u8'],
  ['DIR_CrtTime', 14, 'u16'],
  ['DIR_CrtDate', 16, 'u16'],
  ['DIR_LstAccDate', 18, 'u16'],
  ['DIR_FstClusHI', 20, 'u16'],
  ['DIR_WrtTime', 22, 'u16'],
  ['DIR_WrtDate', 24, 'u16'],
  ['DIR_FstClusLO', 26, 'u16'],
  ['DIR_FileSize', 28, 'u32'],
]);

export interface FatTime {
  date: number;
  /** 2-second resolution. */
  time: number;
  /** Hundredths of a second to add to `time` (0..199): DIR_CrtTimeTenth. */
  centis: number;
}

/** 1980-01-01 00:00:00 UTC and 2107-12-31 23:59:59 UTC: what FAT dates can say. */
const MIN_SEC = Date.UTC(1980, 0, 1) / 1000;
const MAX_SEC = Date.UTC(2107, 11, 31, 23, 59, 59) / 1000;

/**
 * Seconds since 1970 (UTC) as a FAT date and time. FAT has no time zone: we
 * write UTC, so nothing depends on the build machine's zone or clock. Times
 * outside FAT's range are clamped to its ends.
 */
export function fatTime(sec: number, nsec = 0): FatTime {
  if (sec < MIN_SEC) { sec = MIN_SEC; nsec = 0; }
  if (sec > MAX_SEC) { sec = MAX_SEC; nsec = 999_999_999; }
  const d = new Date(sec * 1000);
  const s = d.getUTCSeconds();
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (s >> 1),
    centis: (s & 1) * 100 + Math.floor(nsec / 10_000_000),
  };
}

/**
 * A FAT date and time as seconds since 1970, read as UTC (what fatTime
 * writes); `centis` (DIR_CrtTimeTenth) adds to the 2-second time.
 */
export function fatTimeToUnix(date: number, time: number, centis = 0): { sec: number; nsec: number } {
  const year = 1980 + (date >> 9);
  const month = (date >> 5) & 15;
  const day = date & 31;
  const ms = Date.UTC(year, month - 1, day, time >> 11, (time >> 5) & 63, (time & 31) * 2);
  const sec = Math.floor(ms / 1000) + Math.floor(centis / 100);
  return { sec, nsec: (centis % 100) * 10_000_000 };
}

/** DIR_Attr of a file: archive, and read-only when its owner may not write it. */
export function fileAttr(mode: number): number {
  return ATTR_ARCHIVE | (mode & 0o200 ? 0 : ATTR_READ_ONLY);
}

/** The permission bits an entry's DIR_Attr stands for (the inverse of fileAttr; directories searchable). */
export function modeOfAttr(attr: number): number {
  const readOnly = (attr & ATTR_READ_ONLY) !== 0;
  if (attr & ATTR_DIRECTORY) return readOnly ? 0o555 : 0o755;
  return readOnly ? 0o444 : 0o644;
}

// Code page 437, bytes 0x80-0xFF: what Linux's vfat uses by default for 8.3 names.
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

/** OEM (code page 437) bytes as text: short names and volume labels. */
export function oemText(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80];
  return s;
}

/** DIR_NTRes bits: base and extension shown in lower case (Windows NT, Linux vfat). */
const NT_LOWER_BASE = 0x08;
const NT_LOWER_EXT = 0x10;

/**
 * An 11-byte DIR_Name as NAME.EXT: `shortName` as stored (upper case), and
 * `name` with DIR_NTRes's lower-case bits applied (the name when there is no
 * long one). A leading 0x05 stands for 0xE5 (fatgen103 6.1).
 */
export function decodeShortName(raw: Buffer, ntRes: number): { shortName: string; name: string } {
  const bytes = Buffer.from(raw);
  if (bytes[0] === 0x05) bytes[0] = 0xe5;
  let base = oemText(bytes.subarray(0, 8)).replace(/ +$/, '');
  let ext = oemText(bytes.subarray(8, 11)).replace(/ +$/, '');
  const shortName = ext ? `${base}.${ext}` : base;
  if (ntRes & NT_LOWER_BASE) base = base.toLowerCase();
  if (ntRes & NT_LOWER_EXT) ext = ext.toLowerCase();
  return { shortName, name: ext ? `${base}.${ext}` : base };
}

export interface ShortEntry {
  /** 11 bytes: base padded to 8, extension padded to 3. */
  name: Buffer;
  attr: number;
  /** DIR_NTRes case bits (0: diskwright stores case in long names). */
  ntRes?: number;
  cluster: number;
  size: number;
  t: FatTime;
}

/** Writes one short entry. Creation and write time are both the source's mtime; access date is its date. */
export function encodeDirEntry(buf: Buffer, at: number, e: ShortEntry): void {
  DIR.encode(buf, at, {
    DIR_Name: e.name,
    DIR_Attr: e.attr,
    DIR_NTRes: e.ntRes ?? 0,
    DIR_CrtTimeTenth: e.t.centis,
    DIR_CrtTime: e.t.time,
    DIR_CrtDate: e.t.date,
    DIR_LstAccDate: e.t.date,
    DIR_FstClusHI: e.cluster >>> 16,
    DIR_WrtTime: e.t.time,
    DIR_WrtDate: e.t.date,
    DIR_FstClusLO: e.cluster & 0xffff,
    DIR_FileSize: e.size,
  });
}

/** The names of the two entries that start every subdirectory. */
export const DOT = Buffer.from('.          ', 'latin1');
export const DOTDOT = Buffer.from('..         ', 'latin1');
