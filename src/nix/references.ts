// Where a store path's references come from: Nix's own records (a closureInfo
// directory, `nix-store --dump-db` output, `nix path-info --json` output), or
// a scan of the path's NAR for the hash parts of the store paths present, as
// Nix does after every build (nix's RefScanSink): every 32-byte window of the
// NAR stream (contents, names, symlink targets) that spells a candidate's hash
// part is a reference to that candidate, the path's own hash included.
import { errnoOf, errnoWords } from '../util/sys-error.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { IS_NIX32, NIX32_VALUE } from './base32.ts';
import { parseSha256 } from './hash.ts';
import { parseRegistration, type GivenPathInfo } from './registration.ts';
import { HASH_PART_LENGTH, hashPart, isStorePathName } from './store-path.ts';

const W = HASH_PART_LENGTH;

/** Bit set of the 25-bit values of the first five characters of every candidate (a cheap first test per window). */
const prefixFilters = new WeakMap<ReadonlySet<string>, { size: number; bits: Uint32Array }>();

function prefixKey(b: Uint8Array, i: number): number {
  return (NIX32_VALUE[b[i]] << 20) | (NIX32_VALUE[b[i + 1]] << 15) | (NIX32_VALUE[b[i + 2]] << 10) | (NIX32_VALUE[b[i + 3]] << 5) | NIX32_VALUE[b[i + 4]];
}

function prefixFilter(candidates: ReadonlySet<string>): Uint32Array {
  const cached = prefixFilters.get(candidates);
  if (cached && cached.size === candidates.size) return cached.bits;
  const bits = new Uint32Array(1 << 20);
  for (const c of candidates) {
    const b = Buffer.from(c, 'latin1');
    if (b.length !== W || !b.every((x) => IS_NIX32[x])) continue;
    const k = prefixKey(b, 0);
    bits[k >>> 5] |= 1 << (k & 31);
  }
  prefixFilters.set(candidates, { size: candidates.size, bits });
  return bits;
}

/** Finds, in a stream of chunks, which of a set of hash parts occur. */
export class ReferenceScanner {
  private candidates: ReadonlySet<string>;
  /** Null for small candidate sets, where the bit set would cost more than it saves. */
  private filter: Uint32Array | null;
  readonly found = new Set<string>();
  /** The last W-1 bytes seen, so a hash split across chunks is still found. */
  private tail = Buffer.alloc(0);

  /** A Set is used as it is (not copied), so one set of candidates can serve many scans. */
  constructor(hashParts: ReadonlySet<string> | Iterable<string>) {
    this.candidates = hashParts instanceof Set ? hashParts : new Set(hashParts);
    this.filter = this.candidates.size > 256 ? prefixFilter(this.candidates) : null;
  }

  update(chunk: Buffer): void {
    if (this.found.size === this.candidates.size) return;
    if (this.tail.length > 0) {
      // Windows that start in the tail and end in this chunk.
      this.search(Buffer.concat([this.tail, chunk.subarray(0, W - 1)]));
    }
    this.search(chunk);
    const keep = W - 1;
    this.tail = chunk.length >= keep
      ? Buffer.from(chunk.subarray(chunk.length - keep))
      : Buffer.concat([this.tail, chunk]).subarray(-keep);
  }

  private search(b: Buffer): void {
    const end = b.length - W;
    const filter = this.filter;
    let i = 0;
    while (i <= end) {
      // Check the window from its last byte back: a byte outside the alphabet
      // at offset j rules out every window starting at i..i+j.
      let j = W - 1;
      while (j >= 0 && IS_NIX32[b[i + j]]) j--;
      if (j >= 0) {
        i += j + 1;
        continue;
      }
      // The window at i is all alphabet: slide one byte at a time while the
      // byte entering on the right is too.
      do {
        const k = filter === null ? 0 : prefixKey(b, i);
        if (filter === null || filter[k >>> 5] & (1 << (k & 31))) {
          const s = b.toString('latin1', i, i + W);
          if (this.candidates.has(s)) this.found.add(s);
        }
        i++;
      } while (i <= end && IS_NIX32[b[i + W - 1]]);
      // b[i + W - 1] is outside the alphabet (or the end): no window up to it.
      i += W;
    }
  }
}

/**
 * The store paths present in a store directory, by hash part. Lock files Nix
 * leaves beside paths (`<hash>-<name>.lock`, empty) are skipped, as are
 * entries that are not store paths (.links, temporary files).
 */
