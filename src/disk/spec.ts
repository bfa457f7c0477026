// A disk as data: the partition table kind, the partitions (where, how big,
// what type, what they hold) and raw blobs at byte offsets. Presets
// (make-disk-image's layouts, sd-image) and custom `partitions:` configs all
// produce one of these; src/disk/compile.ts is the one place that turns it
// into bytes. Sizes and offsets are bytes.
import type { DirEntry } from '../tree/model.ts';
import type { Ext4Options } from '../fs/ext4/planner.ts';
import type { FatOptions } from '../fs/fat/planner.ts';
import type { Image } from '../image/extent-map.ts';

export type TableKind = 'mbr' | 'gpt' | 'hybrid' | 'none';

/** An ext4 filesystem made from a tree; it fills its partition. */
export interface Ext4Content {
  fs: 'ext4';
  tree: DirEntry;
  options: Omit<Ext4Options, 'size' | 'freeBytes' | 'inodeRatio'>;
  /** Free space to leave when the partition is sized for the content. */
  freeBytes?: number;
  /** Bytes per inode at the partition's size (mke2fs -i); only with a size. */
  inodeRatio?: number;
}

/** A FAT filesystem made from a tree; it fills its partition. */
export interface VfatContent {
  fs: 'vfat';
  tree: DirEntry;
  options: Omit<FatOptions, 'size' | 'hiddenSectors' | 'freeBytes'>;
  freeBytes?: number;
}

/** A prepared filesystem image copied in as it is. */
export interface ImageContent {
  fs: 'image';
  image: Image;
  /** What it is, for the layout: the driver name of the filesystem found in it. */
  type: string;
}

export type PartitionContent = Ext4Content | VfatContent | ImageContent;

export interface DiskPartition {
  /** The config key that made this partition, for errors: "partitions[2]", "espContents". */
  key: string;
  /** GPT partition name. */
  label: string;
  /** What the partition is for, in the layout (root, esp, swap, ...). */
  role: string;
  typeGuid?: string;
  mbrType?: number;
  guid?: string;
  /** Byte offset; default after the previous partition, aligned. */
  start?: number;
  /** Exact size; default what the content needs (plus its free space), at least minSize, at most maxSize, aligned. */
  size?: number;
  minSize?: number;
  maxSize?: number;
  /** Takes what the disk has left; at most one, and the last on the disk. */
  grow?: boolean;
  /** MBR 0x80 flag. */
  bootable?: boolean;
  /** GPT attribute bits. */
  attributes?: bigint;
  /** In a hybrid MBR too. */
  inHybridMbr?: boolean;
  content?: PartitionContent;
  /** The error for content that does not fit a partition of fixed size, given the bytes it needs. */
  tooSmall?: (need: number) => string;
}

export interface RawBlob {
  /** "rawBlobs[0]", for errors. */
  key: string;
  /** The source file (absolute) and its size when planned. */
  source: string;
  /** Bytes made by the build (a bootloader's core.img) instead of a source file; source is then unused. */
  content?: Buffer;
  /** The source as the config names it, for the layout (no build-machine paths in layout.json). */
  name: string;
  size: number;
  offset: number;
}

export interface DiskSpec {
  table: TableKind;
  /** Where auto-placed partitions start and auto-sized ones end: a multiple of 512. */
  alignment: number;
  /** Bytes, or 'auto': exactly what the partitions need, rounded up to the alignment. */
  diskSize: number | 'auto';
  /** With table none and diskSize auto: the filesystem's own size, not aligned (make-ext4-fs). */
  exactSize?: boolean;
  diskGuid?: string;
  diskSignature?: number;
  /** Derives the table's ids not given (table.ts's resolveIds). */
  seed?: string;
  partitions: DiskPartition[];
  rawBlobs: RawBlob[];
  /** BIOS boot code for LBA 0 (GRUB's boot.img): bytes 0-439 only, the disk signature and table follow it. */
  bootCode?: Buffer;
}
