// `npm run bench -- [DIR] [--rounds N] [--only TOOLS] [--size SIZE] [--keep]`
//
// Builds an ext4 image of DIR (default /usr/share) with diskwright and with
// `mkfs.ext4 -d` (e2fsprogs; same image size and features), and copies DIR
// with `cp -a`, interleaved over several rounds, then prints median times,
// peak RSS and the ratios against the targets:
//
//   diskwright <= 0.10 x mkfs.ext4 -d,   diskwright <= 1.0 x cp -a,
//   diskwright peak RSS < 300 MB.
//
// A MISS is a result, not an error: the exit status is 0 unless something
// failed (1), the usage was wrong (2) or the run was interrupted (130).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { defaultJournalBlocks } from '../src/fs/ext4/journal.ts';
import {
  ALL_TOOLS, TOOL_LABEL, USAGE, UsageError,
  chooseRssMethod, dumpe2fsHeader, findExecutable, fmtBytes, fmtInt,
  killCurrentChild, measure, median, parseArgs, table, treeStats,
  type Ext4Header, type Options, type RssMethod, type RunResult, type ToolId, type TreeStats,
} from "./lib.ts";

const TARGET_VS_MKFS = 0.1;
const TARGET_VS_CP = 1.0;
const TARGET_RSS_MB = 300;
const MAX_MKFS_GROWTH = 8; // retries at +10% each

/** Features diskwright's ext4 images have (and mke2fs 1.47's defaults minus the ^ list). */
const EXPECTED_FEATURES = [
  "has_journal", "ext_attr", "dir_index", "filetype", "extent", "64bit", "flex_bg",
  "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize", "metadata_csum",
];
const BASE_MKFS_O = ["^resize_inode", "^orphan_file", "^metadata_csum_seed"];

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

class Interrupted extends Error {}
let interrupted = false;
let workDir: string | undefined;
let keepWorkDir = false;

const log = (s = ""): void => {
  process.stdout.write(s + "\n");
};

function cleanup(): void {
  if (!workDir) return;
  const d = workDir;
  workDir = undefined;
  if (keepWorkDir) {
    log(`work directory kept: ${d}`);
    return;
  }
  try {
    fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    process.stderr.write(`bench: could not remove ${d}: ${(e as Error).message}\n`);
  }
}

function onSignal(sig: NodeJS.Signals): void {
  if (interrupted) {
    // Second signal: give up waiting for the child.
    cleanup();
    process.exit(130);
  }
  interrupted = true;
  process.stderr.write(`\nbench: ${sig}, stopping ...\n`);
  void killCurrentChild();
}

function rm(p: string): void {
  fs.rmSync(p, { recursive: true, force: true, maxRetries: 3 });
}

/** Flush dirty pages of earlier runs so they don't get written back during the next timed run. */
function syncDisks(): void {
  spawnSync("sync", [], { stdio: "ignore" });
}

function checkInterrupted(): void {
  if (interrupted) throw new Interrupted();
}

function describeFailure(what: string, r: RunResult): string {
  const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
  const out = [r.stderr.trim(), r.stdout.trim()].filter(Boolean).join("\n");
  return `${what} failed (${how})${out ? ":\n" + out : ""}`;
}

function indent(s: string, by = "    "): string {
  return s.trimEnd().split("\n").map((l) => by + l).join("\n");
}

/** A generous guess of an ext4 image size for the tree, used when diskwright is not run. */
function estimateImageBytes(t: TreeStats, inodes: number): number {
  const data = t.blocks4k * 1.02 + inodes * 256 / 4096 + 256; // contents, inode tables, slack
  let blocks = Math.ceil(data);
  blocks += defaultJournalBlocks(blocks);
  blocks = Math.ceil(blocks * 1.05);
  return Math.ceil((blocks * 4096) / 2 ** 20) * 2 ** 20;
}

function featureArgs(dwFeatures: string[] | undefined): string[] {
  const o = [...BASE_MKFS_O];
  if (dwFeatures) {
    const want = new Set(dwFeatures);
    for (const f of EXPECTED_FEATURES) if (!want.has(f)) o.push(`^${f}`);
    for (const f of dwFeatures) if (!EXPECTED_FEATURES.includes(f)) o.push(f);
  }
  return o;
}

interface ToolResult {
  times: number[];
  rss: (number | undefined)[];
}

