// qcow2 (QEMU copy-on-write v2/v3): QEMU docs/interop/qcow2.txt
// https://gitlab.com/qemu-project/qemu/-/blob/master/docs/interop/qcow2.txt
//
// Writing is a pure transform from the disk's extent map to the extent map of
// the qcow2 FILE: every table is computed up front from which virtual clusters
// hold data, and data clusters are slices of the disk's own extents moved to
// their host offsets. The raw emitter then writes the result in one forward
// pass, to a file (holes kept) or to a pipe; no raw intermediate exists.
//
// Output layout, in host clusters:
//   0                    header (+ header extension end marker)
//   1 ..                 refcount table (covers every cluster of the file)
//   ..                   refcount blocks (16-bit refcounts, all 1)
//   ..                   L1 table
//   ..                   L2 tables, in L1 order, only for L1 entries with data
//   ..                   data clusters, in virtual order
// Every cluster is referenced exactly once, so every refcount is 1 and every
// L1/L2 entry carries the COPIED flag (bit 63), as qemu writes them.
//
// The qcow2 header is big-endian: its field table says so.
//
// The header, L1/L2 and refcount encoders and the sizing rules below are
// shared with the compressed writer (qcow2-compressed.ts), which lays the
// same structures out in another order (data first, tables after it).
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { DiskwrightError } from '../errors.ts';
import { type FileExtent, type Image, type ImageExtent, type LazyExtent } from '../image/extent-map.ts';
import { type FileHandles, openForReading, preadFully } from '../image/random-access.ts';
import { joinFileRuns, placed, planBlocks } from '../image/blocks.ts';
import { defineStruct } from '../util/struct.ts';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
/** Version 3 header through compression_type, padded to a multiple of 8, as qemu-img 7.2 writes it. */
export const QCOW2_V3_HEADER_LENGTH = 112;
const QCOW2_V2_HEADER_LENGTH = 72;
const QCOW2_V3_MIN_HEADER_LENGTH = 104;

export const QCOW2_HEADER = defineStruct(QCOW2_V3_HEADER_LENGTH, [
  ['magic', 0, 'u32'],
  ['version', 4, 'u32'],
  ['backing_file_offset', 8, 'u64'],
  ['backing_file_size', 16, 'u32'],
  ['cluster_bits', 20, 'u32'],
  ['size', 24, 'u64'],
  ['crypt_method', 32, 'u32'],
  ['l1_size', 36, 'u32'],
  ['l1_table_offset', 40, 'u64'],
  ['refcount_table_offset', 48, 'u64'],
  ['refcount_table_clusters', 56, 'u32'],
  ['nb_snapshots', 60, 'u32'],
  ['snapshots_offset', 64, 'u64'],
  // version 3 from here
  ['incompatible_features', 72, 'u64'],
  ['compatible_features', 80, 'u64'],
  ['autoclear_features', 88, 'u64'],
  ['refcount_order', 96, 'u32'],
  ['header_length', 100, 'u32'],
  // additional field (present when header_length > 104); 105..111 are padding
  ['compression_type', 104, 'u8'],
], { bigEndian: true });

/** Header extension type 0: end of the header extension area (type u32 + length u32). */
const HEADER_EXTENSION_END_BYTES = 8;

/** incompatible_features bits. */
const INCOMPAT = { dirty: 0, corrupt: 1, externalData: 2, compressionType: 3, extendedL2: 4 } as const;

/** refcount_order 4: 16-bit refcounts (qemu's default, and the only order version 2 knows). */
export const REFCOUNT_ORDER = 4;
export const REFCOUNT_BYTES = (1 << REFCOUNT_ORDER) / 8;

// L1 / L2 / refcount table entries are big-endian u64; they are handled as two
// u32 halves so offsets up to 2^53 stay exact numbers.
/** Bit 63 of an L1 or L2 entry (in the high half): refcount is exactly 1. */
export const OFLAG_COPIED_HI = 0x80000000;
/** Bit 62 of an L2 entry (in the high half): compressed cluster. */
export const OFLAG_COMPRESSED_HI = 0x40000000;
/** Bit 0 of a standard cluster descriptor (version 3): the cluster reads as zeros. */
const OFLAG_ZERO_LO = 1;
/** Bits 9-55: a cluster-aligned host offset, split into halves. */
const OFFSET_MASK_HI = 0x00ffffff;
const OFFSET_MASK_LO = 0xfffffe00;

