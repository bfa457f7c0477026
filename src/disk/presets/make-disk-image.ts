// make-disk-image's seven layouts as a preset: the build config's options
// (partitionTableType, bootSize, diskSize, additionalSpace, ids...) turned into
// a DiskSpec with make-disk-image's partition names, types, GUIDs and offsets.
// Sizes are IEC: bootSize "256M" is where the boot partition ends, 256 MiB
// from the start of the disk, as in make-disk-image.
import { DiskwrightError } from '../../errors.ts';
import type { ImageConfig, PartitionTableType } from '../../config/schema.ts';
import { GPT_ATTR } from '../../partition/gpt.ts';
import { GPT_TYPE, MBR_TYPE, rootTypeGuid } from '../../partition/types.ts';
import { MAKE_DISK_IMAGE_DISK_GUID, MAKE_DISK_IMAGE_PART1_GUID, MAKE_DISK_IMAGE_PART2_GUID, seededGuid } from '../../partition/guid.ts';
import { formatUuid, parseUuid, seededU32, seededUuid } from '../../util/ids.ts';
import { formatSize, parseSize } from '../../util/sizes.ts';
import { bootFilesTree, buildTree } from '../content.ts';
import type { DiskPartition, DiskSpec, TableKind } from '../spec.ts';

export const MiB = 2 ** 20;

export type Role = 'root' | 'esp' | 'xbootldr' | 'boot' | 'bios';

interface Slot {
  role: Role;
  /** GPT partition name, as make-disk-image's parted call gives it. */
  name: string;
  start: number;
  /** Exclusive end; undefined: the root, which takes the rest. */
  end?: number;
}

/** The partitions of a layout in partition-number order. */
function layoutShape(type: PartitionTableType, bootSize: number): { table: TableKind; slots: Slot[] } {
  const needBoot = (min: number) => {
    if (bootSize % MiB !== 0 || bootSize <= min) {
      throw new DiskwrightError('PARTITION_INVALID', `bootSize ${formatSize(bootSize)}: the ${type} layout needs a whole number of MiB above ${formatSize(min)} (it is where the boot partition ends)`, { bootSize });
    }
  };
  switch (type) {
    case 'none':
      return { table: 'none', slots: [{ role: 'root', name: '', start: 0 }] };
    case 'legacy':
      return { table: 'mbr', slots: [{ role: 'root', name: 'primary', start: MiB }] };
    case 'legacy+boot':
      needBoot(MiB);
      return { table: 'mbr', slots: [{ role: 'boot', name: 'primary', start: MiB, end: bootSize }, { role: 'root', name: 'primary', start: bootSize }] };
    case 'legacy+gpt':
      return { table: 'gpt', slots: [{ role: 'bios', name: 'no-fs', start: MiB, end: 2 * MiB }, { role: 'root', name: 'primary', start: 2 * MiB }] };
    case 'efi':
      needBoot(8 * MiB);
      return { table: 'gpt', slots: [{ role: 'esp', name: 'ESP', start: 8 * MiB, end: bootSize }, { role: 'root', name: 'primary', start: bootSize }] };
    case 'efixbootldr':
      needBoot(100 * MiB);
      return {
        table: 'gpt',
        slots: [
          { role: 'esp', name: 'ESP', start: 8 * MiB, end: 100 * MiB },
          { role: 'xbootldr', name: 'BOOT', start: 100 * MiB, end: bootSize },
          { role: 'root', name: 'ROOT', start: bootSize },
        ],
      };
    case 'hybrid':
      needBoot(8 * MiB);
      // parted's `mkpart no-fs 0 1024KiB` makes LBA 34..2048: we put it where make-disk-image gets it.
      return {
        table: 'hybrid',
        slots: [
          { role: 'esp', name: 'ESP', start: 8 * MiB, end: bootSize },
          { role: 'bios', name: 'no-fs', start: 34 * 512, end: 2049 * 512 },
          { role: 'root', name: 'primary', start: bootSize },
        ],
      };
    default:
      throw new DiskwrightError('CONFIG_INVALID', `partitionTableType ${type}: a table kind for a custom layout; give partitions`, {});
  }
}

export const sizeOf = (v: string | number) => (typeof v === 'number' ? v : parseSize(v)!);
export const hex32 = (v: string) => parseInt(v.replace(/^0x/i, ''), 16) >>> 0;

export interface PresetInput {
  config: ImageConfig;
  /** Keys the config set itself: a given rootGPUID stays even when not deterministic. */
  given: Set<string>;
  baseDir: string;
  epoch: number;
  /** The config file as the user named it, for errors. */
  file?: string;
}

