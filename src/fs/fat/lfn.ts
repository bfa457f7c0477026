// VFAT long file names. Spec: fatgen103 section 7 (FAT Long Directory
// Entries): UTF-16 names in 13-unit pieces, stored last piece first in front
// of their short entry, each carrying the short name's checksum.
import { defineStruct } from '../../util/struct.ts';
import { ATTR_LONG_NAME, DIR_ENTRY_SIZE } from './constants.ts';

export const LDIR = defineStruct(DIR_ENTRY_SIZE, [
  ['LDIR_Ord', 0, 'u8'],
  ['LDIR_Name1', 1, { bytes: 10 }],
  ['LDIR_Attr', 11, 'u8'],
  ['LDIR_Type', 12, 'u8'],
  ['LDIR_Chksum', 13, 'u8'],
  ['LDIR_Name2', 14, { bytes: 12 }],
  ['LDIR_FstClusLO', 26, 'u16'],
  ['LDIR_Name3', 28, { bytes: 4 }],
]);

const UNITS_PER_ENTRY = 13;
/** LDIR_Ord flag on the first entry stored (the name's last piece). */
const LAST_LONG_ENTRY = 0x40;

/** Long entries a name of this many UTF-16 units takes. */
export function lfnEntries(name: string): number {
  return Math.ceil(name.length / UNITS_PER_ENTRY);
}

/** The checksum of an 11-byte short name that ties long entries to it (fatgen103 7.2). */
export function shortNameChecksum(name: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name[i]) & 0xff;
  return sum;
}

/**
 * Writes the long entries for `name` at `at`, in on-disk order (last piece
 * first); returns the offset after them, where the short entry goes. The name
 * is NUL-terminated when it does not fill its last piece, then padded with 0xFFFF.
 */
export function encodeLfn(buf: Buffer, at: number, name: string, shortName: Uint8Array): number {
  const n = lfnEntries(name);
  const units = Buffer.alloc(n * UNITS_PER_ENTRY * 2, 0xff);
  units.write(name, 0, 'utf16le');
  if (name.length < n * UNITS_PER_ENTRY) units.writeUInt16LE(0, name.length * 2);
  const sum = shortNameChecksum(shortName);
  for (let k = n; k >= 1; k--, at += DIR_ENTRY_SIZE) {
    const piece = units.subarray((k - 1) * 26, k * 26);
    LDIR.encode(buf, at, {
      LDIR_Ord: k | (k === n ? LAST_LONG_ENTRY : 0),
      LDIR_Name1: piece.subarray(0, 10),
      LDIR_Attr: ATTR_LONG_NAME,
      LDIR_Type: 0,
      LDIR_Chksum: sum,
      LDIR_Name2: piece.subarray(10, 22),
      LDIR_FstClusLO: 0,
      LDIR_Name3: piece.subarray(22, 26),
    });
  }
  return at;
}

/** The longest long name, in UTF-16 units (fatgen103 7). */
const MAX_LONG_NAME = 255;

/**
 * The name long entries' units hold (all pieces in order), and why it is not
 * a valid long name when it is not: NUL-terminated and padded with 0xFFFF
 * (zeros tolerated), 1 to 255 units, well-formed UTF-16, no character a FAT
 * name may not hold. A NUL inside the name is kept in it, not cut there, so
 * the caller never shows or uses a shortened name.
 */
export function decodeLfn(units: Buffer): { name: string; problem?: string } {
  let end = units.length & ~1;
  while (end >= 2 && (units.readUInt16LE(end - 2) === 0 || units.readUInt16LE(end - 2) === 0xffff)) end -= 2;
  const raw = units.subarray(0, end);
  const name = raw.toString('utf16le');
  const invalid = (why: string) => ({ name, problem: `not a valid long name: ${why}` });
  if (end === 0) return invalid('it is empty');
  if (end / 2 > MAX_LONG_NAME) return invalid(`it is ${end / 2} UTF-16 units long, more than ${MAX_LONG_NAME}`);
  for (let i = 0; i < end; i += 2) {
    const u = raw.readUInt16LE(i);
    if (u === 0) return invalid('it holds a NUL character');
    if (u === 0xffff) return invalid('it holds a padding unit (0xFFFF) before its end');
    const high = u >= 0xd800 && u < 0xdc00;
    if (high && i + 2 < end && (raw.readUInt16LE(i + 2) & 0xfc00) === 0xdc00) i += 2;
    else if (high || (u >= 0xdc00 && u < 0xe000)) return invalid('it holds an unpaired UTF-16 surrogate');
  }
  const bad = badLongNameChar(name);
  if (bad !== undefined) return invalid(`it holds U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}${bad >= ' ' ? ` (${bad})` : ''}`);
  return { name };
}

/** A character no FAT name may hold (fatgen103 6.1 and 7: controls and " * / : < > ? \\ |), or undefined. */
export function badLongNameChar(name: string): string | undefined {
  for (const ch of name) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || '"*/:<>?\\|'.includes(ch)) return ch;
  }
  return undefined;
}

/**
 * The form under which FAT compares names: case-insensitive, as Windows does
 * with its upcase table. Each code point is upper-cased on its own (simple case
 * mapping, locale-free); one that would turn into several stays as it is.
 */
export function foldName(name: string): string {
  let out = '';
  for (const ch of name) {
    const u = ch.toUpperCase();
    out += [...u].length === 1 ? u : ch;
  }
  return out;
}

/** Long entries read so far for the short entry that should follow them: their pieces, checksum, and the order number expected next. */
export type LongNameRun = { pieces: Buffer[]; sum: number; next: number } | null;

/**
 * The run after the long entry at `at`: a LAST_LONG_ENTRY starts one, each
 * next piece must count down with the same checksum, anything else breaks it
 * (the short entry then stands alone, as fatgen103 7 says).
 */
export function addLongEntry(run: LongNameRun, bytes: Buffer, at: number): LongNameRun {
  const l = LDIR.decode(bytes, at);
  const ord = l.LDIR_Ord & 0x3f;
  if (l.LDIR_Ord & LAST_LONG_ENTRY) run = ord >= 1 ? { pieces: new Array<Buffer>(ord), sum: l.LDIR_Chksum, next: ord } : null;
  if (!run || ord !== run.next || ord < 1 || l.LDIR_Chksum !== run.sum) return null;
  run.pieces[ord - 1] = Buffer.concat([l.LDIR_Name1, l.LDIR_Name2, l.LDIR_Name3]);
  run.next = ord - 1;
  return run;
}

/** The long name a complete run gives the short entry `shortName` (11 bytes) when its checksum matches (see decodeLfn), else undefined. */
export function longNameFor(run: LongNameRun, shortName: Uint8Array): { name: string; problem?: string } | undefined {
  if (!run || run.next !== 0 || run.sum !== shortNameChecksum(shortName)) return undefined;
  return decodeLfn(Buffer.concat(run.pieces));
}
