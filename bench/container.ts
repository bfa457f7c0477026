// `npm run bench:container -- [DIR] [--size SIZE] [--rounds N] [--steps ID,...] [--keep]`
//
// Container images from a closure of about SIZE (default 400M): DIR's
// (default /usr/share) top-level directories packed as fake store paths
// (hard-linked, so nothing is copied), one root path referring to all of them,
// and their registration with narHashes as a closureInfo would give it.
// Measured in the same run, steps interleaved per round, medians compared:
//
//   cold streamed build (empty layer cache) to /dev/null
//                      <= 2.5 x `tar --sort=name -cf - PATHS | sha256sum` (the floor)
//   warm rebuild, only the top layer changed          <= 0.2 x the cold build,
//     for zstd and gzip layers (a hit streams the cached blob: no store file is
//     scanned or read); uncompressed layers are shown too, for information: a
//     warm build must still read their files once to stream them, where the cold
//     one reads them twice (hash, then stream), so that ratio stays near 0.5
//   cold build with zstd layers <= 1.3 x `tar --sort=name -cf - PATHS | zstd -3 -T0`
//   peak RSS of every build < 300 MB (the target is for a 2 GB closure:
//     `npm run bench:container -- /usr --size 2G`)
//
// A MISS is a result, not an error: the exit status is 0 unless something failed.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { chooseRssMethod, findExecutable, fmtBytes, measure, median, parseSize, table, type RunResult } from "./lib.ts";
import { closure } from "../src/nix/closure.ts";
import { formatRegistration } from "../src/nix/registration.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (s = ""): void => void process.stdout.write(s + "\n");

interface Opts { dir: string; rounds: number; size: number; keep: boolean; steps?: string[] }

function parse(argv: string[]): Opts {
  const o: Opts = { dir: "/usr/share", rounds: 3, size: parseSize("400M"), keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") o.rounds = Number(argv[++i]);
    else if (a === "--size") o.size = parseSize(argv[++i] ?? "");
    else if (a === "--keep") o.keep = true;
    else if (a === "--steps") o.steps = (argv[++i] ?? "").split(",");
    else if (!a.startsWith("-")) o.dir = path.resolve(a);
    else throw new Error(`unknown option ${a}`);
  }
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1)) throw new Error("--rounds takes a whole number >= 1");
  return o;
}

const opts = parse(process.argv.slice(2));
const zstd = findExecutable("zstd");
if (!zstd) throw new Error("zstd is needed");
const wd = fs.mkdtempSync(path.join(os.tmpdir(), "diskwright-bench-container-"));
process.on("exit", () => {
  if (opts.keep) log(`work directory kept: ${wd}`);
  else fs.rmSync(wd, { recursive: true, force: true });
});

// --- the closure ------------------------------------------------------------

const NIX32 = "0123456789abcdfghijklmnpqrsvwxyz";
const fakeHash = (name: string) => [...createHash("sha256").update(name).digest().subarray(0, 32)].map((b) => NIX32[b & 31]).join("");
const storeName = (name: string) => `${fakeHash(name)}-${name.replace(/[^A-Za-z0-9+\-._?=]/g, "_")}`;

function bytesUnder(p: string): number {
  let n = 0;
  const seen = new Set<string>();
  const visit = (q: string) => {
    const s = fs.lstatSync(q, { bigint: true });
    if (s.isDirectory()) for (const c of fs.readdirSync(q)) visit(path.join(q, c));
    else if (s.isFile() && !seen.has(`${s.dev}:${s.ino}`)) (seen.add(`${s.dev}:${s.ino}`), (n += Number(s.size)));
  };
  visit(p);
  return n;
}

const storeDir = path.join(wd, "store");
fs.mkdirSync(storeDir);
const names: string[] = [];
let total = 0;
for (const entry of fs.readdirSync(opts.dir).sort()) {
  if (total >= opts.size) break;
  const src = path.join(opts.dir, entry);
  if (!fs.lstatSync(src).isDirectory()) continue;
  const name = storeName(entry);
  // Hard links: no data copied; cp -a where they cannot be made (another file system).
  if (spawnSync("cp", ["-al", src, path.join(storeDir, name)]).status !== 0) {
    fs.rmSync(path.join(storeDir, name), { recursive: true, force: true });
    if (spawnSync("cp", ["-a", src, path.join(storeDir, name)]).status !== 0) throw new Error(`cannot copy ${src}`);
  }
  names.push(name);
  total += bytesUnder(path.join(storeDir, name));
}
const root = storeName("bench-root");
fs.mkdirSync(path.join(storeDir, root));
fs.writeFileSync(path.join(storeDir, root, "refs"), names.map((n) => `/nix/store/${n}\n`).join(""));
names.push(root);
names.sort();
log(`diskwright container benchmark: ${names.length} store paths from ${opts.dir}, ${fmtBytes(total)} of file data, ${opts.rounds} rounds, ${os.availableParallelism()} CPUs`);
log("  computing the closure's registration (narHashes, references), as closureInfo would give them ...");
fs.writeFileSync(path.join(wd, "registration"), formatRegistration(closure([path.join(storeDir, root)], { storeDir }).paths));
fs.mkdirSync(path.join(wd, "app"));
let appVersion = 0;
const changeApp = () => fs.writeFileSync(path.join(wd, "app", "app.conf"), `version ${++appVersion}\n`);
changeApp();
const config = (compression: string) => {
  const file = path.join(wd, `${compression}.json`);
  fs.writeFileSync(file, JSON.stringify({ name: "bench", tag: "b", contents: ["app"], storePaths: [`/nix/store/${root}`], storeDir, storeReferences: "registration", layerCompression: compression }));
  return file;
};

