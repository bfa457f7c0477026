// The FAT oracle: fsck.fat (dosfstools) and mtools, run with an argument vector
// in a UTF-8 C locale and UTC (mtools prints names in the locale's charset and
// times in local time). Plus readFat, a small independent reader for what the
// tools cannot show: mtools 4.0.32 keeps only the low 16 bits of characters
// outside the BMP (U+1F980 becomes U+F980), so emoji names are checked here.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

export interface FatNode {
  name: string;
  short: string;
  attr: number;
  cluster: number;
  size: number;
  wrtDate: number;
  wrtTime: number;
  crtTenth: number;
  /** Directories: '.' and '..' cluster numbers as stored. */
  dot?: number;
  dotdot?: number;
  /** Clusters of the chain, in order. */
  chain: number[];
  children?: FatNode[];
}

export interface FatImage {
  type: 12 | 16 | 32;
  bpb: Buffer;
  fat: (n: number) => number;
  clusterBytes: number;
  clusters: number;
  root: FatNode;
  label: string | null;
  read(node: FatNode): Buffer;
  fsinfo?: { free: number; nextFree: number };
}

/** A minimal FAT reader, written apart from the writer, from fatgen103. */
export function readFat(image: string): FatImage {
  const img = readFileSync(image);
  const bs = img.subarray(0, 512);
  const bps = bs.readUInt16LE(11);
  const spc = bs[13];
  const rsvd = bs.readUInt16LE(14);
  const nfats = bs[16];
  const rootEnt = bs.readUInt16LE(17);
  const tot = bs.readUInt16LE(19) || bs.readUInt32LE(32);
  const fatSz = bs.readUInt16LE(22) || bs.readUInt32LE(36);
  const rootSecs = Math.ceil((rootEnt * 32) / bps);
  const dataStart = rsvd + nfats * fatSz + rootSecs;
  const clusters = Math.floor((tot - dataStart) / spc);
  const type = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  const fatOff = rsvd * bps;
  const fat = (n: number): number => {
    if (type === 32) return img.readUInt32LE(fatOff + n * 4) & 0x0fffffff;
    if (type === 16) return img.readUInt16LE(fatOff + n * 2);
    const v = img.readUInt16LE(fatOff + ((n * 3) >> 1));
    return n & 1 ? v >> 4 : v & 0xfff;
  };
  const eoc = type === 32 ? 0x0ffffff8 : type === 16 ? 0xfff8 : 0xff8;
  const cb = spc * bps;
  const chainOf = (first: number): number[] => {
    const out: number[] = [];
    for (let c = first; c >= 2 && c < eoc; c = fat(c)) {
      if (out.length > clusters) throw new Error(`readFat: chain from ${first} loops`);
      out.push(c);
    }
    return out;
  };
  const clusterAt = (c: number) => (dataStart * bps) + (c - 2) * cb;
  const bytesOf = (chain: number[]) => Buffer.concat(chain.map((c) => img.subarray(clusterAt(c), clusterAt(c) + cb)));
  let label: string | null = null;
  const parseDir = (raw: Buffer, isRoot: boolean): { kids: FatNode[]; dot?: number; dotdot?: number } => {
    const kids: FatNode[] = [];
    let lfn: string[] = [];
    let sum = -1;
    let dot: number | undefined;
    let dotdot: number | undefined;
    for (let o = 0; o + 32 <= raw.length; o += 32) {
      const e = raw.subarray(o, o + 32);
      if (e[0] === 0) break;
      if (e[0] === 0xe5) { lfn = []; continue; }
      const attr = e[11];
      if (attr === 0x0f) {
        const ord = e[0] & 0x3f;
        const units = Buffer.concat([e.subarray(1, 11), e.subarray(14, 26), e.subarray(28, 32)]);
        if (e[0] & 0x40) { lfn = new Array(ord); sum = e[13]; }
        if (e[13] !== sum) throw new Error('readFat: long entries with different checksums');
        lfn[ord - 1] = units.toString('utf16le');
        continue;
      }
      const shortRaw = e.subarray(0, 11);
      const cluster = (e.readUInt16LE(20) << 16) | e.readUInt16LE(26);
      if (attr & 0x08) { if (isRoot) label = shortRaw.toString('latin1').trimEnd(); lfn = []; continue; }
      const sn = shortRaw.toString('latin1');
      if (sn === '.          ') { dot = cluster; continue; }
      if (sn === '..         ') { dotdot = cluster; continue; }
      let cs = 0;
      for (let i = 0; i < 11; i++) cs = (((cs & 1) << 7) + (cs >> 1) + shortRaw[i]) & 0xff;
      let name: string;
      const short = sn.slice(0, 8).trimEnd() + (sn.slice(8).trim() ? '.' + sn.slice(8).trimEnd() : '');
      if (lfn.length) {
        if (cs !== sum) throw new Error(`readFat: long name checksum mismatch at ${short}`);
        const full = lfn.join('');
        const end = full.indexOf('\0');
        name = end >= 0 ? full.slice(0, end) : full;
      } else {
        name = short;
      }
      lfn = [];
      kids.push({ name, short, attr, cluster, size: e.readUInt32LE(28), wrtTime: e.readUInt16LE(22), wrtDate: e.readUInt16LE(24), crtTenth: e[13], chain: chainOf(cluster) });
    }
    return { kids, dot, dotdot };
  };
  const walk = (n: FatNode, raw: Buffer, isRoot: boolean) => {
    const { kids, dot, dotdot } = parseDir(raw, isRoot);
    n.children = kids;
    n.dot = dot;
    n.dotdot = dotdot;
    for (const k of kids) if (k.attr & 0x10) walk(k, bytesOf(k.chain), false);
  };
  const rootCluster = type === 32 ? bs.readUInt32LE(44) : 0;
  const root: FatNode = { name: '', short: '', attr: 0x10, cluster: rootCluster, size: 0, wrtDate: 0, wrtTime: 0, crtTenth: 0, chain: type === 32 ? chainOf(rootCluster) : [] };
  const rootRaw = type === 32 ? bytesOf(root.chain) : img.subarray((rsvd + nfats * fatSz) * bps, dataStart * bps);
  walk(root, rootRaw, true);
  let fsinfo: FatImage['fsinfo'];
  if (type === 32) {
    const s = bs.readUInt16LE(48) * bps;
    fsinfo = { free: img.readUInt32LE(s + 488), nextFree: img.readUInt32LE(s + 492) };
  }
  return {
    type, bpb: Buffer.from(bs), fat, clusterBytes: cb, clusters, root, label, fsinfo,
    read: (node) => bytesOf(node.chain).subarray(0, node.size),
  };
}

/** path -> node for every entry below the root ('/a', '/a/b'). */
export function flatten(root: FatNode): Map<string, FatNode> {
  const out = new Map<string, FatNode>();
  const go = (n: FatNode, p: string) => {
    for (const k of n.children ?? []) {
      out.set(`${p}/${k.name}`, k);
      go(k, `${p}/${k.name}`);
    }
  };
  go(root, '');
  return out;
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
