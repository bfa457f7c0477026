// The partition compiler: a DiskSpec in, the whole disk as one extent map
// out. It sizes each partition for its content, places the partitions
// (aligned, in list order, one `grow` partition taking the rest), sizes the
// disk, checks that nothing collides (partitions, the MBR, both GPTs, raw
// blobs), plans each filesystem at its partition's size, encodes the table and
// composes the disk. Every preset goes through here, so a layout fix is made once.
import * as fs from 'node:fs';
import { DiskwrightError } from '../errors.ts';
import { driverNamed } from '../fs/drivers.ts';
import { composeDisk } from '../image/compose.ts';
import type { Image, ImageExtent } from '../image/extent-map.ts';
import { GPT_ATTR } from '../partition/gpt.ts';
import { encodeTable, GPT_FOOTER_BYTES, GPT_HEADER_BYTES, type PartitionSpec } from '../partition/table.ts';
import { MBR_TYPE, mbrTypeForGpt } from '../partition/types.ts';
import { formatSize } from '../util/sizes.ts';
import { dataSegments } from '../util/sparse.ts';
import type { DiskPartition, DiskSpec, TableKind } from './spec.ts';

const MiB = 2 ** 20;
const SECTOR = 512;

export interface FsReport {
  type: 'ext4' | 'vfat';
  label: string;
  uuid: string;
  bytes: number;
  freeBytes: number;
  freeInodes?: number;
  usedInodes?: number;
  fatType?: number;
  clusterBytes?: number;
}

export interface PartitionReport {
  number: number | null;
  role: string;
  name: string;
  start: number;
  size: number;
  startSector: number;
  sectors: number;
  typeGuid?: string;
  mbrType?: string;
  guid?: string;
  bootable: boolean;
  legacyBiosBootable: boolean;
  /** GPT attribute bits other than legacyBiosBootable, as hex. */
  attributes?: string;
  filesystem?: FsReport;
  /** A prepared filesystem image copied in (`image:`): its filesystem and size. */
  prepared?: { type: string; bytes: number };
}

export interface BlobReport {
  key: string;
  source: string;
  offset: number;
  size: number;
}

export interface CompiledDisk {
  disk: Image;
  size: number;
  table: TableKind;
  diskGuid?: string;
  diskSignature?: string;
  partitions: PartitionReport[];
  blobs: BlobReport[];
}

const up = (n: number, a: number) => Math.ceil(n / a) * a;
const down = (n: number, a: number) => Math.floor(n / a) * a;
const hex = (n: number | bigint, digits: number) => `0x${n.toString(16).padStart(digits, '0')}`;
const span = (a: number, b: number) => `bytes ${a}..${b}`;

function invalid(message: string, data: Record<string, unknown> = {}): never {
  throw new DiskwrightError('PARTITION_INVALID', message, data);
}

/** f(), or onSmall(the minimum the planner names, 0 if none) when its content does not fit. */
function fitting<T>(f: () => T, onSmall: (minimum: number) => never): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof DiskwrightError && e.code === 'SIZE_TOO_SMALL')) throw e;
    const m = Number(e.data.minimum);
    return onSmall(Number.isFinite(m) ? m : 0);
  }
}

/** Bytes the partition's content needs on its own (plus its free space); 0 for an empty partition. */
function contentNeed(p: DiskPartition): number {
  const c = p.content;
  if (!c) return 0;
  if (c.fs === 'image') return up(c.image.size, SECTOR);
  return driverNamed(c.fs)!.need(c);
}

/** The regions the partition table itself takes on a disk of `size` bytes. */
function tableRegions(table: TableKind, size: number): { what: string; start: number; end: number }[] {
  if (table === 'none') return [];
  if (table === 'mbr') return [{ what: 'the MBR', start: 0, end: SECTOR }];
  return [
    { what: table === 'hybrid' ? 'the hybrid MBR' : 'the protective MBR', start: 0, end: SECTOR },
    { what: 'the primary GPT', start: SECTOR, end: GPT_HEADER_BYTES },
    { what: 'the backup GPT', start: size - GPT_FOOTER_BYTES, end: size },
  ];
}

/**
 * A blob file's data runs at `offset` (SEEK_DATA / SEEK_HOLE): its holes are
 * never read. A file that cannot be opened now is one extent, and the
 * emitter says why when it reads it.
 */
function blobExtents(source: string, size: number, offset: number): ImageExtent[] {
  const path = Buffer.from(source);
  let fd: number;
  try {
    fd = fs.openSync(source, 'r');
  } catch {
    return [{ offset, length: size, path, fileOffset: 0, expectSize: size }];
  }
  try {
    return dataSegments(fd, size).map(([s, t]) => ({ offset: offset + s, length: t - s, path, fileOffset: s, expectSize: size }));
  } finally {
    fs.closeSync(fd);
  }
}

