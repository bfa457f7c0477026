// `npm run bench:formats -- [DIR] [--rounds N] [--size SIZE] [--keep]`
//
// Output formats against the C tools, on the same ext4 image of DIR (default
// /usr/share in an image of --size 1200M), tools interleaved in each round,
// medians compared:
//
//   build straight to qcow2 / vdi / vpc / vhd-fixed   <= 1.1 x building raw
//   build to qcow2-compressed    <= 0.5 x `qemu-img convert -c -O qcow2` of the raw image
//   build with --compress zstd   <= 1.2 x (build raw, then `zstd -3 -T0` it)
//   `diskwright convert` raw -> qcow2  <= 1.0 x `qemu-img convert -O qcow2` of the same raw file
// and, for information: build qcow2 vs build raw + `qemu-img convert -O
// qcow2`.
//
// A MISS is a result, not an error (exit 0); a failing tool exits 1.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { chooseRssMethod, findExecutable, fmtBytes, measure, median, parseSize, table, type RunResult } from "./lib.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (s = ""): void => void process.stdout.write(s + "\n");

interface Opts { dir: string; rounds: number; size: string; keep: boolean }

function parse(argv: string[]): Opts {
  const o: Opts = { dir: "/usr/share", rounds: 3, size: "1200M", keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") o.rounds = Number(argv[++i]);
    else if (a === "--size") o.size = argv[++i];
    else if (a === "--keep") o.keep = true;
    else if (!a.startsWith("-")) o.dir = a;
    else throw new Error(`unknown option ${a}`);
  }
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1)) throw new Error("--rounds takes a whole number >= 1");
  parseSize(o.size);
  return o;
}

const opts = parse(process.argv.slice(2));
const qemuImg = findExecutable("qemu-img");
const zstd = findExecutable("zstd");
if (!qemuImg || !zstd) throw new Error("qemu-img (qemu-utils) and zstd are needed");
const dw = [process.execPath, path.join(repoRoot, "bin", "diskwright.js")];
const rssMethod = chooseRssMethod(log);
const wd = fs.mkdtempSync(path.join(os.tmpdir(), "diskwright-bench-formats-"));
process.on("exit", () => {
  if (!opts.keep) fs.rmSync(wd, { recursive: true, force: true });
});

// Formats and commands this diskwright has (the bench runs on older checkouts too).
const commandsKnown = spawnSync(dw[0], [...dw.slice(1), "--help"], { encoding: "utf8" }).stdout;
const formatsKnown = spawnSync(dw[0], [...dw.slice(1), "mkfs", "ext4", "--help"], { encoding: "utf8" }).stdout;
const hasQcow2Compressed = formatsKnown.includes("qcow2-compressed");
const hasConvert = /^\s+convert\b/m.test(commandsKnown);

const img = (name: string) => path.join(wd, name);
const mkfs = (out: string, ...extra: string[]) => [...dw.slice(1), "mkfs", "ext4", opts.dir, "--size", opts.size, "-o", out, ...extra];

interface Step { id: string; label: string; cmd: string; args: string[]; out: string; needsRaw?: boolean }
const steps: Step[] = [
  { id: "raw", label: "diskwright raw", cmd: dw[0], args: mkfs(img("raw.img")), out: img("raw.img") },
  { id: "qcow2", label: "diskwright qcow2", cmd: dw[0], args: mkfs(img("dw.qcow2"), "--format", "qcow2"), out: img("dw.qcow2") },
  { id: "vdi", label: "diskwright vdi", cmd: dw[0], args: mkfs(img("dw.vdi"), "--format", "vdi"), out: img("dw.vdi") },
  { id: "vpc", label: "diskwright vpc", cmd: dw[0], args: mkfs(img("dw.vhd"), "--format", "vpc"), out: img("dw.vhd") },
  { id: "vhd-fixed", label: "diskwright vhd-fixed", cmd: dw[0], args: mkfs(img("dwf.vhd"), "--format", "vhd-fixed"), out: img("dwf.vhd") },
  { id: "zstd", label: "diskwright zstd", cmd: dw[0], args: mkfs(img("dw.img.zst"), "--compress", "zstd"), out: img("dw.img.zst") },
  { id: "qemu-qcow2", label: "qemu-img -O qcow2", cmd: qemuImg, args: ["convert", "-O", "qcow2", img("raw.img"), img("q.qcow2")], out: img("q.qcow2"), needsRaw: true },
  { id: "zstd-tool", label: "zstd -3 -T0", cmd: zstd, args: ["-q", "-f", "-3", "-T0", img("raw.img"), "-o", img("z.img.zst")], out: img("z.img.zst"), needsRaw: true },
];
if (hasQcow2Compressed) {
  steps.push(
    { id: "qcow2c", label: "diskwright qcow2-c", cmd: dw[0], args: mkfs(img("dwc.qcow2"), "--format", "qcow2-compressed"), out: img("dwc.qcow2") },
    { id: "qemu-qcow2c", label: "qemu-img -c", cmd: qemuImg, args: ["convert", "-c", "-O", "qcow2", img("raw.img"), img("qc.qcow2")], out: img("qc.qcow2"), needsRaw: true },
  );
}
if (hasConvert) {
  steps.push({ id: "convert-qcow2", label: "diskwright convert", cmd: dw[0], args: [...dw.slice(1), "convert", img("raw.img"), "-o", img("cv.qcow2"), "--format", "qcow2"], out: img("cv.qcow2"), needsRaw: true });
  if (hasQcow2Compressed) {
    steps.push({ id: "convert-qcow2c", label: "dw convert -c", cmd: dw[0], args: [...dw.slice(1), "convert", img("raw.img"), "-o", img("cvc.qcow2"), "--format", "qcow2-compressed"], out: img("cvc.qcow2"), needsRaw: true });
  }
}

