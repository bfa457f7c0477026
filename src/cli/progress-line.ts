// The progress line on a terminal: one line on stderr, redrawn in place (\r,
// erase to end of line) at most ten times a second: phase, bytes done of
// total, rate and time left. Erased at the end so the command's own output
// follows on a clean line. Only the clock of the terminal's redraws is read
// here; nothing of it reaches an output.
import { performance } from 'node:perf_hooks';
import type { ProgressEvent, ProgressListener } from '../util/progress.ts';
import { formatSize } from '../util/sizes.ts';

/** Least time between two redraws, in ms. */
const REDRAW_MS = 100;

export interface ProgressLine {
  listener: ProgressListener;
  /** Erases the line, if one is shown. */
  end(): void;
}

interface Out {
  write(s: string): unknown;
  columns?: number;
}

/** A renderer writing to `out` (a TTY's stream); `now` in ms, monotonic. */
export function progressLine(out: Out, now: () => number = () => performance.now()): ProgressLine {
  let phase = '';
  let phaseStart = 0;
  let lastDraw = -Infinity;
  let shown = false;
  const listener = (e: ProgressEvent) => {
    const t = now();
    if (e.phase !== phase) {
      phase = e.phase;
      phaseStart = t;
    } else if (t - lastDraw < REDRAW_MS) return;
    lastDraw = t;
    const text = describe(e, (t - phaseStart) / 1000);
    // A pseudo-terminal without a size says 0 columns.
    const width = Math.max(20, (out.columns || 80) - 1);
    out.write(`\r${text.length > width ? text.slice(0, width) : text}\x1b[K`);
    shown = true;
  };
  return {
    listener,
    end() {
      if (shown) out.write('\r\x1b[K');
      shown = false;
    },
  };
}

/**
 * The line on process.stderr, erased before anything else is written to the
 * terminal (the command's own report, a warning, stdout on the same terminal),
 * so it never mixes with other output.
 */
export function terminalProgressLine(): ProgressLine {
  const stderr = process.stderr;
  const own = stderr.write.bind(stderr) as (s: string) => boolean;
  const line = progressLine({ write: own, get columns() { return stderr.columns; } });
  for (const stream of [process.stderr, process.stdout]) {
    if (!stream.isTTY) continue;
    const write = stream.write.bind(stream);
    stream.write = ((...args: Parameters<typeof write>) => {
      line.end();
      return write(...args);
    }) as typeof stream.write;
  }
  return line;
}

/** `writing  1.2 GiB of 4.0 GiB (30%)  350.0 MiB/s  ETA 0:08`; scanning counts entries. */
export function describe(e: ProgressEvent, seconds: number): string {
  if (e.phase === 'scanning') return `scanning  ${e.done} entries`;
  const rate = seconds > 0.2 ? e.done / seconds : 0;
  const parts = [e.phase.padEnd(11)];
  if (e.total === undefined) parts.push(formatSize(e.done));
  else {
    const pct = e.total > 0 ? Math.floor((e.done / e.total) * 100) : 100;
    parts.push(`${formatSize(e.done)} of ${formatSize(e.total)} (${pct}%)`);
  }
  if (rate > 0) {
    parts.push(`${formatSize(Math.round(rate))}/s`);
    if (e.total !== undefined) parts.push(`ETA ${clock(Math.max(0, e.total - e.done) / rate)}`);
  }
  return parts.join('  ');
}

/** Seconds as m:ss, or h:mm:ss from an hour. */
function clock(s: number): string {
  const t = Math.ceil(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const ss = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
