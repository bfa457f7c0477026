// `diskwright build CONFIG`: a whole disk image from one config, the way
// nixpkgs' make-disk-image lays it out. Trees first (root, contents, owners
// by name, boot partition files), then each filesystem planned and placed in
// its partition, then the table; one extent map for the whole disk.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from './errors.ts';
import { defaultEpoch } from './mkfs.ts';
import type { ImageConfig } from '../config/schema.ts';
import type { DirEntry } from '../tree/model.ts';
import { mergeDir, scanSources } from '../tree/scan.ts';
import { applyOwners, checkTargetParents, contentsTree, emptyDir } from '../tree/contents.ts';
import { withStore } from './store.ts';
import { planExt4, type Ext4Options, type Ext4Plan } from '../fs/ext4/planner.ts';
import { planFat, type FatStats } from '../fs/fat/planner.ts';
import { autoDiskSize, layoutShape, MiB, rootEnd as rootEndOf, rootStart, type Role, type Slot } from '../partition/layouts.ts';
import { encodeTable, type PartitionSpec } from '../partition/table.ts';
import { GPT_TYPE, MBR_TYPE, rootTypeGuid } from '../partition/types.ts';
import { MAKE_DISK_IMAGE_DISK_GUID, MAKE_DISK_IMAGE_PART1_GUID, MAKE_DISK_IMAGE_PART2_GUID, seededGuid } from '../partition/guid.ts';
import { composeDisk } from '../image/compose.ts';
import type { Image } from '../image/extent-map.ts';
import type { WriteResult } from '../format/raw.ts';
import { checkOutput, extension, productType, writeOutput, type Format } from '../format/output.ts';
import { writeSmallFile } from '../format/atomic-file.ts';
import { parseSize, formatSize } from '../util/sizes.ts';
import { formatUuid, parseUuid, seededU32, seededUuid } from '../util/ids.ts';

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
  role: Role;
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
  filesystem?: FsReport;
}

export interface DiskLayout {
  image: string;
  format: Format;
  compress: ImageConfig['compress'];
  size: number;
  partitionTableType: ImageConfig['partitionTableType'];
  table: 'mbr' | 'gpt' | 'hybrid' | 'none';
  diskGuid?: string;
  diskSignature?: string;
  partitions: PartitionReport[];
}

export interface BuildPlan {
  disk: Image;
  layout: DiskLayout;
}

export interface BuildInput {
  config: ImageConfig;
  /** Keys the config set itself: a given rootGPUID stays even when not deterministic. */
  given: Set<string>;
  baseDir: string;
  /** The config file as the user named it, for errors. */
  file?: string;
}

const sizeOf = (v: string | number) => (typeof v === 'number' ? v : parseSize(v)!);
const hex32 = (v: string) => parseInt(v.replace(/^0x/i, ''), 16) >>> 0;

