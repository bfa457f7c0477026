// Names read from an image are hostile input: a hand-patched directory block
// or VFAT long name can hold '/', '..' or a NUL. The one rule for whether an
// entry's name may become a host path component, and the one way to show a
// name or path in a message or on a terminal, shared by every consumer of
// the readers (extract, ls, diff, cat, error messages).
import type { FsEntry } from './entry.ts';

/** Why `name` (a byte string, one latin1 char per byte) cannot be one path component, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'the name is empty';
  if (name === '.' || name === '..') return `"${name}" would name ${name === '.' ? 'the directory itself' : 'its parent'}`;
  if (name.includes('/')) return 'the name holds a "/"';
  if (name.includes('\0')) return 'the name holds a NUL byte';
  return undefined;
}

/**
 * Why the entry must not be used as a path component: its name breaks the
 * rule above, or the filesystem's own rules (FAT: not a valid long name), or
 * undefined when it is safe. The root has no name and is always safe.
 */
export function entryNameProblem(e: FsEntry): string | undefined {
  if (e.path === '/') return undefined;
  return nameProblem(e.name) ?? e.nameProblem;
}

const NAMED: Record<number, string> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r', 0x5c: '\\\\' };

/** Length of the valid UTF-8 sequence at bytes[i] (a printable one: not a C1 control), or 0. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

function utf8Length(bytes: Buffer, i: number): number {
  const b = bytes[i];
  const len = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
  if (len <= 1 || i + len > bytes.length) return len === 1 ? 1 : 0;
  try {
    const ch = utf8.decode(bytes.subarray(i, i + len));
    return ch.codePointAt(0)! >= 0x80 && ch.codePointAt(0)! < 0xa0 ? 0 : len;
  } catch {
    return 0;
  }
}

/**
 * A byte string for display: UTF-8 text where it is valid; a backslash as \\,
 * tab, newline and carriage return as \t \n \r, every other control byte
 * (C0, DEL, UTF-8-encoded C1) and every byte that is not UTF-8 as \xNN. With
 * `slash`, '/' is shown as \x2f too (for one name, where a '/' is not a separator).
 */
function escapeBytes(key: string, slash: boolean): string {
  const bytes = Buffer.from(key, 'latin1');
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    const len = utf8Length(bytes, i);
    if (len > 1) {
      out += bytes.toString('utf8', i, i + len);
      i += len;
      continue;
    }
    if (NAMED[b]) out += NAMED[b];
    else if (len === 0 || b < 0x20 || b === 0x7f || (slash && b === 0x2f)) out += '\\x' + b.toString(16).padStart(2, '0');
    else out += String.fromCharCode(b);
    i++;
  }
  return out;
}

/** A path ('/a/b', a byte string) for messages and terminals, escaped as escapeName does but with '/' as the separator. */
export function escapePath(key: string): string {
  return escapeBytes(key, false);
}

/** One name (a byte string) for messages and terminals: escaped so that it is one line of text and a '/' in it shows as \x2f. */
export function escapeName(name: string): string {
  return escapeBytes(name, true);
}

/** The path of the directory holding `e`. */
function parentKey(e: FsEntry): string {
  return e.path.slice(0, e.path.length - e.name.length - 1) || '/';
}

/**
 * An entry's path for display, its last component escaped as a name (so a
 * '/' in it cannot pass for a separator); relative to `base` (a directory's
 * path) when given. Its parents' names are safe: the readers do not descend
 * into a directory whose name is not.
 */
export function entryDisplayPath(e: FsEntry, base?: string): string {
  if (e.path === '/') return '/';
  const parent = parentKey(e);
  const name = escapeName(e.name);
  if (base === undefined) return (parent === '/' ? '' : escapePath(parent)) + '/' + name;
  if (parent === base) return name;
  return escapePath(parent.slice(base === '/' ? 1 : base.length + 1)) + '/' + name;
}

/** Where an entry is on disk, for a message: "inode 12" (ext4), "directory entry at byte 40992" (FAT). */
export function entryWhere(e: FsEntry): string {
  return e.fat ? `directory entry at byte ${e.fat.entryOffset}` : `inode ${e.ino}`;
}

/** One line about an entry whose name cannot be a path component: the entry, its name escaped, its directory and why. */
export function unsafeEntryLine(what: string, e: FsEntry, problem: string): string {
  return `${what}: skipped ${entryWhere(e)} named "${escapeName(e.name)}" in ${escapePath(parentKey(e))}: ${problem}`;
}
