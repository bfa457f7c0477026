// `npm run bench:progress -- [--rounds N] [SOURCE...]`
//
// What the progress line costs: the same `diskwright mkfs ext4` build run on
// a pseudo-terminal (`script`), so stderr is a TTY and the line is drawn,
// once with the line and once with --quiet, the two alternating round by
// round so that drift in the machine's load hits both alike. Printed per
// source: median wall and CPU seconds of each, and the median of the rounds'
// paired ratios (each round's line run over its --quiet run: drift between
// rounds cancels; target: the line costs at most 2 % of CPU time). The images
// of both runs must be byte-identical. One more line run under --cpu-prof
// gives the line's direct cost: the CPU samples that fall in the progress
// code (counters, listener, renderer), as a share of the build's samples.
//
// Defaults: /usr/share/doc (a sub-second build, where a fixed cost would
// show) and /usr/share (several seconds).

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chooseRssMethod, findExecutable, median, measure, table } from "./lib.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (s = ""): void => void process.stdout.write(s + "\n");
const TARGET = 1.02;
/** Code of the progress line (sizes.ts is shared with the summary, so this is an upper bound): its samples are the line's direct cost. */
const PROGRESS_CODE = /\/src\/(util\/progress|cli\/progress-line|util\/sizes)\.ts$/;

let rounds = 9;
const sources: string[] = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--rounds") rounds = Number(argv[++i]);
  else sources.push(argv[i]);
}
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds takes a positive whole number");
if (sources.length === 0) sources.push("/usr/share/doc", "/usr/share");
const script = findExecutable("script");
if (!script) throw new Error("`script` (bsdutils) is needed to give the build a terminal");

const wd = fs.mkdtempSync(path.join(os.tmpdir(), "diskwright-bench-progress-"));
const rssMethod = chooseRssMethod(log);
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const digest = (p: string): string => crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");

log(`progress line overhead: ${rounds} rounds, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
const rows = [["source", "line: median s", "CPU s", "--quiet: median s", "CPU s", "wall ratio", "CPU ratio", "in progress code"]];
let ok = true;
try {
  for (const src of sources) {
    const wall = { line: [] as number[], quiet: [] as number[] };
    const cpu = { line: [] as number[], quiet: [] as number[] };
    const out = { line: path.join(wd, "line.img"), quiet: path.join(wd, "quiet.img") };
    for (let r = 0; r <= rounds; r++) {
      for (const mode of r % 2 ? (["quiet", "line"] as const) : (["line", "quiet"] as const)) {
        const cmd = `${q(process.execPath)} ${q(path.join(repoRoot, "bin/diskwright.js"))} mkfs ext4 ${mode === "quiet" ? "--quiet " : ""}-o ${q(out[mode])} ${q(src)}`;
        const res = await measure(rssMethod, script, ["-qec", cmd, "/dev/null"], path.join(wd, "rss.txt"));
        if (res.code !== 0) throw new Error(`build of ${src} failed: ${res.stdout}${res.stderr}`);
        if (mode === "line" && r === 0 && !res.stdout.includes("\r")) throw new Error(`no progress line was drawn for ${src}: is script giving a terminal?`);
        // Round 0 warms the page cache and the compile cache.
        if (r === 0) continue;
        wall[mode].push(res.seconds);
        cpu[mode].push(res.cpuSeconds ?? NaN);
      }
    }
    if (digest(out.line) !== digest(out.quiet)) throw new Error(`the progress line changed the image of ${src}`);
    const paired = (m: { line: number[]; quiet: number[] }) => median(m.line.map((x, i) => x / m.quiet[i]!));
    const w = paired(wall);
    const c = paired(cpu);
    const direct = await progressShare(src, out.line);
    // CPU time is the criterion: the line's cost is work the process does, and
    // CPU seconds are steadier than the wall clock on a shared machine.
    ok &&= c <= TARGET;
    rows.push([src, median(wall.line).toFixed(3), median(cpu.line).toFixed(2), median(wall.quiet).toFixed(3), median(cpu.quiet).toFixed(2), w.toFixed(3), c.toFixed(3), `${(direct * 100).toFixed(2)} %`]);
  }
  log(table(rows, [false, true, true, true, true, true, true, true]));
  log(`images identical with and without the line; target: the line costs at most ${((TARGET - 1) * 100).toFixed(0)} % (CPU ratio <= ${TARGET}): ${ok ? "PASS" : "MISS"}`);
} finally {
  fs.rmSync(wd, { recursive: true, force: true });
}

/** Share of a profiled line run's CPU samples spent in the progress code. */
async function progressShare(src: string, img: string): Promise<number> {
  const dir = path.join(wd, "prof");
  fs.rmSync(dir, { recursive: true, force: true });
  const cmd = `${q(process.execPath)} --cpu-prof --cpu-prof-dir=${q(dir)} ${q(path.join(repoRoot, "bin/diskwright.js"))} mkfs ext4 -o ${q(img)} ${q(src)}`;
  const res = await measure(rssMethod, script!, ["-qec", cmd, "/dev/null"], path.join(wd, "rss.txt"));
  if (res.code !== 0) throw new Error(`profiled build of ${src} failed: ${res.stderr}`);
  let all = 0;
  let mine = 0;
  for (const f of fs.readdirSync(dir)) {
    const prof = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as {
      nodes: { id: number; callFrame: { url: string } }[];
      samples: number[];
      timeDeltas: number[];
    };
    const url = new Map(prof.nodes.map((n) => [n.id, n.callFrame.url]));
    prof.samples.forEach((id, i) => {
      const dt = prof.timeDeltas[i] ?? 0;
      all += dt;
      if (PROGRESS_CODE.test(url.get(id) ?? "")) mine += dt;
    });
  }
  return all ? mine / all : 0;
}