/** qemu's implementation limits (docs/interop/qcow2.txt): 32 MiB of L1, 8 MiB of refcount table. */
const QEMU_MAX_L1_BYTES = 32 << 20;
const QEMU_MAX_REFCOUNT_TABLE_BYTES = 8 << 20;
const MIN_CLUSTER_BITS = 9;
/** qemu cannot open images with clusters larger than 2 MiB. */
const MAX_CLUSTER_BITS = 21;

const TWO32 = 0x100000000;

// ------------------------------------------------------------------ encoding

/** A big-endian u64 entry at buf[at]: `v` (< 2^53) with `hiFlags` or'ed into its high half. */
export function writeU64(buf: Buffer, at: number, v: number, hiFlags = 0): void {
  buf.writeUInt32BE((Math.floor(v / TWO32) | hiFlags) >>> 0, at);
  buf.writeUInt32BE(v % TWO32, at + 4);
}

/** Bits 9-55 of an L1/L2 entry: a cluster-aligned host offset. */
function entryOffset(buf: Buffer, at: number): number {
  return (buf.readUInt32BE(at) & OFFSET_MASK_HI) * TWO32 + ((buf.readUInt32BE(at + 4) & OFFSET_MASK_LO) >>> 0);
}

// ------------------------------------------------------------------ writer

export interface Qcow2Options {
  /** log2 of the cluster size: 9 (512 B) to 21 (2 MiB); default 16 (64 KiB), as qemu-img. */
  clusterBits?: number;
}

/** Where everything goes in the output file (byte offsets; counts in clusters). */
export interface Qcow2Layout {
  clusterBits: number;
  clusterSize: number;
  /** The disk size rounded up to 512 bytes, as qemu stores it. */
  virtualSize: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountBlocksOffset: number;
  refcountBlocks: number;
  l1TableOffset: number;
  l1Size: number;
  l1Clusters: number;
  l2TablesOffset: number;
  l2Tables: number;
  dataOffset: number;
  dataClusters: number;
  totalClusters: number;
}

/**
 * What the data area holds: which virtual clusters get an L2 entry, what the
 * entry says, and the output extents. The standard plan below stores each
 * allocated cluster uncompressed. (qcow2-compressed cannot know its entries
 * before compressing, so it writes its data first and the tables after it,
 * with its own layout, from the shared encoders below.)
 */
interface DataPlan {
  /** Virtual cluster numbers with an L2 entry, ascending. */
  clusters: number[];
  /** Host clusters the data area takes. */
  hostClusters: number;
  /** Writes the L2 entry of clusters[i] at buf[at, at+8). */
  writeEntry(buf: Buffer, at: number, i: number, dataOffset: number): void;
  /** The data area's extents in the output file, ascending. */
  extents(dataOffset: number): ImageExtent[];
}

function checkOptions(opts: Qcow2Options): number {
  const bits = opts.clusterBits ?? 16;
  if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw new DiskwrightError('OPTION_INVALID', `qcow2 cluster bits ${bits}: give a whole number from ${MIN_CLUSTER_BITS} (512 bytes) to ${MAX_CLUSTER_BITS} (2 MiB)`, { clusterBits: bits });
  }
  return bits;
}

/**
 * The virtual clusters planBlocks finds data in, ascending, and the disk's
 * extents cut to them and packed one after another (clusters[i] at i *
 * cluster size), file pieces that continue each other joined into long reads.
 */
export function dataClusters(disk: Image, clusterBits: number): { clusters: number[]; packed: ImageExtent[] } {
  const cs = 2 ** clusterBits;
  const { blocks: clusters, pieces } = planBlocks(disk, cs);
  const out: ImageExtent[] = [];
  pieces.forEach((ps, i) => {
    for (const p of ps) out.push(placed(p, i * cs));
  });
  return { clusters, packed: joinFileRuns(out) };
}

/**
 * The standard (uncompressed) data plan: the clusters with data, stored in
 * virtual order, so runs of allocated clusters are contiguous in the file too
 * and their file pieces join into long reads.
 */
