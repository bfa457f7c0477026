// qcow2-compressed: a qcow2 file whose data clusters are zlib-compressed as
// `qemu-img convert -c -O qcow2` writes them (make-disk-image's
// format = "qcow2-compressed"). QEMU docs/interop/qcow2.txt, "Compressed
// Clusters Descriptor"; qemu block/qcow2-threads.c (qcow2_compress) and
// block/qcow2-refcount.c (qcow2_alloc_bytes) for the parameters and packing.
//
// Each allocated 64 KiB cluster is deflated on its own (raw deflate,
// windowBits 12, memLevel 9, default strategy; level 6 = Z_DEFAULT_COMPRESSION
// unless given). A result of at most cluster_size - 1 bytes is stored
// compressed, packed byte-wise after the previous compressed cluster
// (crossing into the next host cluster when that one is the next to be
// allocated, else starting a fresh one); a larger result means the cluster is
// stored uncompressed in a cluster of its own. A cluster whose bytes are all
// zero is left unallocated. Every compressed cluster adds 1 to the refcount of
// each host cluster its bytes touch; the L2 entry is a compressed cluster
// descriptor (bit 62, byte offset, extra 512-byte sectors), without COPIED.
//
// The L2 entries are only known after compressing, so the file is written in
// one forward pass over the data, tables after it, header last:
//   0                    header (written last)
//   1 ..                 data clusters, compressed and uncompressed, in virtual order
//   ..                   L2 tables, in L1 order, only for L1 entries with data
//   ..                   L1 table
//   ..                   refcount table
//   ..                   refcount blocks (16-bit)
// Positional writes, so this format needs a seekable file: it cannot stream.
//
// Compression runs on every core (DeflatePool); all placement decisions are
// made here, in virtual cluster order, so the bytes do not depend on the
// number of threads or on timing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { DiskwrightError } from '../errors.ts';
import type { Image } from '../image/extent-map.ts';
import { DeflatePool } from './deflate-pool.ts';
import { writeImageFile, type Sink, type WriteResult } from './raw.ts';
import {
  OFLAG_COMPRESSED_HI, OFLAG_COPIED_HI, REFCOUNT_BYTES, REFCOUNT_ORDER,
  dataClusters, encodeHeader, encodeL1L2, encodeRefcountTable, l1Geometry, refcountGeometry, virtualSizeOf,
} from './qcow2.ts';

/** 64 KiB clusters, as qemu-img's default. */
const CLUSTER_BITS = 16;
/** qemu's deflateInit2 parameters: Z_DEFAULT_COMPRESSION, 4 KiB window, memLevel 9. */
export const QCOW2_DEFLATE_DEFAULT_LEVEL = 6;
const WINDOW_BITS = 12;
const MEM_LEVEL = 9;
/** Clusters per batch handed to a worker: 1 MiB of input (and as much room for output). */
const BATCH_CLUSTERS = 16;
/**
 * Batches filling, in flight or waiting per worker: a window wide enough to
 * keep reading, compressing and writing overlapped when a thread is held up
 * (16 MiB of shared memory per worker), and at most MAX_SLOTS of them
 * (128 MiB), whatever the image size.
 */
const SLOTS_PER_THREAD = 8;
const MAX_SLOTS = 64;
/** Completed host clusters gathered into one write. */
const STAGE_CLUSTERS = 128;
const REFCOUNT_MAX = 2 ** (1 << REFCOUNT_ORDER) - 1;
const TWO32 = 0x100000000;

export interface Qcow2CompressedOptions {
  /** zlib level 1-9; default 6, as qemu. */
  level?: number;
  /** Compression threads; default os.availableParallelism(). Does not change the output. */
  threads?: number;
}

/** Checks a deflate level for qcow2-compressed: 1-9. */
export function checkDeflateLevel(level: number | undefined): number {
  const l = level ?? QCOW2_DEFLATE_DEFAULT_LEVEL;
  if (!Number.isInteger(l) || l < 1 || l > 9) {
    throw new DiskwrightError('OPTION_INVALID', `compression level ${level}: qcow2-compressed (zlib deflate) takes a whole number from 1 to 9 (default 6)`, { level });
  }
  return l;
}

