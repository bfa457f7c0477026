// `npm run bench:scale -- [--sizes 100k,1M,5M] [--huge 1M] [--mkfs-up-to 1M] [--keep]`
//
// Scale: trees of many small files, built with `diskwright mkfs ext4`, against
// `tar cf` of the same tree (the I/O floor) and `mkfs.ext4 -d` (only up to
// --mkfs-up-to entries: it is slow), in the same run. Each tree has the shape
// of issue 16: directories of 1,000 one-byte files, plus one directory of
// empty files holding a fifth of the entries; `--huge N` adds one directory
// of N empty files. Printed per tree: time and memory per entry, and the
// ratios against the targets:
//
//   memory: peak RSS <= 150 MB + 250 B x entries
//   time:   per-entry cost at the largest tree <= 1.15 x that at the smallest
//   speed:  <= 1.5 x `tar cf`
//
// A MISS is a result, not an error: the exit status is 0 unless something failed.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chooseRssMethod, findExecutable, fmtBytes, measure, table, type RunResult } from "./lib.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (s = ""): void => void process.stdout.write(s + "\n");

const BASE = 150 * 2 ** 20;
const PER_ENTRY = 250;
const LINEAR = 1.15;
const VS_TAR = 1.5;

function count(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s);
  if (!m) throw new Error(`not a count: ${s} (e.g. 100k, 1M)`);
  return Math.round(Number(m[1]) * (m[2] === "" ? 1 : /k/i.test(m[2]) ? 1e3 : 1e6));
}

interface Opts { sizes: number[]; huge: number; mkfsUpTo: number; keep: boolean }