function standardDataPlan(disk: Image, clusterBits: number): DataPlan {
  const cs = 2 ** clusterBits;
  const { clusters, packed } = dataClusters(disk, clusterBits);
  return {
    clusters,
    hostClusters: clusters.length,
    writeEntry(buf, at, i, dataOffset) {
      writeU64(buf, at, dataOffset + i * cs, OFLAG_COPIED_HI);
    },
    extents(dataOffset) {
      return packed.map((e) => placed(e, dataOffset));
    },
  };
}

/** L1 entries (and clusters) a disk of `virtualSize` bytes needs; refuses more than qemu opens. */
export function l1Geometry(virtualSize: number, clusterBits: number): { l1Size: number; l1Clusters: number } {
  const cs = 2 ** clusterBits;
  const l2Entries = cs / 8;
  const l1Size = Math.ceil(virtualSize / (cs * l2Entries));
  if (l1Size * 8 > QEMU_MAX_L1_BYTES) {
    throw new DiskwrightError('OPTION_INVALID', `a ${virtualSize}-byte qcow2 disk with ${cs}-byte clusters needs a ${l1Size * 8}-byte L1 table, more than qemu's limit of ${QEMU_MAX_L1_BYTES}; use larger clusters`, { virtualSize, clusterBits });
  }
  return { l1Size, l1Clusters: Math.ceil((l1Size * 8) / cs) };
}

/**
 * Refcount blocks and table clusters for a file of `fixed` other clusters:
 * they must cover every cluster including themselves, so iterate to the fixed
 * point (it only grows, and settles in a step or two).
 */
export function refcountGeometry(fixed: number, clusterBits: number): { refcountBlocks: number; refcountTableClusters: number } {
  const cs = 2 ** clusterBits;
  const perBlock = (cs * 8) / (1 << REFCOUNT_ORDER);
  let refcountBlocks = 0;
  let refcountTableClusters = 0;
  for (;;) {
    const total = fixed + refcountBlocks + refcountTableClusters;
    const blocks = Math.ceil(total / perBlock);
    const tableClusters = Math.ceil((blocks * 8) / cs);
    if (blocks === refcountBlocks && tableClusters === refcountTableClusters) break;
    refcountBlocks = blocks;
    refcountTableClusters = tableClusters;
  }
  if (refcountTableClusters * cs > QEMU_MAX_REFCOUNT_TABLE_BYTES) {
    throw new DiskwrightError('OPTION_INVALID', `a qcow2 file of ${fixed} ${cs}-byte clusters needs a refcount table larger than qemu's limit of ${QEMU_MAX_REFCOUNT_TABLE_BYTES} bytes; use larger clusters`, { clusterBits });
  }
  return { refcountBlocks, refcountTableClusters };
}

function computeLayout(virtualSize: number, clusterBits: number, plan: DataPlan, l2Tables: number): Qcow2Layout {
  const cs = 2 ** clusterBits;
  const { l1Size, l1Clusters } = l1Geometry(virtualSize, clusterBits);
  const fixed = 1 + l1Clusters + l2Tables + plan.hostClusters;
  const { refcountBlocks, refcountTableClusters } = refcountGeometry(fixed, clusterBits);
  const refcountTableOffset = cs;
  const refcountBlocksOffset = refcountTableOffset + refcountTableClusters * cs;
  const l1TableOffset = refcountBlocksOffset + refcountBlocks * cs;
  const l2TablesOffset = l1TableOffset + l1Clusters * cs;
  const dataOffset = l2TablesOffset + l2Tables * cs;
  return {
    clusterBits,
    clusterSize: cs,
    virtualSize,
    refcountTableOffset,
    refcountTableClusters,
    refcountBlocksOffset,
    refcountBlocks,
    // qemu-img writes l1_table_offset 0 for an empty L1 table (a 0-byte disk).
    l1TableOffset: l1Size === 0 ? 0 : l1TableOffset,
    l1Size,
    l1Clusters,
    l2TablesOffset,
    l2Tables,
    dataOffset,
    dataClusters: plan.hostClusters,
    totalClusters: fixed + refcountBlocks + refcountTableClusters,
  };
}

