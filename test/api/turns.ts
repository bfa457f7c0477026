// How long work holds this thread's event loop, for the lag tests and
// bench:event-loop: a 1 ms interval timer records the longest wall-clock gap
// between its ticks and the most CPU time this thread spent between two ticks
// (process.threadCpuUsage: time spent waiting for a core on a loaded machine
// does not count), and monitorEventLoopDelay its maximum delay.
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface Turns {
  /** Wall-clock time of the work. */
  ms: number;
  /** Longest wall-clock gap between two ticks. */
  gapMs: number;
  /** This thread's CPU time in the longest stretch between two ticks. */
  cpuMs: number;
  /** monitorEventLoopDelay's maximum. */
  delayMs: number;
}

export async function measureTurns<T>(work: () => Promise<T> | T): Promise<[T, Turns]> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  // The histogram measures from its timer's first turn: let it start.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const cpu = () => { const u = process.threadCpuUsage(); return (u.user + u.system) / 1000; };
  let lastCpu = cpu();
  let last = performance.now();
  let gapMs = 0;
  let cpuMs = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    const c = cpu();
    gapMs = Math.max(gapMs, now - last);
    cpuMs = Math.max(cpuMs, c - lastCpu);
    last = now;
    lastCpu = c;
  }, 1);
  const t = performance.now();
  const result = await work();
  const ms = performance.now() - t;
  // One more turn, so a timer held up by the last stretch of work is counted.
  await new Promise((resolve) => setTimeout(resolve, 10));
  clearInterval(tick);
  h.disable();
  return [result, { ms, gapMs, cpuMs, delayMs: h.max / 1e6 }];
}