// --- the steps --------------------------------------------------------------

const sh = (cmd: string) => ({ cmd: "/bin/sh", args: ["-c", cmd] });
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const dw = `${q(process.execPath)} ${q(path.join(repoRoot, "bin", "diskwright.js"))} container`;
const cache = (c: string) => path.join(wd, `cache-${c}`);
const tarPaths = `tar --sort=name -cf - -C ${q(storeDir)} ${names.map(q).join(" ")}`;

interface Step { id: string; label: string; cmd: string; args: string[]; before?: () => void }
const build = (c: string) => sh(`exec ${dw} ${q(config(c))} --stream --cache ${q(cache(c))} > /dev/null`);
const steps: Step[] = [
  { id: "floor", label: "tar | sha256sum", ...sh(`${tarPaths} | sha256sum > /dev/null`) },
  { id: "cold", label: "diskwright cold", ...build("none"), before: () => fs.rmSync(cache("none"), { recursive: true, force: true }) },
  { id: "warm", label: "diskwright warm", ...build("none"), before: changeApp },
  { id: "zstd-tool", label: "tar | zstd -3 -T0", ...sh(`${tarPaths} | ${q(zstd)} -q -3 -T0 > /dev/null`) },
  { id: "cold-zstd", label: "diskwright cold zstd", ...build("zstd"), before: () => fs.rmSync(cache("zstd"), { recursive: true, force: true }) },
  { id: "warm-zstd", label: "diskwright warm zstd", ...build("zstd"), before: changeApp },
  { id: "cold-gzip", label: "diskwright cold gzip", ...build("gzip"), before: () => fs.rmSync(cache("gzip"), { recursive: true, force: true }) },
  { id: "warm-gzip", label: "diskwright warm gzip", ...build("gzip"), before: changeApp },
];

// --steps: a subset (e.g. the builds alone, for peak RSS on a big closure); ratios need both their steps.
if (opts.steps) {
  const unknown = opts.steps.filter((id) => !steps.some((s) => s.id === id));
  if (unknown.length) throw new Error(`--steps: unknown ${unknown.join(", ")}; known: ${steps.map((s) => s.id).join(", ")}`);
  steps.splice(0, steps.length, ...steps.filter((s) => opts.steps!.includes(s.id)));
}

// Page cache warm for everyone: one untimed read of the closure.
spawnSync("/bin/sh", ["-c", `${tarPaths} > /dev/null`]);
const rssMethod = chooseRssMethod(log);
const times = new Map<string, number[]>();
const cpus = new Map<string, number[]>();
const rss = new Map<string, number>();
for (let round = 1; round <= opts.rounds; round++) {
  for (const s of steps) {
    s.before?.();
    const r: RunResult = await measure(rssMethod, s.cmd, s.args, path.join(wd, "rss.txt"));
    if (r.code !== 0) throw new Error(`${s.label} failed: ${r.stderr.trim()}`);
    (times.get(s.id) ?? times.set(s.id, []).get(s.id)!).push(r.seconds);
    if (r.cpuSeconds !== undefined) (cpus.get(s.id) ?? cpus.set(s.id, []).get(s.id)!).push(r.cpuSeconds);
    if (r.rssKiB !== undefined) rss.set(s.id, Math.max(rss.get(s.id) ?? 0, r.rssKiB));
    log(`round ${round}/${opts.rounds}  ${s.label.padEnd(22)} ${r.seconds.toFixed(3).padStart(8)} s  ${r.cpuSeconds?.toFixed(2).padStart(7) ?? "-"} s CPU`);
  }
}
log();

const med = (id: string) => (times.has(id) ? median(times.get(id)!) : NaN);
const cpu = (id: string) => (cpus.has(id) ? median(cpus.get(id)!) : NaN);
const rows = [["step", "median s", "CPU s", "peak RSS MiB"]];
for (const s of steps) rows.push([s.label, med(s.id).toFixed(3), cpu(s.id).toFixed(2), s.id.startsWith("cold") || s.id.startsWith("warm") ? ((rss.get(s.id) ?? 0) / 1024).toFixed(0) : "-"]);
log(table(rows, [false, true, true, true]));
log();
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
// Wall-clock ratios are the targets; CPU-time ratios beside them, as a busy machine skews the wall clock.
const ratio = (what: string, a: string, b: string, target?: number) => {
  const v = med(a) / med(b);
  const c = cpu(a) / cpu(b);
  if (!Number.isFinite(v)) return;
  const cpuNote = Number.isFinite(c) ? `  (CPU ${c.toFixed(3)})` : "";
  log(`  ${what.padEnd(60)} = ${v.toFixed(3)}${cpuNote}${target === undefined ? "" : `   target <= ${target}  ${verdict(v <= target)}`}`);
};
ratio("cold build / tar | sha256sum", "cold", "floor", 2.5);
ratio("warm build zstd / cold build zstd", "warm-zstd", "cold-zstd", 0.2);
ratio("warm build gzip / cold build gzip", "warm-gzip", "cold-gzip", 0.2);
ratio("warm build / cold build, uncompressed (read once to stream)", "warm", "cold");
ratio("cold build zstd / tar | zstd -3 -T0", "cold-zstd", "zstd-tool", 1.3);
const peak = Math.max(...steps.filter((s) => /^(cold|warm)/.test(s.id)).map((s) => rss.get(s.id) ?? 0)) / 1024;
log(`  ${"peak RSS of the builds, MiB".padEnd(60)} = ${peak.toFixed(0)}   (target < 300 for a 2 GB closure; this one is ${fmtBytes(total)})  ${verdict(peak < 300)}`);
