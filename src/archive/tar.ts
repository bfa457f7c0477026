// The tar header codec: POSIX.1-2008 pax, "ustar Interchange Format" (the
// 512-byte header block) and "pax Header Block" / "pax Extended Header" (the
// typeflag 'x' records `"%d %s=%s\n"` that carry what a ustar field cannot
// hold). https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html
//
// Encoding is deterministic: a value goes into a pax record only when its
// ustar field cannot hold it exactly, records come in one fixed order, and the
// 'x' header's own fields are fixed. Decoding reads from a random-access
// source and bounds every length by what the archive holds.
import { DiskwrightError } from '../errors.ts';
import { defineStruct, type Decoded } from '../util/struct.ts';

export const BLOCK = 512;

/** The ustar header block; numeric fields are octal text, NUL terminated. */
export const USTAR_HEADER = defineStruct(BLOCK, [
  ['name', 0, { bytes: 100 }],
  ['mode', 100, { bytes: 8 }],
  ['uid', 108, { bytes: 8 }],
  ['gid', 116, { bytes: 8 }],
  ['size', 124, { bytes: 12 }],
  ['mtime', 136, { bytes: 12 }],
  ['chksum', 148, { bytes: 8 }],
  ['typeflag', 156, 'u8'],
  ['linkname', 157, { bytes: 100 }],
  ['magic', 257, { bytes: 6 }],
  ['version', 263, { bytes: 2 }],
  ['uname', 265, { bytes: 32 }],
  ['gname', 297, { bytes: 32 }],
  ['devmajor', 329, { bytes: 8 }],
  ['devminor', 337, { bytes: 8 }],
  ['prefix', 345, { bytes: 155 }],
]);
type UstarHeader = Decoded<typeof USTAR_HEADER.fields>;
/** The header's text fields (all but typeflag). */
type UstarText = Exclude<keyof UstarHeader, 'typeflag'>;

const TYPEFLAG = { file: 0x30, hardlink: 0x31, symlink: 0x32, chr: 0x33, blk: 0x34, dir: 0x35, fifo: 0x36 } as const;
export type MemberType = keyof typeof TYPEFLAG;
const PAX_LOCAL = 0x78; // 'x'
const PAX_GLOBAL = 0x67; // 'g'
const GNU_LONGNAME = 0x4c; // 'L'
const GNU_LONGLINK = 0x4b; // 'K'

export interface TarMember {
  /** Archive name, raw bytes; directories end in '/'. */
  name: Buffer;
  type: MemberType;
  mode: number; // 07777
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Bytes of data that follow the header (0 for all but regular files). */
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** Symlink target, or the earlier member a hard link names. */
  linkname: Buffer;
  devmajor: number;
  devminor: number;
  /** Extended attributes as pax SCHILY.xattr records, sorted by name. */
  xattrs?: Array<{ name: string; value: Buffer }>;
}

const MAGIC = Buffer.from('ustar\0');
const VERSION = Buffer.from('00');
const SLASH = 0x2f;

/** Largest value an octal field of `width` bytes holds (width - 1 digits, then NUL). */
function octalMax(width: number): number {
  return 8 ** (width - 1) - 1;
}

function octal(n: number, width: number): Buffer {
  return Buffer.from(n.toString(8).padStart(width - 1, '0') + '\0', 'latin1');
}

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c >= 0x80 || c === 0) return false;
  return true;
}

/** One pax record; its length counts its own digits. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'latin1'), value, Buffer.from('\n')]);
}

/** Where a name fits ustar's prefix/name split: the '/' to split at, or -1. */
function ustarSplit(name: Buffer): number {
  if (name.length <= 100) return 0;
  // The last '/' that leaves at most 100 bytes of name and 155 of prefix.
  for (let i = Math.min(name.length - 1, 155); i >= name.length - 101 && i > 0; i--) {
    if (name[i] === SLASH && name.length - i - 1 >= 1) return i;
  }
  return -1;
}

function paxTime(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec);
  // Negative times: pax puts the sign on the whole value, so -1.5 is sec -2 + 0.5.
  const whole = sec < 0 && nsec > 0 ? sec + 1 : sec;
  const frac = sec < 0 && nsec > 0 ? 1e9 - nsec : nsec;
  const sign = sec < 0 && whole === 0 ? '-' : '';
  return `${sign}${whole}.${String(frac).padStart(9, '0').replace(/0+$/, '')}`;
}