/** Plans the qcow2 layout for a disk without building any buffers. */
export function planQcow2(disk: Image, opts: Qcow2Options = {}): Qcow2Layout {
  const clusterBits = checkOptions(opts);
  const plan = standardDataPlan(disk, clusterBits);
  return computeLayout(virtualSizeOf(disk), clusterBits, plan, countL2Tables(plan.clusters, clusterBits));
}

/** qemu keeps virtual sizes in whole 512-byte sectors and rounds a raw file's size up. */
export function virtualSizeOf(disk: Pick<Image, 'size'>): number {
  return Math.ceil(disk.size / 512) * 512;
}

/** L2 tables needed for entries at the (ascending) virtual `clusters`. */
export function countL2Tables(clusters: ArrayLike<number>, clusterBits: number): number {
  const l2Entries = 2 ** (clusterBits - 3);
  let n = 0;
  let lastL1 = -1;
  for (let i = 0; i < clusters.length; i++) {
    const l1 = Math.floor(clusters[i] / l2Entries);
    if (l1 !== lastL1) n++;
    lastL1 = l1;
  }
  return n;
}

/** Where the tables are, for the header. */
export interface Qcow2HeaderFields {
  clusterBits: number;
  virtualSize: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
}

/**
 * The version 3 header as qemu-img 7.2 writes it, then the header extension
 * end marker (type 0, length 0). No feature name table: it only names feature
 * bits, and none are set.
 */
export function encodeHeader(h: Qcow2HeaderFields): Buffer {
  const header = Buffer.alloc(QCOW2_V3_HEADER_LENGTH + HEADER_EXTENSION_END_BYTES);
  QCOW2_HEADER.encode(header, 0, {
    magic: QCOW2_MAGIC,
    version: 3,
    backing_file_offset: 0,
    backing_file_size: 0,
    cluster_bits: h.clusterBits,
    size: h.virtualSize,
    crypt_method: 0,
    l1_size: h.l1Size,
    l1_table_offset: h.l1TableOffset,
    refcount_table_offset: h.refcountTableOffset,
    refcount_table_clusters: h.refcountTableClusters,
    nb_snapshots: 0,
    snapshots_offset: 0,
    incompatible_features: 0,
    compatible_features: 0,
    autoclear_features: 0,
    refcount_order: REFCOUNT_ORDER,
    header_length: QCOW2_V3_HEADER_LENGTH,
    compression_type: 0, // zlib
  });
  return header;
}

/** The refcount table: one entry per refcount block; the blocks are contiguous from `blocksOffset`. */
export function encodeRefcountTable(refcountBlocks: number, blocksOffset: number, clusterBits: number): Buffer {
  const rt = Buffer.alloc(refcountBlocks * 8);
  for (let i = 0; i < refcountBlocks; i++) writeU64(rt, i * 8, blocksOffset + i * 2 ** clusterBits);
  return rt;
}

/**
 * The L1 table and the L2 tables (one after another from `l2TablesOffset`,
 * in L1 order, only where an entry exists) for entries at the ascending
 * virtual `clusters`; `writeEntry` writes the L2 entry of clusters[i].
 */
export function encodeL1L2(
  clusters: ArrayLike<number>,
  writeEntry: (buf: Buffer, at: number, i: number) => void,
  l1Size: number,
  l2TablesOffset: number,
  clusterBits: number,
): { l1: Buffer; l2: Buffer } {
  const cs = 2 ** clusterBits;
  const l2Entries = cs / 8;
  const l1 = Buffer.alloc(l1Size * 8);
  const l2 = Buffer.alloc(countL2Tables(clusters, clusterBits) * cs);
  let table = -1;
  let lastL1 = -1;
  for (let i = 0; i < clusters.length; i++) {
    const c = clusters[i];
    const l1Index = Math.floor(c / l2Entries);
    if (l1Index !== lastL1) {
      table++;
      lastL1 = l1Index;
      writeU64(l1, l1Index * 8, l2TablesOffset + table * cs, OFLAG_COPIED_HI);
    }
    writeEntry(l2, table * cs + (c % l2Entries) * 8, i);
  }
  return { l1, l2 };
}

/**
 * The qcow2 file for `disk`, as an extent map for the raw emitter
 * (writeImageFile, or emit with streamSink for a pipe).
 */