/** The one-line refusal for `-o -`. */
export function notStreamable(): DiskwrightError {
  return new DiskwrightError('OPTION_INVALID', 'qcow2-compressed cannot be streamed to standard output: it writes its tables after the data and its header last; write it to a file, or use --format qcow2 for a stream', { format: 'qcow2-compressed' });
}

/**
 * Writes `disk` as a compressed qcow2 file at `out` (through a temporary name,
 * renamed into place when complete).
 */
export function writeQcow2Compressed(disk: Image, out: string, opts: Qcow2CompressedOptions = {}): WriteResult {
  if (out === '-') throw notStreamable();
  const level = checkDeflateLevel(opts.level);
  const threads = opts.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`internal: ${threads} compression threads`);
  const cs = 2 ** CLUSTER_BITS;
  const virtualSize = virtualSizeOf(disk);
  const l1 = l1Geometry(virtualSize, CLUSTER_BITS); // refuses sizes qemu cannot open, before any work
  const { clusters, packed } = dataClusters(disk, CLUSTER_BITS);
  const batches = Math.ceil(clusters.length / BATCH_CLUSTERS);
  const workers = Math.max(1, Math.min(threads, batches));
  const pool = new DeflatePool({
    chunkSize: cs,
    chunksPerBatch: BATCH_CLUSTERS,
    slots: Math.max(2, Math.min(batches, SLOTS_PER_THREAD * workers, MAX_SLOTS)),
    threads: workers,
    level,
    windowBits: WINDOW_BITS,
    memLevel: MEM_LEVEL,
    // qemu gives deflate cluster_size - 1 bytes of room; what does not fit is stored uncompressed.
    maxOutput: cs - 1,
  });
  try {
    // The allocated clusters, packed one after another: the raw emitter reads
    // them (buffers and source files) in order and hands them to the sink.
    const packedImage: Image = { size: clusters.length * cs, extents: packed };
    return writeImageFile(packedImage, out, (fd) => compressingSink(fd, pool, clusters, virtualSize, l1));
  } finally {
    pool.close();
  }
}

/**
 * The sink the emitter feeds with the packed clusters: fills batches,
 * submits them, and consumes them in order (placing each cluster in the file
 * and noting its L2 entry); at the end writes the tables and the header.
 */
