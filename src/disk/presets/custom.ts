// Custom layouts: `partitions: [...]` and `rawBlobs` in the build config, as
// systemd-repart and genimage take them, turned into a DiskSpec. Types by
// alias (Discoverable Partitions GUIDs, root and usr per `system`), flags by
// name, each partition's filesystem from its own root/contents/storePaths, a
// prepared image, or nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../../errors.ts';
import type { ImageConfig, PartitionConfig } from '../../config/schema.ts';
import { openImage } from '../../format/input.ts';
import { probeFilesystem } from '../../fs/drivers.ts';
import { GPT_ATTR } from '../../partition/gpt.ts';
import { isGuid, seededGuid } from '../../partition/guid.ts';
import { GPT_DPS_TYPE, GPT_TYPE, MBR_TYPE, rootTypeGuid, usrTypeGuid } from '../../partition/types.ts';
import { parseUuid, seededU32 } from '../../util/ids.ts';
import { formatSize } from '../../util/sizes.ts';
import { buildTree } from '../content.ts';
import type { DiskPartition, DiskSpec, RawBlob, TableKind } from '../spec.ts';
import { hex32, sizeOf, type PresetInput } from './make-disk-image.ts';

const MBR_LINUX = MBR_TYPE.linux;
/** Free space comes with inodes to use it, one per 16 KiB (mke2fs's default ratio), as in make-disk-image builds. */
const INODE_RATIO = 16384;
/** Each alias: its GPT type (from the system for root and usr) and its MBR type byte (none: GPT only). */
const ALIASES: Record<string, { gpt: (system: string) => string; mbr?: number }> = {
  esp: { gpt: () => GPT_TYPE.esp, mbr: MBR_TYPE.efi },
  xbootldr: { gpt: () => GPT_TYPE.xbootldr, mbr: MBR_TYPE.xbootldr },
  'bios-boot': { gpt: () => GPT_TYPE.biosBoot },
  linux: { gpt: () => GPT_TYPE.linuxData, mbr: MBR_LINUX },
  root: { gpt: rootTypeGuid, mbr: MBR_LINUX },
  usr: { gpt: usrTypeGuid, mbr: MBR_LINUX },
  home: { gpt: () => GPT_DPS_TYPE.home, mbr: MBR_LINUX },
  srv: { gpt: () => GPT_DPS_TYPE.srv, mbr: MBR_LINUX },
  var: { gpt: () => GPT_DPS_TYPE.var, mbr: MBR_LINUX },
  tmp: { gpt: () => GPT_DPS_TYPE.tmp, mbr: MBR_LINUX },
  swap: { gpt: () => GPT_DPS_TYPE.swap, mbr: 0x82 },
};

function bad(key: string, message: string): never {
  throw new DiskwrightError('CONFIG_INVALID', `${key}: ${message}`, { key });
}

/** The GPT type GUID and MBR type byte a `type` names on this table kind. */
function resolveType(type: string, table: TableKind, system: string, key: string): { typeGuid?: string; mbrType?: number; role: string } {
  const alias = Object.hasOwn(ALIASES, type) ? ALIASES[type] : undefined;
  const known = `use a GPT type GUID${table === 'gpt' ? '' : ', an MBR type byte such as 0x83'} or one of ${Object.keys(ALIASES).join(', ')}`;
  if (alias) {
    if (table === 'mbr') {
      if (alias.mbr === undefined) bad(key, `"${type}" is a GPT-only type; an MBR has no type for it`);
      return { mbrType: alias.mbr, role: type };
    }
    return { typeGuid: alias.gpt(system), mbrType: alias.mbr, role: type };
  }
  if (table === 'mbr' && /^(0x)?[0-9a-f]{1,2}$/i.test(type)) {
    const b = parseInt(type.replace(/^0x/i, ''), 16);
    if (b === 0 || b === MBR_TYPE.gptProtective) bad(key, `MBR type ${type} marks an empty entry or a GPT disk; ${known}`);
    return { mbrType: b, role: 'data' };
  }
  if (table !== 'mbr' && isGuid(type)) return { typeGuid: type.toUpperCase(), role: 'data' };
  bad(key, `unknown type "${type}"; ${known}`);
}