export function toQcow2(disk: Image, opts: Qcow2Options = {}): Image {
  const clusterBits = checkOptions(opts);
  const plan = standardDataPlan(disk, clusterBits);
  const L = computeLayout(virtualSizeOf(disk), clusterBits, plan, countL2Tables(plan.clusters, clusterBits));
  const extents: ImageExtent[] = [];

  const header = encodeHeader(L);
  extents.push({ offset: 0, length: header.length, buffer: header });

  const rt = encodeRefcountTable(L.refcountBlocks, L.refcountBlocksOffset, clusterBits);
  extents.push({ offset: L.refcountTableOffset, length: rt.length, buffer: rt });

  // Refcount blocks: refcount 1 for clusters [0, total); the rest stay 0.
  const rb = Buffer.alloc(L.totalClusters * REFCOUNT_BYTES);
  for (let i = 0; i < L.totalClusters; i++) rb.writeUInt16BE(1, i * REFCOUNT_BYTES);
  extents.push({ offset: L.refcountBlocksOffset, length: rb.length, buffer: rb });

  const { l1, l2 } = encodeL1L2(plan.clusters, (buf, at, i) => plan.writeEntry(buf, at, i, L.dataOffset), L.l1Size, L.l2TablesOffset, clusterBits);
  if (l1.length) extents.push({ offset: L.l1TableOffset, length: l1.length, buffer: l1 });
  if (l2.length) extents.push({ offset: L.l2TablesOffset, length: l2.length, buffer: l2 });

  for (const e of plan.extents(L.dataOffset)) extents.push(e);
  return { size: L.totalClusters * L.clusterSize, extents };
}

/**
 * convert's layout: data first, tables after (as qemu-img convert writes
 * them, and qcow2-compressed.ts):
 *   0                    header
 *   1 ..                 data clusters, in virtual order
 *   ..                   L2 tables, in L1 order, only for L1 entries with data
 *   ..                   L1 table
 *   ..                   refcount table
 *   ..                   refcount blocks (16-bit refcounts, all 1)
 * Nothing before the data depends on it but the header, so a converter can
 * write each cluster as it finds it and the tables once the scan is done
 * (qcow2-scan.ts); the same bytes as an extent map serve a stream.
 */
export interface Qcow2Tables {
  /** Written last by a one-pass writer: a file cut short before it is no qcow2 image. */
  header: Buffer;
  /** The tables after the data, ascending, each at its byte offset. */
  tables: { offset: number; buffer: Buffer }[];
  /** The file's size. */
  size: number;
}

/** The tables for data clusters stored from host cluster 1 in the order of the ascending virtual `clusters`. */
export function dataFirstTables(clusters: ArrayLike<number>, virtualSize: number, clusterBits: number): Qcow2Tables {
  const cs = 2 ** clusterBits;
  const { l1Size, l1Clusters } = l1Geometry(virtualSize, clusterBits);
  const dataEnd = 1 + clusters.length;
  const l2TablesOffset = dataEnd * cs;
  const { l1, l2 } = encodeL1L2(clusters, (b, at, i) => writeU64(b, at, (1 + i) * cs, OFLAG_COPIED_HI), l1Size, l2TablesOffset, clusterBits);
  const l1TableOffset = l2TablesOffset + l2.length;
  const fixed = dataEnd + l2.length / cs + l1Clusters;
  const { refcountBlocks, refcountTableClusters } = refcountGeometry(fixed, clusterBits);
  const refcountTableOffset = l1TableOffset + l1Clusters * cs;
  const refcountBlocksOffset = refcountTableOffset + refcountTableClusters * cs;
  const total = fixed + refcountTableClusters + refcountBlocks;
  const rb = Buffer.alloc(total * REFCOUNT_BYTES);
  for (let i = 0; i < total; i++) rb.writeUInt16BE(1, i * REFCOUNT_BYTES);
  const header = encodeHeader({
    clusterBits,
    virtualSize,
    l1Size,
    // qemu-img writes l1_table_offset 0 for an empty L1 table (a 0-byte disk).
    l1TableOffset: l1Size === 0 ? 0 : l1TableOffset,
    refcountTableOffset,
    refcountTableClusters,
  });
  const tables = [
    { offset: l2TablesOffset, buffer: l2 },
    { offset: l1TableOffset, buffer: l1 },
    { offset: refcountTableOffset, buffer: encodeRefcountTable(refcountBlocks, refcountBlocksOffset, clusterBits) },
    { offset: refcountBlocksOffset, buffer: rb },
  ].filter((t) => t.buffer.length > 0);
  return { header, tables, size: total * cs };
}

