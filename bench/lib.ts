// Helpers for the ext4 benchmark (bench/ext4.ts): argument parsing, timing
// and peak-memory measurement of child processes, tree statistics and
// dumpe2fs parsing. Nothing here is part of the diskwright library.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export type ToolId = "diskwright" | "mkfs" | "cp";
export const ALL_TOOLS: readonly ToolId[] = ["diskwright", "mkfs", "cp"];

export const TOOL_LABEL: Record<ToolId, string> = {
  diskwright: "diskwright",
  mkfs: "mkfs.ext4 -d",
  cp: "cp -a",
};

export class UsageError extends Error {}

export interface Options {
  dir: string;
  rounds: number;
  tools: ToolId[];
  /** Image size in bytes forced by --size (used when diskwright is not run). */
  size: number | undefined;
  keep: boolean;
}

export const USAGE = `usage: npm run bench -- [DIR] [--rounds N] [--only TOOL[,TOOL...]] [--size SIZE] [--keep]

  DIR            tree to put into the images (default /usr/share)
  --rounds N     timed rounds per tool (default 3); tools are interleaved per round
  --only TOOLS   run only these tools: diskwright (dw), mkfs (mkfs.ext4), cp (cp -a)
  --size SIZE    image size for mkfs.ext4 when diskwright is not run (e.g. 900M, 2G);
                 default: an estimate from the tree
  --keep         keep the work directory (printed) instead of removing it

environment:
  BENCH_DW_CMD   command to run instead of "node bin/diskwright.js" (split on
                 whitespace); "mkfs ext4 DIR -o OUT.img" is appended
  BENCH_RSS=proc measure peak RSS by polling /proc/PID/status VmHWM instead of
                 with GNU time (/usr/bin/time -f %M)`;

function parseToolName(s: string): ToolId {
  switch (s.trim().toLowerCase()) {
    case "diskwright":
    case "dw":
      return "diskwright";
    case "mkfs":
    case "mkfs.ext4":
    case "mke2fs":
      return "mkfs";
    case "cp":
    case "cp-a":
      return "cp";
    default:
      throw new UsageError(`unknown tool in --only: ${JSON.stringify(s)} (diskwright, mkfs, cp)`);
  }
}

/** Parses sizes such as 123456, 900K, 900M, 2G, 2GiB (binary units). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`bad size: ${JSON.stringify(s)}`);
  const mult: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
  return Math.ceil(Number(m[1]) * mult[m[2].toLowerCase()]);
}

export function parseArgs(argv: string[]): Options {
  let dir: string | undefined;
  let rounds = 3;
  let tools: ToolId[] = [...ALL_TOOLS];
  let size: number | undefined;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith("--") && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case "-h":
      case "--help":
        throw new UsageError("");
      case "--rounds":
      case "-n": {
        const v = value();
        rounds = Number(v);
        if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError(`bad --rounds: ${v}`);
        break;
      }
      case "--only": {
        const set = new Set(value().split(",").filter((s) => s.trim() !== "").map(parseToolName));
        if (set.size === 0) throw new UsageError("--only needs at least one tool");
        tools = ALL_TOOLS.filter((t) => set.has(t));
        break;
      }
      case "--size":
        size = parseSize(value());
        break;
      case "--keep":
        keep = true;
        break;
      default:
        if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown option: ${a}`);
        if (dir !== undefined) throw new UsageError(`more than one directory given: ${dir}, ${a}`);
        dir = a;
    }
  }
  return { dir: path.resolve(dir ?? "/usr/share"), rounds, tools, size, keep };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// ---------------------------------------------------------------------------
// Tree statistics

export interface TreeStats {
  /** Entries below the root (not counting the root itself), like `find DIR -mindepth 1 | wc -l`. */
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  other: number;
  /** Distinct inodes, including the root. */
  inodes: number;
  /** Sum of st_size of regular files, hard links counted once. */
  fileBytes: number;
  /** Sum of st_blocks*512 over distinct inodes (what `du` reports). */
  allocatedBytes: number;
  /** Rough ext4 data footprint: every inode's contents rounded up to 4 KiB blocks. */
  blocks4k: number;
  unreadable: number;
}