/** A prepared filesystem image as partition content; refused unless it holds ext4 or FAT. */
function preparedImage(file: string, key: string): DiskPartition['content'] {
  let src;
  try {
    src = openImage(file);
  } catch (e) {
    if (e instanceof DiskwrightError && e.code === 'INPUT_NOT_IMAGE') bad(key, `${file} is not a filesystem image (no image header, no ext2/3/4 superblock or FAT boot sector); give an ext4 or FAT image`);
    // The opener's words (missing, unreadable), said of the key.
    if (e instanceof DiskwrightError) throw new DiskwrightError(e.code, `${key}: ${e.message}`, { ...e.data, key });
    throw e;
  }
  const volume = { size: src.size, read: (o: number, l: number) => src.read(o, l) };
  const driver = probeFilesystem(volume);
  if (!driver) {
    src.close();
    bad(key, `${file} is not a filesystem image (no ext2/3/4 superblock or FAT boot sector); give an ext4 or FAT image, or use fs and contents`);
  }
  // A volume its own reader refuses is no filesystem to copy in either.
  try {
    driver.open(volume).summary();
  } catch (e) {
    src.close();
    if (e instanceof DiskwrightError) bad(key, `${file} is not a usable ${driver.name} image: ${e.message}`);
    throw e;
  }
  // The image's extents read the file while the disk is written: it stays open until the process ends.
  return { fs: 'image', image: src.image(), type: driver.name };
}

function partitionOf(p: PartitionConfig, i: number, table: TableKind, input: PresetInput): DiskPartition {
  const { config: cfg, baseDir, epoch } = input;
  const key = `partitions[${i}]`;
  const label = p.label ?? '';
  const t = resolveType(p.type, table, cfg.system, `${key}.type`);
  const isGpt = table !== 'mbr';
  const flags: [keyof PartitionConfig, bigint][] = [['legacyBootable', GPT_ATTR.legacyBiosBootable], ['growFileSystem', GPT_ATTR.growFileSystem], ['readOnly', GPT_ATTR.readOnly], ['noAuto', GPT_ATTR.noAuto]];
  let attributes = 0n;
  for (const [k, bit] of flags) {
    if (!p[k]) continue;
    if (!isGpt) bad(`${key}.${k}`, 'a GPT attribute; an MBR has nowhere to keep it (use bootable)');
    attributes |= bit;
  }
  if (p.bootable && table === 'gpt') bad(`${key}.bootable`, 'the MBR 0x80 flag; a GPT disk has none (use legacyBootable, or partitionTableType mbr or hybrid)');
  const part: DiskPartition = {
    key,
    label,
    role: t.role,
    typeGuid: t.typeGuid,
    mbrType: t.mbrType,
    guid: isGpt ? (p.uuid?.toUpperCase() ?? seededGuid(cfg.seed, `gpt:partition:${label || i}`)) : undefined,
    start: p.start === undefined ? undefined : sizeOf(p.start),
    size: p.size === undefined ? undefined : sizeOf(p.size),
    minSize: p.minSize === undefined ? undefined : sizeOf(p.minSize),
    maxSize: p.maxSize === undefined ? undefined : sizeOf(p.maxSize),
    grow: p.grow,
    bootable: p.bootable || undefined,
    attributes: attributes || undefined,
  };
  const hasContent = p.root !== undefined || p.contents.length > 0 || p.storePaths.length > 0;
  if (p.image !== undefined) {
    if (p.fs !== 'none' || hasContent) bad(`${key}.image`, 'a prepared image is the whole partition; drop fs, root, contents and storePaths');
    part.content = preparedImage(path.resolve(baseDir, p.image), `${key}.image`);
  } else if (p.fs === 'none') {
    if (hasContent) bad(`${key}.fs`, 'root, contents and storePaths need a filesystem; set fs to ext4 or vfat');
    if (part.size === undefined && part.minSize === undefined && !part.grow) bad(key, 'an empty partition needs size, minSize or grow');
  } else {
    // nixDatabase registers each ext4 partition's own closure; FAT cannot hold the gcroots symlink.
    const tree = buildTree({ ...cfg, root: p.root, contents: p.contents, storePaths: p.storePaths, additionalPaths: [], onlyNixStore: false, nixDatabase: cfg.nixDatabase && p.fs === 'ext4' }, baseDir, epoch, `${key}.contents`, input.file, p.fs === 'vfat');
    const freeBytes = sizeOf(p.freeSpace);
    const fsLabel = p.fsLabel ?? label;
    const role = `partition:${label || i}`;
    if (p.fs === 'ext4') {
      part.content = { fs: 'ext4', tree, options: { label: fsLabel, uuid: p.fsUuid ? parseUuid(p.fsUuid)! : undefined, seed: cfg.seed, role, epoch, freeInodes: Math.max(p.freeInodes, Math.floor(freeBytes / INODE_RATIO)) }, freeBytes };
    } else {
      part.content = { fs: 'vfat', tree, options: { label: fsLabel || undefined, volumeId: p.volumeId ? hex32(p.volumeId) : undefined, fatType: p.fatType, seed: cfg.seed, role, epoch }, freeBytes };
    }
  }
  part.tooSmall = (need) => `${key}.size ${formatSize(part.size ?? 0)} is too small for its content; it needs at least ${formatSize(need)} (${need} bytes)`;
  return part;
}