/** convert's qcow2 file (dataFirstTables) for `disk` as an extent map, for a stream or a non-raw input. */
export function toQcow2DataFirst(disk: Image, opts: Qcow2Options = {}): Image {
  const clusterBits = checkOptions(opts);
  const cs = 2 ** clusterBits;
  const virtualSize = virtualSizeOf(disk);
  l1Geometry(virtualSize, clusterBits); // refuses sizes qemu cannot open, before any work
  const { clusters, packed } = dataClusters(disk, clusterBits);
  const t = dataFirstTables(clusters, virtualSize, clusterBits);
  const extents: ImageExtent[] = [{ offset: 0, length: t.header.length, buffer: t.header }];
  for (const e of packed) extents.push(placed(e, cs));
  for (const { offset, buffer } of t.tables) extents.push({ offset, length: buffer.length, buffer });
  return { size: t.size, extents };
}

// ------------------------------------------------------------------ reader

/** True when `head` (the first bytes of a file) starts with the qcow2 magic. */
export function isQcow2(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC;
}

function unreadable(file: string, message: string, data: Record<string, unknown> = {}): DiskwrightError {
  return new DiskwrightError('SOURCE_UNREADABLE', message, { path: file, ...data });
}

function truncated(file: string, what: string, at: number, fileSize: number, detail = ''): DiskwrightError {
  return unreadable(file, `${file} is truncated: ${what} at ${at}${detail} is past the end (${fileSize} bytes); the file is damaged or still being written`, { offset: at, fileSize });
}

function truncatedHeader(file: string, headerLength: number, fileSize: number): DiskwrightError {
  return unreadable(file, `${file} is truncated: its ${headerLength}-byte header is longer than the file (${fileSize} bytes); the file is damaged or still being written`, { headerLength, fileSize });
}

function damaged(file: string, what: string): DiskwrightError {
  return unreadable(file, `${file} is damaged: ${what}; check it with qemu-img check`);
}

function readFully(fd: number, buf: Buffer, position: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    if (n <= 0) break;
    done += n;
  }
  return done;
}

/**
 * The virtual disk inside a qcow2 file (version 2 or 3) as an Image:
 * uncompressed clusters become FileExtents into the qcow2 file (adjacent ones
 * merged), compressed (zlib) clusters LazyExtents that inflate the cluster
 * when its bytes are wanted (the last one inflated is kept, so slices of one
 * cluster inflate it once). Unallocated and zero clusters are left out.
 * Backing files, encryption, external data files, extended L2 entries and
 * zstd compression are refused. Compressed clusters read the file through
 * `handles` (one descriptor, closed by its owner) or, without it, open the
 * file for each cluster.
 */
export function readQcow2(file: string, handles?: FileHandles): Image {
  const fd = openForReading(file);
  try {
    return readOpen(file, fd, handles);
  } finally {
    fs.closeSync(fd);
  }
}

/** Inflates compressed clusters on demand, keeping the last one. */
function compressedClusters(file: string, fileSize: number, cs: number, handles: FileHandles | undefined) {
  let cachedAt = -1;
  let cached: Buffer = Buffer.alloc(0);
  const inflate = (off: number, end: number, vOff: number): Buffer => {
    if (off === cachedAt) return cached;
    const packed = Buffer.alloc(end - off);
    if (handles) preadFully(handles.fd(file), packed, 0, packed.length, off);
    else {
      const fd = fs.openSync(file, 'r');
      try {
        preadFully(fd, packed, 0, packed.length, off);
      } finally {
        fs.closeSync(fd);
      }
    }
    let data: Buffer;
    try {
      // Sync flush: stop where the input stops instead of insisting on a stream end.
      data = zlib.inflateRawSync(packed, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: cs });
    } catch {
      throw damaged(file, `compressed cluster at ${off} (virtual offset ${vOff}) does not inflate`);
    }
    if (data.length < cs) {
      if (end === fileSize) {
        throw unreadable(file, `${file} is truncated: compressed cluster at ${off} (virtual offset ${vOff}) runs past the end (${fileSize} bytes); the file is damaged or still being written`, { offset: off, fileSize });
      }
      throw damaged(file, `compressed cluster at ${off} (virtual offset ${vOff}) inflates to ${data.length} bytes, not ${cs}`);
    }
    cachedAt = off;
    cached = data;
    return data;
  };
  return (vOff: number, len: number, off: number, end: number): LazyExtent => ({
    offset: vOff,
    length: len,
    from: 0,
    fill(dst, dstOff, at, n) {
      inflate(off, end, vOff).copy(dst, dstOff, at, at + n);
    },
  });
}