export function compileDisk(spec: DiskSpec): CompiledDisk {
  const { table, partitions: parts } = spec;
  const A = spec.alignment;
  if (!(Number.isSafeInteger(A) && A > 0 && A % SECTOR === 0)) invalid(`alignment ${A}: give a positive multiple of 512 bytes`);
  const isGpt = table === 'gpt' || table === 'hybrid';
  const head = table === 'none' ? 0 : isGpt ? GPT_HEADER_BYTES : SECTOR;
  const tail = isGpt ? GPT_FOOTER_BYTES : 0;
  const what = (p: DiskPartition) => (p.label ? `${p.key} ("${p.label}")` : p.key);
  if (table === 'none' && (parts.length !== 1 || !parts[0].grow)) invalid('a disk without a partition table holds exactly one filesystem');
  if (table === 'none' && spec.bootCode) invalid('a disk without a partition table has no MBR to hold boot code');

  const needs = new Map<DiskPartition, number>();
  const need = (p: DiskPartition) => {
    if (!needs.has(p)) needs.set(p, contentNeed(p));
    return needs.get(p)!;
  };

  // Sizes of the fixed partitions; the grow partition's comes from the disk.
  const growing = parts.filter((p) => p.grow);
  if (growing.length > 1) invalid(`${growing[0].key} and ${growing[1].key} both say grow; at most one partition takes what the disk has left`);
  const sizes = parts.map((p) => {
    for (const [k, v] of [['start', p.start], ['size', p.size], ['minSize', p.minSize], ['maxSize', p.maxSize]] as const) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0 && v % SECTOR === 0)) invalid(`${p.key}.${k} ${v}: give a multiple of 512 bytes`);
    }
    if (p.grow) return 0;
    if (p.size !== undefined) {
      if (p.size === 0) invalid(`${p.key}.size: a partition needs at least one sector`);
      return p.size;
    }
    const s = up(Math.max(p.minSize ?? 0, need(p), 1), A);
    if (p.maxSize === undefined || s <= p.maxSize) return s;
    if (p.minSize !== undefined && p.minSize > p.maxSize) invalid(`${p.key}: minSize ${formatSize(p.minSize)} is above maxSize ${formatSize(p.maxSize)}`);
    if (need(p) > p.maxSize) {
      throw new DiskwrightError('SIZE_TOO_SMALL', `${p.key}.maxSize ${formatSize(p.maxSize)} is too small for its content; it needs at least ${formatSize(need(p))}`, { minimum: need(p) });
    }
    // The content fits under maxSize, only the rounding did not.
    return p.maxSize;
  });

  // Placement in list order; nothing auto-placed may follow the grow partition.
  const starts: number[] = [];
  let cursor = up(head, A);
  let growAt = -1;
  parts.forEach((p, i) => {
    if (growAt >= 0 && p.start === undefined) invalid(`${p.key} comes after the grow partition ${parts[growAt].key}; list it before, or give its start`);
    const start = p.start ?? up(cursor, A);
    starts.push(start);
    if (p.grow) growAt = i;
    else cursor = Math.max(cursor, start + sizes[i]);
  });

  for (const b of spec.rawBlobs) {
    if (!(Number.isSafeInteger(b.offset) && b.offset >= 0)) invalid(`${b.key}.offset ${b.offset}: give a byte offset of 0 or more`);
  }
  // The disk: given, or exactly what the partitions and blobs need.
  const blobEnd = Math.max(0, ...spec.rawBlobs.map((b) => b.offset + b.size));
  const autoSize = (): number => {
    const fixedEnd = Math.max(head, ...parts.map((p, i) => (p.grow ? 0 : starts[i] + sizes[i])));
    if (growAt >= 0) {
      const g = parts[growAt];
      const content = Math.max(need(g), g.minSize ?? 0, SECTOR);
      if (spec.exactSize) return starts[growAt] + content;
      const end = up(Math.max(fixedEnd, starts[growAt] + content), A);
      return Math.max(end + (tail ? up(tail, A) : 0), up(blobEnd, A));
    }
    return Math.max(up(fixedEnd, A) + (tail ? up(tail, A) : 0), up(blobEnd, A));
  };
  const diskTooSmall = (): never => {
    const min = autoSize();
    throw new DiskwrightError('SIZE_TOO_SMALL', `diskSize ${(spec.diskSize as number) / MiB} (MiB) is too small for this layout and content; it needs at least ${Math.ceil(min / MiB)}`, { minimum: min });
  };
  const diskSize = spec.diskSize === 'auto' ? autoSize() : spec.diskSize;
  if (!(Number.isSafeInteger(diskSize) && diskSize > 0 && diskSize % SECTOR === 0)) invalid(`disk size ${diskSize}: give a positive multiple of 512 bytes`);
  const usableEnd = diskSize - tail;
  if (growAt >= 0) {
    // parted's 100% on GPT: the last aligned boundary before the backup GPT.
    const end = tail ? down(usableEnd, A) : diskSize;
    sizes[growAt] = end - starts[growAt];
    const g = parts[growAt];
    if (sizes[growAt] < Math.max(SECTOR, g.minSize ?? 0)) diskTooSmall();
    if (g.maxSize !== undefined && sizes[growAt] > g.maxSize) sizes[growAt] = g.maxSize;
  }
  parts.forEach((p, i) => {
    if (starts[i] + sizes[i] > usableEnd) {
      if (spec.diskSize !== 'auto') diskTooSmall();
      invalid(`${what(p)} ends at byte ${starts[i] + sizes[i]}, past the usable end of the disk (${usableEnd})`);
    }
  });
  for (const b of spec.rawBlobs) if (b.offset + b.size > diskSize) diskTooSmall();

  // Nothing may share a byte: table, partitions, blobs.
  const things = [
    ...tableRegions(table, diskSize),
    ...parts.map((p, i) => ({ what: what(p), start: starts[i], end: starts[i] + sizes[i] })),
    ...spec.rawBlobs.map((b) => ({ what: `${b.key} (${b.name})`, start: b.offset, end: b.offset + b.size })),
  ];
  for (let i = 0; i < things.length; i++) {
    for (let j = i + 1; j < things.length; j++) {
      const a = things[i];
      const b = things[j];
      if (a.start < b.end && b.start < a.end) invalid(`${b.what} (${span(b.start, b.end)}) overlaps ${a.what} (${span(a.start, a.end)}); move one of them`, { a: a.what, b: b.what });
    }
  }

  // Each filesystem planned at its partition's size.
  const placed: { offset: number; image: Image }[] = [];
  const reports: PartitionReport[] = [];
  const specs: PartitionSpec[] = [];
  const hybridMbr = table === 'hybrid' ? parts.flatMap((p, i) => (p.inHybridMbr ? [i] : [])) : undefined;
  parts.forEach((p, i) => {
    const start = starts[i];
    const size = sizes[i];
    const partTooSmall = (needBytes: number): never => {
      if (p.grow) diskTooSmall();
      const msg = p.tooSmall?.(needBytes) ?? `${p.key}: size ${formatSize(size)} is too small for its content; it needs at least ${formatSize(needBytes)}`;
      throw new DiskwrightError('SIZE_TOO_SMALL', msg, { minimum: needBytes });
    };
    const c = p.content;
    let filesystem: FsReport | undefined;
    let prepared: PartitionReport['prepared'];
    if (c && c.fs !== 'image') {
      const driver = driverNamed(c.fs)!;
      if (!driver.fits(size)) partTooSmall(need(p));
      const plan = fitting(() => driver.plan(c, size, table === 'none' ? 0 : start / SECTOR), (m) => partTooSmall(m || need(p)));
      placed.push({ offset: start, image: plan.image });
      filesystem = plan.report;
    } else if (c?.fs === 'image') {
      if (c.image.size > size) partTooSmall(up(c.image.size, SECTOR));
      placed.push({ offset: start, image: c.image });
      prepared = { type: c.type, bytes: c.image.size };
    }

    const attrs = p.attributes ?? 0n;
    const legacy = (attrs & GPT_ATTR.legacyBiosBootable) !== 0n;
    const rest = attrs & ~GPT_ATTR.legacyBiosBootable;
    specs.push({ name: p.label, start, size, typeGuid: p.typeGuid, mbrType: p.mbrType, guid: isGpt ? p.guid : undefined, bootable: p.bootable, legacyBiosBootable: legacy || undefined, attributes: rest || undefined });
    const inMbr = table === 'mbr' || (hybridMbr?.includes(i) ?? false);
    const mbrType = p.mbrType ?? (p.typeGuid === undefined ? MBR_TYPE.linux : mbrTypeForGpt(p.typeGuid));
    reports.push({
      number: table === 'none' ? null : i + 1,
      role: p.role,
      name: p.label,
      start,
      size,
      startSector: start / SECTOR,
      sectors: size / SECTOR,
      typeGuid: isGpt ? p.typeGuid : undefined,
      mbrType: inMbr && mbrType !== undefined ? hex(mbrType, 2) : undefined,
      guid: isGpt ? p.guid : undefined,
      bootable: p.bootable ?? false,
      legacyBiosBootable: legacy,
      attributes: rest ? hex(rest, 16) : undefined,
      filesystem,
      prepared,
    });
  });

  const blobs: BlobReport[] = [];
  const extra: ImageExtent[] = [];
  for (const b of spec.rawBlobs) {
    if (b.content) extra.push({ offset: b.offset, length: b.size, buffer: b.content.subarray(0, b.size) });
    else if (b.size > 0) extra.push(...blobExtents(b.source, b.size, b.offset));
    blobs.push({ key: b.key, source: b.name, offset: b.offset, size: b.size });
  }
  if (table !== 'none') {
    extra.push(...encodeTable({ kind: table, diskSize, diskGuid: spec.diskGuid, diskSignature: spec.diskSignature, seed: spec.seed, partitions: specs, hybridMbr, bootCode: spec.bootCode }));
  }
  return {
    disk: composeDisk(diskSize, placed, extra),
    size: diskSize,
    table,
    diskGuid: isGpt ? spec.diskGuid : undefined,
    diskSignature: table !== 'gpt' && table !== 'none' && spec.diskSignature !== undefined ? hex(spec.diskSignature, 8) : undefined,
    partitions: reports,
    blobs,
  };
}
