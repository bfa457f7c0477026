// Extended attributes: as many as fit go in the inode body after i_extra_isize,
// the rest into one xattr block, which identical sets share (h_refcount).
// Reference: Documentation/filesystems/ext4/attributes.rst
import { crc32c } from '../../util/crc32c.ts';
import { DiskwrightError } from '../../errors.ts';
import type { Xattr } from '../../tree/model.ts';
import { BLOCK_SIZE, EXTRA_ISIZE, XATTR_MAGIC } from './constants.ts';
import { aclToDisk } from './acl.ts';

/** An attribute in on-disk form: name index, suffix and stored value. */
export interface DiskXattr {
  index: number;
  name: Buffer;
  value: Buffer;
}

// Longest prefixes first, so "system.posix_acl_access" wins over "system.".
const PREFIXES: Array<[string, number]> = [
  ['system.posix_acl_access', 2],
  ['system.posix_acl_default', 3],
  ['system.richacl', 8],
  ['user.', 1],
  ['trusted.', 4],
  ['security.', 6],
  ['system.', 7],
];

const ENTRY_HEADER = 16;
const BLOCK_HEADER = 32;

export function toDiskXattr(x: Xattr, where: string): DiskXattr {
  for (const [prefix, index] of PREFIXES) {
    if (!x.name.startsWith(prefix)) continue;
    const suffix = x.name.slice(prefix.length);
    if ((index === 2 || index === 3) && suffix !== '') continue;
    let value = x.value;
    if (index === 2 || index === 3) {
      const disk = aclToDisk(x.value);
      if (!disk) throw new DiskwrightError('XATTR_UNSUPPORTED', `${where}: ${x.name} is not a valid POSIX ACL`, { path: where, name: x.name });
      value = disk;
    }
    const name = Buffer.from(suffix, 'utf8');
    if (name.length > 255) throw new DiskwrightError('XATTR_TOO_LARGE', `${where}: xattr name ${x.name} is longer than 255 bytes`, { path: where });
    return { index, name, value };
  }
  throw new DiskwrightError('XATTR_UNSUPPORTED', `${where}: extended attribute ${x.name} has a namespace ext4 cannot store; remove it from the source`, { path: where, name: x.name });
}

const pad4 = (n: number) => (n + 3) & ~3;
const entrySize = (x: DiskXattr) => pad4(ENTRY_HEADER + x.name.length);
const valueSize = (x: DiskXattr) => pad4(x.value.length);

/** Kernel/e2fsck order inside a block: name index, name length, name bytes. */
export function compareDiskXattr(a: DiskXattr, b: DiskXattr): number {
  return a.index - b.index || a.name.length - b.name.length || Buffer.compare(a.name, b.name);
}

/** Splits attributes between the inode body and a block; throws when they do not fit in both. */
export function splitXattrs(attrs: DiskXattr[], inodeSize: number, where: string): { inInode: DiskXattr[]; inBlock: DiskXattr[] } {
  const sorted = [...attrs].sort(compareDiskXattr);
  // Body space: magic (4), entries, a 4-byte end marker, then values.
  const room = inodeSize - 128 - EXTRA_ISIZE - 4 - 4;
  const inInode: DiskXattr[] = [];
  const inBlock: DiskXattr[] = [];
  let used = 0;
  for (const x of sorted) {
    const need = entrySize(x) + valueSize(x);
    if (inBlock.length === 0 && used + need <= room) {
      inInode.push(x);
      used += need;
    } else {
      inBlock.push(x);
    }
  }
  let blockUsed = BLOCK_HEADER + 4;
  for (const x of inBlock) blockUsed += entrySize(x) + valueSize(x);
  if (blockUsed > BLOCK_SIZE) {
    throw new DiskwrightError('XATTR_TOO_LARGE', `${where}: extended attributes take ${blockUsed} bytes, more than the inode and one ${BLOCK_SIZE}-byte block hold; shrink them`, { path: where });
  }
  return { inInode, inBlock };
}

/** ext4_xattr_hash_entry: name bytes then value words. */
export function entryHash(x: DiskXattr): number {
  let h = 0;
  for (const c of x.name) h = ((h << 5) ^ (h >>> 27) ^ c) >>> 0;
  const v = x.value;
  for (let i = 0; i < v.length; i += 4) {
    const w = (v[i] | ((v[i + 1] ?? 0) << 8) | ((v[i + 2] ?? 0) << 16) | ((v[i + 3] ?? 0) << 24)) >>> 0;
    h = ((h << 16) ^ (h >>> 16) ^ w) >>> 0;
  }
  return h;
}

/**
 * Writes entries and values into `buf[start, end)`: entries from `start`, values
 * packed down from `end`. Value offsets count from `offsetBase`. Returns the entry hashes.
 */