function readOpen(file: string, fd: number, handles: FileHandles | undefined): Image {
  const fileSize = fs.fstatSync(fd).size;
  const head = Buffer.alloc(Math.min(fileSize, 4096));
  readFully(fd, head, 0);
  if (!isQcow2(head)) throw unreadable(file, `${file} is not a qcow2 image (it does not start with the qcow2 magic QFI\\xfb)`);
  if (head.length < 8) throw truncatedHeader(file, QCOW2_V2_HEADER_LENGTH, fileSize);
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw unreadable(file, `${file} is qcow2 version ${version}; only versions 2 and 3 can be read`, { version });
  if (version === 3 && head.length < QCOW2_V3_MIN_HEADER_LENGTH) throw truncatedHeader(file, QCOW2_V3_MIN_HEADER_LENGTH, fileSize);
  if (head.length < QCOW2_V2_HEADER_LENGTH) throw truncatedHeader(file, QCOW2_V2_HEADER_LENGTH, fileSize);
  const headerLength = version === 2 ? QCOW2_V2_HEADER_LENGTH : head.readUInt32BE(QCOW2_HEADER.offsetOf('header_length'));
  if (version === 3 && (headerLength < QCOW2_V3_MIN_HEADER_LENGTH || headerLength % 8 !== 0 || headerLength > 4096)) {
    throw damaged(file, `header_length ${headerLength} is not a multiple of 8 from 104 to 4096`);
  }
  if (headerLength > head.length) throw truncatedHeader(file, headerLength, fileSize);
  // Fields past header_length are absent (a version 2 header is shorter): they read as 0.
  const fields = Buffer.alloc(QCOW2_HEADER.size);
  head.copy(fields, 0, 0, Math.min(headerLength, QCOW2_HEADER.size));
  const h = QCOW2_HEADER.decode(fields, 0);

  const clusterBits = h.cluster_bits;
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw unreadable(file, `${file} has cluster_bits ${clusterBits}; qcow2 readers support ${MIN_CLUSTER_BITS} to ${MAX_CLUSTER_BITS}`, { clusterBits });
  }
  if (h.backing_file_offset !== 0) {
    throw unreadable(file, `${file} has a backing file; flatten it first with qemu-img convert -O qcow2 ${file} <new file>`);
  }
  if (h.crypt_method !== 0) {
    throw unreadable(file, `${file} is encrypted (crypt_method ${h.crypt_method}); decrypt it first with qemu-img convert`);
  }
  if (version === 3) {
    const at = QCOW2_HEADER.offsetOf('incompatible_features');
    const incompat = head.readBigUInt64BE(at);
    const bit = (n: number) => (incompat >> BigInt(n)) & 1n;
    if (bit(INCOMPAT.corrupt)) throw unreadable(file, `${file} is marked corrupt by qemu; repair it with qemu-img check -r all first`);
    if (bit(INCOMPAT.externalData)) throw unreadable(file, `${file} keeps its data in an external data file, which diskwright cannot read; convert it with qemu-img convert first`);
    if (bit(INCOMPAT.extendedL2)) throw unreadable(file, `${file} uses extended L2 entries (subclusters), which diskwright cannot read; convert it with qemu-img convert first`);
    if (bit(INCOMPAT.compressionType) && h.compression_type !== 0) {
      throw unreadable(file, `${file} uses compression type ${h.compression_type === 1 ? 'zstd' : h.compression_type}, which diskwright cannot read; convert it with qemu-img convert first`);
    }
    // The dirty bit only means the refcounts may be stale; the mapping is fine to read.
    const known = (1n << BigInt(INCOMPAT.dirty)) | (1n << BigInt(INCOMPAT.compressionType));
    if (incompat & ~known) throw unreadable(file, `${file} uses unknown incompatible qcow2 features (0x${incompat.toString(16)}); convert it with a newer qemu-img first`);
  }

  const cs = 2 ** clusterBits;
  const l2Entries = cs / 8;
  const virtualSize = h.size;
  const l1Needed = Math.ceil(virtualSize / (cs * l2Entries));
  if (h.l1_size < l1Needed) throw damaged(file, `its L1 table has ${h.l1_size} entries, fewer than the ${l1Needed} a ${virtualSize}-byte disk needs`);
  const extents: ImageExtent[] = [];
  if (l1Needed === 0) return { size: virtualSize, extents };
  const l1Offset = h.l1_table_offset;
  if (l1Offset % cs !== 0) throw damaged(file, `L1 table offset ${l1Offset} is not a multiple of the cluster size ${cs}`);
  if (l1Offset + l1Needed * 8 > fileSize) throw truncated(file, 'L1 table', l1Offset, fileSize);
  const l1 = Buffer.alloc(l1Needed * 8);
  readFully(fd, l1, l1Offset);

  const pathBuf = Buffer.from(file);
  const l2 = Buffer.alloc(cs);
  // x = 62 - (cluster_bits - 8): compressed descriptor = offset in bits 0..x-1, extra sectors in x..61.
  const cx = BigInt(62 - (clusterBits - 8));
  const cOffsetMask = (1n << cx) - 1n;
  const cSectorsMask = (1n << (62n - cx)) - 1n;
  let prev: FileExtent | null = null;
  const compressed = compressedClusters(file, fileSize, cs, handles);

  for (let i = 0; i < l1Needed; i++) {
    const l2Offset = entryOffset(l1, i * 8);
    if (l2Offset === 0) continue;
    if (l2Offset % cs !== 0) throw damaged(file, `L2 table offset ${l2Offset} is not a multiple of the cluster size ${cs}`);
    if (l2Offset + cs > fileSize) throw truncated(file, 'L2 table', l2Offset, fileSize);
    readFully(fd, l2, l2Offset);
    for (let j = 0; j < l2Entries; j++) {
      const vOff = (i * l2Entries + j) * cs;
      if (vOff >= virtualSize) break;
      const len = Math.min(cs, virtualSize - vOff);
      const hi = l2.readUInt32BE(j * 8);
      const lo = l2.readUInt32BE(j * 8 + 4);
      if (hi === 0 && lo === 0) continue;
      if (hi & OFLAG_COMPRESSED_HI) {
        const d = l2.readBigUInt64BE(j * 8);
        const off = Number(d & cOffsetMask);
        const sectors = Number((d >> cx) & cSectorsMask);
        if (off >= fileSize) throw truncated(file, 'compressed cluster', off, fileSize, ` (virtual offset ${vOff})`);
        // The data runs to the end of its last 512-byte sector (or of the file).
        const end = Math.min((Math.floor(off / 512) + sectors + 1) * 512, fileSize);
        prev = null;
        extents.push(compressed(vOff, len, off, end));
        continue;
      }
      if (version === 3 && lo & OFLAG_ZERO_LO) continue; // reads as zeros
      const host = entryOffset(l2, j * 8);
      if (host === 0) continue; // unallocated: no backing file, so zeros
      if (host % cs !== 0) throw damaged(file, `data cluster offset ${host} (virtual offset ${vOff}) is not a multiple of the cluster size ${cs}`);
      if (host >= fileSize) throw truncated(file, 'data cluster', host, fileSize, ` (virtual offset ${vOff})`);
      // A last cluster cut short reads its missing tail as zeros, as in qemu.
      const n = Math.min(len, fileSize - host);
      if (prev && prev.offset + prev.length === vOff && prev.fileOffset + prev.length === host) {
        prev.length += n;
      } else {
        prev = { offset: vOff, length: n, path: pathBuf, fileOffset: host, expectSize: fileSize };
        extents.push(prev);
      }
    }
  }
  return { size: virtualSize, extents };
}