function parse(argv: string[]): Opts {
  const o: Opts = { sizes: [100e3, 1e6, 5e6], huge: 1e6, mkfsUpTo: 1e6, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i] ?? "";
    if (a === "--sizes") o.sizes = v().split(",").map(count);
    else if (a === "--huge") o.huge = count(v());
    else if (a === "--mkfs-up-to") o.mkfsUpTo = count(v());
    else if (a === "--keep") o.keep = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

/** Makes the tree; returns its entry count (directories included, root excluded). */
function makeTree(root: string, entries: number, huge: boolean): number {
  fs.mkdirSync(root, { recursive: true });
  const one = Buffer.from("x");
  let made = 0;
  if (huge) {
    const d = path.join(root, "huge");
    fs.mkdirSync(d);
    made++;
    for (let i = 0; made < entries; i++, made++) fs.closeSync(fs.openSync(path.join(d, `e${i}`), "w"));
    return made;
  }
  const empties = Math.floor(entries / 5);
  const e = path.join(root, "empty");
  fs.mkdirSync(e);
  made++;
  for (let i = 0; i < empties; i++, made++) fs.closeSync(fs.openSync(path.join(e, `e${i}`), "w"));
  for (let d = 0; made < entries; d++) {
    const dir = path.join(root, `d${d}`);
    fs.mkdirSync(dir);
    made++;
    for (let i = 0; i < 1000 && made < entries; i++, made++) fs.writeFileSync(path.join(dir, `f${i}`), one);
  }
  return made;
}

const opts = parse(process.argv.slice(2));
const wd = fs.mkdtempSync(path.join(os.tmpdir(), "diskwright-bench-scale-"));
process.on("exit", () => {
  if (opts.keep) log(`work directory kept: ${wd}`);
  else fs.rmSync(wd, { recursive: true, force: true });
});
const rss = chooseRssMethod(log);
const mkfs = findExecutable("mkfs.ext4");
const node = process.execPath;
const bin = path.join(repoRoot, "bin", "diskwright.js");

function must(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code ?? r.signal}): ${r.stderr.trim().split("\n").at(-1)}`);
  return r;
}

interface Row { name: string; entries: number; dw: RunResult; tar: RunResult; mkfs?: RunResult }
const rows: Row[] = [];
const trees = [...opts.sizes.map((n) => ({ name: `${n / 1000}k`, n, huge: false })), ...(opts.huge ? [{ name: `huge dir ${opts.huge / 1000}k`, n: opts.huge, huge: true }] : [])];
for (const t of trees) {
  const root = path.join(wd, `tree-${t.n}-${t.huge ? "huge" : "small"}`);
  log(`making ${t.name} ...`);
  const entries = makeTree(root, t.n, t.huge);
  const img = path.join(wd, "out.img");
  const rssFile = path.join(wd, "rss");
  const dw = must(await measure(rss, node, [bin, "mkfs", "ext4", root, "-o", img, "--owner", "0:0"], rssFile), "diskwright");
  const size = fs.statSync(img).size;
  fs.rmSync(img);
  const tar = must(await measure(rss, "tar", ["cf", path.join(wd, "out.tar"), "-C", root, "."], rssFile), "tar");
  fs.rmSync(path.join(wd, "out.tar"));
  let mk: RunResult | undefined;
  if (mkfs && entries <= opts.mkfsUpTo) {
    // mke2fs's own inode ratio and reserve need more room than our exact size: grow until it fits.
    for (let grow = 1; ; grow *= 1.25) {
      fs.rmSync(img, { force: true });
      fs.closeSync(fs.openSync(img, "w"));
      fs.truncateSync(img, Math.ceil((size * grow) / 4096) * 4096);
      mk = await measure(rss, mkfs, ["-q", "-F", "-b", "4096", "-N", String(entries + 64), "-E", "root_owner=0:0", "-d", root, img], rssFile);
      if (mk.code === 0 || grow > 8) break;
    }
    must(mk!, "mkfs.ext4 -d");
    fs.rmSync(img);
  }
  rows.push({ name: t.name, entries, dw, tar, mkfs: mk });
  fs.rmSync(root, { recursive: true, force: true });
}

const us = (r: RunResult, n: number) => (r.seconds * 1e6) / n;
const perEntry = (r: RunResult, n: number) => r.rssKiB === undefined ? NaN : Math.max(0, r.rssKiB * 1024 - BASE) / n;
log();
log(table(
  [["tree", "entries", "diskwright", "us/entry", "peak RSS", "B/entry over 150 MB", "tar cf", "x tar", "mkfs.ext4 -d", "x mkfs"],
    ...rows.map((r) => [
      r.name, String(r.entries), `${r.dw.seconds.toFixed(2)} s`, us(r.dw, r.entries).toFixed(1), r.dw.rssKiB === undefined ? "?" : fmtBytes(r.dw.rssKiB * 1024),
      perEntry(r.dw, r.entries).toFixed(0), `${r.tar.seconds.toFixed(2)} s`, (r.dw.seconds / r.tar.seconds).toFixed(2),
      r.mkfs ? `${r.mkfs.seconds.toFixed(2)} s` : "-", r.mkfs ? (r.dw.seconds / r.mkfs.seconds).toFixed(3) : "-",
    ])],
  [false, true, true, true, true, true, true, true, true, true],
));
log();
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
for (const r of rows) {
  log(`${r.name}: memory ${perEntry(r.dw, r.entries).toFixed(0)} B/entry over 150 MB (<= ${PER_ENTRY}) ${verdict(perEntry(r.dw, r.entries) <= PER_ENTRY)}; ${(r.dw.seconds / r.tar.seconds).toFixed(2)} x tar cf (<= ${VS_TAR}) ${verdict(r.dw.seconds / r.tar.seconds <= VS_TAR)}`);
}
const small = rows.filter((r) => !r.name.startsWith("huge"));
if (small.length >= 2) {
  const first = small[0];
  const last = small.at(-1)!;
  const k = us(last.dw, last.entries) / us(first.dw, first.entries);
  log(`linearity: ${k.toFixed(2)} x the per-entry cost at ${first.name} for ${last.name} (<= ${LINEAR}) ${verdict(k <= LINEAR)}`);
}
