// Which store paths an image's store paths reference, from what the image
// itself holds, in this order: Nix's database (/nix/var/nix/db/db.sqlite,
// with `nixDatabase`), the registration diskwright and make-disk-image write
// (/nix-path-registration), else by scanning every store path's names,
// symlink targets and file contents for the hash parts of the others, as Nix
// does when it registers a build output.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DiskwrightError } from '../errors.ts';
import type { FsEntry, FsReader } from '../read/entry.ts';
import { parseRegistration } from '../nix/registration.ts';
import { ReferenceScanner } from '../nix/references.ts';
import { hashPart, isStorePathName } from '../nix/store-path.ts';
import type { References } from './closure.ts';

export const DB_PATH = '/nix/var/nix/db/db.sqlite';
export const REGISTRATION_PATH = '/nix-path-registration';
/** Larger databases and registrations are not read (an image's own are a few MB). */
const MAX_METADATA_BYTES = 256 << 20;

/** The regular file at `p`, or null when there is none (or it is too large to be one of ours). */
function fileAt(reader: FsReader, p: string): FsEntry | null {
  try {
    const e = reader.lookup(p);
    return e.type === 'file' && e.size <= MAX_METADATA_BYTES ? e : null;
  } catch (e) {
    if (e instanceof DiskwrightError && (e.code === 'PATH_NOT_FOUND' || e.code === 'NOT_A_DIRECTORY')) return null;
    throw e;
  }
}

/** The store directory named by the first path of a registration or database, e.g. /nix/store. */
const storeDirOf = (p: string) => path.posix.dirname(p);

/** References from Nix's database: ValidPaths and Refs. Null when the file is not a database we can read. */
function fromDatabase(reader: FsReader, entry: FsEntry, warnings: string[]): References | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'diskwright-report-'));
  try {
    const file = path.join(dir, 'db.sqlite');
    fs.writeFileSync(file, reader.read(entry));
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      // The image's file is not trusted: plain tables only (a view could run
      // anything, a recursive one forever), read whole, joined here in one pass.
      db.exec('PRAGMA trusted_schema = OFF');
      const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: unknown }>).map((r) => r.name));
      if (!tables.has('ValidPaths') || !tables.has('Refs')) throw new Error('no ValidPaths and Refs tables');
      const refs = new Map<string, string[]>();
      const narSizes = new Map<string, number>();
      const byId = new Map<number, string>();
      for (const r of db.prepare('SELECT id, path, narSize FROM ValidPaths').all() as Array<{ id: unknown; path: unknown; narSize: unknown }>) {
        if (typeof r.path !== 'string' || typeof r.id !== 'number') continue;
        byId.set(r.id, r.path);
        refs.set(r.path, []);
        if (typeof r.narSize === 'number') narSizes.set(r.path, r.narSize);
      }
      for (const r of db.prepare('SELECT referrer, reference FROM Refs').all() as Array<{ referrer: unknown; reference: unknown }>) {
        const from = byId.get(r.referrer as number);
        const to = byId.get(r.reference as number);
        if (from !== undefined && to !== undefined) refs.get(from)!.push(to);
      }
      return { source: DB_PATH, refs, narSizes };
    } finally {
      db.close();
    }
  } catch (e) {
    warnings.push(`${DB_PATH}: not a Nix database that can be read (${(e as Error).message.split('\n')[0]}); looking elsewhere for references`);
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function fromRegistration(reader: FsReader, entry: FsEntry, warnings: string[]): References | null {
  const text = reader.read(entry).toString('utf8');
  const first = text.slice(0, text.indexOf('\n'));
  try {
    const given = parseRegistration(text, REGISTRATION_PATH, storeDirOf(first));
    const refs = new Map<string, readonly string[]>();
    const narSizes = new Map<string, number>();
    for (const g of given) {
      refs.set(g.path, g.references);
      if (g.narSize !== null) narSizes.set(g.path, g.narSize);
    }
    return { source: REGISTRATION_PATH, refs, narSizes };
  } catch (e) {
    if (!(e instanceof DiskwrightError)) throw e;
    warnings.push(`${REGISTRATION_PATH}: ${e.message}; scanning file contents instead`);
    return null;
  }
}

/** The references a filesystem's own database or registration records, or null without either. */
export function recordedReferences(reader: FsReader, warnings: string[]): References | null {
  const db = fileAt(reader, DB_PATH);
  const fromDb = db ? fromDatabase(reader, db, warnings) : null;
  if (fromDb && fromDb.refs.size > 0) return fromDb;
  const reg = fileAt(reader, REGISTRATION_PATH);
  return reg ? fromRegistration(reader, reg, warnings) : null;
}

/** The store directory of the recorded paths (all of them share it), or null. */
export function recordedStoreDir(refs: References): string | null {
  const first = refs.refs.keys().next();
  return first.done ? null : storeDirOf(first.value);
}

/**
 * References found by scanning: each store path's entries (names, symlink
 * targets, file contents) for the hash parts of every store path present.
 * `paths`: full store path -> its directory in the filesystem.
 */
export function scannedReferences(reader: FsReader, paths: ReadonlyMap<string, string>): References {
  const byHash = new Map<string, string>();
  for (const full of paths.keys()) byHash.set(hashPart(path.posix.basename(full)), full);
  const candidates = new Set(byHash.keys());
  const refs = new Map<string, string[]>();
  for (const [full, at] of paths) {
    const scanner = new ReferenceScanner(candidates);
    for (const e of reader.walk(at)) {
      // Names are scanned apart: a hash cannot span two of them.
      scanner.update(Buffer.from(`\0${e.name}\0`, 'latin1'));
      if (e.type === 'symlink' && e.target) scanner.update(Buffer.concat([Buffer.from([0]), e.target, Buffer.from([0])]));
      if (e.type === 'file') {
        for (const c of reader.chunks(e)) scanner.update(c.data);
        scanner.update(Buffer.from([0]));
      }
    }
    refs.set(full, [...scanner.found].sort().map((h) => byHash.get(h)!));
  }
  return { source: 'scanning file contents for store hashes', refs };
}

/** Whether most of the root's entries are store paths: a store-only filesystem (onlyNixStore). */
export function isStoreRoot(reader: FsReader): boolean {
  const names = reader.readdir('/').map((e) => e.name).filter((n) => n !== 'lost+found');
  const stores = names.filter((n) => isStorePathName(n)).length;
  return stores > 0 && stores * 2 >= names.length;
}
