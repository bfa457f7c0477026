// convert raw -> qcow2 in one pass over the input, as qemu-img convert does
// it: read the file's data (the file system says where: holes are never
// read), test each cluster for zeros, and write a cluster with data at the
// next host cluster as soon as it is found; the tables follow the data and
// the header comes last (dataFirstTables in qcow2.ts). The extent-map path
// would read the data twice: once to find the zeros, once to copy it.
//
// The bytes equal toQcow2DataFirst of the scanned image (a stream of the same
// conversion): a cluster is stored iff one of its bytes is not zero.
import * as fs from 'node:fs';
import { writeFileAtomically } from './atomic-file.ts';
import { dataFirstTables, l1Geometry, virtualSizeOf } from './qcow2.ts';
import { RUN_GRANULE } from '../image/runs.ts';
import type { Image } from '../image/extent-map.ts';
import type { WriteResult } from './raw.ts';
import { startPhase, type ProgressPhase } from '../util/progress.ts';

/** 64 KiB clusters, as qemu-img's default and toQcow2's. */
const CLUSTER_BITS = 16;
const CS = 2 ** CLUSTER_BITS;
/** Input read per call: 64 clusters. */
const CHUNK = 64 * CS;
const ZERO = Buffer.alloc(CS);

/** What the scan needs of an input (a DiskSource of format/input.ts). */
export interface ScannedInput {
  readonly size: number;
  /** The ranges the file stores: everything else is a hole, never read. */
  stored(): Image;
  /** Reads [offset, offset + length), holes as zeros. */
  readInto(dst: Buffer, dstOff: number, offset: number, length: number): void;
}

export interface ScanResult extends WriteResult {
  /** Bytes in 4 KiB granules with a non-zero byte: the image's data, as the scan for zeros counts it. */
  dataBytes: number;
}

/** True when buf[at, at + len) is all zero; a granule with data rarely has zeros at both ends and in the middle. */
function zero(buf: Buffer, at: number, len: number): boolean {
  if (buf[at] !== 0 || buf[at + len - 1] !== 0 || buf[at + (len >> 1)] !== 0) return false;
  return buf.compare(ZERO, 0, len, at, at + len) === 0;
}

/** Cluster-aligned spans covering the stored ranges (cut at `size`), merged. */
function spans(input: ScannedInput): [number, number][] {
  const out: [number, number][] = [];
  for (const e of input.stored().extents) {
    const s = Math.floor(e.offset / CS) * CS;
    const t = Math.min(Math.ceil((e.offset + e.length) / CS) * CS, input.size);
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], t);
    else if (t > s) out.push([s, t]);
  }
  return out;
}

/** Writes `input` as a qcow2 file at `out` (renamed into place when complete). */
export function writeQcow2Scanned(input: ScannedInput, out: string, phase: ProgressPhase = 'converting'): ScanResult {
  const virtualSize = virtualSizeOf(input);
  l1Geometry(virtualSize, CLUSTER_BITS); // refuses sizes qemu cannot open, before any work
  const todo = spans(input);
  let total = 0;
  for (const [s, t] of todo) total += t - s;
  let dataBytes = 0;
  const done = writeFileAtomically(out, 'image', (fd) => {
    const progress = startPhase(phase, total);
    const buf = Buffer.alloc(CHUNK);
    const clusters: number[] = [];
    let next = 1; // host cluster for the next data cluster
    for (const [s, t] of todo) {
      for (let pos = s; pos < t; pos += CHUNK) {
        const n = Math.min(CHUNK, t - pos);
        input.readInto(buf, 0, pos, n);
        const k = Math.ceil(n / CS);
        buf.fill(0, n, k * CS); // a last cluster cut short by the disk's end
        let run = -1; // first cluster of the run of data clusters being gathered
        for (let i = 0; i <= k; i++) {
          let data = false;
          for (let g = i * CS; i < k && g < i * CS + CS && g < n; g += RUN_GRANULE) {
            const len = Math.min(RUN_GRANULE, n - g);
            if (!zero(buf, g, len)) {
              data = true;
              dataBytes += len;
            }
          }
          if (data) {
            if (run < 0) run = i;
            clusters.push(pos / CS + i);
          } else if (run >= 0) {
            writeAt(fd, buf, run * CS, (i - run) * CS, next * CS);
            next += i - run;
            run = -1;
          }
        }
        progress.add(n);
      }
    }
    const tables = dataFirstTables(clusters, virtualSize, CLUSTER_BITS);
    for (const { offset, buffer } of tables.tables) writeAt(fd, buffer, 0, buffer.length, offset);
    fs.ftruncateSync(fd, tables.size);
    writeAt(fd, tables.header, 0, tables.header.length, 0);
    progress.end();
  });
  return { apparentBytes: done.size, allocatedBytes: done.blocks * 512, dataBytes };
}

function writeAt(fd: number, buf: Buffer, from: number, len: number, at: number): void {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, buf, from + done, len - done, at + done);
}