/** The raw blobs of a config: each source's size, bounded by maxSize. */
export function rawBlobsOf(blobs: ImageConfig['rawBlobs'], baseDir: string, key = 'rawBlobs'): RawBlob[] {
  return blobs.map((b, i) => {
    const k = `${key}[${i}]`;
    const source = path.resolve(baseDir, b.source);
    let st: fs.Stats;
    try {
      st = fs.statSync(source);
    } catch {
      bad(`${k}.source`, `${b.source} does not exist; give the file to write at offset ${b.offset}`);
    }
    if (!st.isFile()) bad(`${k}.source`, `${b.source} is not a regular file`);
    const max = b.maxSize === undefined ? undefined : sizeOf(b.maxSize);
    if (max !== undefined && st.size > max) bad(`${k}.source`, `${b.source} is ${st.size} bytes, more than maxSize ${max}`);
    return { key: k, source, name: b.source, size: st.size, offset: sizeOf(b.offset) };
  });
}

/** The DiskSpec of a config with `partitions`. */
export function customSpec(input: PresetInput): DiskSpec {
  const cfg = input.config;
  const kind = input.given.has('partitionTableType') ? cfg.partitionTableType : 'gpt';
  if (kind !== 'gpt' && kind !== 'mbr' && kind !== 'hybrid') bad('partitionTableType', `"${kind}" is a make-disk-image layout; with partitions give the table kind: gpt, mbr or hybrid`);
  for (const k of ['root', 'contents', 'storePaths', 'additionalPaths', 'espContents', 'xbootldrContents', 'bootSize', 'onlyNixStore'] as const) {
    if (input.given.has(k)) bad(k, 'belongs to the make-disk-image layouts; with partitions, give it in the partition that holds it');
  }
  const parts = cfg.partitions!;
  const table: TableKind = kind;
  if (table === 'mbr' && parts.length > 4) bad('partitions', `${parts.length} partitions; an MBR holds at most 4 (use gpt)`);
  const labels = new Map<string, number>();
  parts.forEach((p, i) => {
    if (p.label !== undefined && labels.has(p.label) && table !== 'mbr') bad(`partitions[${i}].label`, `"${p.label}" is also partitions[${labels.get(p.label)}]'s; GPT labels name partitions, give each its own`);
    if (p.label !== undefined) labels.set(p.label, i);
  });
  const alignment = sizeOf(cfg.alignment);
  const partitions = parts.map((p, i) => partitionOf(p, i, table, input));
  partitions.forEach((p, i) => {
    if (p.start !== undefined && p.start % alignment !== 0) bad(`partitions[${i}].start`, `${p.start} is not a multiple of alignment (${alignment} bytes); align it or lower alignment`);
  });
  if (table === 'hybrid') {
    // A hybrid MBR mirrors up to three partitions; BIOS boot partitions stay GPT-only.
    let n = 0;
    for (const p of partitions) p.inHybridMbr = p.role !== 'bios-boot' && n++ < 3;
  }
  return {
    table,
    alignment,
    diskSize: cfg.diskSize === 'auto' ? 'auto' : cfg.diskSize * 2 ** 20,
    diskGuid: seededGuid(cfg.seed, 'gpt:disk'),
    diskSignature: cfg.diskSignature !== undefined ? hex32(cfg.diskSignature) : seededU32(cfg.seed, 'mbr:disk_signature'),
    partitions,
    // sd-image's blobs are its postBuildBlobs, and errors say so.
    rawBlobs: rawBlobsOf(cfg.rawBlobs, input.baseDir, cfg.preset === 'sd-image' ? 'postBuildBlobs' : 'rawBlobs'),
  };
}
