// The closure metadata files closureInfo writes (nixpkgs
// pkgs/build-support/closure-info.nix), and the registration format
// `nix-store --load-db` / `nix-store --register-validity --hash-given` read and
// `nix-store --dump-db` writes.
//
// registration: for each path, in store-path order, one value per line:
//     <store path>
//     <narHash>            closureInfo: sha256:<nix32>; --dump-db: bare base-16
//     <narSize>            decimal
//     <deriver>            closureInfo: always empty; --dump-db: the .drv or empty
//     <number of references>
//     <reference>...       in store-path order
// store-paths: one store path per line, sorted.
// total-nar-size: the sum of every path's narSize, then a newline. A file hard
// linked into several paths counts in each (a NAR has no hard links).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { writeSmallFile } from '../format/atomic-file.ts';
import { formatSha256, parseSha256, type HashFormat } from './hash.ts';
import { isStorePathName } from './store-path.ts';

/** What Nix records about one valid store path. */
export interface StorePathInfo {
  /** Full store path under the nix store dir, e.g. /nix/store/<hash>-<name>. */
  path: string;
  /** sha256 of the path's NAR (32 bytes). */
  narHash: Buffer;
  narSize: number;
  /** Full store paths this one refers to (itself included if it does), sorted bytewise. */
  references: string[];
  /** The .drv that built it, when the source of the information knows it. */
  deriver: string | null;
}

/** Bytewise order of store paths, the order of Nix's StorePathSet (and so of closureInfo's files). */
export function compareStorePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function formatStorePaths(paths: readonly StorePathInfo[]): string {
  return paths.map((p) => p.path + '\n').join('');
}

export function totalNarSize(paths: readonly StorePathInfo[]): number {
  return paths.reduce((sum, p) => sum + p.narSize, 0);
}

export function formatTotalNarSize(paths: readonly StorePathInfo[]): string {
  return `${totalNarSize(paths)}\n`;
}

export interface RegistrationFormat {
  /** Write each path's deriver (closureInfo leaves the line empty; --dump-db fills it). Default false. */
  derivers?: boolean;
  /** Default nix32 (`sha256:<nix32>`, as closureInfo); base16 writes bare hex, as --dump-db. */
  hashFormat?: Extract<HashFormat, 'nix32' | 'base16'>;
}

/** The registration file for `paths` (give them sorted, as closure() returns them). */
export function formatRegistration(paths: readonly StorePathInfo[], opts: RegistrationFormat = {}): string {
  const lines: string[] = [];
  for (const p of paths) {
    const hash = opts.hashFormat === 'base16' ? p.narHash.toString('hex') : formatSha256(p.narHash, 'nix32');
    lines.push(p.path, hash, String(p.narSize), opts.derivers && p.deriver ? p.deriver : '', String(p.references.length), ...p.references);
  }
  return lines.map((l) => l + '\n').join('');
}

export interface ClosureInfoFiles {
  'store-paths': string;
  registration: string;
  'total-nar-size': string;
}

export function closureInfoFiles(paths: readonly StorePathInfo[], opts: RegistrationFormat = {}): ClosureInfoFiles {
  return {
    'store-paths': formatStorePaths(paths),
    registration: formatRegistration(paths, opts),
    'total-nar-size': formatTotalNarSize(paths),
  };
}

/** Writes store-paths, registration and total-nar-size into `dir` (created if missing), as closureInfo's $out. */
export function writeClosureInfo(dir: string, paths: readonly StorePathInfo[], opts: RegistrationFormat = {}): void {
  const files = closureInfoFiles(paths, opts);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    st = undefined;
  }
  if (st && !st.isDirectory()) {
    throw new DiskwrightError('OUTPUT_WRITE', `output ${dir} is not a directory; give a directory (it is created if missing)`, { path: dir });
  }
  for (const [name, text] of Object.entries(files)) {
    writeSmallFile(path.join(dir, name), name, text);
  }
}

/** One entry as a registration or path-info file gives it; hash and size may be absent (path-info of an invalid path, --register-validity without hashes). */
export interface GivenPathInfo {
  path: string;
  narHash: Buffer | null;
  narSize: number | null;
  references: string[];
  deriver: string | null;
  /** Where it was read, for messages: "FILE line N" or "FILE entry N". */
  at: string;
}

function malformed(file: string, line: number, expected: string, found: string | undefined): never {
  const what = found === undefined ? 'the end of the file' : JSON.stringify(found);
  throw new DiskwrightError(
    'REGISTRATION_INVALID',
    `registration ${file} line ${line}: expected ${expected}, found ${what}; give a file written by closureInfo or nix-store --dump-db`,
    { file, line, found: found ?? null },
  );
}

/**
 * Parses registration text (closureInfo's `registration`, `nix-store
 * --dump-db` output). Every store path must be named under `nixStoreDir`.
 */
export function parseRegistration(text: string, file: string, nixStoreDir: string): GivenPathInfo[] {
  const lines = text.split('\n');
  // A final newline leaves one empty string; a file that does not end in one is cut short.
  const complete = lines[lines.length - 1] === '';
  if (complete) lines.pop();
  const out: GivenPathInfo[] = [];
  const seen = new Set<string>();
  let i = 0;
  const next = () => (i < lines.length ? lines[i++] : (i++, undefined));
  const storePath = (expected: string, allowEmpty: boolean): string | null => {
    const n = i + 1;
    const s = next();
    if (s === undefined) malformed(file, n, expected, s);
    if (allowEmpty && s === '') return null;
    if (!s.startsWith(nixStoreDir + '/')) {
      if (s.startsWith('/') && isStorePathName(path.basename(s))) {
        throw new DiskwrightError(
          'REGISTRATION_INVALID',
          `registration ${file} line ${n}: ${s} is not under the store dir ${nixStoreDir}; pass --nix-store-dir ${path.dirname(s)} if the paths were built for that store`,
          { file, line: n, found: s },
        );
      }
      malformed(file, n, expected, s);
    }
    if (!isStorePathName(s.slice(nixStoreDir.length + 1))) malformed(file, n, expected, s);
    return s;
  };
  const count = (expected: string): number => {
    const n = i + 1;
    const s = next();
    if (s === undefined || !/^\d{1,15}$/.test(s)) malformed(file, n, expected, s);
    return Number(s);
  };
  while (i < lines.length) {
    const at = i + 1;
    const p = storePath('a store path', false) as string;
    const hn = i + 1;
    const h = next();
    const narHash = h === undefined ? null : parseSha256(h);
    if (!narHash) malformed(file, hn, `the narHash of ${p} (sha256:<nix32> or base-16)`, h);
    const narSize = count(`the narSize of ${p} (a decimal number)`);
    const deriver = storePath(`the deriver of ${p} (a store path or an empty line)`, true);
    const nrefs = count(`the number of references of ${p}`);
    const references: string[] = [];
    for (let k = 0; k < nrefs; k++) references.push(storePath(`reference ${k + 1} of ${nrefs} of ${p}`, false) as string);
    if (seen.has(p)) {
      throw new DiskwrightError('REGISTRATION_INVALID', `registration ${file} line ${at}: ${p} is registered twice; give each path once`, { file, line: at, found: p });
    }
    seen.add(p);
    out.push({ path: p, narHash, narSize, references, deriver, at: `${file} line ${at}` });
  }
  if (!complete && lines.length > 0) malformed(file, lines.length, 'a newline at the end of the line', lines[lines.length - 1]);
  return out;
}
