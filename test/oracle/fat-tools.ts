// The FAT oracle: fsck.fat (dosfstools) and mtools, run with an argument vector
// in a UTF-8 C locale and UTC (mtools prints names in the locale's charset and
// times in local time). Plus readFat, diskwright's own reader (src/read/fat.ts)
// for what the tools cannot show: mtools 4.0.32 keeps only the low 16 bits of
// characters outside the BMP (U+1F980 becomes U+F980), so emoji names are checked there.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FsEntry } from '../../src/read/entry.ts';
import { type FatInfo, FatReader } from '../../src/read/fat.ts';
import { bufferSource, fileSource } from '../../src/read/source.ts';
import { run, type RunResult } from './tools.ts';

export const MTOOLS_ENV: NodeJS.ProcessEnv = { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', TZ: 'UTC' };

export function mtool(tool: string, args: string[], allowFailure = false): RunResult {
  return run(tool, args, { env: MTOOLS_ENV, allowFailure });
}

export interface FsckFatResult {
  status: number;
  output: string;
  clean: boolean;
  problems: string[];
}

// `fsck.fat -n` on a consistent filesystem prints the banner and one summary line.
const CLEAN_LINES = [/^fsck\.fat \d+\.\d+ \(.*\)$/, /^.*: \d+ files, \d+\/\d+ clusters$/];

/** `fsck.fat -n image`: read-only check; clean means status 0 and nothing but banner and summary. */
export function fsckFat(image: string): FsckFatResult {
  const r = run('fsck.fat', ['-n', image], { allowFailure: true });
  const output = r.stdout.toString('utf8') + r.stderr;
  const problems = output.split('\n').filter((l) => l.trim() !== '' && !CLEAN_LINES.some((re) => re.test(l)));
  return { status: r.status, output, clean: r.status === 0 && problems.length === 0, problems };
}

export interface MdirEntry {
  /** The long name if there is one, else the 8.3 name as NAME.EXT. */
  name: string;
  short: string;
  dir: boolean;
  size: number;
}

/** `mdir -/ -a`: every directory's entries by path ('/', '/Sub', ...), '.' and '..' left out. */
export function mdirAll(image: string): Map<string, MdirEntry[]> {
  let r = mtool('mdir', ['-/', '-a', '-i', image, '::'], true);
  // mtools 4.0.32: `mdir -/` fails on a root that holds only a volume label
  // (also on mkfs.fat's images); without -/ it lists the empty root.
  if (r.status !== 0 && r.stderr.includes('File "::" not found')) r = mtool('mdir', ['-a', '-i', image, '::']);
  else if (r.status !== 0) throw new Error(`oracle: mdir -/ failed: ${r.stderr}`);
  const out = r.stdout.toString('utf8');
  const dirs = new Map<string, MdirEntry[]>();
  let cur: MdirEntry[] | null = null;
  for (const line of out.split('\n')) {
    const d = /^Directory for ::(.*)$/.exec(line);
    if (d) {
      cur = [];
      dirs.set(d[1], cur);
      continue;
    }
    const m = /^(.{8}) (.{3}) +(<DIR>|\d+) +\d{4}-\d\d-\d\d +\d?\d:\d\d(?:  (.*))? ?$/.exec(line);
    if (!m || !cur) continue;
    const base = m[1].trimEnd();
    const ext = m[2].trimEnd();
    if (base === '.' || base === '..') continue;
    const short = ext ? `${base}.${ext}` : base;
    cur.push({ name: m[4] ?? short, short, dir: m[3] === '<DIR>', size: m[3] === '<DIR>' ? 0 : Number(m[3]) });
  }
  return dirs;
}

/** One file's bytes through `mcopy ::path -`. */
export function mcopyRead(image: string, path: string): Buffer {
  return mtool('mcopy', ['-n', '-i', image, `::${path}`, '-']).stdout;
}

/** Copies the whole image into `dest` with `mcopy -s -m` (times kept). */
export function mcopyTree(image: string, dest: string): void {
  const root = mdirAll(image).get('/') ?? [];
  if (root.length === 0) return;
  mtool('mcopy', ['-s', '-m', '-n', '-i', image, '::*', dest]);
}

/** mattrib's attribute letters for one path (e.g. "A  R"). */
export function mattrib(image: string, path: string): string {
  const line = mtool('mattrib', ['-i', image, `::${path}`]).stdout.toString('utf8');
  return line.slice(0, line.indexOf('::')).trim();
}

/** The volume label through mlabel -s, or '' for none. */
export function mlabel(image: string): string {
  const out = mtool('mlabel', ['-s', '-i', image, '::']).stdout.toString('utf8');
  const m = /Volume label is (.*)$/m.exec(out);
  return m ? m[1].trimEnd() : '';
}

// ---------------------------------------------------------------- readFat

/**
 * The image through diskwright's FAT reader (src/read/fat.ts; it replaced the
 * small reader that lived here): what mtools cannot show, i.e. names outside
 * the BMP, 8.3 aliases, '.'/'..' clusters, chains, FSInfo, raw times. `nodes`:
 * every entry below the root by its path as text ('/a', '/a/b').
 */
export function readFat(image: string): { reader: FatReader; info: FatInfo; nodes: Map<string, FsEntry> } {
  const src = fileSource(image);
  try {
    const reader = new FatReader(bufferSource(src.read(0, src.size)));
    const nodes = new Map<string, FsEntry>();
    for (const e of reader.walk()) if (e.path !== '/') nodes.set(Buffer.from(e.path, 'latin1').toString('utf8'), e);
    return { reader, info: reader.info, nodes };
  } finally {
    src.close();
  }
}

/** A directory on the host as path -> {dir, bytes} (names as UTF-8 text). */
export function hostTree(root: string): Map<string, { dir: boolean; data?: Buffer }> {
  const out = new Map<string, { dir: boolean; data?: Buffer }>();
  const go = (abs: string, rel: string) => {
    for (const d of readdirSync(abs, { withFileTypes: true })) {
      const a = join(abs, d.name);
      const r = `${rel}/${d.name}`;
      if (d.isDirectory()) {
        out.set(r, { dir: true });
        go(a, r);
      } else {
        out.set(r, { dir: false, data: readFileSync(a) });
      }
    }
  };
  go(root, '');
  return out;
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}
