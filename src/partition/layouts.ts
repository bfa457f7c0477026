// make-disk-image's partition layouts, as data: where each partition starts
// and ends, its name (what make-disk-image's parted call names it), its type
// and flags. Sizes are IEC: bootSize "256M" is where the boot partition ends,
// 256 MiB from the start of the disk, as in make-disk-image.
import { DiskwrightError } from '../api/errors.ts';
import type { PartitionTableType } from '../config/schema.ts';
import { formatSize } from '../util/sizes.ts';

export const MiB = 2 ** 20;
/** The backup GPT (entry array and header) at the end of the disk. */
export const GPT_TAIL = 33 * 512;

export type Role = 'root' | 'esp' | 'xbootldr' | 'boot' | 'bios';

export interface Slot {
  role: Role;
  /** GPT partition name, as make-disk-image's parted call gives it. */
  name: string;
  start: number;
  /** Exclusive end; undefined runs to the end of the usable area. */
  end?: number;
}

export interface LayoutShape {
  table: 'mbr' | 'gpt' | 'hybrid' | 'none';
  slots: Slot[];
  /** Bytes the table keeps after the last partition. */
  tail: number;
}

/** The partitions of a layout in partition-number order. */
export function layoutShape(type: PartitionTableType, bootSize: number): LayoutShape {
  const needBoot = (min: number) => {
    if (bootSize % MiB !== 0 || bootSize <= min) {
      throw new DiskwrightError('PARTITION_INVALID', `bootSize ${formatSize(bootSize)}: the ${type} layout needs a whole number of MiB above ${formatSize(min)} (it is where the boot partition ends)`, { bootSize });
    }
  };
  switch (type) {
    case 'none':
      return { table: 'none', slots: [{ role: 'root', name: '', start: 0 }], tail: 0 };
    case 'legacy':
      return { table: 'mbr', slots: [{ role: 'root', name: 'primary', start: MiB }], tail: 0 };
    case 'legacy+boot':
      needBoot(MiB);
      return { table: 'mbr', slots: [{ role: 'boot', name: 'primary', start: MiB, end: bootSize }, { role: 'root', name: 'primary', start: bootSize }], tail: 0 };
    case 'legacy+gpt':
      return { table: 'gpt', slots: [{ role: 'bios', name: 'no-fs', start: MiB, end: 2 * MiB }, { role: 'root', name: 'primary', start: 2 * MiB }], tail: GPT_TAIL };
    case 'efi':
      needBoot(8 * MiB);
      return { table: 'gpt', slots: [{ role: 'esp', name: 'ESP', start: 8 * MiB, end: bootSize }, { role: 'root', name: 'primary', start: bootSize }], tail: GPT_TAIL };
    case 'efixbootldr':
      needBoot(100 * MiB);
      return {
        table: 'gpt',
        slots: [
          { role: 'esp', name: 'ESP', start: 8 * MiB, end: 100 * MiB },
          { role: 'xbootldr', name: 'BOOT', start: 100 * MiB, end: bootSize },
          { role: 'root', name: 'ROOT', start: bootSize },
        ],
        tail: GPT_TAIL,
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
        tail: GPT_TAIL,
      };
  }
}

/** Where the root partition starts. */
export function rootStart(shape: LayoutShape): number {
  return shape.slots.find((s) => s.role === 'root')!.start;
}

/**
 * Where the root partition ends. parted's `100%` (make-disk-image's end) on
 * GPT stops at the last MiB boundary before the backup GPT; on MBR and bare
 * filesystems it is the end of the disk.
 */
export function rootEnd(shape: LayoutShape, diskSize: number): number {
  return shape.tail ? Math.floor((diskSize - shape.tail) / MiB) * MiB : diskSize;
}

/** The smallest whole-MiB disk whose root partition holds `rootBytes`. */
export function autoDiskSize(shape: LayoutShape, rootBytes: number): number {
  const end = Math.ceil((rootStart(shape) + rootBytes) / MiB) * MiB;
  return shape.tail ? end + Math.ceil(shape.tail / MiB) * MiB : end;
}