/** The DiskSpec of a make-disk-image build config. */
export function makeDiskImageSpec({ config: cfg, given, baseDir, epoch, file }: PresetInput): DiskSpec {
  const shape = layoutShape(cfg.partitionTableType, sizeOf(cfg.bootSize));
  const roles = new Set(shape.slots.map((s) => s.role));
  if (cfg.espContents.length && !roles.has('esp') && !roles.has('boot')) {
    throw new DiskwrightError('CONFIG_INVALID', `espContents: the ${cfg.partitionTableType} layout has no ESP or boot partition; use efi, hybrid, efixbootldr or legacy+boot`, {});
  }
  if (cfg.xbootldrContents.length && !roles.has('xbootldr')) {
    throw new DiskwrightError('CONFIG_INVALID', `xbootldrContents: only the efixbootldr layout has an XBOOTLDR partition`, {});
  }
  const tree = buildTree(cfg, baseDir, epoch, 'contents', file);
  const det = cfg.deterministic;
  const seed = cfg.seed;
  const pick = (key: 'rootFSUID' | 'rootFSHashSeed', fallback: () => string | undefined) => (given.has(key) ? (cfg[key] as string) : fallback());
  const rootGuid = det || given.has('rootGPUID') ? cfg.rootGPUID : formatUuid(seededUuid(seed, 'gpt:root:guid'));
  const fsUuid = pick('rootFSUID', () => (det ? cfg.rootGPUID : undefined));
  const hashSeed = pick('rootFSHashSeed', () => (det ? fsUuid : undefined));
  const auto = cfg.diskSize === 'auto';
  if (cfg.exactSize && (shape.table !== 'none' || !auto)) {
    throw new DiskwrightError('CONFIG_INVALID', 'exactSize: only with partitionTableType none and diskSize auto (partitions are MiB-aligned, a given diskSize is in MiB)', {});
  }
  const extra = auto ? sizeOf(cfg.additionalSpace) : 0;
  // Free space comes with inodes to use it: one per bytesPerInode bytes of
  // it (mke2fs's ratio), so a booted system can create files there.
  const ratio = cfg.bytesPerInode;

  const gpt = shape.table === 'gpt' || shape.table === 'hybrid';
  const partitions = shape.slots.map((slot, i): DiskPartition => {
    const n = i + 1;
    const p: DiskPartition = { key: slot.role === 'root' ? 'diskSize' : 'bootSize', label: slot.name, role: slot.role, start: slot.start };
    if (slot.end !== undefined) p.size = slot.end - slot.start;
    else p.grow = true;
    // Partition identities: make-disk-image's fixed GUIDs when deterministic, else from the seed.
    if (gpt) p.guid = slot.role === 'root' ? rootGuid : det && n === 1 ? MAKE_DISK_IMAGE_PART1_GUID : det && n === 2 ? MAKE_DISK_IMAGE_PART2_GUID : seededGuid(seed, `gpt:partition:${n}`);
    // Everything but the BIOS boot partition is mirrored in a hybrid MBR.
    p.inHybridMbr = slot.role !== 'bios';
    switch (slot.role) {
      case 'root':
        p.typeGuid = cfg.rootPartitionType === 'root' ? rootTypeGuid(cfg.system) : GPT_TYPE.linuxData;
        p.mbrType = MBR_TYPE.linux;
        p.bootable = shape.table === 'hybrid';
        p.content = {
          fs: 'ext4',
          tree,
          options: {
            // make-disk-image's default label is "nix-store" for a store-only image.
            label: cfg.onlyNixStore && !given.has('label') ? 'nix-store' : cfg.label,
            uuid: fsUuid ? parseUuid(fsUuid)! : undefined,
            hashSeed: hashSeed ? parseUuid(hashSeed)! : undefined,
            seed,
            role: 'root',
            epoch,
            freeInodes: Math.max(cfg.freeInodes, ratio ? Math.floor(extra / ratio) : 0),
          },
          freeBytes: extra,
          inodeRatio: cfg.bytesPerInode || Number.MAX_SAFE_INTEGER,
        };
        return p;
      case 'esp':
        p.typeGuid = GPT_TYPE.esp;
        p.mbrType = MBR_TYPE.efi;
        p.attributes = GPT_ATTR.legacyBiosBootable;
        break;
      case 'xbootldr':
        p.typeGuid = GPT_TYPE.xbootldr;
        break;
      case 'boot':
        p.mbrType = MBR_TYPE.fat32Lba;
        p.bootable = true;
        break;
      case 'bios':
        p.typeGuid = GPT_TYPE.biosBoot;
        return p;
    }
    // Boot filesystems have fixed sizes: bootSize says where they end.
    const isX = slot.role === 'xbootldr';
    const key = isX ? 'xbootldrContents' : 'espContents';
    const idText = isX ? cfg.xbootldrVolumeId : cfg.espVolumeId;
    p.key = key;
    p.content = {
      fs: 'vfat',
      tree: bootFilesTree(cfg[key], key, baseDir, epoch, cfg.clampMtime, file),
      options: {
        label: isX ? cfg.xbootldrLabel : cfg.espLabel ?? (slot.role === 'boot' ? 'BOOT' : 'ESP'),
        volumeId: idText !== undefined ? hex32(idText) : undefined,
        seed,
        role: slot.role,
        epoch,
      },
    };
    const fixed = cfg.partitionTableType === 'efixbootldr' && slot.role === 'esp';
    p.tooSmall = (need) => {
      const fix = fixed ? `the efixbootldr ESP is fixed at 8-100 MiB; move files to xbootldrContents` : `raise bootSize to at least ${Math.ceil((slot.start + need) / MiB)}M`;
      // Named by the option that fixes it: the files may be the bootloader's and the kernels, not espContents.
      return `${fixed ? key : 'bootSize'}: the ${slot.name} partition (${formatSize(p.size!)}) is too small; its files need ${formatSize(need)}: ${fix}`;
    };
    return p;
  });

  return {
    table: shape.table,
    alignment: MiB,
    diskSize: auto ? 'auto' : (cfg.diskSize as number) * MiB,
    exactSize: cfg.exactSize,
    diskGuid: det ? MAKE_DISK_IMAGE_DISK_GUID : seededGuid(seed, 'gpt:disk'),
    diskSignature: cfg.diskSignature !== undefined ? hex32(cfg.diskSignature) : seededU32(seed, 'mbr:disk_signature'),
    partitions,
    rawBlobs: [],
  };
}