/** The header blocks of one member: a pax 'x' header and its records when needed, then the ustar header. */
export function encodeMember(m: TarMember): Buffer {
  const records: Buffer[] = [];
  const binary = !isUtf8(m.name) || !isUtf8(m.linkname);
  if (binary) records.push(paxRecord('hdrcharset', Buffer.from('BINARY')));
  const split = isAscii(m.name) ? ustarSplit(m.name) : -1;
  if (split < 0) records.push(paxRecord('path', m.name));
  if (m.linkname.length > 100 || !isAscii(m.linkname)) records.push(paxRecord('linkpath', m.linkname));
  if (m.size > octalMax(12)) records.push(paxRecord('size', Buffer.from(String(m.size))));
  if (m.uid > octalMax(8)) records.push(paxRecord('uid', Buffer.from(String(m.uid))));
  if (m.gid > octalMax(8)) records.push(paxRecord('gid', Buffer.from(String(m.gid))));
  const uname = Buffer.from(m.uname);
  const gname = Buffer.from(m.gname);
  if (uname.length > 32 || !isAscii(uname)) records.push(paxRecord('uname', uname));
  if (gname.length > 32 || !isAscii(gname)) records.push(paxRecord('gname', gname));
  const mtimeFits = m.mtimeSec >= 0 && m.mtimeSec <= octalMax(12);
  if (!mtimeFits || m.mtimeNsec !== 0) records.push(paxRecord('mtime', Buffer.from(paxTime(m.mtimeSec, m.mtimeNsec))));
  for (const x of m.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${x.name}`, x.value));
  const ustar = ustarHeader(m, split, mtimeFits);
  if (records.length === 0) return ustar;
  const data = Buffer.concat(records);
  const paxHeader = ustarHeader(tarMember(paxName(m.name), { size: data.length, mtimeSec: mtimeFits ? m.mtimeSec : 0 }), 0, true, PAX_LOCAL);
  return Buffer.concat([paxHeader, data, Buffer.alloc(padding(data.length)), ustar]);
}

/** A member with every field at its plain default (a root-owned 0644 empty file at time 0), then `over`. */
export function tarMember(name: Buffer, over: Partial<TarMember> = {}): TarMember {
  return { name, type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', size: 0, mtimeSec: 0, mtimeNsec: 0, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0, ...over };
}

/** Zero bytes that round `n` up to whole blocks. */
export function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE_LENGTH = 2 * BLOCK;

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** The 'x' header's own name: a plain ASCII name from the member's last component, as a reader that ignores pax would extract it. */
function paxName(name: Buffer): Buffer {
  const trimmed = name[name.length - 1] === SLASH ? name.subarray(0, -1) : name;
  const base = trimmed.subarray(trimmed.lastIndexOf(SLASH) + 1);
  const safe = Buffer.from(Array.from(base, (c) => (c >= 0x20 && c < 0x7f ? c : 0x5f)));
  return Buffer.concat([Buffer.from('PaxHeaders/'), safe.subarray(0, 100 - 11)]);
}

function clip(b: Buffer, n: number): Buffer {
  return b.length > n ? b.subarray(0, n) : b;
}

/** Field bytes that pax overrides: a truncated or ASCII-only stand-in. */
function ustarText(b: Buffer, n: number): Buffer {
  return isAscii(b) ? clip(b, n) : Buffer.from(Array.from(clip(b, n), (c) => (c < 0x80 && c !== 0 ? c : 0x5f)));
}

function ustarHeader(m: TarMember, split: number, mtimeFits: boolean, typeflag: number = TYPEFLAG[m.type]): Buffer {
  const h = Buffer.alloc(BLOCK);
  const name = split > 0 ? m.name.subarray(split + 1) : split === 0 ? m.name : ustarText(m.name, 100);
  const prefix = split > 0 ? m.name.subarray(0, split) : Buffer.alloc(0);
  USTAR_HEADER.encode(h, 0, {
    name,
    mode: octal(m.mode & 0o7777, 8),
    uid: octal(m.uid > octalMax(8) ? 0 : m.uid, 8),
    gid: octal(m.gid > octalMax(8) ? 0 : m.gid, 8),
    size: octal(m.size > octalMax(12) ? 0 : m.size, 12),
    mtime: octal(mtimeFits ? m.mtimeSec : 0, 12),
    chksum: Buffer.from('        '),
    typeflag,
    linkname: ustarText(m.linkname, 100),
    magic: MAGIC,
    version: VERSION,
    uname: ustarText(Buffer.from(m.uname), 32),
    gname: ustarText(Buffer.from(m.gname), 32),
    devmajor: deviceField(m.devmajor),
    devminor: deviceField(m.devminor),
    prefix,
  });
  USTAR_HEADER.encode(h, 0, { chksum: Buffer.from(checksum(h).toString(8).padStart(6, '0') + '\0 ', 'latin1') });
  return h;
}

/** Device numbers beyond octal go base-256 (the GNU and star extension): pax has no keyword for them. */
function deviceField(n: number): Buffer {
  if (n <= octalMax(8)) return octal(n, 8);
  const b = Buffer.alloc(8);
  b.writeUInt32BE(n >>> 0, 4);
  b[0] = 0x80;
  return b;
}

/** Unsigned sum of the header's bytes with the checksum field read as spaces. */
function checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum;
}

// ---- decoding ----

/** A member as read, with where its data sits in the archive. */
export interface DecodedMember extends TarMember {
  /** 'other' for a typeflag this codec does not know; its data is still skipped. */
  kind: MemberType | 'other';
  typeflag: number;
  /** Archive offset of the data's first byte. */
  dataOffset: number;
}

/** Random access to an archive's bytes: exactly `len` bytes at `at`, or fewer at the end. */
export type ReadAt = (at: number, len: number) => Buffer;

export interface DecodeLimits {
  /** Largest pax or GNU long-name data accepted (default 1 MiB). */
  maxExtendedHeader?: number;
  /** Most members read (default 10 million). */
  maxMembers?: number;
}

/** Every member of a tar archive of `size` bytes, in archive order. `what` names the archive in errors. */
export function decodeArchive(read: ReadAt, size: number, what: string, limits: DecodeLimits = {}): DecodedMember[] {
  const maxExt = limits.maxExtendedHeader ?? 1 << 20;
  const maxMembers = limits.maxMembers ?? 10_000_000;
  const corrupt = (at: number, why: string): never => {
    throw new DiskwrightError('IMAGE_CORRUPT', `${what} is not a valid tar archive: ${why} at byte ${at}; give an archive tar can list`, { path: what, offset: at });
  };
  const truncated = (at: number): never => {
    throw new DiskwrightError('IMAGE_TRUNCATED', `${what} ends inside a tar member at byte ${at}; the archive is truncated, write it again`, { path: what, offset: at });
  };
  const block = (at: number, len: number): Buffer => {
    if (at + len > size) truncated(at);
    const b = read(at, len);
    if (b.length < len) truncated(at);
    return b;
  };
  const out: DecodedMember[] = [];
  const global = new Map<string, Buffer>();
  let local = new Map<string, Buffer>();
  let at = 0;
  while (at + BLOCK <= size) {
    const h = block(at, BLOCK);
    if (h.every((c) => c === 0)) return out; // end of archive (the second zero block is optional to readers)
    const stored = parseOctal(h.subarray(148, 156));
    const sum = checksum(h);
    if (stored === null || (stored !== sum && stored !== signedChecksum(h))) corrupt(at, 'header checksum mismatch');
    const f = USTAR_HEADER.decode(h, 0);
    const typeflag = f.typeflag;
    const num = (field: UstarText): number => parseNumber(f[field]) ?? corrupt(at, `${field} is not a number`);
    const headerSize = num('size');
    const dataAt = at + BLOCK;
    if (typeflag === PAX_LOCAL || typeflag === PAX_GLOBAL || typeflag === GNU_LONGNAME || typeflag === GNU_LONGLINK) {
      if (headerSize > maxExt) corrupt(at, `extended header of ${headerSize} bytes (at most ${maxExt})`);
      const data = block(dataAt, headerSize);
      if (typeflag === GNU_LONGNAME || typeflag === GNU_LONGLINK) {
        local.set(typeflag === GNU_LONGNAME ? 'path' : 'linkpath', Buffer.from(cstr(data)));
      } else {
        const recs = parsePax(data) ?? corrupt(at, 'malformed pax record');
        for (const [k, v] of recs) (typeflag === PAX_GLOBAL ? global : local).set(k, v);
      }
      at = dataAt + headerSize + padding(headerSize);
      continue;
    }
    if (out.length >= maxMembers) corrupt(at, `more than ${maxMembers} members`);
    // An empty record value removes the keyword, also one a global header set.
    const ext = new Map<string, Buffer>();
    for (const [k, v] of [...global, ...local]) {
      if (v.length) ext.set(k, v);
      else ext.delete(k);
    }
    local = new Map();
    const m = memberOf(f, ext, num, (why) => corrupt(at, why));
    const kind: DecodedMember['kind'] = (KIND[typeflag] as MemberType | undefined) ?? 'other';
    // pax's size overrides the header's: the data that follows has that length.
    const next = dataAt + m.size + padding(m.size);
    if (next > size) truncated(at);
    out.push({ ...m, type: kind === 'other' ? 'file' : kind, kind, typeflag, dataOffset: dataAt });
    at = next;
  }
  if (at < size) truncated(at);
  return out;
}

const KIND: Record<number, MemberType> = { 0: 'file', 0x30: 'file', 0x37: 'file', 0x31: 'hardlink', 0x32: 'symlink', 0x33: 'chr', 0x34: 'blk', 0x35: 'dir', 0x36: 'fifo' };

function memberOf(f: UstarHeader, ext: Map<string, Buffer>, num: (field: UstarText) => number, bad: (why: string) => never): TarMember {
  const text = (field: UstarText) => cstr(f[field]);
  const magicOk = f.magic.subarray(0, 5).equals(MAGIC.subarray(0, 5));
  const prefix = magicOk ? text('prefix') : Buffer.alloc(0);
  let name = ext.get('path') ?? (prefix.length ? Buffer.concat([prefix, Buffer.from('/'), text('name')]) : text('name'));
  const extNum = (key: string, fallback: () => number): number => {
    const v = ext.get(key);
    if (v === undefined) return fallback();
    const s = v.toString('latin1');
    if (!/^[0-9]{1,16}$/.test(s) || !Number.isSafeInteger(Number(s))) bad(`pax ${key} is not a number`);
    return Number(s);
  };
  let mtimeSec: number;
  let mtimeNsec = 0;
  const mt = ext.get('mtime')?.toString('latin1');
  if (mt !== undefined) {
    const t = /^(-?)([0-9]{1,15})(?:\.([0-9]{1,30}))?$/.exec(mt) ?? bad('pax mtime is not a time');
    const frac = Number((t[3] ?? '').padEnd(9, '0').slice(0, 9));
    const whole = Number(t[2]);
    if (t[1] === '-') {
      mtimeSec = frac ? -whole - 1 : -whole;
      mtimeNsec = frac ? 1e9 - frac : 0;
    } else {
      mtimeSec = whole;
      mtimeNsec = frac;
    }
  } else mtimeSec = num('mtime');
  if (name.length === 0) bad('empty member name');
  name = Buffer.from(name);
  const xattrs: Array<{ name: string; value: Buffer }> = [];
  for (const [k, v] of ext) if (k.startsWith('SCHILY.xattr.')) xattrs.push({ name: k.slice('SCHILY.xattr.'.length), value: v });
  xattrs.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  return {
    name,
    type: 'file',
    mode: num('mode') & 0o7777,
    uid: extNum('uid', () => num('uid')),
    gid: extNum('gid', () => num('gid')),
    uname: (ext.get('uname') ?? text('uname')).toString('utf8'),
    gname: (ext.get('gname') ?? text('gname')).toString('utf8'),
    size: extNum('size', () => num('size')),
    mtimeSec,
    mtimeNsec,
    linkname: Buffer.from(ext.get('linkpath') ?? text('linkname')),
    devmajor: magicOk ? num('devmajor') : 0,
    devminor: magicOk ? num('devminor') : 0,
    ...(xattrs.length ? { xattrs } : {}),
  };
}

function cstr(b: Buffer): Buffer {
  const end = b.indexOf(0);
  return end < 0 ? b : b.subarray(0, end);
}

function signedChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] << 24) >> 24;
  return sum;
}

/** Octal text, space or NUL padded on either side; null if not octal. Empty reads as 0. */
function parseOctal(b: Buffer): number | null {
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0)) i++;
  let n = 0;
  let digits = 0;
  for (; i < b.length && b[i] >= 0x30 && b[i] <= 0x37; i++, digits++) n = n * 8 + (b[i] - 0x30);
  for (; i < b.length; i++) if (b[i] !== 0x20 && b[i] !== 0) return null;
  return digits > 17 ? null : n;
}

/** A numeric field: octal, or base-256 (high bit set, positive values that fit a safe integer). */
function parseNumber(b: Buffer): number | null {
  if (b[0] & 0x80) {
    if (b[0] & 0x40) return null; // negative
    let n = b[0] & 0x3f;
    for (let i = 1; i < b.length; i++) {
      n = n * 256 + b[i];
      if (n > Number.MAX_SAFE_INTEGER) return null;
    }
    return n;
  }
  return parseOctal(b);
}

/** pax records `"%d %s=%s\n"`; null when one is malformed. */
export function parsePax(data: Buffer): Map<string, Buffer> | null {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // NUL padding some writers leave
    const sp = data.indexOf(0x20, at);
    if (sp < 0 || sp - at > 20) return null;
    const lenText = data.toString('latin1', at, sp);
    if (!/^[1-9][0-9]*$/.test(lenText)) return null;
    const len = Number(lenText);
    const end = at + len;
    if (end > data.length || data[end - 1] !== 0x0a) return null;
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= end - 1 || eq === sp + 1) return null;
    const key = data.toString('utf8', sp + 1, eq);
    const value = Buffer.from(data.subarray(eq + 1, end - 1));
    // Kept when empty: an empty value removes the keyword (decodeArchive).
    out.set(key, value);
    at = end;
  }
  return out;
}

