// cpio "newc" headers, both directions. Spec: Linux
// Documentation/driver-api/early-userspace/buffer-format.rst (the initramfs
// buffer format); GNU cpio's manual names the same layout "newc".
// A member is: 110 bytes of header (the magic "070701" and 13 fields of 8
// ASCII hex digits), the name with its NUL, zero padding to a multiple of 4,
// then c_filesize bytes of data, zero padding to a multiple of 4. The archive
// ends with a member named TRAILER!!!.
import { DiskwrightError } from '../errors.ts';

export const NEWC_MAGIC = '070701';
/** "crc" format: same layout, c_chksum holds the sum of the data bytes. */
export const CRC_MAGIC = '070702';
export const HEADER_SIZE = 110;
export const TRAILER_NAME = 'TRAILER!!!';
/** The kernel's initramfs unpacker skips names longer than PATH_MAX (with the NUL). */
export const PATH_MAX = 4096;

/** The fields in header order, named as buffer-format.rst names them. */
export const NEWC_FIELDS = [
  'c_ino', 'c_mode', 'c_uid', 'c_gid', 'c_nlink', 'c_mtime', 'c_filesize',
  'c_maj', 'c_min', 'c_rmaj', 'c_rmin', 'c_namesize', 'c_chksum',
] as const;
export type NewcField = (typeof NEWC_FIELDS)[number];
export type NewcHeader = Record<NewcField, number>;

const fieldAt = (i: number) => 6 + 8 * i;
export const align4 = (n: number) => (n + 3) & ~3;

/** Header + name + NUL + padding for one member; c_namesize comes from the name. */
export function encodeMember(h: Omit<NewcHeader, 'c_namesize' | 'c_chksum'> & { c_chksum?: number }, name: Buffer): Buffer {
  const nameSize = name.length + 1;
  const buf = Buffer.alloc(align4(HEADER_SIZE + nameSize));
  buf.write(NEWC_MAGIC, 0, 'latin1');
  const values: NewcHeader = { ...h, c_namesize: nameSize, c_chksum: h.c_chksum ?? 0 };
  NEWC_FIELDS.forEach((f, i) => {
    const v = values[f];
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`internal: cpio ${f} ${v} out of range`);
    buf.write(v.toString(16).toUpperCase().padStart(8, '0'), fieldAt(i), 'latin1');
  });
  name.copy(buf, HEADER_SIZE);
  return buf;
}

/** The TRAILER!!! member that ends an archive. */
export function encodeTrailer(): Buffer {
  return encodeMember({ c_ino: 0, c_mode: 0, c_uid: 0, c_gid: 0, c_nlink: 1, c_mtime: 0, c_filesize: 0, c_maj: 0, c_min: 0, c_rmaj: 0, c_rmin: 0 }, Buffer.from(TRAILER_NAME));
}

export interface CpioMember extends NewcHeader {
  /** Where the header starts in the archive. */
  offset: number;
  name: Buffer;
  /** Where the data starts in the archive. */
  dataOffset: number;
  /** The member's data (a view into the archive, not a copy). */
  data: Buffer;
}

const HEX8 = /^[0-9A-Fa-f]{8}$/;

function corrupt(what: string, at: number, problem: string): never {
  throw new DiskwrightError('IMAGE_CORRUPT', `${what}: cpio member at byte ${at} ${problem}; the archive is damaged or not a newc cpio archive`, { path: what, offset: at });
}

function truncated(what: string, at: number): never {
  throw new DiskwrightError('IMAGE_TRUNCATED', `${what}: cpio member at byte ${at} runs past the end of the archive; the file is truncated`, { path: what, offset: at });
}

/** Decodes the header at `at`, checking every field; the name and data are bounded by `buf`. */
export function decodeMember(buf: Buffer, at: number, what = 'archive'): CpioMember {
  if (at + HEADER_SIZE > buf.length) truncated(what, at);
  const magic = buf.toString('latin1', at, at + 6);
  if (magic !== NEWC_MAGIC && magic !== CRC_MAGIC) corrupt(what, at, `has magic ${JSON.stringify(magic)}, not ${NEWC_MAGIC}`);
  const h = {} as NewcHeader;
  NEWC_FIELDS.forEach((f, i) => {
    const text = buf.toString('latin1', at + fieldAt(i), at + fieldAt(i) + 8);
    if (!HEX8.test(text)) corrupt(what, at, `has ${f} ${JSON.stringify(text)}, not 8 hex digits`);
    h[f] = parseInt(text, 16);
  });
  if (h.c_namesize < 1 || h.c_namesize > PATH_MAX) corrupt(what, at, `has name size ${h.c_namesize} (1 to ${PATH_MAX})`);
  const nameEnd = at + HEADER_SIZE + h.c_namesize;
  if (nameEnd > buf.length) truncated(what, at);
  if (buf[nameEnd - 1] !== 0) corrupt(what, at, 'has a name without its terminating NUL');
  const dataAt = at + align4(HEADER_SIZE + h.c_namesize);
  if (dataAt + h.c_filesize > buf.length) truncated(what, at);
  return { ...h, offset: at, name: buf.subarray(at + HEADER_SIZE, nameEnd - 1), dataOffset: dataAt, data: buf.subarray(dataAt, dataAt + h.c_filesize) };
}

/** Every member before TRAILER!!!; each step moves forward at least a header, so the loop ends. */
export function decodeArchive(buf: Buffer, what = 'archive'): CpioMember[] {
  const out: CpioMember[] = [];
  let at = 0;
  for (;;) {
    const m = decodeMember(buf, at, what);
    if (m.name.toString('latin1') === TRAILER_NAME) return out;
    out.push(m);
    at = align4(m.dataOffset + m.c_filesize);
  }
}