export function storeContents(storeDir: string): Map<string, string> {
  let names: string[];
  try {
    names = fs.readdirSync(storeDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DiskwrightError(
      code === 'ENOENT' ? 'STORE_PATH_MISSING' : 'SOURCE_UNREADABLE',
      `cannot read the store dir ${storeDir}: ${errnoWords(code ?? 'EIO')}; give the directory the store paths are in with --store-dir (storeDir in a config)`,
      { path: storeDir },
    );
  }
  const present = new Set(names);
  const byHash = new Map<string, string>();
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    if (!isStorePathName(name)) continue;
    if (name.endsWith('.lock') && (present.has(name.slice(0, -5)) || isEmptyFile(path.join(storeDir, name)))) continue;
    const h = hashPart(name);
    if (!byHash.has(h)) byHash.set(h, name);
  }
  return byHash;
}

function isEmptyFile(p: string): boolean {
  try {
    const st = fs.lstatSync(p);
    return st.isFile() && st.size === 0;
  } catch {
    return false;
  }
}

function badJson(file: string, where: string, what: string): never {
  throw new DiskwrightError(
    'REGISTRATION_INVALID',
    `path info ${file} ${where}: ${what}; give the output of nix path-info --json`,
    { file, where },
  );
}

/**
 * Parses `nix path-info --json` output: an array of objects with `path`
 * (Nix 2.18 and older) or an object keyed by store path (newer). References
 * may be full paths or base names.
 */
export function parsePathInfoJson(text: string, file: string, nixStoreDir: string): GivenPathInfo[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    badJson(file, 'as a whole', `not JSON (${(err as Error).message})`);
  }
  let items: Array<[string | undefined, unknown, string]>;
  if (Array.isArray(doc)) items = doc.map((v, k) => [undefined, v, `entry ${k + 1}`]);
  else if (doc && typeof doc === 'object') items = Object.entries(doc).map(([p, v]) => [p, v, `entry ${p}`]);
  else badJson(file, 'as a whole', 'expected an array or an object of path infos');
  const full = (where: string, s: unknown, what: string): string => {
    if (typeof s !== 'string') badJson(file, where, `${what} is not a string`);
    const p = s.includes('/') ? s : `${nixStoreDir}/${s}`;
    if (!p.startsWith(nixStoreDir + '/')) {
      badJson(file, where, `${what} ${s} is not under the store dir ${nixStoreDir} (pass --nix-store-dir ${path.dirname(p)} if the paths were built for that store)`);
    }
    if (!isStorePathName(p.slice(nixStoreDir.length + 1))) badJson(file, where, `${what} ${s} is not a store path`);
    return p;
  };
  const out: GivenPathInfo[] = [];
  for (const [key, v, where] of items) {
    if (!v || typeof v !== 'object') badJson(file, where, `${key ?? 'the entry'} is not valid in that store (no path info)`);
    const o = v as Record<string, unknown>;
    const p = full(where, key ?? o.path, 'path');
    if (o.valid === false) badJson(file, where, `${p} is not valid in that store`);
    const narHash = typeof o.narHash === 'string' ? parseSha256(o.narHash) : null;
    if (o.narHash !== undefined && !narHash) badJson(file, where, `narHash ${JSON.stringify(o.narHash)} of ${p} is not a sha256 hash`);
    if (o.narSize !== undefined && !(Number.isSafeInteger(o.narSize) && (o.narSize as number) >= 0)) badJson(file, where, `narSize of ${p} is not a whole number`);
    if (!Array.isArray(o.references)) badJson(file, where, `${p} has no references list`);
    const references = o.references.map((r, k) => full(where, r, `reference ${k + 1}`));
    const deriver = o.deriver === undefined || o.deriver === null || o.deriver === '' ? null : full(where, o.deriver, 'deriver');
    out.push({ path: p, narHash, narSize: (o.narSize as number | undefined) ?? null, references, deriver, at: `${file} ${where}` });
  }
  return out;
}

/**
 * Reads a references source: a closureInfo directory (its registration,
 * checked against its store-paths), or a file holding registration text
 * (closureInfo, nix-store --dump-db) or path-info JSON.
 */
