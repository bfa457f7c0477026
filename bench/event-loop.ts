// `npm run bench:event-loop -- [SOURCE]` (default /usr/share)
//
// How long the library holds the caller's event loop: planImage (planning
// on a worker thread, the Image rebuilt here in slices), writeImage of its
// plan to a temporary file, then planBuild run synchronously (the control:
// the whole planning is one turn), each under the lag tests' probe
// (test/api/turns.ts): the longest wall-clock gap between 1 ms timer ticks,
// the most CPU time this thread spent between two ticks, and
// monitorEventLoopDelay's maximum.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { planImage, writeImage } from "../src/api/index.ts";
import { planBuild } from "../src/api/build.ts";
import { configOf } from "../src/config/load.ts";
import { measureTurns as probe, type Turns } from "../test/api/turns.ts";

const source = path.resolve(process.argv[2] ?? "/usr/share");
const config = { partitionTableType: "efi", root: source, additionalSpace: "64M" } as const;
const log = (s: string): void => void process.stdout.write(s + "\n");

const show = (name: string, t: Turns): void =>
  log(`${name.padEnd(24)} ${(t.ms / 1000).toFixed(2).padStart(6)} s   longest gap ${t.gapMs.toFixed(1).padStart(7)} ms   most CPU in one turn ${t.cpuMs.toFixed(1).padStart(7)} ms   max loop delay ${t.delayMs.toFixed(1).padStart(7)} ms`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "dw-bench-loop-"));
try {
  log(`source ${source}; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
  // The control last: its garbage (the whole plan made on this thread) would
  // land in the others' turns as collection pauses.
  const [plan, planTurns] = await probe(() => planImage(config));
  show("planImage (worker)", planTurns);
  const [, writeTurns] = await probe(() => writeImage(plan.disk, path.join(work, "disk.img")));
  show("writeImage", writeTurns);
  const loaded = configOf(config, "config", process.cwd());
  const [sync, syncTurns] = await probe(() => planBuild({ config: loaded.config, given: loaded.given, baseDir: process.cwd(), file: "config" }));
  show("planBuild (synchronous)", syncTurns);
  if (plan.disk.extents.length !== sync.disk.extents.length) throw new Error("planImage and planBuild disagree");
  log(`${plan.disk.extents.length} extents, image ${(plan.disk.size / 2 ** 20).toFixed(0)} MiB`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