function compressingSink(fd: number, pool: DeflatePool, clusters: number[], virtualSize: number, l1: { l1Size: number; l1Clusters: number }): Sink {
  const cs = pool.options.chunkSize;
  const B = pool.options.chunksPerBatch;
  const slots = pool.options.slots;
  const batchBytes = B * cs;
  const n = clusters.length;
  const batches = Math.ceil(n / B);
  const host = new HostWriter(fd, cs, n);
  // L2 entry of clusters[i] as two u32 halves (0, 0: unallocated, the cluster is all zero).
  const entryHi = new Uint32Array(n);
  const entryLo = new Uint32Array(n);
  let filling = -1; // batch being filled
  let consumed = 0; // batches placed so far

  const consume = () => {
    const job = consumed++;
    const slot = job % slots;
    pool.wait(slot);
    const count = Math.min(B, n - job * B);
    const input = pool.input(slot);
    const output = pool.output(slot);
    for (let i = 0; i < count; i++) {
      const r = pool.result(slot, i);
      const k = job * B + i;
      if (r === 0) continue; // all zero: unallocated
      if (r > 0) {
        const off = host.compressed(output, i * cs, r);
        // Extra sectors: the 512-byte sectors the data touches, beyond the first.
        const sectors = Math.floor((off + r - 1) / 512) - Math.floor(off / 512);
        entryHi[k] = (Math.floor(off / TWO32) | (sectors << (62 - (CLUSTER_BITS - 8) - 32)) | OFLAG_COMPRESSED_HI) >>> 0;
        entryLo[k] = off % TWO32;
      } else {
        const off = host.uncompressed(input, i * cs);
        entryHi[k] = (Math.floor(off / TWO32) | OFLAG_COPIED_HI) >>> 0;
        entryLo[k] = off % TWO32;
      }
    }
  };
  const submit = (job: number) => pool.submit(job % slots, Math.min(B, n - job * B));
  /** Moves filling on to `job`, submitting the batches before it and freeing a slot for it. */
  const fillTo = (job: number) => {
    while (filling < job) {
      if (filling >= 0) submit(filling);
      filling++;
      while (filling - consumed >= slots) consume();
      pool.input(filling % slots).fill(0);
    }
  };

  return {
    write(buf, len, at) {
      let done = 0;
      while (done < len) {
        const pos = at + done;
        const job = Math.floor(pos / batchBytes);
        fillTo(job);
        const off = pos - job * batchBytes;
        const k = Math.min(len - done, batchBytes - off);
        buf.copy(pool.input(job % slots), off, done, done + k);
        done += k;
      }
    },
    finish() {
      if (batches > 0) {
        fillTo(batches - 1);
        submit(filling);
      }
      while (consumed < batches) consume();
      const dataEnd = host.finish();

      // Tables after the data: L2, L1, refcount table, refcount blocks.
      const present: number[] = [];
      for (let i = 0; i < n; i++) if (entryHi[i] !== 0 || entryLo[i] !== 0) present.push(i);
      const l2TablesOffset = dataEnd * cs;
      const { l1: l1Table, l2 } = encodeL1L2(present.map((i) => clusters[i]), (b, at, j) => {
        b.writeUInt32BE(entryHi[present[j]], at);
        b.writeUInt32BE(entryLo[present[j]], at + 4);
      }, l1.l1Size, l2TablesOffset, CLUSTER_BITS);
      const l2Tables = l2.length / cs;
      const l1TableOffset = l2TablesOffset + l2.length;
      const fixed = dataEnd + l2Tables + l1.l1Clusters;
      const { refcountBlocks, refcountTableClusters } = refcountGeometry(fixed, CLUSTER_BITS);
      const refcountTableOffset = l1TableOffset + l1.l1Clusters * cs;
      const refcountBlocksOffset = refcountTableOffset + refcountTableClusters * cs;
      const total = fixed + refcountTableClusters + refcountBlocks;
      const rb = Buffer.alloc(total * REFCOUNT_BYTES);
      rb.writeUInt16BE(1, 0); // header
      for (let h = 1; h < dataEnd; h++) rb.writeUInt16BE(host.refcount(h), h * REFCOUNT_BYTES);
      for (let h = dataEnd; h < total; h++) rb.writeUInt16BE(1, h * REFCOUNT_BYTES);
      writeAt(fd, l2, l2TablesOffset);
      writeAt(fd, l1Table, l1TableOffset);
      writeAt(fd, encodeRefcountTable(refcountBlocks, refcountBlocksOffset, CLUSTER_BITS), refcountTableOffset);
      writeAt(fd, rb, refcountBlocksOffset);
      fs.ftruncateSync(fd, total * cs);
      // The header last: a file cut short before this point is not a qcow2 image.
      writeAt(fd, encodeHeader({
        clusterBits: CLUSTER_BITS,
        virtualSize,
        l1Size: l1.l1Size,
        // qemu-img writes l1_table_offset 0 for an empty L1 table (a 0-byte disk).
        l1TableOffset: l1.l1Size === 0 ? 0 : l1TableOffset,
        refcountTableOffset,
        refcountTableClusters,
      }), 0);
    },
  };
}

function writeAt(fd: number, buf: Buffer, at: number, len = buf.length): void {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, buf, done, len - done, at + done);
}

/**
 * Host cluster allocation for the data area, as qemu does it while
 * converting: clusters are taken in order from cluster 1; compressed bytes go
 * after the previous compressed cluster's (qcow2_alloc_bytes), uncompressed
 * clusters into a cluster of their own. Completed host clusters are gathered
 * into long positional writes; the cluster compressed bytes are still being
 * packed into is kept apart until it is complete.
 */