log(`diskwright formats benchmark: ${opts.dir} in an ext4 image of ${opts.size}, ${opts.rounds} rounds, ${os.cpus().length} CPUs`);
log(`  ${spawnSync(qemuImg, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0]}; ${spawnSync(zstd, ["--version"], { encoding: "utf8" }).stdout.trim()}`);
if (!hasQcow2Compressed) log("  (this diskwright has no qcow2-compressed yet: skipped)");
if (!hasConvert) log("  (this diskwright has no convert yet: skipped)");
log();

const times = new Map<string, number[]>();
const rss = new Map<string, number>();
const sizes = new Map<string, [number, number]>();
const rssFile = img("rss.txt");
for (let round = 1; round <= opts.rounds; round++) {
  for (const s of steps) {
    if (s.id !== "raw") fs.rmSync(s.out, { force: true });
    spawnSync("sync");
    const r: RunResult = await measure(rssMethod, s.cmd, s.args, rssFile);
    if (r.code !== 0) throw new Error(`${s.label} failed: ${r.stderr.trim()}`);
    (times.get(s.id) ?? times.set(s.id, []).get(s.id)!).push(r.seconds);
    if (r.rssKiB !== undefined) rss.set(s.id, Math.max(rss.get(s.id) ?? 0, r.rssKiB));
    const st = fs.statSync(s.out);
    sizes.set(s.id, [st.size, st.blocks * 512]);
    log(`round ${round}/${opts.rounds}  ${s.label.padEnd(22)} ${r.seconds.toFixed(3).padStart(8)} s`);
  }
}
log();

const med = (id: string) => median(times.get(id)!);
const rows = [["step", "median s", "output apparent", "allocated", "peak RSS MiB"]];
for (const s of steps) {
  const [a, b] = sizes.get(s.id)!;
  rows.push([s.label, med(s.id).toFixed(3), fmtBytes(a), fmtBytes(b), ((rss.get(s.id) ?? 0) / 1024).toFixed(0)]);
}
log(table(rows, [false, true, true, true, true]));
log();

const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
const ratio = (what: string, v: number, target?: number) =>
  log(`  ${what.padEnd(58)} = ${v.toFixed(3)}${target === undefined ? "" : `   (target <= ${target})  ${verdict(v <= target)}`}`);
const raw = med("raw");
for (const f of ["qcow2", "vdi", "vpc", "vhd-fixed"]) ratio(`build ${f} / build raw`, med(f) / raw, 1.1);
ratio("build qcow2 / (build raw + qemu-img convert -O qcow2)", med("qcow2") / (raw + med("qemu-qcow2")));
ratio("build zstd / (build raw + zstd -3 -T0)", med("zstd") / (raw + med("zstd-tool")), 1.2);
ratio("(build zstd - build raw) / zstd -3 -T0   [compression alone]", (med("zstd") - raw) / med("zstd-tool"));
if (hasQcow2Compressed) {
  ratio("build qcow2-compressed / qemu-img convert -c", med("qcow2c") / med("qemu-qcow2c"), 0.5);
  ratio("build qcow2-compressed / (build raw + qemu-img convert -c)", med("qcow2c") / (raw + med("qemu-qcow2c")));
}
if (hasConvert) {
  ratio("diskwright convert raw->qcow2 / qemu-img convert", med("convert-qcow2") / med("qemu-qcow2"), 1.0);
  if (hasQcow2Compressed) ratio("diskwright convert raw->qcow2-compressed / qemu-img convert -c", med("convert-qcow2c") / med("qemu-qcow2c"), 0.5);
}
