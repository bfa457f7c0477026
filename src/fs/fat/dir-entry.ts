// Short (8.3) directory entries and FAT timestamps. Spec: fatgen103 section 6
// (Directory Structure), 6.1 (File/Folder Name), 6.3 (Date/Time format).
import { defineStruct } from '../../util/struct.ts';
import { DIR_ENTRY_SIZE } from './constants.ts';

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