export function treeStats(root: string): TreeStats {
  const st: TreeStats = {
    entries: 0, files: 0, dirs: 0, symlinks: 0, other: 0, inodes: 0,
    fileBytes: 0, allocatedBytes: 0, blocks4k: 0, unreadable: 0,
  };
  const seen = new Set<string>();
  const visit = (p: string, isRoot: boolean): void => {
    let s: fs.BigIntStats;
    try {
      s = fs.lstatSync(p, { bigint: true });
    } catch {
      st.unreadable++;
      return;
    }
    if (!isRoot) st.entries++;
    const key = `${s.dev}:${s.ino}`;
    const first = !seen.has(key);
    if (first) {
      seen.add(key);
      st.inodes++;
      st.allocatedBytes += Number(s.blocks) * 512;
    }
    const size = Number(s.size);
    if (s.isDirectory()) {
      st.dirs++;
      st.blocks4k += Math.max(1, Math.ceil(size / 4096));
      let names: string[];
      try {
        names = fs.readdirSync(p);
      } catch {
        st.unreadable++;
        return;
      }
      for (const n of names) visit(path.join(p, n), false);
    } else if (s.isFile()) {
      st.files++;
      if (first) {
        st.fileBytes += size;
        st.blocks4k += Math.ceil(size / 4096);
      }
    } else if (s.isSymbolicLink()) {
      st.symlinks++;
      if (size >= 60) st.blocks4k += 1; // fast symlinks live in the inode
    } else {
      st.other++;
    }
  };
  visit(root, true);
  if (st.dirs > 0) st.dirs--; // the root
  return st;
}

// ---------------------------------------------------------------------------
// Running and measuring child processes

export interface RunResult {
  seconds: number;
  /** Peak resident set size in KiB, or undefined if it could not be measured. */
  rssKiB: number | undefined;
  /** User + system CPU seconds of the child and what it waited for (GNU time only): on a busy machine, steadier than the wall clock. */
  cpuSeconds?: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export type RssMethod = { kind: "gnu-time"; path: string } | { kind: "proc-poll" };

const GNU_TIME = "/usr/bin/time";

function isGnuTime(p: string): boolean {
  if (!fs.existsSync(p)) return false;
  const r = spawnSync(p, ["--version"], { encoding: "utf8" });
  return r.status === 0 && /GNU/.test(`${r.stdout}${r.stderr}`);
}

/**
 * Finds GNU time; when missing and running as root, installs Debian's `time`
 * package. Falls back to polling /proc/PID/status (VmHWM).
 */
export function chooseRssMethod(log: (s: string) => void): RssMethod {
  if (process.env.BENCH_RSS === "proc") return { kind: "proc-poll" };
  if (isGnuTime(GNU_TIME)) return { kind: "gnu-time", path: GNU_TIME };
  if (process.getuid?.() === 0 && fs.existsSync("/usr/bin/apt-get")) {
    log("GNU time (/usr/bin/time) is missing; installing it with apt-get install -y time ...");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = spawnSync("apt-get", ["install", "-y", "-q", "time"], { stdio: "ignore", env });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update", "-q"], { stdio: "ignore", env });
      r = spawnSync("apt-get", ["install", "-y", "-q", "time"], { stdio: "ignore", env });
    }
    if (isGnuTime(GNU_TIME)) return { kind: "gnu-time", path: GNU_TIME };
    log("could not install GNU time; falling back to polling /proc/PID/status VmHWM");
  }
  return { kind: "proc-poll" };
}

let current: { child: ChildProcess; exited: Promise<void> } | undefined;

/** Kills the running measured child (its whole process group) and waits for it. */
export async function killCurrentChild(): Promise<void> {
  const c = current;
  if (!c || c.child.pid === undefined) return;
  const pid = c.child.pid;
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      try { c.child.kill(sig); } catch { /* already gone */ }
    }
  };
  kill("SIGTERM");
  const t = setTimeout(() => kill("SIGKILL"), 3000);
  await c.exited;
  clearTimeout(t);
}

/** pid and all its descendants (via /proc/PID/task/TID/children). */
function processTree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0 && out.length < 10000) {
    const p = stack.pop()!;
    out.push(p);
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      try {
        for (const c of fs.readFileSync(`/proc/${p}/task/${t}/children`, "utf8").split(" ")) {
          if (c.trim() !== "") stack.push(Number(c));
        }
      } catch { /* gone */ }
    }
  }
  return out;
}

