// The fuzz test's worker thread (test/read/fuzz.test.ts): one mutated image at
// a time through the library as the commands use it: inspect, ls -R, cat of
// every file, extract, diff against the unmutated image and convert. Each
// operation's outcome goes back to the test, which judges it; an exception
// that is not a DiskwrightError is reported with its stack, as the bug it is.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { convertImage } from '../../src/api/convert.ts';
import { diffImages } from '../../src/api/diff.ts';
import { DiskwrightError } from '../../src/errors.ts';
import { extractImage } from '../../src/api/extract.ts';
import { inspectImage } from '../../src/api/inspect.ts';
import { openVolume } from '../../src/api/volume.ts';

export interface FuzzJob {
  id: number;
  /** The mutated image. */
  image: string;
  /** The image it was made from, for diff. */
  base: string;
  /** IMAGE or IMAGE:N for each volume to list, cat and extract. */
  volumes: string[];
  /** A scratch directory of this job's own (removed afterwards by the test). */
  scratch: string;
  /** What convert writes: qcow2, vdi, vpc or raw. */
  convertTo: string;
}

export interface FuzzOutcome {
  op: string;
  /** undefined: it worked. */
  code?: string;
  message?: string;
  /** Set when what was thrown is not a DiskwrightError: a bug. */
  bug?: string;
  /** cat: bytes of data read (holes excluded). */
  bytes?: number;
}

/** Files cat reads per volume: enough to reach the damaged ones, bounded so one image stays quick. */
const MAX_CATS = 64;

function attempt(op: string, out: FuzzOutcome[], fn: () => number | void): void {
  try {
    const bytes = fn();
    out.push(typeof bytes === 'number' ? { op, bytes } : { op });
  } catch (e) {
    if (e instanceof DiskwrightError) out.push({ op, code: e.code, message: e.message });
    else out.push({ op, bug: (e as Error)?.stack ?? String(e) });
  }
}

export function runJob(job: FuzzJob): FuzzOutcome[] {
  const out: FuzzOutcome[] = [];
  attempt('inspect', out, () => {
    inspectImage(job.image);
  });
  job.volumes.forEach((spec, i) => {
    attempt(`ls -R ${spec}`, out, () => {
      const vol = openVolume(spec);
      try {
        let n = 0;
        for (const e of vol.fs.walk()) n += e.name.length > 0 ? 1 : 0;
        return n;
      } finally {
        vol.close();
      }
    });
    attempt(`cat ${spec}`, out, () => {
      const vol = openVolume(spec);
      try {
        let bytes = 0;
        let cats = 0;
        for (const e of vol.fs.walk()) {
          if (e.type !== 'file' || cats++ >= MAX_CATS) continue;
          for (const c of vol.fs.chunks(e)) bytes += c.data.length;
        }
        return bytes;
      } finally {
        vol.close();
      }
    });
    attempt(`extract ${spec}`, out, () => {
      extractImage(spec, '/', path.join(job.scratch, `x${i}`), { owners: false });
    });
  });
  attempt('diff', out, () => {
    diffImages(job.base, job.image);
  });
  attempt(`convert to ${job.convertTo}`, out, () => {
    convertImage({ input: job.image, output: path.join(job.scratch, 'converted'), format: job.convertTo as 'raw', seed: 'fuzz', epoch: 1 });
  });
  fs.rmSync(job.scratch, { recursive: true, force: true });
  return out;
}

parentPort?.on('message', (job: FuzzJob) => {
  parentPort!.postMessage({ id: job.id, outcomes: runJob(job) });
});