function writeEntries(buf: Buffer, start: number, end: number, offsetBase: number, attrs: DiskXattr[]): number[] {
  let at = start;
  let valueAt = end;
  const hashes: number[] = [];
  for (const x of attrs) {
    valueAt -= valueSize(x);
    const h = entryHash(x);
    hashes.push(h);
    buf[at] = x.name.length;
    buf[at + 1] = x.index;
    buf.writeUInt16LE(x.value.length ? valueAt - offsetBase : 0, at + 2);
    buf.writeUInt32LE(0, at + 4); // e_value_inum
    buf.writeUInt32LE(x.value.length, at + 8);
    buf.writeUInt32LE(h, at + 12);
    x.name.copy(buf, at + ENTRY_HEADER);
    x.value.copy(buf, valueAt);
    at += entrySize(x);
  }
  return hashes;
}

/** Fills the in-inode xattr area of the inode at `at` (after the 32 extra bytes). */
export function encodeInodeXattrs(buf: Buffer, at: number, inodeSize: number, attrs: DiskXattr[]): void {
  if (attrs.length === 0) return;
  const base = at + 128 + EXTRA_ISIZE;
  buf.writeUInt32LE(XATTR_MAGIC, base);
  writeEntries(buf, base + 4, at + inodeSize, base + 4, attrs);
}

/** A whole xattr block; its checksum depends on where it lives. */
export function encodeXattrBlock(attrs: DiskXattr[], refcount: number, blockNr: number, fsSeed: number): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  b.writeUInt32LE(XATTR_MAGIC, 0);
  b.writeUInt32LE(refcount, 4);
  b.writeUInt32LE(1, 8); // h_blocks
  const hashes = writeEntries(b, BLOCK_HEADER, BLOCK_SIZE, 0, attrs);
  let h = 0;
  for (const eh of hashes) h = ((h << 16) ^ (h >>> 16) ^ eh) >>> 0;
  b.writeUInt32LE(h, 12); // h_hash
  const le = Buffer.alloc(8);
  le.writeUInt32LE(blockNr >>> 0, 0);
  le.writeUInt32LE(Math.floor(blockNr / 0x100000000), 4);
  b.writeUInt32LE(crc32c(crc32c(fsSeed, le), b), 16); // h_checksum, computed while still zero
  return b;
}

/** Identity of a block's contents, for sharing one block between inodes. */
export function xattrKey(attrs: DiskXattr[]): string {
  return attrs.map((x) => `${x.index}:${x.name.toString('hex')}=${x.value.toString('hex')}`).join(',');
}

// ---------------------------------------------------------------- decoding

/** The name prefix of each e_name_index, as the kernel lists the names. */
const PREFIX_OF_INDEX = new Map(PREFIXES.map(([prefix, index]) => [index, prefix]));

/** The full name (prefix + suffix, a latin1 byte string) of a stored attribute; unknown indexes as `unknown<N>.`. */
export function xattrName(index: number, suffix: Buffer): string {
  return (PREFIX_OF_INDEX.get(index) ?? `unknown${index}.`) + suffix.toString('latin1');
}

/** The largest value the kernel stores (XATTR_SIZE_MAX). */
const MAX_VALUE = 65536;

/** One ext4_xattr_entry as stored. */
export interface XattrEntry {
  index: number;
  /** The name after the prefix, raw bytes. */
  suffix: Buffer;
  /** ea_inode: the inode holding the value (0: the value is in `stored`). */
  valueInum: number;
  valueSize: number;
  /** The value when it lives beside the entries. */
  stored?: Buffer;
}

/**
 * The entries of an xattr area: `buf[start, end)` holds the entries (up to a
 * zero word), values sit at `valueBase` + e_value_offs, all within `end`.
 * `fail` throws with the reason (its caller names the inode).
 */
export function decodeXattrEntries(buf: Buffer, start: number, end: number, valueBase: number, fail: (why: string) => never): XattrEntry[] {
  const out: XattrEntry[] = [];
  let at = start;
  while (at + 4 <= end && buf.readUInt32LE(at) !== 0) {
    if (at + ENTRY_HEADER > end) fail('xattr entry runs past its area');
    const nameLen = buf[at];
    const index = buf[at + 1];
    const valueOffs = buf.readUInt16LE(at + 2);
    const valueInum = buf.readUInt32LE(at + 4);
    const valueSize = buf.readUInt32LE(at + 8);
    if (at + ENTRY_HEADER + nameLen > end) fail('xattr name runs past its area');
    if (valueSize > MAX_VALUE) fail(`xattr value of ${valueSize} bytes (at most ${MAX_VALUE})`);
    const suffix = Buffer.from(buf.subarray(at + ENTRY_HEADER, at + ENTRY_HEADER + nameLen));
    const e: XattrEntry = { index, suffix, valueInum, valueSize };
    if (!valueInum) {
      const v = valueBase + valueOffs;
      if (v + valueSize > end) fail('xattr value runs past its area');
      e.stored = Buffer.from(buf.subarray(v, v + valueSize));
    }
    out.push(e);
    at += pad4(ENTRY_HEADER + nameLen);
  }
  return out;
}