async function main(opts: Options): Promise<void> {
  const dirStat = fs.statSync(opts.dir, { throwIfNoEntry: false });
  if (!dirStat?.isDirectory()) throw new UsageError(`not a directory: ${opts.dir}`);

  const mkfsPath = opts.tools.includes("mkfs") ? findExecutable("mkfs.ext4") : undefined;
  if (opts.tools.includes("mkfs") && !mkfsPath) {
    throw new Error("mkfs.ext4 not found (Debian package e2fsprogs); use --only to skip it");
  }
  const dumpe2fs = findExecutable("dumpe2fs");
  const cpPath = findExecutable("cp") ?? "cp";

  let dwCmd: string[];
  const override = process.env.BENCH_DW_CMD?.trim();
  if (override) {
    dwCmd = override.split(/\s+/);
  } else {
    dwCmd = [process.execPath, path.join(repoRoot, "bin", "diskwright.js")];
    if (opts.tools.includes("diskwright") && !fs.existsSync(dwCmd[1])) {
      throw new Error(`${dwCmd[1]} does not exist (set BENCH_DW_CMD or use --only mkfs,cp)`);
    }
  }

  const rssMethod: RssMethod = chooseRssMethod(log);

  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "diskwright-bench-"));
  const wd = workDir;
  const sameFs = fs.statSync(wd).dev === dirStat.dev;

  // ---- header
  const mkeVersion = mkfsPath
    ? (spawnSync(mkfsPath, ["-V"], { encoding: "utf8" }).stderr ?? "").split("\n")[0].trim()
    : "";
  const cpVersion = (spawnSync(cpPath, ["--version"], { encoding: "utf8" }).stdout ?? "").split("\n")[0].trim();
  log(`diskwright ext4 benchmark`);
  log(`  tree:      ${opts.dir}`);
  log(`  rounds:    ${opts.rounds} (tools interleaved per round: ${opts.tools.map((t) => TOOL_LABEL[t]).join(", ")})`);
  log(`  work dir:  ${wd} (${sameFs ? "same filesystem as the tree" : "different filesystem from the tree"})`);
  log(`  machine:   ${os.cpus().length} CPUs, ${fmtBytes(os.totalmem())} RAM, Linux ${os.release()}`);
  log(`  node:      ${process.version}${override ? "" : ` (${process.execPath})`}`);
  if (opts.tools.includes("diskwright")) log(`  diskwright: ${dwCmd.join(" ")} mkfs ext4 DIR -o OUT.img${override ? "   [BENCH_DW_CMD]" : ""}`);
  if (mkfsPath) log(`  mkfs.ext4: ${mkfsPath}, ${mkeVersion}`);
  if (opts.tools.includes("cp")) log(`  cp:        ${cpVersion}`);
  log(`  peak RSS:  ${rssMethod.kind === "gnu-time" ? `GNU time -f %M (${rssMethod.path}; largest single process of the tree)` : "polling VmHWM in /proc/PID/status of the process tree every 5 ms (max of single processes)"}`);
  log();

  // ---- tree statistics
  const t0 = process.hrtime.bigint();
  const tree = treeStats(opts.dir);
  const scanSec = Number(process.hrtime.bigint() - t0) / 1e9;
  log(`tree: ${fmtInt(tree.entries)} entries (${fmtInt(tree.files)} files, ${fmtInt(tree.dirs)} dirs, ` +
    `${fmtInt(tree.symlinks)} symlinks, ${fmtInt(tree.other)} other; ${fmtInt(tree.inodes)} inodes), ` +
    `${fmtBytes(tree.fileBytes)} in files (${fmtInt(tree.fileBytes)} bytes), ${fmtBytes(tree.allocatedBytes)} allocated` +
    ` [scanned in ${scanSec.toFixed(2)} s]`);
  if (tree.unreadable > 0) log(`  warning: ${tree.unreadable} entries could not be read`);

  // ---- warm-up: one untimed full read of the tree
  {
    const target = path.join(wd, "warmup");
    const w = await measure(rssMethod, cpPath, ["-a", opts.dir, target], path.join(wd, "rss.txt"));
    checkInterrupted();
    rm(target);
    if (w.code !== 0) throw new Error(describeFailure("warm-up cp -a", w));
    log(`warm-up: untimed cp -a of the tree (${w.seconds.toFixed(2)} s) so that every tool reads from a warm page cache;`);
    log(`         no caches are dropped; "sync" (untimed) before each timed run flushes earlier runs' writes`);
  }
  log();

  const results = new Map<ToolId, ToolResult>(opts.tools.map((t) => [t, { times: [], rss: [] }]));
  const notes: string[] = [];
  const rssFile = path.join(wd, "rss.txt");
  const dwImage = path.join(wd, "diskwright.img");
  const mkfsImage = path.join(wd, "mkfs.img");
  const cpTarget = path.join(wd, "cp-target");

  let dwImageBytes: number | undefined;
  let dwHeader: Ext4Header | undefined;
  let mkfsKiB: number | undefined;
  let mkfsInodes: number | undefined;
  let mkfsSizeSource = "";
  let mkfsArgsShown = false;
  let mkfsHeader: Ext4Header | undefined;

  const record = (tool: ToolId, r: RunResult, round: number, extra = ""): void => {
    const res = results.get(tool)!;
    res.times.push(r.seconds);
    res.rss.push(r.rssKiB);
    const rss = r.rssKiB === undefined ? "?" : (r.rssKiB / 1024).toFixed(0);
    log(`round ${round}/${opts.rounds}  ${TOOL_LABEL[tool].padEnd(12)}  ${r.seconds.toFixed(3).padStart(8)} s  ${rss.padStart(6)} MiB peak RSS${extra}`);
  };

  const mkfsArgs = (kib: number, inodes: number): string[] => [
    "-q", "-F", "-d", opts.dir,
    "-b", "4096", "-I", "256", "-m", "0", "-N", String(inodes),
    "-O", featureArgs(dwHeader?.features).join(","),
    "-E", "lazy_itable_init=1,lazy_journal_init=1",
    "-T", "default",
    mkfsImage, `${kib}k`, // without a suffix mke2fs reads the size in -b blocks
  ];

  for (let round = 1; round <= opts.rounds; round++) {
    for (const tool of opts.tools) {
      checkInterrupted();
      if (tool === "diskwright") {
        rm(dwImage);
        syncDisks();
        const r = await measure(rssMethod, dwCmd[0], [...dwCmd.slice(1), "mkfs", "ext4", opts.dir, "-o", dwImage], rssFile);
        checkInterrupted();
        if (r.code !== 0) throw new Error(describeFailure("diskwright", r));
        const st = fs.statSync(dwImage, { throwIfNoEntry: false });
        if (!st?.isFile() || st.size === 0) throw new Error(`diskwright exited 0 but wrote no image at ${dwImage}`);
        if (dwImageBytes === undefined) {
          dwImageBytes = st.size;
          if (dumpe2fs) {
            try {
              dwHeader = dumpe2fsHeader(dumpe2fs, dwImage);
            } catch (e) {
              notes.push(`dumpe2fs -h could not read diskwright's image: ${(e as Error).message.trim()}`);
            }
          }
        } else if (st.size !== dwImageBytes) {
          notes.push(`diskwright's image size changed between rounds: ${dwImageBytes} -> ${st.size} bytes`);
        }
        record(tool, r, round, round === 1 ? `  (image ${fmtBytes(st.size)})` : "");
        const said = [r.stdout.trim(), r.stderr.trim()].filter(Boolean).join("\n");
        if (round === 1 && said) log(indent(said, "      | "));
        rm(dwImage);
      } else if (tool === "mkfs") {
        if (mkfsKiB === undefined) {
          if (dwImageBytes !== undefined) {
            mkfsKiB = Math.ceil(dwImageBytes / 1024);
            mkfsSizeSource = "diskwright's image size";
          } else if (opts.size !== undefined) {
            mkfsKiB = Math.ceil(opts.size / 1024);
            mkfsSizeSource = "--size";
          } else {
            mkfsInodes = Math.ceil(tree.inodes * 1.1) + 64;
            mkfsKiB = Math.ceil(estimateImageBytes(tree, mkfsInodes) / 1024);
            mkfsSizeSource = "estimate from the tree (diskwright not run)";
          }
          mkfsKiB = Math.ceil(mkfsKiB / 4) * 4; // whole 4 KiB blocks
          mkfsInodes ??= dwHeader?.inodeCount ?? Math.ceil(tree.inodes * 1.1) + 64;
        }
        let r: RunResult;
        for (let attempt = 0; ; attempt++) {
          rm(mkfsImage);
          syncDisks();
          const args = mkfsArgs(mkfsKiB, mkfsInodes!);
          if (!mkfsArgsShown) {
            log(`         mkfs.ext4 ${args.join(" ")}`);
            log(`         (size ${fmtBytes(mkfsKiB * 1024)} from ${mkfsSizeSource}; -N ${mkfsInodes} ${dwHeader ? "= diskwright's inode count" : "from the tree"})`);
            mkfsArgsShown = true;
          }
          r = await measure(rssMethod, mkfsPath!, args, rssFile);
          checkInterrupted();
          if (r.code === 0) break;
          const spaceRe = /could not allocate|no free space|not enough space|too small|no space left/i;
          const noSpace = spaceRe.test(r.stderr);
          if (!noSpace || attempt >= MAX_MKFS_GROWTH) throw new Error(describeFailure("mkfs.ext4 -d", r));
          const old = mkfsKiB;
          mkfsKiB = Math.ceil((mkfsKiB * 1.1) / 4) * 4;
          const why = r.stderr.split("\n").filter((l) => spaceRe.test(l)).at(-1) ?? "";
          const note = `mkfs.ext4 -d ran out of space at ${fmtBytes(old * 1024)} (${why.trim()}); retried with +10%: ${fmtBytes(mkfsKiB * 1024)}`;
          notes.push(note);
          log(`         ${note}`);
          mkfsArgsShown = false;
          if (!mkfsSizeSource.startsWith("+10%")) mkfsSizeSource = `+10% steps from ${mkfsSizeSource}`;
        }
        if (round === 1 && dumpe2fs && !mkfsHeader) {
          try {
            mkfsHeader = dumpe2fsHeader(dumpe2fs, mkfsImage);
          } catch (e) {
            notes.push(`dumpe2fs -h could not read mkfs.ext4's image: ${(e as Error).message.trim()}`);
          }
        }
        record(tool, r, round);
        rm(mkfsImage);
      } else {
        rm(cpTarget);
        syncDisks();
        const r = await measure(rssMethod, cpPath, ["-a", opts.dir, cpTarget], rssFile);
        checkInterrupted();
        if (r.code !== 0) throw new Error(describeFailure("cp -a", r));
        record(tool, r, round);
        rm(cpTarget);
      }
    }
  }

  // ---- summary
  log();
  const med = new Map<ToolId, number>();
  const peak = new Map<ToolId, number | undefined>();
  const rows: string[][] = [["tool", "median s", "min s", "max s", "peak RSS MiB"]];
  for (const tool of ALL_TOOLS) {
    const res = results.get(tool);
    if (!res) continue;
    const m = median(res.times);
    med.set(tool, m);
    const known = res.rss.filter((x): x is number => x !== undefined);
    const p = known.length ? Math.max(...known) : undefined;
    peak.set(tool, p);
    rows.push([
      TOOL_LABEL[tool], m.toFixed(3), Math.min(...res.times).toFixed(3), Math.max(...res.times).toFixed(3),
      p === undefined ? "?" : (p / 1024).toFixed(1),
    ]);
  }
  log(`results over ${opts.rounds} round${opts.rounds === 1 ? "" : "s"} (median, min, max wall-clock seconds; peak RSS = max over rounds):`);
  log(indent(table(rows, [false, true, true, true, true]), "  "));
  log();

  const dw = med.get("diskwright");
  const verdict = (ok: boolean): string => (ok ? "PASS" : "MISS");
  if (dw !== undefined) {
    const mk = med.get("mkfs");
    const cp = med.get("cp");
    if (mk !== undefined) {
      const ratio = dw / mk;
      log(`  diskwright / mkfs.ext4 -d = ${ratio.toFixed(3)}   (target <= ${TARGET_VS_MKFS.toFixed(2)})  ${verdict(ratio <= TARGET_VS_MKFS)}   [mkfs.ext4 -d is ${(mk / dw).toFixed(1)}x diskwright]`);
    }
    if (cp !== undefined) {
      const ratio = dw / cp;
      log(`  diskwright / cp -a        = ${ratio.toFixed(3)}   (target <= ${TARGET_VS_CP.toFixed(2)})  ${verdict(ratio <= TARGET_VS_CP)}`);
    }
    const p = peak.get("diskwright");
    if (p !== undefined) {
      const mb = (p * 1024) / 1e6;
      log(`  diskwright peak RSS       = ${mb.toFixed(1)} MB (${(p / 1024).toFixed(1)} MiB)   (target < ${TARGET_RSS_MB} MB)  ${verdict(mb < TARGET_RSS_MB)}`);
    }
  } else {
    const mk = med.get("mkfs");
    const cp = med.get("cp");
    if (mk !== undefined && cp !== undefined) {
      log(`  (diskwright not run) mkfs.ext4 -d / cp -a = ${(mk / cp).toFixed(2)}; targets for diskwright: <= ${(mk * TARGET_VS_MKFS).toFixed(3)} s (0.1 x mkfs.ext4 -d) and <= ${cp.toFixed(3)} s (cp -a)`);
    }
  }
  log();
  log(`tree:  ${opts.dir}: ${fmtInt(tree.entries)} entries, ${fmtBytes(tree.fileBytes)} (${fmtInt(tree.fileBytes)} bytes) in regular files`);
  if (dwImageBytes !== undefined) {
    let extra = "";
    if (dwHeader) {
      const used = dwHeader.blockCount - dwHeader.freeBlocks;
      extra = `; ${fmtInt(dwHeader.blockCount)} blocks of ${dwHeader.blockSize} (${fmtInt(used)} used), ` +
        `${fmtInt(dwHeader.inodeCount)} inodes (${fmtInt(dwHeader.inodeCount - dwHeader.freeInodes)} used)` +
        (dwHeader.journalBlocks !== undefined ? `, journal ${fmtInt(dwHeader.journalBlocks)} blocks` : "");
    }
    log(`image: diskwright chose ${fmtBytes(dwImageBytes)} (${fmtInt(dwImageBytes)} bytes)${extra}`);
  }
  if (mkfsKiB !== undefined) {
    let extra = "";
    if (mkfsHeader) {
      const used = mkfsHeader.blockCount - mkfsHeader.freeBlocks;
      extra = `; ${fmtInt(mkfsHeader.blockCount)} blocks (${fmtInt(used)} used), ${fmtInt(mkfsHeader.inodeCount)} inodes` +
        (mkfsHeader.journalBlocks !== undefined ? `, journal ${fmtInt(mkfsHeader.journalBlocks)} blocks` : "");
    }
    log(`image: mkfs.ext4 -d used ${fmtBytes(mkfsKiB * 1024)} (${fmtInt(mkfsKiB * 1024)} bytes, from ${mkfsSizeSource})${extra}`);
  }
  if (mkfsHeader) {
    const ref = dwHeader?.features ?? EXPECTED_FEATURES;
    const refName = dwHeader ? "diskwright's" : "the expected";
    const missing = ref.filter((f) => !mkfsHeader!.features.includes(f));
    const extraF = mkfsHeader.features.filter((f) => !ref.includes(f));
    if (missing.length === 0 && extraF.length === 0) {
      log(`features: identical to ${refName} set: ${mkfsHeader.features.join(" ")}`);
    } else {
      notes.push(`mkfs.ext4's features differ from ${refName}: missing [${missing.join(" ")}], extra [${extraF.join(" ")}]`);
    }
  }
  if (dwHeader && !mkfsHeader) {
    const missing = EXPECTED_FEATURES.filter((f) => !dwHeader!.features.includes(f));
    const extraF = dwHeader.features.filter((f) => !EXPECTED_FEATURES.includes(f));
    log(`features (diskwright): ${dwHeader.features.join(" ")}` +
      (missing.length || extraF.length ? `  [vs expected: missing ${missing.join(" ") || "-"}, extra ${extraF.join(" ") || "-"}]` : ""));
  }
  for (const n of notes) log(`note: ${n}`);
}

process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("SIGHUP", onSignal);
process.on("exit", cleanup);

let opts: Options;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError) {
    if (e.message) process.stderr.write(`bench: ${e.message}\n`);
    process.stderr.write(USAGE + "\n");
    process.exit(e.message ? 2 : 0);
  }
  throw e;
}
keepWorkDir = opts.keep;

try {
  await main(opts);
  cleanup();
} catch (e) {
  // Let a pending signal handler run first, so an interrupt during a
  // synchronous helper is reported as such.
  await new Promise((r) => setImmediate(r));
  cleanup();
  if (interrupted || e instanceof Interrupted) {
    process.stderr.write("bench: interrupted\n");
    process.exit(130);
  }
  if (e instanceof UsageError) {
    process.stderr.write(`bench: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