function fatVolumeUuid(id: number): string {
  const h = id.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

/**
 * The root tree: `root` directories merged, the store closure added (or, with
 * onlyNixStore, the store alone), then `contents` over them, then owners by name.
 */
export function rootTree(cfg: ImageConfig, baseDir: string, epoch: number, config?: string): DirEntry {
  const owner = cfg.preserveOwners ? undefined : { uid: 0, gid: 0 };
  const clampMtime = cfg.clampMtime ? epoch : undefined;
  const roots = cfg.root === undefined ? [] : Array.isArray(cfg.root) ? cfg.root : [cfg.root];
  let tree = roots.length ? scanSources(roots.map((r) => path.resolve(baseDir, r)), { owner, clampMtime }) : undefined;
  if (cfg.onlyNixStore && cfg.contents.length) {
    throw new DiskwrightError('CONFIG_INVALID', 'onlyNixStore: the image holds only the store; remove contents (make-disk-image refuses them too)', {});
  }
  tree = withStore(tree, cfg, baseDir, epoch, owner, clampMtime) ?? emptyDir(epoch);
  if (cfg.contents.length) {
    const c = contentsTree(cfg.contents, { what: 'contents', config, baseDir, epoch, owner: owner ?? { uid: 0, gid: 0 }, clampMtime });
    checkTargetParents(tree, cfg.contents, { what: 'contents', config });
    tree = mergeDir(tree, c);
    applyOwners(tree, cfg.contents, 'contents', config);
  }
  return tree;
}

function bootTree(cfg: ImageConfig, key: 'espContents' | 'xbootldrContents', baseDir: string, epoch: number, config?: string): DirEntry {
  return contentsTree(cfg[key], { what: key, config, fat: true, baseDir, epoch, owner: { uid: 0, gid: 0 }, clampMtime: cfg.clampMtime ? epoch : undefined });
}

/** The config's epoch, else SOURCE_DATE_EPOCH (refused if not a time ext4 stores), else 1. */
export function buildEpoch(cfg: Pick<ImageConfig, 'epoch'>): number {
  return cfg.epoch ?? defaultEpoch();
}

export function planBuild(input: BuildInput): BuildPlan {
  const { config: cfg, given, baseDir, file } = input;
  const epoch = buildEpoch(cfg);
  checkOutput({ format: cfg.format, compress: cfg.compress, level: cfg.compressLevel, seed: cfg.seed, epoch });
  const shape = layoutShape(cfg.partitionTableType, sizeOf(cfg.bootSize));
  const roles = new Set(shape.slots.map((s) => s.role));
  const hasEsp = roles.has('esp') || roles.has('boot');
  if (cfg.espContents.length && !hasEsp) {
    throw new DiskwrightError('CONFIG_INVALID', `espContents: the ${cfg.partitionTableType} layout has no ESP or boot partition; use efi, hybrid, efixbootldr or legacy+boot`, {});
  }
  if (cfg.xbootldrContents.length && !roles.has('xbootldr')) {
    throw new DiskwrightError('CONFIG_INVALID', `xbootldrContents: only the efixbootldr layout has an XBOOTLDR partition`, {});
  }

  const tree = rootTree(cfg, baseDir, epoch, file);
  const det = cfg.deterministic;
  const seed = cfg.seed;
  const pick = (key: 'rootGPUID' | 'rootFSUID' | 'rootFSHashSeed', fallback: () => string | undefined) =>
    given.has(key) ? (cfg[key] as string) : fallback();
  const rootGuid = det || given.has('rootGPUID') ? cfg.rootGPUID : formatUuid(seededUuid(seed, 'gpt:root:guid'));
  const fsUuid = pick('rootFSUID', () => (det ? cfg.rootGPUID : undefined));
  const hashSeed = pick('rootFSHashSeed', () => (det ? fsUuid : undefined));

  // Boot filesystems have fixed sizes: bootSize says where they end.
  const fats = new Map<Slot, { image: Image; stats: FatStats }>();
  for (const slot of shape.slots) {
    if (slot.role !== 'esp' && slot.role !== 'xbootldr' && slot.role !== 'boot') continue;
    const isX = slot.role === 'xbootldr';
    const contentsKey = isX ? 'xbootldrContents' : 'espContents';
    const label = isX ? cfg.xbootldrLabel : cfg.espLabel ?? (slot.role === 'boot' ? 'BOOT' : 'ESP');
    const idText = isX ? cfg.xbootldrVolumeId : cfg.espVolumeId;
    try {
      fats.set(slot, planFat(bootTree(cfg, contentsKey, baseDir, epoch, file), {
        size: slot.end! - slot.start,
        label,
        volumeId: idText !== undefined ? hex32(idText) : undefined,
        seed,
        role: slot.role,
        epoch,
        hiddenSectors: shape.table === 'none' ? 0 : slot.start / 512,
      }));
    } catch (err) {
      if (!(err instanceof DiskwrightError && err.code === 'SIZE_TOO_SMALL')) throw err;
      const need = Number(err.data.minimum);
      const fixed = cfg.partitionTableType === 'efixbootldr' && slot.role === 'esp';
      const fix = fixed
        ? `the efixbootldr ESP is fixed at 8-100 MiB; move files to xbootldrContents`
        : `raise bootSize to at least ${Math.ceil((slot.start + need) / MiB)}M`;
      throw new DiskwrightError('SIZE_TOO_SMALL', `${contentsKey}: the ${slot.name} partition (${formatSize(slot.end! - slot.start)}) is too small; its files need ${formatSize(need)}: ${fix}`, { minimum: need });
    }
  }

  // The root filesystem fills the rest of the disk.
  const ext4Opts: Omit<Ext4Options, 'size'> = {
    // make-disk-image's default label is "nix-store" for a store-only image.
    label: cfg.onlyNixStore && !given.has('label') ? 'nix-store' : cfg.label,
    uuid: fsUuid ? parseUuid(fsUuid)! : undefined,
    hashSeed: hashSeed ? parseUuid(hashSeed)! : undefined,
    seed,
    role: 'root',
    epoch,
    freeInodes: cfg.freeInodes,
  };
  const start = rootStart(shape);
  const auto = cfg.diskSize === 'auto';
  const extra = auto ? sizeOf(cfg.additionalSpace) : 0;
  let diskSize: number;
  // Free space comes with inodes to use it: one per bytesPerInode bytes of
  // it (mke2fs's ratio), so a booted system can create files there.
  const ratio = cfg.bytesPerInode;
  ext4Opts.freeInodes = Math.max(cfg.freeInodes, ratio ? Math.floor(extra / ratio) : 0);
  if (cfg.exactSize && (shape.table !== 'none' || !auto)) {
    throw new DiskwrightError('CONFIG_INVALID', 'exactSize: only with partitionTableType none and diskSize auto (partitions are MiB-aligned, a given diskSize is in MiB)', {});
  }
  if (auto) {
    const fsBytes = planExt4(tree, { ...ext4Opts, size: 'auto', freeBytes: extra }).stats.bytes;
    // make-disk-image rounds up to a whole MiB; make-ext4-fs resizes to the block.
    diskSize = cfg.exactSize ? fsBytes : autoDiskSize(shape, fsBytes);
  } else {
    diskSize = (cfg.diskSize as number) * MiB;
  }
  const rootEnd = rootEndOf(shape, diskSize);
  const tooSmall = (): never => {
    const min = autoDiskSize(shape, planExt4(tree, { ...ext4Opts, size: 'auto' }).stats.bytes);
    throw new DiskwrightError('SIZE_TOO_SMALL', `diskSize ${cfg.diskSize} (MiB) is too small for this layout and content; it needs at least ${min / MiB}`, { minimum: min });
  };
  const rootBytes = Math.floor((rootEnd - start) / 4096) * 4096;
  if (rootBytes < 64 * 1024) tooSmall();
  let ext4: Ext4Plan;
  try {
    ext4 = planExt4(tree, { ...ext4Opts, size: rootBytes, freeBytes: extra, inodeRatio: cfg.bytesPerInode || Number.MAX_SAFE_INTEGER });
  } catch (err) {
    if (err instanceof DiskwrightError && err.code === 'SIZE_TOO_SMALL') tooSmall();
    throw err;
  }

  // Partition identities: make-disk-image's fixed GUIDs when deterministic, else from the seed.
  const partGuid = (n: number, role: Role): string => {
    if (role === 'root') return rootGuid;
    if (det && n === 1) return MAKE_DISK_IMAGE_PART1_GUID;
    if (det && n === 2) return MAKE_DISK_IMAGE_PART2_GUID;
    return seededGuid(seed, `gpt:partition:${n}`);
  };
  const diskGuid = det ? MAKE_DISK_IMAGE_DISK_GUID : seededGuid(seed, 'gpt:disk');
  const diskSignature = cfg.diskSignature !== undefined ? hex32(cfg.diskSignature) : seededU32(seed, 'mbr:disk_signature');

  // The partitions with an MBR entry: all of them on MBR, all but the BIOS boot partition in a hybrid MBR.
  const hybridMbr = shape.table === 'hybrid' ? shape.slots.flatMap((s, i) => (s.role === 'bios' ? [] : [i])) : undefined;
  const inMbr = (i: number) => shape.table === 'mbr' || (hybridMbr?.includes(i) ?? false);
  const hex = (n: number, digits: number) => `0x${n.toString(16).padStart(digits, '0')}`;

  const parts: PartitionSpec[] = [];
  const reports: PartitionReport[] = [];
  const placed: { offset: number; image: Image }[] = [];
  shape.slots.forEach((slot, i) => {
    const n = i + 1;
    const end = slot.end ?? rootEnd;
    const spec: PartitionSpec = { name: slot.name, start: slot.start, size: end - slot.start };
    const gpt = shape.table === 'gpt' || shape.table === 'hybrid';
    switch (slot.role) {
      case 'root':
        spec.typeGuid = cfg.rootPartitionType === 'root' ? rootTypeGuid(cfg.system) : GPT_TYPE.linuxData;
        spec.mbrType = MBR_TYPE.linux;
        spec.bootable = shape.table === 'hybrid';
        break;
      case 'esp':
        spec.typeGuid = GPT_TYPE.esp;
        spec.mbrType = MBR_TYPE.efi;
        spec.legacyBiosBootable = true;
        break;
      case 'xbootldr':
        spec.typeGuid = GPT_TYPE.xbootldr;
        break;
      case 'boot':
        spec.mbrType = MBR_TYPE.fat32Lba;
        spec.bootable = true;
        break;
      case 'bios':
        spec.typeGuid = GPT_TYPE.biosBoot;
        break;
    }
    if (gpt) spec.guid = partGuid(n, slot.role);
    parts.push(spec);

    let filesystem: FsReport | undefined;
    if (slot.role === 'root') {
      placed.push({ offset: slot.start, image: ext4.image });
      const s = ext4.stats;
      filesystem = { type: 'ext4', label: s.label, uuid: formatUuid(s.uuid), bytes: s.bytes, freeBytes: s.freeBlocks * s.blockSize, freeInodes: s.freeInodes, usedInodes: s.usedInodes };
    } else if (fats.has(slot)) {
      const f = fats.get(slot)!;
      placed.push({ offset: slot.start, image: f.image });
      const s = f.stats;
      filesystem = { type: 'vfat', label: s.label, uuid: fatVolumeUuid(s.volumeId), bytes: s.bytes, freeBytes: s.freeBytes, fatType: s.fatType, clusterBytes: s.clusterBytes };
    }
    reports.push({
      number: shape.table === 'none' ? null : n,
      role: slot.role,
      name: slot.name,
      start: spec.start,
      size: spec.size,
      startSector: spec.start / 512,
      sectors: spec.size / 512,
      typeGuid: gpt ? spec.typeGuid : undefined,
      mbrType: inMbr(i) ? hex(spec.mbrType!, 2) : undefined,
      guid: spec.guid,
      bootable: spec.bootable ?? false,
      legacyBiosBootable: spec.legacyBiosBootable ?? false,
      filesystem,
    });
  });

  let disk: Image;
  let layoutTable: Pick<DiskLayout, 'diskGuid' | 'diskSignature'> = {};
  if (shape.table === 'none') {
    disk = ext4.image;
  } else {
    const tableExtents = encodeTable({ kind: shape.table, diskSize, diskGuid, diskSignature, partitions: parts, hybridMbr });
    disk = composeDisk(diskSize, placed, tableExtents);
    layoutTable = {
      diskGuid: shape.table === 'mbr' ? undefined : diskGuid,
      diskSignature: shape.table === 'gpt' ? undefined : hex(diskSignature, 8),
    };
  }
  const layout: DiskLayout = {
    image: `${cfg.baseName}.${extension(cfg)}`,
    format: cfg.format,
    compress: cfg.compress,
    size: diskSize,
    partitionTableType: cfg.partitionTableType,
    table: shape.table,
    ...layoutTable,
    partitions: reports,
  };
  return { disk, layout };
}

export interface BuildResult extends BuildPlan {
  imagePath: string;
  write: WriteResult;
}

/** Plans and writes OUTDIR/<baseName>.img, nix-support/hydra-build-products and layout.json. */
export function buildImage(input: BuildInput & { outDir: string }): BuildResult {
  const plan = planBuild(input);
  const outDir = path.resolve(input.outDir);
  if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) {
    throw new DiskwrightError('OUTPUT_IS_DIR', `output ${input.outDir} exists and is not a directory; give a directory (default ./result)`, {});
  }
  const imagePath = path.join(outDir, plan.layout.image);
  const cfg = input.config;
  const write = writeOutput(plan.disk, { format: cfg.format, compress: cfg.compress, level: cfg.compressLevel, seed: cfg.seed, epoch: buildEpoch(cfg) }, imagePath)!;
  // The image is complete: the small files follow, each written whole.
  writeSmallFile(path.join(outDir, 'nix-support', 'hydra-build-products'), 'build products list', `file ${productType(cfg)} ${imagePath}\n`);
  writeSmallFile(path.join(outDir, 'layout.json'), 'layout', JSON.stringify(plan.layout, null, 2) + '\n');
  return { ...plan, imagePath, write };
}
