// The Nix store database, /nix/var/nix/db/db.sqlite, as `nix-store --load-db`
// of a closure's registration leaves it: schema version 10 (Nix 2.0 and
// later; Nix's src/libstore/schema.sql), one ValidPaths row per path, its
// Refs, and a DerivationOutputs row per output of each .drv (Nix reads the
// derivation when it registers one). Rows go in in the order
// LocalStore::registerValidPaths inserts them (paths sorted, a .drv's outputs
// right after it, then every path's references sorted), so each path gets the
// id Nix would give it. Values as Nix binds them: hash `sha256:<base-16>`, no
// deriver, narSize 0, ultimate, sigs or ca as NULL.
//
// Written with node:sqlite into a fresh file in one transaction, schema in
// Nix's order, page size fixed: the bytes depend only on the rows and on the
// SQLite library (its version number sits in the header at offset 96). No
// clock: registrationTime is the caller's epoch. The header says rollback
// journal; Nix switches it to WAL the first time it opens the store.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DiskwrightError } from '../errors.ts';
import { errnoOf, errnoWords } from '../util/sys-error.ts';
import { compareStorePaths, type StorePathInfo } from './registration.ts';

/** The schema version Nix writes to /nix/var/nix/db/schema (nixSchemaVersion, unchanged since Nix 2.0). */
export const NIX_SCHEMA_VERSION = 10;

/** SQLite's default page size, set explicitly so no build-time default can change the bytes. */
const PAGE_SIZE = 4096;

// Nix's tables, columns, keys, indexes and trigger (the names are its
// interface: every Nix query names them).
const SCHEMA = `
create table ValidPaths (
  id integer primary key autoincrement not null,
  path text unique not null,
  hash text not null,
  registrationTime integer not null,
  deriver text,
  narSize integer,
  ultimate integer,
  sigs text,
  ca text
);
create table Refs (
  referrer integer not null,
  reference integer not null,
  primary key (referrer, reference),
  foreign key (referrer) references ValidPaths(id) on delete cascade,
  foreign key (reference) references ValidPaths(id) on delete restrict
);
create index IndexReferrer on Refs(referrer);
create index IndexReference on Refs(reference);
create trigger DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;
create table DerivationOutputs (
  drv integer not null,
  id text not null,
  path text not null,
  primary key (drv, id),
  foreign key (drv) references ValidPaths(id) on delete cascade
);
create index IndexDerivationOutputs on DerivationOutputs(path);
`;

export interface NixDbOptions {
  /** Seconds since the epoch, every path's registrationTime (Nix would take the clock). */
  registrationTime: number;
  /** A .drv's outputs (name and store path, sorted by name); Nix reads them from the derivation. */
  derivationOutputs?: (drvPath: string) => Array<{ id: string; path: string }>;
}

/**
 * The bytes of db.sqlite registering `paths`, which must be closed under
 * references (a reference outside them is refused, as Nix refuses it).
 */
export function nixDatabase(paths: readonly StorePathInfo[], opts: NixDbOptions): Buffer {
  const sorted = [...paths].sort((a, b) => compareStorePaths(a.path, b.path));
  const known = new Set(sorted.map((p) => p.path));
  for (const p of sorted) {
    const missing = p.references.find((r) => !known.has(r));
    if (missing !== undefined) {
      throw new DiskwrightError('REFERENCE_MISSING', `${p.path} refers to ${missing}, which is not in the closure; register the whole closure`, { path: p.path, reference: missing });
    }
  }
  // A scratch file (node:sqlite's serialize() is newer than the Node versions diskwright runs on),
  // one transaction, no journal: it is read back whole or thrown away. Only WAL is recorded in the
  // file, so its header says rollback journal whatever the mode used here.
  let dir: string | undefined;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'diskwright-nixdb-'));
    const file = path.join(dir, 'db.sqlite');
    const db = new DatabaseSync(file);
    try {
      db.exec(`pragma page_size = ${PAGE_SIZE}; pragma journal_mode = off; pragma synchronous = off; pragma encoding = 'UTF-8'; pragma auto_vacuum = none;`);
      db.exec('begin');
      db.exec(SCHEMA);
      insertRows(db, sorted, opts);
      db.exec('commit');
    } finally {
      db.close();
    }
    return fs.readFileSync(file);
  } catch (err) {
    if (err instanceof DiskwrightError) throw err;
    // The scratch space failed (a missing or full TMPDIR): SQLite says why in errstr, the file system in errno.
    const why = (err as { errstr?: unknown }).errstr ?? errnoWords(errnoOf(err) ?? 'EIO');
    throw new DiskwrightError('OUTPUT_WRITE', `cannot write the Nix database in ${os.tmpdir()}: ${String(why)}; set TMPDIR to a writable directory with space`, { path: os.tmpdir() });
  } finally {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function insertRows(db: DatabaseSync, sorted: readonly StorePathInfo[], opts: NixDbOptions): void {
  const addPath = db.prepare('insert into ValidPaths (path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca) values (?, ?, ?, ?, ?, null, null, null)');
  const addOutput = db.prepare('insert or replace into DerivationOutputs (drv, id, path) values (?, ?, ?)');
  const addRef = db.prepare('insert or replace into Refs (referrer, reference) values (?, ?)');
  const ids = new Map<string, bigint>();
  const time = BigInt(opts.registrationTime);
  for (const p of sorted) {
    // BigInt binds as SQLite INTEGER whatever its size (a large JS number would bind as REAL).
    const r = addPath.run(p.path, `sha256:${p.narHash.toString('hex')}`, time, p.deriver, p.narSize === 0 ? null : BigInt(p.narSize));
    const id = BigInt(r.lastInsertRowid);
    ids.set(p.path, id);
    if (p.path.endsWith('.drv') && opts.derivationOutputs) {
      for (const o of opts.derivationOutputs(p.path)) addOutput.run(id, o.id, o.path);
    }
  }
  for (const p of sorted) {
    const referrer = ids.get(p.path)!;
    for (const ref of [...p.references].sort(compareStorePaths)) addRef.run(referrer, ids.get(ref)!);
  }
}

/** /nix/var/nix/db/schema: the version number, no newline, as Nix writes it. */
export function nixSchemaFile(): Buffer {
  return Buffer.from(String(NIX_SCHEMA_VERSION));
}