function readVmHWM(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `cmd args` and measures its wall-clock time (process.hrtime around the
 * child's lifetime) and peak RSS. The child gets its own process group so
 * that an interrupt of the benchmark can take it down with all descendants.
 */
export async function measure(
  method: RssMethod, cmd: string, args: string[], rssFile: string,
): Promise<RunResult> {
  let file = cmd;
  let argv = args;
  if (method.kind === "gnu-time") {
    fs.rmSync(rssFile, { force: true });
    file = method.path;
    argv = ["-f", "%U %S %M", "-o", rssFile, "--", cmd, ...args];
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let hwm: number | undefined;
  let poll: NodeJS.Timeout | undefined;
  let end = 0n;
  const start = process.hrtime.bigint();
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", () => { end = process.hrtime.bigint(); });
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  current = { child, exited: done.then(() => undefined, () => undefined) };
  child.stdout!.on("data", (b: Buffer) => out.push(b));
  child.stderr!.on("data", (b: Buffer) => err.push(b));
  if (method.kind === "proc-poll" && child.pid !== undefined) {
    const pid = child.pid;
    // Like GNU time's %M: the largest peak of any single process in the tree.
    poll = setInterval(() => {
      for (const p of processTree(pid)) {
        const v = readVmHWM(p);
        if (v !== undefined && (hwm === undefined || v > hwm)) hwm = v;
      }
    }, 5);
  }
  let res: { code: number | null; signal: NodeJS.Signals | null };
  try {
    res = await done;
  } finally {
    if (poll) clearInterval(poll);
    current = undefined;
  }
  if (end === 0n) end = process.hrtime.bigint();
  let rssKiB = hwm;
  let cpuSeconds: number | undefined;
  let stderr = Buffer.concat(err).toString("utf8");
  if (method.kind === "gnu-time") {
    rssKiB = undefined;
    try {
      const lines = fs.readFileSync(rssFile, "utf8").trim().split("\n");
      const last = lines.at(-1) ?? "";
      const m = /^([\d.]+) ([\d.]+) (\d+)$/.exec(last);
      if (m) (cpuSeconds = Number(m[1]) + Number(m[2])), (rssKiB = Number(m[3]));
      // GNU time's own notes ("Command exited with non-zero status 1", ...)
      const notes = lines.slice(0, -1).join("\n");
      if (notes) stderr += (stderr.endsWith("\n") || stderr === "" ? "" : "\n") + notes + "\n";
    } catch { /* no file: time itself failed */ }
    fs.rmSync(rssFile, { force: true });
  }
  return {
    seconds: Number(end - start) / 1e9,
    rssKiB,
    cpuSeconds,
    code: res.code,
    signal: res.signal,
    stdout: Buffer.concat(out).toString("utf8"),
    stderr,
  };
}

/** Runs a helper command (not measured) synchronously; throws on failure. */
export function run(cmd: string, args: string[], what?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${what ?? cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${what ?? cmd} failed (${r.signal ?? `exit ${r.status}`}):\n${r.stderr}`);
  }
  return r.stdout;
}

export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// dumpe2fs

export interface Ext4Header {
  features: string[];
  inodeCount: number;
  blockCount: number;
  blockSize: number;
  inodeSize: number;
  freeBlocks: number;
  freeInodes: number;
  journalBlocks: number | undefined;
}

export function dumpe2fsHeader(dumpe2fs: string, image: string): Ext4Header {
  const text = run(dumpe2fs, ["-h", image], "dumpe2fs -h");
  const field = (name: string): string | undefined => {
    const m = new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text);
    return m?.[1].trim();
  };
  const num = (name: string): number => Number(field(name) ?? NaN);
  const journal = field("Total journal blocks");
  const journalBlocks = journal !== undefined && /^\d+$/.test(journal) ? Number(journal) : undefined;
  return {
    features: (field("Filesystem features") ?? "").split(/\s+/).filter(Boolean),
    inodeCount: num("Inode count"),
    blockCount: num("Block count"),
    blockSize: num("Block size"),
    inodeSize: num("Inode size"),
    freeBlocks: num("Free blocks"),
    freeInodes: num("Free inodes"),
    journalBlocks,
  };
}

// ---------------------------------------------------------------------------
// Formatting

export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

export function fmtInt(n: number): string {
  return n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function table(rows: string[][], rightAlign: boolean[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => r.map((cell, c) => (rightAlign[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  ").trimEnd())
    .join("\n");
}