class HostWriter {
  private readonly fd: number;
  private readonly cs: number;
  /** Refcount of each host cluster of the data area. */
  private readonly refcounts: Uint16Array;
  /** Next host cluster to allocate. */
  private next = 1;
  /** Byte offset where the next compressed cluster may go, or 0 (start a fresh host cluster). */
  private freeByte = 0;
  /** The host cluster compressed bytes are being packed into, and its bytes. */
  private partialCluster = -1;
  private readonly partial: Buffer;
  /** Completed host clusters [stageFirst, stageFirst + stageCount), not yet written. */
  private readonly stage: Buffer;
  private stageFirst = 0;
  private stageCount = 0;

  constructor(fd: number, cs: number, dataClusters: number) {
    this.fd = fd;
    this.cs = cs;
    // At most one new host cluster per data cluster, plus the header.
    this.refcounts = new Uint16Array(dataClusters + 1);
    this.partial = Buffer.alloc(cs);
    this.stage = Buffer.alloc(STAGE_CLUSTERS * cs);
  }

  refcount(h: number): number {
    return this.refcounts[h];
  }

  /** Places `len` compressed bytes; returns their host byte offset. */
  compressed(src: Buffer, from: number, len: number): number {
    const cs = this.cs;
    let offset = this.freeByte;
    if (offset && this.refcounts[Math.floor(offset / cs)] === REFCOUNT_MAX) {
      this.completePartial();
      offset = 0;
    }
    const freeInCluster = offset ? cs - (offset % cs) : 0;
    if (!offset || freeInCluster < len) {
      const fresh = this.next++;
      if (!offset || Math.ceil(offset / cs) !== fresh) {
        // Not contiguous with the partial cluster (or none): start in the fresh one.
        if (offset) this.completePartial();
        this.startPartial(fresh);
        offset = fresh * cs;
      }
      // Else the bytes run on from the partial cluster into the fresh one.
    }
    let at = offset - this.partialCluster * cs;
    let done = 0;
    while (done < len) {
      const k = Math.min(len - done, cs - at);
      src.copy(this.partial, at, from + done, from + done + k);
      this.refcounts[this.partialCluster]++;
      done += k;
      at += k;
      if (at === cs) {
        const following = this.partialCluster + 1;
        this.completePartial();
        if (done < len) {
          this.startPartial(following);
          at = 0;
        }
      }
    }
    this.freeByte = (offset + len) % cs === 0 ? 0 : offset + len;
    return offset;
  }

  /** Places a whole uncompressed cluster; returns its host byte offset. */
  uncompressed(src: Buffer, from: number): number {
    const h = this.next++;
    this.refcounts[h] = 1;
    this.put(h, src, from);
    return h * this.cs;
  }

  /** Writes what is left; returns the number of host clusters used, header included. */
  finish(): number {
    this.completePartial();
    this.flush();
    return this.next;
  }

  private startPartial(h: number): void {
    this.partialCluster = h;
    this.partial.fill(0);
  }

  private completePartial(): void {
    if (this.partialCluster < 0) return;
    this.put(this.partialCluster, this.partial, 0);
    this.partialCluster = -1;
  }

  /** Queues host cluster h's bytes (src[from, from + cs)) for writing. */
  private put(h: number, src: Buffer, from: number): void {
    if (this.stageCount && (h !== this.stageFirst + this.stageCount || this.stageCount === STAGE_CLUSTERS)) this.flush();
    if (!this.stageCount) this.stageFirst = h;
    src.copy(this.stage, this.stageCount * this.cs, from, from + this.cs);
    this.stageCount++;
  }

  private flush(): void {
    if (!this.stageCount) return;
    writeAt(this.fd, this.stage, this.stageFirst * this.cs, this.stageCount * this.cs);
    this.stageCount = 0;
  }
}