export function readReferenceSource(source: string, nixStoreDir: string): GivenPathInfo[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch {
    throw new DiskwrightError('SOURCE_MISSING', `references ${source} do not exist; give a closureInfo directory, a registration file or nix path-info --json output`, { path: source });
  }
  const read = (file: string): string => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new DiskwrightError('SOURCE_UNREADABLE', `cannot read ${file}: ${errnoWords(errnoOf(err) ?? 'EIO')}; fix its permissions`, { path: file });
    }
  };
  if (st.isDirectory()) {
    const regFile = path.join(source, 'registration');
    const infos = parseRegistration(read(regFile), regFile, nixStoreDir);
    const listFile = path.join(source, 'store-paths');
    const listed = read(listFile).split('\n');
    if (listed[listed.length - 1] === '') listed.pop();
    const registered = new Set(infos.map((x) => x.path));
    listed.forEach((p, k) => {
      if (!registered.has(p)) {
        throw new DiskwrightError('REGISTRATION_INVALID', `store-paths ${listFile} line ${k + 1}: ${p} has no entry in ${regFile}; give an intact closureInfo directory`, { file: listFile, line: k + 1 });
      }
    });
    return infos;
  }
  const text = read(source);
  const first = text.trimStart()[0];
  return first === '[' || first === '{' ? parsePathInfoJson(text, source, nixStoreDir) : parseRegistration(text, source, nixStoreDir);
}

/** A term of the ATerm text Nix writes store derivations in. */
type ATerm = string | ATerm[];

/** Parses the ATerm at `text[at]`: strings, lists and (constructor) tuples, the latter two as arrays. */
function parseATerm(text: string, at: { i: number }): ATerm {
  const c = text[at.i];
  if (c === '"') {
    let s = '';
    for (at.i++; at.i < text.length && text[at.i] !== '"'; at.i++) {
      if (text[at.i] === '\\') {
        at.i++;
        const e = text[at.i];
        s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
      } else s += text[at.i];
    }
    if (text[at.i] !== '"') throw new Error('unterminated string');
    at.i++;
    return s;
  }
  while (/[A-Za-z]/.test(text[at.i] ?? '')) at.i++; // a constructor name such as Derive
  const open = text[at.i];
  const close = open === '[' ? ']' : open === '(' ? ')' : null;
  if (!close) throw new Error(`unexpected ${JSON.stringify(open)} at ${at.i}`);
  at.i++;
  const items: ATerm[] = [];
  while (text[at.i] !== close) {
    items.push(parseATerm(text, at));
    if (text[at.i] === ',') at.i++;
    else if (text[at.i] !== close) throw new Error(`expected , or ${close} at ${at.i}`);
  }
  at.i++;
  return items;
}

/** A store derivation's `Derive(...)` term as a list of its fields; null if `text` is not one. */
function parseDerivation(text: string): ATerm[] | null {
  if (!text.startsWith('Derive(')) return null;
  try {
    const term = parseATerm(text, { i: 0 });
    return Array.isArray(term) ? term : null;
  } catch {
    return null;
  }
}

/**
 * The references Nix registers for a store derivation (.drv): its input
 * derivations and input sources. Its text also names its outputs and the
 * outputs of its inputs, which are not references, so a .drv is read, not
 * scanned. Null if `text` is not a derivation.
 */
export function derivationInputs(text: string): string[] | null {
  const term = parseDerivation(text);
  if (!term) return null;
  const [, inputDrvs, inputSrcs] = term as ATerm[][];
  if (!Array.isArray(inputDrvs) || !Array.isArray(inputSrcs)) return null;
  const drvs = inputDrvs.map((d) => (Array.isArray(d) ? d[0] : null));
  if (drvs.some((d) => typeof d !== 'string') || inputSrcs.some((s) => typeof s !== 'string')) return null;
  return [...(drvs as string[]), ...(inputSrcs as string[])];
}

/**
 * A store derivation's outputs with their paths, by output name, as Nix
 * records them in DerivationOutputs when it registers the .drv; outputs
 * without a path (floating content-addressed) are left out. Null if `text`
 * is not a derivation.
 */
export function derivationOutputs(text: string): Array<{ id: string; path: string }> | null {
  const outputs = parseDerivation(text)?.[0];
  if (!Array.isArray(outputs)) return null;
  const out: Array<{ id: string; path: string }> = [];
  for (const o of outputs) {
    if (!Array.isArray(o) || typeof o[0] !== 'string' || typeof o[1] !== 'string') return null;
    if (o[1] !== '') out.push({ id: o[0], path: o[1] });
  }
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)));
}
